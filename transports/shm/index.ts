import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { TcclError } from '../../src/errors.js';
import type { TransportInit, TransportSink } from '../../src/transport.js';
import { shmAddon, safeJobId } from './native.js';
import { MAX_RING_BYTES, MIN_RING_BYTES, Ring, ringBytes } from './ring.js';
import { RingTransport } from './ring-transport.js';
import { heartbeatIntervalFromEnv } from '../../src/link-liveness.js';
import type { SharedTeam } from '../../src/transport.js';
import { ShmTeam, teamRegionBytes, teamSlotBytes, type Futex, type TeamRegion } from './team.js';

export { segmentPrefix } from './native.js';

export interface ShmOptions extends TransportInit {
  /** Job identity: names the segments and doorbell sockets, so two jobs never collide. */
  jobId: string;
  /** World ranks this transport links (the ranks on this host, this rank included); default all. */
  peers?: readonly number[];
  /** Data bytes per ring (a power of two); default by the number of local ranks, env TCCL_SHM_RING_BYTES. */
  ringBytes?: number;
  spinMicros: number;
  /**
   * Payloads of at least this many bytes are copied once, straight from the sender's memory
   * (process_vm_readv), when the receiver can read the sender; env TCCL_SHM_SINGLE_COPY_BYTES.
   * Default 0 = off: on the 2-core VM this was built on, process_vm_readv moved 1-2 GB/s while
   * two memcpys through a cache-resident ring moved 5-10 GB/s (16 MiB ping-pong).
   */
  singleCopyBytes?: number;
}

const DEFAULT_SINGLE_COPY_BYTES = 0;
/** Single-copy payload bytes offered to a peer before waiting for its pulls; env TCCL_SHM_PULL_WINDOW. */
const DEFAULT_PULL_WINDOW = 1 << 20;
const pullWindowBytes = () => Math.max(0, Number(process.env.TCCL_SHM_PULL_WINDOW) || DEFAULT_PULL_WINDOW);
function singleCopyBytes(opts: ShmOptions): number {
  const configured = process.env.TCCL_SHM_SINGLE_COPY_BYTES;
  if (opts.singleCopyBytes !== undefined) return opts.singleCopyBytes;
  if (configured !== undefined && configured !== '') return Math.max(0, Number(configured) || 0);
  return DEFAULT_SINGLE_COPY_BYTES;
}

/** Ring size: big enough to pipeline large messages, small enough that 8 ranks stay modest. */
export function defaultRingBytes(localRanks: number): number {
  const configured = Number(process.env.TCCL_SHM_RING_BYTES);
  if (configured > 0) return configured;
  if (localRanks <= 4) return 4 << 20;
  if (localRanks <= 8) return 2 << 20;
  return 1 << 20;
}

const POKE = Buffer.from([1]);
/**
 * Each segment starts with a random token. Abstract unix sockets have no file permissions,
 * so a doorbell hello must quote the token of the segment it connects to: only a process that
 * could map that 0600 segment (this job's user) can know it.
 */
const SEGMENT_HEADER_BYTES = 64;
const TOKEN_BYTES = 16;

interface Doorbell {
  socket: net.Socket;
  /** The peer said hello: it has mapped every segment of this job, ours included. */
  greeted: boolean;
  /** The peer said it can read this process's memory (single-copy path). */
  canPull: boolean;
}

interface RankInfo {
  host: string;
  ring: number;
  /** Bytes per team slot half (0: no team region, not every rank is local). */
  slot: number;
  ranks: number[];
  pid: number;
  /** Address and contents of a probe buffer, so peers can test whether they may read our memory. */
  probe: string;
  token: string;
}

/**
 * Shared memory between processes on one host. Each rank creates one segment under
 * /dev/shm holding the rings its local peers write to it, and listens on an abstract unix
 * socket (no file) that serves as doorbell and as liveness: the kernel closes it when the
 * process dies, even by kill -9. Once every peer has mapped the segment (each says hello
 * on the socket only after mapping all of them), the name is unlinked, so nothing of the
 * job stays in /dev/shm however it ends later.
 */
