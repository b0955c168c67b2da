/**
 * Rendezvous store served over WebSocket (the role of torch's TCPStore master): every
 * binary message is one protobuf Request answered by one Response with the same id.
 */
import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { TcclError, isTcclError } from '../errors.js';
import { decodeRequest, encodeResponse, rawDataBytes, type RequestOp, type StoreResponse } from './messages.js';
import { MemoryStore, StoreTimeoutError } from './memory-store.js';

export interface StoreServerOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Default 0: the OS picks a free port, read it back from `port`. */
  port?: number;
}

/** WebSocket close code for protocol violations (RFC 6455). */
const CLOSE_PROTOCOL_ERROR = 1002;

export class StoreServer {
  // Clients always send explicit timeouts, so the table's default is never used.
  private readonly table = new MemoryStore();

  private constructor(
    private readonly wss: WebSocketServer,
    readonly host: string,
    readonly port: number,
  ) {
    wss.on('connection', (socket) => this.serve(socket));
  }

  static async listen(opts: StoreServerOptions = {}): Promise<StoreServer> {
    const host = opts.host ?? '127.0.0.1';
    const wss = new WebSocketServer({ host, port: opts.port ?? 0 });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    }).catch((cause: unknown) => {
      throw new TcclError('TCCL_ERR_STORE', `store server cannot listen on ${host}:${opts.port ?? 0}`, { cause });
    });
    // Later server errors (none expected once bound) must not crash the process.
    wss.on('error', () => {});
    return new StoreServer(wss, host, (wss.address() as AddressInfo).port);
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `ws://${host}:${this.port}`;
  }

  /** Terminates every client and releases the port; parked waits are dropped. */
  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await this.table.close();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private serve(socket: WebSocket): void {
    // Aborted on disconnect so the client's parked waits leave the table at once.
    const disconnected = new AbortController();
    // One listener per parked get/wait of this client: many are normal.
    setMaxListeners(Infinity, disconnected.signal);
    let greeted = false;
    const closeForProtocolError = (reason: string) => socket.close(CLOSE_PROTOCOL_ERROR, reason);

    socket.on('close', () => disconnected.abort());
    socket.on('error', () => socket.terminate());
    socket.on('message', (data, isBinary) => {
      // Once we have closed a misbehaving connection, nothing else it sent may touch the table.
      if (socket.readyState !== socket.OPEN) return;
      if (!isBinary) return closeForProtocolError('binary messages only');
      let request;
      try {
        request = decodeRequest(rawDataBytes(data));
      } catch {
        return closeForProtocolError('malformed request');
      }
      if (!greeted) {
        // Auth goes here: check request.op.jobId / request.op.auth once the launcher issues them.
        if (request.op.kind !== 'hello') return closeForProtocolError('first message must be hello');
        greeted = true;
        return this.reply(socket, { id: request.id, ok: true });
      }
      if (request.op.kind === 'hello') return closeForProtocolError('repeated hello');
      this.execute(request.op, disconnected.signal).then(
        (result) => this.reply(socket, { id: request.id, ok: true, ...result }),
        (error: unknown) => this.reply(socket, { id: request.id, ok: false, ...errorFields(error) }),
      );
    });
  }

  /** Runs synchronously up to the first await, so one client's requests apply in order. */
  private async execute(op: Exclude<RequestOp, { kind: 'hello' }>, signal: AbortSignal): Promise<Partial<StoreResponse>> {
    switch (op.kind) {
      case 'set':
        await this.table.set(op.key, op.value);
        return {};
      case 'get':
        return { value: await this.table.get(op.key, op.timeoutMs, signal) };
      case 'wait':
        await this.table.wait(op.keys, op.timeoutMs, signal);
        return {};
      case 'add':
        return { counter: await this.table.add(op.key, op.delta) };
      case 'delete':
        return { existed: await this.table.delete(op.key) };
    }
  }

  private reply(socket: WebSocket, response: Partial<StoreResponse> & { id: number; ok: boolean }): void {
    // Replies to clients that left (or to waits dropped by close) have nowhere to go.
    if (socket.readyState === socket.OPEN) socket.send(encodeResponse(response), { binary: true });
  }
}

function errorFields(error: unknown): Partial<StoreResponse> {
  if (error instanceof StoreTimeoutError) {
    return { errorCode: error.code, errorMessage: error.message, missingKeys: error.missingKeys };
  }
  if (isTcclError(error)) return { errorCode: error.code, errorMessage: error.message };
  return { errorCode: 'TCCL_ERR_INTERNAL', errorMessage: String(error) };
}
