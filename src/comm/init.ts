import { TcclError, invalidArgument } from '../errors.js';
import { MemoryStore } from '../rendezvous/memory-store.js';
import type { Store } from '../rendezvous/store.js';
import { JobAuth } from '../auth.js';
import * as log from '../diag/log.js';
import { connectStore, type WsStore } from '../rendezvous/ws-client.js';
import { StoreServer } from '../rendezvous/ws-server.js';
import { FileStore } from '../rendezvous/file-store.js';
import type { Transport, TransportInit } from '../transport.js';
import { TcpTransport } from '../../transports/tcp/index.js';
import { createMemoryWorld } from '../../transports/memory/index.js';
import { ShmTransport } from '../../transports/shm/index.js';
import { AutoTransport } from '../../transports/auto/index.js';
import { createThreadWorld, joinedThreadWorld, ThreadTransport } from '../../transports/shm/threads.js';
import { WebRtcTransport } from '../../transports/webrtc/index.js';
import { Communicator, DEFAULT_TIMEOUT_MS } from './communicator.js';
import { Engine } from './engine.js';
import { readLaunchEnv } from './env.js';
import { hostCpuCount } from '../host-load.js';
import { shmAddon } from '../../transports/shm/native.js';

/** What a transport factory gets besides rank/size/store. */
export interface TransportSetup extends TransportInit {
  host: string;
  jobId: string;
}
export type TransportFactory = (setup: TransportSetup) => Transport;

export interface InitOptions {
  rank?: number;
  size?: number;
  /** Rendezvous store; default: the launcher's (TCCL_STORE_URL, TCCL_STORE_FILE, or rank 0 hosts one at MASTER_ADDR). */
  store?: Store;
  /** 'auto' (default: shm between ranks on one host, tcp across hosts), 'tcp', 'shm', 'webrtc' (data channels signalled through the store), or a factory for a custom transport. */
  transport?: 'tcp' | 'shm' | 'webrtc' | 'auto' | TransportFactory;
  /** Default timeout for every blocking operation; env TCCL_TIMEOUT_MS; default 300 s. */
  timeoutMs?: number;
  /** 'eager' builds every link during init; 'lazy' (default) on first message to a peer. */
  connect?: 'lazy' | 'eager';
  /** Address to listen on; env TCCL_SOCKET_ADDR; default the one that reaches the store, else loopback. */
  host?: string;
  /** Job identity: links from another job are refused. */
  jobId?: string;
  /** Unexpected-message bytes held before reading from the sender pauses; default 256 MiB. */
  maxUnexpectedBytes?: number;
}

const DEFAULT_MAX_UNEXPECTED = 256 << 20;
const DEFAULT_SPIN_MICROS = 200;

/**
 * tcclrun --bind-to core: run this rank's main thread on the CPU the launcher gave it
 * (TCCL_BIND_CPU); V8's helper threads keep every CPU. After hostCpuCount() was read.
 */
function bindMainThread(rank: number): void {
  const text = process.env.TCCL_BIND_CPU;
  if (text === undefined || text === '') return;
  const cpu = Number(text);
  if (!Number.isInteger(cpu) || cpu < 0) throw invalidArgument(`TCCL_BIND_CPU='${text}' is not a CPU number`, { rank, op: 'init' });
  hostCpuCount();
  try {
    shmAddon().bindCpu(cpu);
  } catch (e) {
    throw new TcclError('TCCL_ERR_INVALID_ARGUMENT', `cannot bind rank ${rank} to CPU ${cpu} (TCCL_BIND_CPU): ${(e as Error).message}`, { rank, op: 'init', cause: e });
  }
  log.info(rank, `bound to CPU ${cpu}`);
}

/** Poll briefly before sleeping, unless this host runs more ranks than it has cores. */
function spinMicros(localRanks: number): number {
  const configured = process.env.TCCL_SPIN_US;
  if (configured !== undefined && configured !== '') return Math.max(0, Number(configured) || 0);
  return localRanks <= hostCpuCount() ? DEFAULT_SPIN_MICROS : 0;
}

/**
 * Join the job: read rank and size from the launcher's environment (tcclrun, torchrun,
 * SLURM, Open MPI, PMI) or from `opts`, rendezvous through the store, and return the world
 * communicator. With no launcher and no options this is a one-rank world (MPI singleton).
 */
