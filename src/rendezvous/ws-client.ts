/**
 * Store client for StoreServer: one WebSocket carries every request, matched to its
 * reply by id, so any number of get/wait calls can be parked at once.
 */
import type { IncomingMessage } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket } from 'ws';
import type { JobAuth } from '../auth.js';
import { TcclError, invalidArgument } from '../errors.js';
import { decodeResponse, encodeRequest, rawDataBytes, type RequestOp, type StoreResponse } from './messages.js';
import {
  MAX_STORE_TIMEOUT_MS,
  StoreTimeoutError,
  checkDelta,
  closedError,
  resolveTimeout,
  valueBytes,
} from './memory-store.js';
import { DEFAULT_STORE_TIMEOUT_MS, type Store } from './store.js';

export interface WsStoreOptions {
  /** Default get/wait timeout, and how long set/add/delete wait for a reply; default 300 s. */
  timeoutMs?: number;
  /** Keep retrying the first connect this long: ranks may start before the server; default 30 s. */
  connectTimeoutMs?: number;
  /** Sent in the Hello; the server does not check it yet. */
  jobId?: string;
  /** Sent in the Hello's legacy auth field; unused by the server. */
  auth?: Uint8Array;
  /** Job secret: the client and the server prove it to each other (challenge–response). */
  jobAuth?: JobAuth;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** Extra wait beyond a get/wait's own timeout before deciding the server is stuck. */
const REPLY_MARGIN_MS = 2_000;
const FIRST_RETRY_DELAY_MS = 10;
const MAX_RETRY_DELAY_MS = 500;
/** How long close() waits for the server's close frame before dropping the socket. */
const CLOSE_HANDSHAKE_MS = 1_000;

type CloseListener = (error?: TcclError) => void;

interface PendingRequest {
  op: string;
  key: string | undefined;
  serverTimeoutMs: number;
  resolve(response: StoreResponse): void;
  reject(error: TcclError): void;
  timer: NodeJS.Timeout;
}

/** Connects (retrying until connectTimeoutMs) and sends the Hello. */
export function connectStore(url: string, opts: WsStoreOptions = {}): Promise<WsStore> {
  return WsStore.connect(url, opts);
}

async function openWithRetry(url: string, deadline: number, connectTimeoutMs: number) {
  let retryDelay = FIRST_RETRY_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await openOnce(url, deadline - Date.now());
    } catch (cause) {
      if (cause instanceof TcclError) throw cause;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new TcclError('TCCL_ERR_STORE', `cannot reach store at ${url} within ${connectTimeoutMs} ms (${attempt} attempts)`, {
          op: 'connect',
          cause,
        });
      }
      await delay(Math.min(retryDelay, remaining));
      retryDelay = Math.min(retryDelay * 2, MAX_RETRY_DELAY_MS);
    }
  }
}

