// Authentication through a real tcclrun job: an intruder that knows the job id and every
// address but not the secret (or not the job) is refused by the store and by a rank's tcp
// listener, the refusals are logged, and the job carries on with correct results.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale, killStragglers, tcclrun } from '../launcher/helpers.js';

beforeAll(() => buildIfStale());
afterEach(() => killStragglers());

describe('authentication (tcclrun, tcp)', () => {
  it('wrong secret, no secret and wrong job are refused on the store and on tcp links; the job is unharmed', async () => {
    const r = await tcclrun(['-n', '3', '--transport', 'tcp', 'test/multiprocess/fixtures/auth-probe.ts']);
    expect(r.code).toBe(0);
    const probe = (what: string) => new RegExp(`\\[0\\] PROBE ${what} (\\S+) (.*)$`, 'm').exec(r.stdout);
    // The client checks the server's proof first: with the wrong secret it refuses the server.
    expect(probe('store-wrong-secret')?.[1]).toBe('TCCL_ERR_PROTOCOL');
    expect(probe('store-wrong-secret')?.[2]).toContain("failed authentication: it does not hold this job's secret");
    expect(probe('store-wrong-job')?.[1]).toBe('TCCL_ERR_STORE');
    expect(probe('store-wrong-job')?.[2]).toContain('1008 (wrong job');
    expect(probe('store-no-secret')?.[1]).toBe('TCCL_ERR_STORE');
    expect(probe('store-no-secret')?.[2]).toContain('hello without a nonce');
    for (const what of ['tcp-wrong-secret', 'tcp-no-secret', 'tcp-wrong-job']) {
      expect(['TCCL_ERR_PROTOCOL', 'TCCL_ERR_PEER_LOST']).toContain(probe(what)?.[1]);
      expect(probe(what)?.[2]).toMatch(/authentication/);
    }
    expect(r.stdout).not.toContain('ACCEPTED');
    // Refusals are logged where they happen: the store in the launcher, links in rank 1.
    expect(r.stderr).toContain("tccl WARN: store refused a client: wrong job '");
    expect(r.stderr).toContain('tccl WARN: store refused a client: hello without a nonce');
    expect(r.stderr).toContain('tccl WARN: store client left during authentication: it could not verify our proof');
    expect(r.stderr).toMatch(/\[1\] tccl WARN rank 1: refused connection from 127\.0\.0\.1:\d+: the dialer \(claiming rank 0\) left during authentication/);
    expect(r.stderr).toMatch(/\[1\] tccl WARN rank 1: refused connection from 127\.0\.0\.1:\d+: authentication: Hello from rank 0 of another job/);
    expect(r.stdout.match(/RESULT rank=\d wrong=0/g)).toHaveLength(3);
  });
});