export async function init(opts: InitOptions = {}): Promise<Communicator> {
  const initStarted = performance.now();
  const launch = readLaunchEnv();
  const rank = opts.rank ?? launch?.rank ?? 0;
  const size = opts.size ?? launch?.size ?? 1;
  if (!Number.isInteger(size) || size < 1) throw invalidArgument(`world size must be a positive integer, got ${size}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw invalidArgument(`rank ${rank} is out of range for world size ${size}`);
  const envTimeout = process.env.TCCL_TIMEOUT_MS ? Number(process.env.TCCL_TIMEOUT_MS) : undefined;
  const timeoutMs = opts.timeoutMs ?? launch?.timeoutMs ?? envTimeout ?? DEFAULT_TIMEOUT_MS;
  const jobId = opts.jobId ?? launch?.jobId ?? 'tccl';

  const owned: { store?: Store; server?: StoreServer } = {};
  let store = opts.store;
  if (!store) {
    const jobAuth = JobAuth.fromEnv(jobId);
    if (launch?.storeUrl) store = owned.store = await connectStore(launch.storeUrl, { timeoutMs, jobAuth });
    else if (launch?.storeDir) store = owned.store = new FileStore(launch.storeDir, { timeoutMs });
    else if (launch?.masterAddr && launch.storePort !== undefined) {
      if (rank === 0) owned.server = await StoreServer.listen({ host: launch.masterAddr, port: launch.storePort, auth: jobAuth });
      store = owned.store = await connectStore(`ws://${launch.masterAddr}:${launch.storePort}`, { timeoutMs, jobAuth });
    } else if (size === 1) store = owned.store = new MemoryStore();
    else throw invalidArgument(`rank ${rank} of ${size} has no rendezvous store: launch with tcclrun, or set TCCL_STORE_URL, TCCL_STORE_FILE, or MASTER_ADDR and MASTER_PORT`);
  }
  const wsStore = 'localAddress' in store ? (store as WsStore) : undefined;
  const host = opts.host ?? process.env.TCCL_SOCKET_ADDR ?? (wsStore?.localAddress || '127.0.0.1');

  const choice = opts.transport ?? (launch?.transport as InitOptions['transport']) ?? 'auto';
  const setup: TransportSetup = { rank, size, store, prefix: `tccl/${jobId}`, timeoutMs, host, jobId };
  const spin = spinMicros(launch?.localSize ?? size);
  bindMainThread(rank);
  // Ranks started as threads by `tcclrun --threads` share one SharedArrayBuffer of rings.
  const threadWorld = joinedThreadWorld();
  let transport: Transport;
  if (typeof choice === 'function') transport = choice(setup);
  else if (threadWorld && (choice === 'shm' || choice === 'auto')) transport = new ThreadTransport({ rank, size, world: threadWorld, spinMicros: spin });
  else if (choice === 'tcp') transport = new TcpTransport(setup);
  else if (choice === 'auto') transport = new AutoTransport({ ...setup, spinMicros: spin });
  else if (choice === 'shm') transport = new ShmTransport({ ...setup, spinMicros: spin });
  else if (choice === 'webrtc') transport = new WebRtcTransport(setup);
  else throw invalidArgument(`unknown transport '${String(choice)}': expected 'auto', 'tcp', 'shm' or 'webrtc'`);

  const engine = new Engine(rank, size, transport, {
    maxUnexpectedBytes: opts.maxUnexpectedBytes ?? DEFAULT_MAX_UNEXPECTED,
    spinMicros: spin,
  });
  let shuttingDown = false;
  const releaseStore = async () => {
    await owned.store?.close();
    await owned.server?.close();
  };
  const world = new Communicator(engine, 0, Array.from({ length: size }, (_, r) => r), timeoutMs, {
    async close() {
      shuttingDown = true;
      await transport.close();
      await releaseStore();
    },
    abort(error) {
      shuttingDown = true;
      // Keep the store until the peers were told: it gives the addresses of peers never linked.
      void Promise.resolve(transport.abort(error)).catch(() => undefined).finally(() => void releaseStore());
    },
  });
  // The launcher hosts the store: if it vanishes the job is over, so nothing may wait on.
  wsStore?.onClose((error) => {
    if (!error || shuttingDown || !owned.store) return;
    world.abort(new TcclError('TCCL_ERR_PEER_LOST', `lost the rendezvous store (${error.message}); the launcher is gone`));
  });
  await transport.start(engine);
  if (opts.connect === 'eager') await transport.connectAll(timeoutMs);
  log.info(rank, `init: rank ${rank} of ${size} (${launch?.launcher ?? 'no launcher'}), transport ${transport.name}, job ${jobId}, timeout ${timeoutMs} ms, ${opts.connect ?? 'lazy'} links, ready in ${(performance.now() - initStarted).toFixed(1)} ms`);
  return world;
}

/**
 * A whole world inside this process, one communicator per rank: for tests and examples.
 * 'memory' passes frames between ranks in memory; 'tcp' uses real loopback sockets.
 */
export async function initLocalWorld(size: number, opts: { transport?: 'memory' | 'tcp' | 'shm' | 'threads' | 'webrtc'; timeoutMs?: number; maxUnexpectedBytes?: number; connect?: 'lazy' | 'eager' } = {}): Promise<Communicator[]> {
  if (!Number.isInteger(size) || size < 1) throw invalidArgument(`world size must be a positive integer, got ${size}`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (opts.transport === 'tcp' || opts.transport === 'shm' || opts.transport === 'webrtc') {
    const store = new MemoryStore();
    const jobId = `local-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const transport = opts.transport;
    return Promise.all(Array.from({ length: size }, (_, rank) =>
      init({ rank, size, store, transport, timeoutMs, host: '127.0.0.1', jobId, connect: opts.connect, maxUnexpectedBytes: opts.maxUnexpectedBytes })));
  }
  if (opts.transport === 'threads') {
    // Every rank on this thread, over the rings and doorbells thread ranks use.
    const store = new MemoryStore();
    const world = createThreadWorld(size);
    return Promise.all(Array.from({ length: size }, (_, rank) =>
      init({ rank, size, store, timeoutMs, jobId: 'threads', maxUnexpectedBytes: opts.maxUnexpectedBytes, transport: () => new ThreadTransport({ rank, size, world, spinMicros: 0, blocking: false }) })));
  }
  const transports = createMemoryWorld(size);
  return Promise.all(transports.map(async (transport, rank) => {
    // One thread runs every rank here: spinning would only steal time from the others.
    const engine = new Engine(rank, size, transport, { maxUnexpectedBytes: opts.maxUnexpectedBytes ?? DEFAULT_MAX_UNEXPECTED, spinMicros: 0 });
    await transport.start(engine);
    return new Communicator(engine, 0, transports.map((_, r) => r), timeoutMs, {
      close: () => transport.close(),
      abort: (error) => transport.abort(error),
    });
  }));
}