export class ShmTransport extends RingTransport {
  readonly name = 'shm';
  private readonly local: readonly number[];
  private readonly capacity: number;
  private readonly job: string;
  private server: net.Server | null = null;
  private readonly bells = new Map<number, Doorbell>();
  private readonly greetWaiters: (() => void)[] = [];
  private mapped = false;
  private segmentName = '';
  private unlinked = false;
  private readonly pids = new Map<number, number>();
  /** Peers whose memory this process could read during setup. */
  private readonly readable = new Set<number>();
  private readonly probe = randomBytes(16);
  private readonly token = randomBytes(TOKEN_BYTES);
  private readonly peerTokens = new Map<number, string>();
  /** Team slot half size when every rank of the job is on this host, else 0 (no team). */
  private readonly slotBytes: number;
  private team: ShmTeam | null = null;

  constructor(private readonly opts: ShmOptions) {
    super({
      rank: opts.rank, size: opts.size, spinMicros: opts.spinMicros,
      bulk: singleCopyBytes(opts) > 0 ? {
        minBytes: singleCopyBytes(opts),
        windowBytes: pullWindowBytes(),
        address: (view) => shmAddon().address(view),
        pull: (peer, address, dest) => { shmAddon().pull(this.pids.get(peer)!, address, dest); },
      } : undefined,
    });
    this.local = opts.peers ?? Array.from({ length: opts.size }, (_, r) => r);
    if (!this.local.includes(opts.rank)) throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `shm peers must include rank ${opts.rank} itself`);
    this.capacity = opts.ringBytes ?? defaultRingBytes(this.local.length);
    if (this.capacity < MIN_RING_BYTES || this.capacity > MAX_RING_BYTES || (this.capacity & (this.capacity - 1)) !== 0) {
      throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `shm ring size must be a power of two between ${MIN_RING_BYTES} and ${MAX_RING_BYTES} bytes, got ${this.capacity}`);
    }
    this.job = safeJobId(opts.jobId);
    this.slotBytes = this.local.length === opts.size ? teamSlotBytes() : 0;
  }

  private segment(rank: number): string { return `/tccl-${this.job}-${rank}`; }
  private socketPath(rank: number): string { return `\0tccl-${this.job}-${rank}`; }
  private infoKey(rank: number): string { return `${this.opts.prefix}/shm/${rank}`; }
  /** Where, in `owner`'s segment, the ring written by `writer` sits. */
  private slot(writer: number): number { return SEGMENT_HEADER_BYTES + this.local.indexOf(writer) * ringBytes(this.capacity); }
  /** Where, in each segment, its owner's team region sits (after the rings). */
  private get teamOffset(): number { return SEGMENT_HEADER_BYTES + this.local.length * ringBytes(this.capacity); }

  /** Shared memory with every rank of the job (only when all of them are on this host). */
  sharedTeam(): SharedTeam | null {
    return this.team;
  }

  /**
   * A team over `members` (world ranks, in team rank order; this rank among them) whose
   * regions are `regions` in the same order. Same wait settings for the world's team and
   * a sub-communicator's.
   */
  private buildTeam(members: readonly number[], slotBytes: number, regions: TeamRegion[]): ShmTeam {
    const addon = shmAddon();
    const futex: Futex = { wait: (i32, index, expected, ms) => { addon.futexWait(i32, index, expected, ms); }, wake: (i32, index) => { addon.futexWake(i32, index); }, yieldCpu: () => addon.yieldCpu() };
    return new ShmTeam({
      rank: members.indexOf(this.rank), size: members.length, slotBytes, futex, regions,
      // Ranks of one process (test worlds) share its thread: blocking would stall them all.
      blocking: members.every((p) => p === this.rank || this.pids.get(p) !== process.pid),
      spinMicros: this.opts.spinMicros,
    });
  }

  /**
   * A team of its own for a communicator made by split/dup (SharedTeam), collective over
   * `members` (world ranks in communicator rank order): each member creates a segment
   * `/tccl-<job>-t<key>-<rank>` holding one team region (the launcher's prefix cleanup covers
   * a crash), says so in the store, maps every member's, says it mapped them, and unlinks its
   * own name once every member did (the mappings stay). Null (on every member alike) unless
   * every member is on this host. `key` must be unique per communicator on the job.
   */
  async createSharedTeam(key: string, members: readonly number[], timeoutMs: number): Promise<SharedTeam | null> {
    if (!members.includes(this.rank)) throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `team ${key}: members [${members}] do not include this rank`, { rank: this.rank });
    if (!members.every((m) => this.local.includes(m))) return null;
    const addon = shmAddon();
    const slotBytes = this.slotBytes || teamSlotBytes();
    const bytes = teamRegionBytes(slotBytes);
    const name = (rank: number) => `/tccl-${this.job}-t${key}-${rank}`;
    const entry = (rank: number) => `${this.opts.prefix}/team/${key}/${rank}`;
    const deadline = performance.now() + timeoutMs;
    const left = () => Math.min(2 ** 31 - 1, Math.max(1, deadline - performance.now()));
    const others = members.filter((m) => m !== this.rank);
    let mine: ArrayBuffer;
    try {
      mine = addon.map(name(this.rank), bytes, true);
    } catch (e) {
      const error = `cannot create shared memory ${name(this.rank)} of ${bytes} B: ${(e as Error).message}`;
      // Tell the other members at once, so they fail now instead of at the deadline.
      await this.opts.store.set(entry(this.rank), JSON.stringify({ error })).catch(() => undefined);
      throw new TcclError('TCCL_ERR_INTERNAL', `${error} (job '${this.opts.jobId}')`, { rank: this.rank, cause: e });
    }
    let unlinked = false;
    let saidMapped = false;
    const unlinkMine = () => {
      if (unlinked) return;
      unlinked = true;
      try { addon.unlink(name(this.rank)); } catch { /* already gone */ }
    };
    try {
      await this.opts.store.set(entry(this.rank), JSON.stringify({ slot: slotBytes }));
      const regions = await this.gatherTeam(key, others, 'create their shared memory', left, async (peer, value) => {
        const info = JSON.parse(value) as { slot?: number; error?: string };
        if (info.error !== undefined) throw new TcclError('TCCL_ERR_INTERNAL', `team ${key}: rank ${peer} failed to set up its shared memory: ${info.error}`, { rank: this.rank, peer });
        if (info.slot !== slotBytes) {
          throw new TcclError('TCCL_ERR_DESYNC', `team ${key}: rank ${peer} uses slots of ${info.slot} B, this rank ${slotBytes} B: set TCCL_SHM_SLOT_BYTES alike everywhere`, { rank: this.rank, peer });
        }
        return addon.map(name(peer), bytes, false);
      }, entry);
      saidMapped = true;
      await this.opts.store.set(`${entry(this.rank)}/mapped`, '{}');
      await this.gatherTeam(key, others, 'map every member\'s shared memory', left, async (peer, value) => {
        const info = JSON.parse(value) as { error?: string };
        if (info.error !== undefined) throw new TcclError('TCCL_ERR_INTERNAL', `team ${key}: rank ${peer} failed to set up its shared memory: ${info.error}`, { rank: this.rank, peer });
      }, (r) => `${entry(r)}/mapped`);
      unlinkMine();
      await this.forgetTeamKeys(key, members, entry);
      const buffers = members.map((m) => (m === this.rank ? mine : regions.get(m)!));
      return this.buildTeam(members, slotBytes, buffers.map((buffer) => ({ buffer, offset: 0 })));
    } catch (e) {
      // Members waiting for this one learn it failed now instead of at their deadline.
      if (!saidMapped) await this.opts.store.set(`${entry(this.rank)}/mapped`, JSON.stringify({ error: e instanceof TcclError ? e.detail : String(e) })).catch(() => undefined);
      throw e;
    } finally {
      unlinkMine(); // on failure too: no name stays behind (peers that mapped it keep their mapping)
    }
  }

  /**
   * Remove a team's setup keys from the store (a job that splits often would otherwise grow
   * it without bound). Each member counts itself done once it has read every member's keys;
   * the last one deletes them all. Best effort: a store that fails here fails the job's next
   * store operation anyway.
   */
  private async forgetTeamKeys(key: string, members: readonly number[], entry: (rank: number) => string): Promise<void> {
    const store = this.opts.store;
    const done = `${this.opts.prefix}/team/${key}/done`;
    try {
      if ((await store.add(done, 1)) !== members.length) return;
      await Promise.all([...members.flatMap((m) => [store.delete(entry(m)), store.delete(`${entry(m)}/mapped`)]), store.delete(done)]);
    } catch {
      // (see above)
    }
  }

  /** Every `peers`' store entry (`entry(peer)`), turned by `take`; a timeout names the members not heard from. */
  private async gatherTeam<V>(key: string, peers: number[], what: string, left: () => number, take: (peer: number, value: string) => Promise<V>, entry: (rank: number) => string): Promise<Map<number, V>> {
    const got = new Map<number, V>();
    try {
      await Promise.all(peers.map(async (p) => {
        const value = new TextDecoder().decode(await this.opts.store.get(entry(p), left()));
        got.set(p, await take(p, value));
      }));
    } catch (e) {
      if (e instanceof TcclError && e.code !== 'TCCL_ERR_TIMEOUT') throw e;
      const missing = peers.filter((p) => !got.has(p));
      if (!(e instanceof TcclError)) throw new TcclError('TCCL_ERR_INTERNAL', `team ${key}: cannot map the shared memory of rank${missing.length > 1 ? 's' : ''} ${missing.join(',')}: ${(e as Error).message}`, { rank: this.rank, peer: missing, cause: e });
      throw new TcclError('TCCL_ERR_TIMEOUT', `team ${key}: rank${missing.length > 1 ? 's' : ''} ${missing.join(',')} did not ${what} within the timeout`, { rank: this.rank, peer: missing, cause: e });
    }
    return got;
  }

  async start(sink: TransportSink): Promise<void> {
    this.sink = sink;
    const addon = shmAddon();
    const segBytes = this.teamOffset + (this.slotBytes > 0 ? teamRegionBytes(this.slotBytes) : 0);
    this.segmentName = this.segment(this.rank);
    let mine: ArrayBuffer;
    try {
      mine = addon.map(this.segmentName, segBytes, true);
      new Uint8Array(mine, 0, TOKEN_BYTES).set(this.token);
    } catch (e) {
      throw new TcclError('TCCL_ERR_INTERNAL', `${(e as Error).message} (job '${this.opts.jobId}'; is another job using the same TCCL_JOB_ID?)`, { rank: this.rank, cause: e });
    }
    try {
      await this.listen();
      const mineInfo: RankInfo = {
        host: os.hostname(), ring: this.capacity, slot: this.slotBytes, ranks: [...this.local], pid: process.pid,
        probe: addon.address(this.probe).toString(), token: this.probe.toString('hex'),
      };
      await this.opts.store.set(this.infoKey(this.rank), JSON.stringify(mineInfo));
      const peers = this.local.filter((p) => p !== this.rank);
      const theirs = await Promise.all(peers.map(async (p) => {
        const info = JSON.parse(new TextDecoder().decode(await this.opts.store.get(this.infoKey(p), this.opts.timeoutMs))) as RankInfo;
        this.pids.set(p, info.pid);
        if (this.canRead(info)) this.readable.add(p);
        if (info.ring !== this.capacity || info.slot !== this.slotBytes || info.ranks.join() !== this.local.join()) {
          throw new TcclError('TCCL_ERR_DESYNC', `rank ${p} set up shared memory with ring ${info.ring} B and slots ${info.slot} B over ranks [${info.ranks}], this rank with ${this.capacity} B and ${this.slotBytes} B over [${this.local}]: set TCCL_SHM_RING_BYTES and TCCL_SHM_SLOT_BYTES alike everywhere`, { rank: this.rank, peer: p });
        }
        const seg = addon.map(this.segment(p), segBytes, false);
        this.peerTokens.set(p, Buffer.from(seg, 0, TOKEN_BYTES).toString('hex'));
        return seg;
      }));
      peers.forEach((p, i) => this.attach(p, new Ring(mine, this.slot(p), this.capacity), new Ring(theirs[i], this.slot(this.rank), this.capacity)));
      if (this.slotBytes > 0) {
        const segments = this.local.map((r) => (r === this.rank ? mine : theirs[peers.indexOf(r)]));
        this.team = this.buildTeam(this.local, this.slotBytes, segments.map((buffer) => ({ buffer, offset: this.teamOffset })));
      }
      this.mapped = true;
      this.watchStoppedPeers();
      for (const [peer, bell] of this.bells) this.hello(bell.socket, peer);
      await Promise.all(peers.filter((p) => p < this.rank).map((p) => this.dial(p)));
      await this.allGreeted(peers);
    } catch (e) {
      this.teardown(true);
      throw e;
    }
    this.unlink();
    for (const [peer, bell] of this.bells) if (bell.canPull) this.enableBulk(peer);
    this.wake(false); // a peer that finished first may have written already
  }

  /** Whether process_vm_readv may read the peer (same user, no ptrace lockdown, not disabled). */
  private canRead(info: RankInfo): boolean {
    if (singleCopyBytes(this.opts) <= 0) return false;
    try {
      const got = Buffer.alloc(16);
      shmAddon().pull(info.pid, BigInt(info.probe), got);
      return got.toString('hex') === info.token;
    } catch {
      return false;
    }
  }

  private listen(): Promise<void> {
    const server = net.createServer((socket) => this.adopt(socket, -1));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e) => reject(new TcclError('TCCL_ERR_INTERNAL', `cannot listen on the shm doorbell socket: ${e.message}`, { rank: this.rank, cause: e })));
      server.listen(this.socketPath(this.rank), () => resolve());
    });
  }

  private dial(peer: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.socketPath(peer));
      socket.once('connect', () => {
        socket.off('error', reject);
        this.adopt(socket, peer);
        this.hello(socket, peer);
        resolve();
      });
      socket.once('error', (e) => reject(new TcclError('TCCL_ERR_PEER_LOST', `cannot reach rank ${peer}'s shm doorbell: ${e.message}`, { rank: this.rank, peer, op: 'connect' })));
    });
  }

  /** Hello line: job, rank, whether we can read the peer's memory, the token of its segment. */
  private hello(socket: net.Socket, peer: number): void {
    socket.write(`${this.job} ${this.rank} ${this.readable.has(peer) ? 1 : 0} ${this.peerTokens.get(peer)}\n`);
  }

  /** A doorbell socket: first a hello line naming the job and rank, then one byte per poke. */
  private adopt(socket: net.Socket, dialled: number): void {
    let peer = dialled;
    let line = '';
    let greeted = false;
    socket.on('data', (chunk: Buffer) => {
      if (greeted) return this.wake(false);
      line += chunk.toString('latin1');
      const nl = line.indexOf('\n');
      if (nl < 0) {
        if (line.length > 200) socket.destroy();
        return;
      }
      const [job, rankText, pullText, token] = line.slice(0, nl).split(' ');
      const from = Number(rankText);
      if (job !== this.job || token !== this.token.toString('hex') || !this.local.includes(from) || from === this.rank
        || (dialled >= 0 && from !== dialled) || (dialled < 0 && this.bells.get(from)?.greeted)) {
        socket.destroy(); // not one of ours (another job or user, a stray or second connection)
        return;
      }
      peer = from;
      greeted = true;
      const bell = this.bells.get(peer) ?? { socket, greeted: false, canPull: false };
      bell.socket = socket;
      bell.greeted = true;
      bell.canPull = pullText === '1';
      this.bells.set(peer, bell);
      if (dialled < 0 && this.mapped) this.hello(socket, peer);
      for (const w of this.greetWaiters.splice(0)) w();
      if (line.length > nl + 1) this.wake(false);
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      if (peer < 0 || this.bells.get(peer)?.socket !== socket) return;
      this.bells.delete(peer);
      for (const w of this.greetWaiters.splice(0)) w();
      if (!this.shuttingDown) this.peerDied(peer, 'exited or was killed (its doorbell socket closed)');
    });
    if (dialled >= 0) this.bells.set(dialled, { socket, greeted: false, canPull: false });
  }

  private allGreeted(peers: number[]): Promise<void> {
    const timeoutMs = this.opts.timeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const missing = peers.filter((p) => !this.bells.get(p)?.greeted);
        reject(new TcclError('TCCL_ERR_TIMEOUT', `shm setup: rank${missing.length > 1 ? 's' : ''} ${missing.join(',')} did not connect within ${timeoutMs} ms`, { rank: this.rank, peer: missing, op: 'connect' }));
      }, timeoutMs);
      const check = () => {
        if (peers.every((p) => this.bells.get(p)?.greeted)) {
          clearTimeout(timer);
          resolve();
        } else this.greetWaiters.push(check);
      };
      check();
    });
  }

  protected ring(peer: number): void {
    const bell = this.bells.get(peer);
    if (bell && !bell.socket.destroyed) bell.socket.write(POKE);
  }

  private unlink(): void {
    if (this.unlinked || !this.segmentName) return;
    this.unlinked = true;
    try {
      shmAddon().unlink(this.segmentName);
    } catch { /* already gone, or never created */ }
  }

  /**
   * A peer on this host that is stopped (SIGSTOP, a debugger) never closes its doorbell, so
   * the kernel tells nothing: read its state from /proc every 1/8 heartbeat interval and lose
   * it once it has been stopped for 1.25 intervals (as tcp's heartbeat silence; a merely busy
   * peer is running, never 'T', so it is left alone).
   */
  private watchStoppedPeers(): void {
    const intervalMs = heartbeatIntervalFromEnv();
    if (intervalMs <= 0) return;
    const stoppedSince = new Map<number, number>();
    this.stopWatch = setInterval(() => {
      const now = performance.now();
      for (const [peer, pid] of this.pids) {
        const link = this.links[peer];
        if (!link || link.lost) continue;
        if (processState(pid) !== 'stopped') {
          stoppedSince.delete(peer);
          continue;
        }
        const since = stoppedSince.get(peer) ?? now;
        stoppedSince.set(peer, since);
        if (now - since >= 1.25 * intervalMs) {
          this.lose(link, new TcclError('TCCL_ERR_PEER_LOST', `no data or heartbeat from rank ${peer}: its process (pid ${pid}) has been stopped (SIGSTOP or a debugger) for ${Math.round(now - since)} ms (heartbeat interval ${intervalMs} ms)`, { rank: this.rank, peer }));
        }
      }
    }, Math.max(10, intervalMs / 8));
    this.stopWatch.unref();
  }

  private stopWatch: NodeJS.Timeout | null = null;

  private teardown(hard: boolean): void {
    this.shuttingDown = true;
    if (this.stopWatch) clearInterval(this.stopWatch);
    this.stopWatch = null;
    for (const [, bell] of this.bells) {
      if (hard) bell.socket.destroy();
      else bell.socket.end();
    }
    this.server?.close();
    this.server = null;
    this.unlink();
  }

  async close(): Promise<void> {
    if (this.shuttingDown) return;
    await this.flushAndGoodbye();
    this.teardown(false);
  }

  abort(reason: TcclError): void {
    if (this.shuttingDown) return;
    this.abortLinks(reason);
    this.teardown(false);
  }
}

/** 'stopped' when /proc says the process is stopped or traced (state T or t). */
function processState(pid: number): 'stopped' | 'running' | 'gone' {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'T' || state === 't' ? 'stopped' : 'running';
  } catch {
    return 'gone';
  }
}
