import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { decodeRequest, encodeResponse, rawDataBytes } from '../../src/rendezvous/messages.js';
import { connectStore, type WsStore, type WsStoreOptions } from '../../src/rendezvous/ws-client.js';
import { StoreServer } from '../../src/rendezvous/ws-server.js';
import { rejection, storeBehaviour, text } from './store-behaviour.js';

storeBehaviour('WsStore', async () => {
  const server = await StoreServer.listen({});
  const clients: WsStore[] = [];
  return {
    open: async () => {
      const client = await connectStore(server.url);
      clients.push(client);
      return client;
    },
    teardown: async () => {
      await Promise.all(clients.map((client) => client.close()));
      await server.close();
    },
  };
});

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('WsStore', () => {
  const servers: StoreServer[] = [];
  const clients: WsStore[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  const listen = async (port = 0) => {
    const server = await StoreServer.listen({ port });
    servers.push(server);
    return server;
  };
  const connect = async (url: string, opts?: WsStoreOptions) => {
    const client = await connectStore(url, opts);
    clients.push(client);
    return client;
  };

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(servers.splice(0).map((server) => server.close()));
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('fails a pending wait with TCCL_ERR_STORE as soon as the server goes away', async () => {
    const server = await listen();
    const client = await connect(server.url);
    const lost = new Promise((resolve) => client.onClose(resolve));
    const pending = rejection(client.wait(['never-set'], 60_000));
    await client.set('fence', '1');

    const closedAt = Date.now();
    await server.close();
    const error = await pending;
    expect(Date.now() - closedAt).toBeLessThan(2_000);
    expect(error.code).toBe('TCCL_ERR_STORE');
    expect(error.message).toContain('op wait');
    expect(error.message).toContain('"never-set"');

    expect(await lost).toMatchObject({ code: 'TCCL_ERR_STORE' });
    const later = await rejection(client.get('fence'));
    expect(later.code).toBe('TCCL_ERR_STORE');
    expect(later.message).toContain('op get');
    // Registering after the loss still reports it.
    expect(await new Promise((resolve) => client.onClose(resolve))).toMatchObject({ code: 'TCCL_ERR_STORE' });
  });

  it('retries the first connect until the server is listening', async () => {
    // Holds the port, drops every connection, and tells us the client has tried once.
    const dropper = createServer((socket) => socket.destroy());
    dropper.listen(0, '127.0.0.1');
    await once(dropper, 'listening');
    const { port } = dropper.address() as AddressInfo;
    const attempted = once(dropper, 'connection');
    const connecting = connect(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 10_000 });
    await attempted;
    await new Promise((resolve) => dropper.close(resolve));

    const server = await listen(port);
    const client = await connecting;
    await client.set('k', 'v');
    expect(text(await (await connect(server.url)).get('k'))).toBe('v');
  });

  it('gives up connecting after connectTimeoutMs with TCCL_ERR_STORE', async () => {
    const server = await StoreServer.listen({});
    const { url } = server;
    await server.close();
    const error = await rejection(connectStore(url, { connectTimeoutMs: 100 }));
    expect(error.code).toBe('TCCL_ERR_STORE');
    expect(error.message).toContain(url);
  });

  it('rejects a malformed url without retrying', async () => {
    expect((await rejection(connectStore('not a url'))).code).toBe('TCCL_ERR_INVALID_ARGUMENT');
  });

  it('times out calls to a server that stops answering', async () => {
    // Answers the Hello, then ignores everything.
    const mute = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(mute, 'listening');
    mute.on('connection', (socket) =>
      socket.once('message', (data) => socket.send(encodeResponse({ id: decodeRequest(rawDataBytes(data)).id, ok: true }))),
    );
    cleanups.push(async () => {
      for (const socket of mute.clients) socket.terminate();
      await new Promise((resolve) => mute.close(resolve));
    });

    const client = await connect(`ws://127.0.0.1:${(mute.address() as AddressInfo).port}`, { timeoutMs: 50 });
    const error = await rejection(client.set('k', 'v'));
    expect(error.code).toBe('TCCL_ERR_TIMEOUT');
    expect(error.message).toContain('no reply');
    expect(error.message).toContain('"k"');
  });

  it('multiplexes concurrent requests from several clients', async () => {
    const server = await listen();
    const group = await Promise.all(range(6).map(() => connect(server.url)));
    await Promise.all(
      group.flatMap((writer, i) =>
        range(40).map(async (j) => {
          const key = `c${i}/k${j}`;
          const read = group[(i + 1) % group.length].get(key, 10_000);
          await writer.set(key, `${i}:${j}`);
          expect(text(await read)).toBe(`${i}:${j}`);
          expect(await group[(i + 2) % group.length].add(`count/${j}`, 1)).toBeGreaterThan(0);
        }),
      ),
    );
    for (const j of range(40)) expect(text(await group[0].get(`count/${j}`))).toBe('6');
  });

  it('reports its local address and whether it closed by request', async () => {
    const server = await listen();
    const client = await connect(server.url, { jobId: 'job-1', auth: new Uint8Array([1, 2, 3]) });
    expect(client.localAddress).toBe('127.0.0.1');
    const ended = new Promise((resolve) => client.onClose(resolve));
    await client.close();
    expect(await ended).toBeUndefined();
  });
});
