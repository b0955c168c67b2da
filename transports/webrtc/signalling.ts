import type { Store } from '../../src/rendezvous/store.js';

/**
 * Store keys for WebRTC signalling, all under `<prefix>/webrtc/`:
 *   pair/<lo>-<hi>/offer            SDP offer, written by the lower rank
 *   pair/<lo>-<hi>/answer           SDP answer, written by the higher rank
 *   pair/<lo>-<hi>/cand/<rank>/<i>  i-th ICE candidate gathered by <rank> (JSON); '' ends the list
 *   inbox/<rank>/count, inbox/<rank>/<k>
 *                                   k-th request to <rank>: the rank that wants a link (lazy
 *                                   setup: the other side must start its half), or 'stop'
 * Every key is written once: a pair is set up at most once per job.
 */
export class Signalling {
  constructor(private readonly store: Store, private readonly prefix: string) {}

  private pair(a: number, b: number): string {
    return `${this.prefix}/webrtc/pair/${Math.min(a, b)}-${Math.max(a, b)}`;
  }

  publishDescription(me: number, peer: number, type: string, sdp: string): Promise<void> {
    return this.store.set(`${this.pair(me, peer)}/${type}`, sdp);
  }

  async description(me: number, peer: number, type: 'offer' | 'answer', timeoutMs: number): Promise<string> {
    return new TextDecoder().decode(await this.store.get(`${this.pair(me, peer)}/${type}`, timeoutMs));
  }

  /** Publish candidate `index` gathered by `me`; `null` marks the end of gathering. */
  publishCandidate(me: number, peer: number, index: number, candidate: { candidate: string; mid: string } | null): Promise<void> {
    return this.store.set(`${this.pair(me, peer)}/cand/${me}/${index}`, candidate ? JSON.stringify(candidate) : '');
  }

  /** The `index`-th candidate `peer` gathered for the pair, or null once its gathering completed. */
  async candidate(me: number, peer: number, index: number, timeoutMs: number): Promise<{ candidate: string; mid: string } | null> {
    const raw = new TextDecoder().decode(await this.store.get(`${this.pair(me, peer)}/cand/${peer}/${index}`, timeoutMs));
    return raw === '' ? null : (JSON.parse(raw) as { candidate: string; mid: string });
  }

  /** Ask `to` to start its half of the pair with `from` (or tell it to stop watching: from = 'stop'). */
  async request(to: number, from: number | 'stop'): Promise<void> {
    const k = await this.store.add(`${this.prefix}/webrtc/inbox/${to}/count`, 1);
    await this.store.set(`${this.prefix}/webrtc/inbox/${to}/${k}`, String(from));
  }

  /** The k-th request to `me` (k from 1): a rank, or 'stop'. */
  async nextRequest(me: number, k: number, timeoutMs: number): Promise<number | 'stop'> {
    const raw = new TextDecoder().decode(await this.store.get(`${this.prefix}/webrtc/inbox/${me}/${k}`, timeoutMs));
    return raw === 'stop' ? 'stop' : Number(raw);
  }
}
