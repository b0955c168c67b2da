import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { encodeRequest } from '../../src/rendezvous/messages.js';
import { connectStore, type WsStore } from '../../src/rendezvous/ws-client.js';
import { StoreServer } from '../../src/rendezvous/ws-server.js';
import { rejection, text } from './store-behaviour.js';

const PROTOCOL_ERROR = 1002;

describe('StoreServer', () => {
  const servers: StoreServer[] = [];
  const clients: WsStore[] = [];
  const rawSockets: WebSocket[] = [];

  const listen = async (port = 0) => {
    const server = await StoreServer.listen({ port });
    servers.push(server);
    return server;
  };
  const connect = async (url: string) => {
    const client = await connectStore(url);
    clients.push(client);
    return client;
  };
  const openRaw = async (url: string) => {
    const socket = new WebSocket(url);
    rawSockets.push(socket);
    await once(socket, 'open');
    return socket;
  };
  /** Sends `messages` on a fresh raw connection and resolves to the close code the server used. */
  const closeCodeAfter = async (url: string, ...messages: (Uint8Array | string)[]) => {
    const socket = await openRaw(url);
    const closed = once(socket, 'close');
    for (const message of messages) socket.send(message);
    const [code] = await closed;
    return code as number;
  };

  afterEach(async () => {
    for (const socket of rawSockets.splice(0)) socket.terminate();
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  it('listens on 127.0.0.1 and a free port by default', async () => {
    const server = await listen();
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`ws://127.0.0.1:${server.port}`);
  });

  it('closes only the connection that sends garbage and keeps serving the rest', async () => {
    const server = await listen();
    const client = await connect(server.url);
    const parked = client.get('after-garbage', 10_000);
    await client.set('fence', '1');

    const hello = encodeRequest({ id: 1, op: { kind: 'hello', jobId: '', auth: new Uint8Array() } });
    const garbage = randomBytes(1_024);
    garbage[0] = 0xff; // wire type 7 does not exist, so this can never decode by chance
    expect(await closeCodeAfter(server.url, garbage)).toBe(PROTOCOL_ERROR);
    expect(await closeCodeAfter(server.url, hello, garbage)).toBe(PROTOCOL_ERROR);
    expect(await closeCodeAfter(server.url, 'text frames are not allowed')).toBe(PROTOCOL_ERROR);
    expect(await closeCodeAfter(server.url, new Uint8Array())).toBe(PROTOCOL_ERROR);
    expect(await closeCodeAfter(server.url, encodeRequest({ id: 1, op: { kind: 'set', key: 'k', value: new Uint8Array() } }))).toBe(
      PROTOCOL_ERROR,
    );
    expect(await closeCodeAfter(server.url, hello, hello)).toBe(PROTOCOL_ERROR);

    // Nothing a rejected connection sent after its first bad message reaches the table.
    const sneakySet = encodeRequest({ id: 2, op: { kind: 'set', key: 'sneaky', value: new Uint8Array([1]) } });
    expect(await closeCodeAfter(server.url, garbage, hello, sneakySet)).toBe(PROTOCOL_ERROR);
    expect((await rejection(client.get('sneaky', 0))).code).toBe('TCCL_ERR_TIMEOUT');

    await (await connect(server.url)).set('after-garbage', 'still here');
    expect(text(await parked)).toBe('still here');
  });

  it('close() ends clients, drops parked waits and frees the port', async () => {
    const server = await listen();
    const client = await connect(server.url);
    const parked = rejection(client.wait(['never-set'], 60_000));
    await client.set('fence', '1');
    await server.close();
    expect((await parked).code).toBe('TCCL_ERR_STORE');

    const again = await listen(server.port);
    expect(again.port).toBe(server.port);
  });

  it('reports a port already in use as TCCL_ERR_STORE', async () => {
    const server = await listen();
    expect((await rejection(StoreServer.listen({ port: server.port }))).code).toBe('TCCL_ERR_STORE');
  });
});