function openOnce(url: string, budgetMs: number): Promise<{ socket: WebSocket; localAddress: string }> {
  let socket: WebSocket;
  try {
    socket = new WebSocket(url, { handshakeTimeout: Math.max(budgetMs, 1) });
  } catch (cause) {
    // A malformed URL will not get better by retrying.
    throw invalidArgument(`bad store url ${JSON.stringify(url)}`, { op: 'connect', cause });
  }
  return new Promise((resolve, reject) => {
    let localAddress = '';
    socket.once('upgrade', (res: IncomingMessage) => {
      // IPv4 peers of a dual-stack socket show up as ::ffff:a.b.c.d.
      localAddress = (res.socket.localAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
    });
    socket.once('open', () => {
      socket.removeAllListeners('error');
      resolve({ socket, localAddress });
    });
    // ws closes the socket itself after a failed handshake.
    socket.once('error', reject);
  });
}

export class WsStore implements Store {
  private readonly pending = new Map<number, PendingRequest>();
  private readonly closeListeners = new Set<CloseListener>();
  private nextId = 1;
  /** Why the connection ended, once it has; later calls fail with it. */
  private ended: { byClose: true } | { byClose: false; reason: string } | undefined;
  private lastSocketError: Error | undefined;

  private constructor(
    readonly url: string,
    private readonly socket: WebSocket,
    /** Local IP of this connection: the interface that routes to the store host. */
    readonly localAddress: string,
    private readonly timeoutMs: number,
  ) {
    socket.on('message', (data) => this.onMessage(rawDataBytes(data)));
    socket.on('error', (error) => (this.lastSocketError = error));
    socket.on('close', (code, reason) => this.onSocketClosed(code, reason.toString()));
  }

  /** Same as connectStore(). */
  static async connect(url: string, opts: WsStoreOptions = {}): Promise<WsStore> {
    const timeoutMs = resolveTimeout(opts.timeoutMs, DEFAULT_STORE_TIMEOUT_MS, 'connect');
    const connectTimeoutMs = resolveTimeout(opts.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connect');
    const deadline = Date.now() + connectTimeoutMs;
    const { socket, localAddress } = await openWithRetry(url, deadline, connectTimeoutMs);
    const store = new WsStore(url, socket, localAddress, timeoutMs);
    // The server answers Hello before anything else; a refusal surfaces here.
    const jobAuth = opts.jobAuth;
    const nonce = jobAuth?.nonce();
    const hello: RequestOp = { kind: 'hello', jobId: jobAuth?.jobId ?? opts.jobId ?? '', auth: opts.auth ?? new Uint8Array(), nonce: nonce ?? new Uint8Array() };
    const helloTimeoutMs = Math.max(deadline - Date.now(), REPLY_MARGIN_MS);
    try {
      const reply = await store.request('hello', undefined, hello, helloTimeoutMs, helloTimeoutMs);
      if (jobAuth) {
        if (!jobAuth.verify(reply.proof, 'store-server', nonce!, reply.challenge)) {
          throw new TcclError('TCCL_ERR_PROTOCOL', `store server ${url} failed authentication: it does not hold this job's secret`, { op: 'connect' });
        }
        const proof = jobAuth.proof('store-client', reply.challenge, nonce!);
        await store.request('auth', undefined, { kind: 'auth', proof }, helloTimeoutMs, helloTimeoutMs);
      }
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  async set(key: string, value: Uint8Array | string): Promise<void> {
    await this.request('set', key, { kind: 'set', key, value: valueBytes(value) }, this.timeoutMs, this.timeoutMs);
  }

  async get(key: string, timeoutMs?: number): Promise<Uint8Array> {
    const serverTimeoutMs = resolveTimeout(timeoutMs, this.timeoutMs, 'get');
    const body: RequestOp = { kind: 'get', key, timeoutMs: serverTimeoutMs };
    const { value } = await this.request('get', key, body, serverTimeoutMs, replyDeadline(serverTimeoutMs));
    // A plain Uint8Array, not the Buffer protobufjs decodes into.
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  async wait(keys: string[], timeoutMs?: number): Promise<void> {
    const serverTimeoutMs = resolveTimeout(timeoutMs, this.timeoutMs, 'wait');
    const body: RequestOp = { kind: 'wait', keys, timeoutMs: serverTimeoutMs };
    await this.request('wait', keys[0], body, serverTimeoutMs, replyDeadline(serverTimeoutMs));
  }

  async add(key: string, delta: number): Promise<number> {
    checkDelta(key, delta);
    const response = await this.request('add', key, { kind: 'add', key, delta }, this.timeoutMs, this.timeoutMs);
    return response.counter;
  }

  async delete(key: string): Promise<boolean> {
    const response = await this.request('delete', key, { kind: 'delete', key }, this.timeoutMs, this.timeoutMs);
    return response.existed;
  }

  /** Pending calls fail with TCCL_ERR_CLOSED; resolves once the socket is gone. */
  async close(): Promise<void> {
    if (this.ended !== undefined) return;
    this.end({ byClose: true });
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    const stuck = setTimeout(() => this.socket.terminate(), CLOSE_HANDSHAKE_MS);
    this.socket.close(1000, 'client closing');
    await closed;
    clearTimeout(stuck);
  }

  /**
   * `listener` runs once when the connection ends: with a TCCL_ERR_STORE error if the server
   * went away, without one after close(). Returns an unsubscribe function.
   */
  onClose(listener: CloseListener): () => void {
    if (this.ended !== undefined) {
      const error = this.ended.byClose ? undefined : this.lostError(this.ended.reason);
      queueMicrotask(() => listener(error));
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  private request(
    op: string,
    key: string | undefined,
    body: RequestOp,
    serverTimeoutMs: number,
    replyTimeoutMs: number,
  ): Promise<StoreResponse> {
    if (this.ended !== undefined) return Promise.reject(this.endedError(op, key));
    const id = this.nextId;
    this.nextId = this.nextId === 0xffff_ffff ? 1 : this.nextId + 1;
    return new Promise<StoreResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TcclError('TCCL_ERR_TIMEOUT', `no reply from store server ${this.url} within ${replyTimeoutMs} ms`, { op, key }));
      }, replyTimeoutMs);
      this.pending.set(id, { op, key, serverTimeoutMs, resolve, reject, timer });
      this.socket.send(encodeRequest({ id, op: body }), { binary: true });
    });
  }

  private onMessage(bytes: Uint8Array): void {
    let response: StoreResponse;
    try {
      response = decodeResponse(bytes);
    } catch (error) {
      this.lastSocketError = error as Error;
      this.socket.terminate();
      return;
    }
    const request = this.pending.get(response.id);
    // Replies to requests that already timed out client-side are dropped.
    if (request === undefined) return;
    this.pending.delete(response.id);
    clearTimeout(request.timer);
    if (response.ok) request.resolve(response);
    else request.reject(serverError(response, request));
  }

  private onSocketClosed(code: number, reason: string): void {
    if (this.ended !== undefined) return;
    const detail = this.lastSocketError?.message ?? `socket closed with code ${code}${reason ? ` (${reason})` : ''}`;
    this.end({ byClose: false, reason: detail });
  }

  private end(how: NonNullable<WsStore['ended']>): void {
    this.ended = how;
    for (const request of this.pending.values()) {
      clearTimeout(request.timer);
      request.reject(this.endedError(request.op, request.key));
    }
    this.pending.clear();
    const error = how.byClose ? undefined : this.lostError(how.reason);
    for (const listener of this.closeListeners) listener(error);
    this.closeListeners.clear();
  }

  private endedError(op: string, key: string | undefined): TcclError {
    const ended = this.ended!;
    return ended.byClose ? closedError(op, key) : this.lostError(ended.reason, op, key);
  }

  private lostError(reason: string, op?: string, key?: string): TcclError {
    return new TcclError('TCCL_ERR_STORE', `lost connection to store server ${this.url}: ${reason}`, { op, key });
  }
}

function replyDeadline(serverTimeoutMs: number): number {
  return Math.min(serverTimeoutMs + REPLY_MARGIN_MS, MAX_STORE_TIMEOUT_MS);
}

/** Timeouts and bad arguments keep their code; anything else the server reports is a store failure. */
function serverError(response: StoreResponse, request: PendingRequest): TcclError {
  if (response.errorCode === 'TCCL_ERR_TIMEOUT' && response.missingKeys.length > 0) {
    return new StoreTimeoutError(request.op, response.missingKeys, request.serverTimeoutMs);
  }
  const code = response.errorCode === 'TCCL_ERR_INVALID_ARGUMENT' ? response.errorCode : 'TCCL_ERR_STORE';
  // The server's message already names the op and key.
  return new TcclError(code, `store server: ${response.errorMessage.replace(/^TCCL_ERR_\w+: /, '')}`);
}
