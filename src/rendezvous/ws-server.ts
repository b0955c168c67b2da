/**
 * Rendezvous store served over WebSocket (the role of torch's TCPStore master): every
 * binary message is one protobuf Request answered by one Response with the same id.
 */
import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { NONCE_BYTES, type JobAuth } from '../auth.js';
import * as log from '../diag/log.js';
import { TcclError, isTcclError } from '../errors.js';
import { decodeRequest, encodeResponse, rawDataBytes, type RequestOp, type StoreResponse } from './messages.js';
import { MemoryStore, StoreTimeoutError } from './memory-store.js';

export interface StoreServerOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Default 0: the OS picks a free port, read it back from `port`. */
  port?: number;
  /**
   * Job identity and secret: clients of another job, or that cannot prove the secret, are
   * refused (closed with 1008) and logged. Without it any client is served (tests only).
   */
  auth?: JobAuth;
  /** Largest WebSocket message accepted, checked before the message is buffered; default 32 MiB. */
  maxPayloadBytes?: number;
}

/** WebSocket close code for a refused client (RFC 6455 policy violation). */
const CLOSE_POLICY_VIOLATION = 1008;
const DEFAULT_MAX_PAYLOAD = 32 << 20;
/** A client must finish hello (and auth) this fast. */
const HANDSHAKE_MS = 10_000;

/** WebSocket close code for protocol violations (RFC 6455). */
const CLOSE_PROTOCOL_ERROR = 1002;

export class StoreServer {
  // Clients always send explicit timeouts, so the table's default is never used.
  private readonly table = new MemoryStore();

  private constructor(
    private readonly wss: WebSocketServer,
    readonly host: string,
    readonly port: number,
    private readonly auth: JobAuth | undefined,
  ) {
    wss.on('connection', (socket) => this.serve(socket));
  }

  static async listen(opts: StoreServerOptions = {}): Promise<StoreServer> {
    const host = opts.host ?? '127.0.0.1';
    if (host === '0.0.0.0' || host === '::' || host === '') log.warn(undefined, `store listens on every interface (${host || '*'}); clients still must authenticate`);
    const wss = new WebSocketServer({ host, port: opts.port ?? 0, maxPayload: opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    }).catch((cause: unknown) => {
      throw new TcclError('TCCL_ERR_STORE', `store server cannot listen on ${host}:${opts.port ?? 0}`, { cause });
    });
    // Later server errors (none expected once bound) must not crash the process.
    wss.on('error', () => {});
    return new StoreServer(wss, host, (wss.address() as AddressInfo).port, opts.auth);
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
    // 'hello' → ('auth' when this server authenticates) → 'ready'.
    let stage: 'hello' | 'auth' | 'ready' | 'closed' = 'hello';
    let clientNonce: Uint8Array | undefined;
    let serverNonce: Uint8Array | undefined;
    const auth = this.auth;
    const closeForProtocolError = (reason: string) => {
      if (stage !== 'ready') log.warnLimited('refused-store', undefined, `store refused a client: ${reason}`);
      stage = 'closed';
      socket.close(CLOSE_PROTOCOL_ERROR, reason);
    };
    const refuse = (reason: string) => {
      log.warnLimited('refused-store', undefined, `store refused a client: ${reason}`);
      stage = 'closed';
      socket.close(CLOSE_POLICY_VIOLATION, reason);
    };
    const handshakeTimer = setTimeout(() => {
      if (stage === 'hello' || stage === 'auth') refuse(`no ${stage} within ${HANDSHAKE_MS} ms`);
    }, HANDSHAKE_MS);
    handshakeTimer.unref();

    socket.on('close', () => {
      if (stage === 'auth') log.warnLimited('refused-store', undefined, 'store client left during authentication: it could not verify our proof (wrong job secret?)');
      clearTimeout(handshakeTimer);
      disconnected.abort();
    });
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
      if (stage === 'hello') {
        if (request.op.kind !== 'hello') return closeForProtocolError('first message must be hello');
        if (!auth) {
          stage = 'ready';
          return this.reply(socket, { id: request.id, ok: true });
        }
        if (request.op.jobId !== auth.jobId) return refuse(`wrong job '${request.op.jobId.slice(0, 64)}'`);
        if (request.op.nonce?.length !== NONCE_BYTES) return refuse('hello without a nonce (client has no job secret)');
        clientNonce = new Uint8Array(request.op.nonce);
        serverNonce = auth.nonce();
        stage = 'auth';
        return this.reply(socket, { id: request.id, ok: true, challenge: serverNonce, proof: auth.proof('store-server', clientNonce, serverNonce) });
      }
      if (stage === 'auth') {
        if (request.op.kind !== 'auth') return closeForProtocolError('second message must be auth');
        if (!auth!.verify(request.op.proof, 'store-client', serverNonce!, clientNonce!)) return refuse('authentication failed (wrong job secret)');
        stage = 'ready';
        clearTimeout(handshakeTimer);
        return this.reply(socket, { id: request.id, ok: true });
      }
      if (request.op.kind === 'hello' || request.op.kind === 'auth') return closeForProtocolError(`repeated ${request.op.kind}`);
      this.execute(request.op, disconnected.signal).then(
        (result) => this.reply(socket, { id: request.id, ok: true, ...result }),
        (error: unknown) => this.reply(socket, { id: request.id, ok: false, ...errorFields(error) }),
      );
    });
  }

  /** Runs synchronously up to the first await, so one client's requests apply in order. */
  private async execute(op: Exclude<RequestOp, { kind: 'hello' | 'auth' }>, signal: AbortSignal): Promise<Partial<StoreResponse>> {
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
