import { cleanup, PeerConnection, type RtcConfig } from 'node-datachannel';
import { invalidArgument } from '../../src/errors.js';

export type { DataChannel, PeerConnection } from 'node-datachannel';

/**
 * libdatachannel runs its own threads (ICE, DTLS, SCTP) and node-datachannel keeps a
 * thread-safe callback alive per handle. A closed PeerConnection does not by itself let the
 * process exit: `cleanup()` joins those threads. It is process-wide, so it runs only when the
 * last live PeerConnection of every transport in this process has closed.
 */
let live = 0;

export function openPeerConnection(name: string, config: RtcConfig): PeerConnection {
  const pc = new PeerConnection(name, config);
  live++;
  return pc;
}

/** Close `pc` (idempotent per call site: call once) and release the library when none is left. */
export function releasePeerConnection(pc: PeerConnection): void {
  try {
    pc.close();
  } finally {
    live--;
    // cleanup() from inside a libdatachannel callback would join the calling thread: defer it.
    if (live === 0) setImmediate(() => { if (live === 0) cleanup(); });
  }
}

export const livePeerConnections = (): number => live;

/**
 * ICE servers from a list like `stun:stun.example.org:3478,turn:user:pass@turn.example.org:3478`
 * (libdatachannel's URL syntax). Empty: host candidates only, which is all a single host or
 * a LAN needs.
 */
export function parseIceServers(spec: string | undefined): string[] {
  if (!spec) return [];
  const servers = spec.split(/[\s,]+/).filter(Boolean);
  for (const s of servers) {
    if (!/^(stun|stuns|turn|turns):/.test(s)) throw invalidArgument(`ICE server '${s}' must start with stun:, stuns:, turn: or turns: (TCCL_ICE_SERVERS)`);
  }
  return servers;
}
