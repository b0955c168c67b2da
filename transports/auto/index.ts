import { readFileSync } from 'node:fs';
import os from 'node:os';
import { TcclError } from '../../src/errors.js';
import type { SharedTeam, Transport, TransportSink } from '../../src/transport.js';
import type { FrameHeader } from '../../src/wire/frame.js';
import { ShmTransport } from '../shm/index.js';
import { shmAddon } from '../shm/native.js';
import { TcpTransport, type TcpOptions } from '../tcp/index.js';

export interface AutoOptions extends TcpOptions {
  spinMicros: number;
  /** Which host this rank is on; ranks with equal ids use shm. Default: hostIdentity(). */
  hostId?: string;
}

/** Same value on every process of one booted machine (a hostname alone can repeat across containers). */
export function hostIdentity(): string {
  let boot = '';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch { /* not Linux: the hostname has to do */ }
  return `${os.hostname()}/${boot}`;
}

function shmAvailable(): boolean {
  try {
    shmAddon();
    return true;
  } catch {
    return false;
  }
}

/**
 * Per-peer routing: shared memory to ranks on this host, TCP to the rest. Ranks publish
 * their host identity (and whether they can use shm) in the store; both ends of a pair
 * derive the same choice from the same published values.
 */
export class AutoTransport implements Transport {
  readonly name = 'auto';
  readonly rank: number;
  readonly size: number;
  private shm: ShmTransport | null = null;
  private tcp: TcpTransport | null = null;
  /** Per world rank: the transport that carries our traffic to it. */
  private route: (Transport | null)[];

  constructor(private readonly opts: AutoOptions) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.route = new Array(opts.size).fill(null);
  }

  async start(sink: TransportSink): Promise<void> {
    const { store, prefix, rank, size, timeoutMs } = this.opts;
    const me = `${this.opts.hostId ?? hostIdentity()}|${shmAvailable() ? 'shm' : 'noshm'}`;
    await store.set(`${prefix}/auto/host/${rank}`, me);
    const all = await Promise.all(Array.from({ length: size }, async (_, r) => (r === rank ? me : new TextDecoder().decode(await store.get(`${prefix}/auto/host/${r}`, timeoutMs)))));
    const local = me.endsWith('|shm') ? all.flatMap((h, r) => (h === me ? [r] : [])) : [rank];
    const isLocal = new Set(local);
    if (local.length > 1) this.shm = new ShmTransport({ ...this.opts, peers: local });
    if (local.length < size) this.tcp = new TcpTransport(this.opts);
    for (let r = 0; r < size; r++) if (r !== rank) this.route[r] = isLocal.has(r) ? this.shm : this.tcp;
    // TCP may dial a local rank while closing (to say goodbye to silent peers); that rank's
    // fate is shm's to report, so TCP's word on it is ignored.
    const tcpSink: TransportSink = {
      beginFrame: (peer, header) => sink.beginFrame(peer, header),
      endFrame: (peer, header, payload) => sink.endFrame(peer, header, payload),
      peerLost: (peer, error) => { if (!isLocal.has(peer)) sink.peerLost(peer, error); },
    };
    await Promise.all([this.shm?.start(sink), this.tcp?.start(tcpSink)]);
  }

  /** Shared memory with every rank: only when they are all on this host. */
  sharedTeam(): SharedTeam | null {
    return this.tcp ? null : (this.shm?.sharedTeam() ?? null);
  }

  /** A team for a split/dup communicator: only when every member is a shm peer on this host (the same answer on every member: host identities are published). */
  async createSharedTeam(key: string, members: readonly number[], timeoutMs: number): Promise<SharedTeam | null> {
    const shm = this.shm;
    if (!shm || !members.every((m) => m === this.rank || this.route[m] === shm)) return null;
    return shm.createSharedTeam(key, members, timeoutMs);
  }

  /** Which transport carries traffic to `peer` (diagnostics, tests, benchmarks). */
  transportFor(peer: number): string {
    return this.route[peer]?.name ?? 'none';
  }

  async connectAll(timeoutMs: number): Promise<void> {
    await Promise.all([this.shm?.connectAll(), this.tcp?.connectAll(timeoutMs)]);
  }

  send(peer: number, header: FrameHeader, payload: Uint8Array): Promise<void> {
    const t = this.route[peer];
    if (!t) return Promise.reject(new TcclError('TCCL_ERR_INTERNAL', `no route to rank ${peer}`, { rank: this.rank, peer }));
    return t.send(peer, header, payload);
  }

  pauseReceive(peer: number): void { this.route[peer]?.pauseReceive(peer); }
  resumeReceive(peer: number): void { this.route[peer]?.resumeReceive(peer); }

  queuedBytes(peer?: number): number {
    if (peer !== undefined) return this.route[peer]?.queuedBytes(peer) ?? 0;
    return (this.shm?.queuedBytes() ?? 0) + (this.tcp?.queuedBytes() ?? 0);
  }

  async close(): Promise<void> {
    await Promise.all([this.shm?.close(), this.tcp?.close()]);
  }

  abort(reason: TcclError): void {
    this.shm?.abort(reason);
    this.tcp?.abort(reason);
  }
}
