/**
 * Link authentication, three Hello frames (aux = step) before anything else may flow:
 *   1 dialer → acceptor: source = dialer rank, tag = acceptor rank, payload = nonceD | job id
 *   2 acceptor → dialer: payload = nonceA | HMAC('tcp-accept', rankA, rankD, nonceD, nonceA)
 *   3 dialer → acceptor: payload = HMAC('tcp-dial', rankD, rankA, nonceA, nonceD)
 * Both sides prove they hold the job secret; the secret never goes on the wire. A link is
 * registered (carries data) only once its side has checked the other's proof.
 */
import { JobAuth, NONCE_BYTES, PROOF_BYTES } from '../../src/auth.js';
import * as log from '../../src/diag/log.js';
import { TcclError } from '../../src/errors.js';
import { FrameKind, type FrameHeader } from '../../src/wire/frame.js';
import type { Link } from './link.js';

/** Largest Hello payload accepted before a link is authenticated. */
export const HELLO_MAX_BYTES = 4096;
const STEP_HELLO = 1;
const STEP_CHALLENGE = 2;
const STEP_PROOF = 3;

interface Pending {
  role: 'dial' | 'accept';
  /** The other side's rank: known up front when dialling, from step 1 when accepting. */
  peer: number;
  mine: Uint8Array;
  theirs?: Uint8Array;
  timer: NodeJS.Timeout;
  /** Remote address, kept for the log: a destroyed socket forgets it. */
  addr: string;
  resolve?: () => void;
  reject?: (e: TcclError) => void;
}

export class TcpHandshake {
  private readonly pending = new Map<Link, Pending>();
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly rank: number,
    private readonly size: number,
    readonly auth: JobAuth,
    private readonly timeoutMs: number,
  ) {}

  /** Authenticate a link we dialled to `peer`; resolves once the acceptor proved the secret. */
  dial(link: Link, peer: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const mine = this.auth.nonce();
      const timer = setTimeout(() => link.destroy(this.error(`rank ${peer} did not complete authentication within ${this.timeoutMs} ms`, peer)), this.timeoutMs);
      this.pending.set(link, { role: 'dial', peer, mine, timer, addr: remote(link), resolve, reject });
      const job = this.encoder.encode(this.auth.jobId);
      const payload = new Uint8Array(NONCE_BYTES + job.length);
      payload.set(mine);
      payload.set(job, NONCE_BYTES);
      this.sendHello(link, STEP_HELLO, peer, payload);
    });
  }

  /** A connection arrived: it must authenticate within the handshake timeout or be dropped. */
  accept(link: Link): void {
    const timer = setTimeout(() => link.destroy(this.error(`no authentication within ${this.timeoutMs} ms`)), this.timeoutMs);
    this.pending.set(link, { role: 'accept', peer: -1, mine: this.auth.nonce(), timer, addr: remote(link) });
  }

  /**
   * A Hello frame on a link not yet authenticated. Returns the peer rank when this completes
   * an accepted link (the caller registers it); throws TCCL_ERR_PROTOCOL, closing the link,
   * on anything unexpected.
   */
  onHello(link: Link, header: FrameHeader, payload: Uint8Array | null): number {
    const p = this.pending.get(link);
    if (!p) throw this.error('Hello on a link with no handshake in progress');
    const bytes = payload ?? new Uint8Array(0);
    if (p.role === 'accept' && header.aux === STEP_HELLO && p.peer < 0) {
      const peer = header.source;
      if (!Number.isInteger(peer) || peer < 0 || peer >= this.size || peer === this.rank) throw this.error(`Hello from invalid rank ${peer}`);
      if (header.tag !== this.rank) throw this.error(`Hello from rank ${peer} meant for rank ${header.tag}`, peer);
      if (bytes.length < NONCE_BYTES) throw this.error(`Hello from rank ${peer} without a nonce`, peer);
      const job = new TextDecoder().decode(bytes.subarray(NONCE_BYTES));
      if (job !== this.auth.jobId) throw this.error(`Hello from rank ${peer} of another job ('${job.slice(0, 64)}')`, peer);
      p.peer = peer;
      p.theirs = bytes.slice(0, NONCE_BYTES);
      const reply = new Uint8Array(NONCE_BYTES + PROOF_BYTES);
      reply.set(p.mine);
      reply.set(this.auth.proof('tcp-accept', this.rank, peer, p.theirs, p.mine), NONCE_BYTES);
      this.sendHello(link, STEP_CHALLENGE, peer, reply);
      return -1;
    }
    if (p.role === 'accept' && header.aux === STEP_PROOF && p.theirs && header.source === p.peer) {
      if (!this.auth.verify(bytes, 'tcp-dial', p.peer, this.rank, p.mine, p.theirs)) {
        throw this.error(`rank ${p.peer} failed authentication (wrong job secret)`, p.peer);
      }
      this.done(link, p);
      log.info(this.rank, `accepted authenticated link from rank ${p.peer} (${remote(link)})`);
      return p.peer;
    }
    if (p.role === 'dial' && header.aux === STEP_CHALLENGE && header.source === p.peer && bytes.length === NONCE_BYTES + PROOF_BYTES) {
      const theirs = bytes.slice(0, NONCE_BYTES);
      if (!this.auth.verify(bytes.subarray(NONCE_BYTES), 'tcp-accept', p.peer, this.rank, p.mine, theirs)) {
        throw this.error(`rank ${p.peer} at ${remote(link)} failed authentication (wrong job secret, or not rank ${p.peer})`, p.peer);
      }
      // TCP keeps order: our proof reaches the acceptor before any data we send after it.
      this.sendHello(link, STEP_PROOF, p.peer, this.auth.proof('tcp-dial', this.rank, p.peer, theirs, p.mine));
      this.done(link, p);
      log.info(this.rank, `connected to rank ${p.peer} at ${remote(link)} (authenticated)`);
      p.resolve?.();
      return -1;
    }
    throw this.error(`unexpected Hello step ${header.aux} from rank ${header.source}`, p.peer >= 0 ? p.peer : undefined);
  }

  /** The link closed: fail a dial still waiting, and log connections refused during authentication. */
  onClosed(link: Link, error: Error | null, shuttingDown: boolean): void {
    const p = this.pending.get(link);
    if (!p) return;
    this.pending.delete(link);
    clearTimeout(p.timer);
    if (p.role === 'dial') {
      const ours = error instanceof TcclError && error.code === 'TCCL_ERR_PROTOCOL';
      const why = ours ? error.detail : `rank ${p.peer} at ${p.addr} closed the connection during authentication${error ? ` (${error.message})` : ''}: it refused us (wrong job secret?) or exited`;
      p.reject?.(new TcclError(ours ? 'TCCL_ERR_PROTOCOL' : 'TCCL_ERR_PEER_LOST', why, { rank: this.rank, peer: p.peer, op: 'connect' }));
      return;
    }
    if (error && !shuttingDown) {
      const ours = error instanceof TcclError && error.code === 'TCCL_ERR_PROTOCOL';
      const why = ours ? error.detail
        : p.theirs ? `the dialer (claiming rank ${p.peer}) left during authentication: it could not verify our proof (wrong job secret?)`
        : `closed before authenticating (${error.message})`;
      log.warnLimited('refused-tcp', this.rank, `refused connection from ${p.addr}: ${why}`);
    }
  }

  private done(link: Link, p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(link);
    link.peer = p.peer;
  }

  private sendHello(link: Link, step: number, peer: number, payload: Uint8Array): void {
    const header: FrameHeader = { kind: FrameKind.Hello, context: 0, source: this.rank, tag: peer, seq: 0, aux: step, length: payload.length };
    void link.send(header, payload).catch(() => undefined);
  }

  private error(message: string, peer?: number): TcclError {
    return new TcclError('TCCL_ERR_PROTOCOL', `authentication: ${message}`, { rank: this.rank, peer, op: 'connect' });
  }
}

function remote(link: Link): string {
  const s = link.socket;
  return `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
}
