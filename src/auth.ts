/**
 * Per-job HMAC challenge–response (both directions): each side sends a fresh nonce and proves
 * it holds the job secret by returning HMAC-SHA256(secret, role | job | ranks | both nonces).
 * The secret itself never goes on the wire; the role label stops a proof being reflected back.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;

export type ProofPart = Uint8Array | string | number;

export class JobAuth {
  private readonly key: Buffer;

  /**
   * `secret` undefined or empty: keyed by the job id alone. That still refuses other jobs'
   * connections, but anyone who knows the job id can connect: `hasSecret` tells which.
   */
  constructor(readonly jobId: string, secret?: string) {
    this.hasSecret = secret !== undefined && secret !== '';
    this.key = Buffer.from(this.hasSecret ? `secret:${secret}` : `job-id-only:${jobId}`, 'utf8');
  }

  readonly hasSecret: boolean;

  /** The launcher's per-job secret (TCCL_JOB_SECRET), if any. */
  static fromEnv(jobId: string, env: Record<string, string | undefined> = process.env): JobAuth {
    return new JobAuth(jobId, env.TCCL_JOB_SECRET);
  }

  nonce(): Uint8Array {
    return new Uint8Array(randomBytes(NONCE_BYTES));
  }

  /** HMAC over `role`, the job id and `parts`, each length-prefixed so no two sequences collide. */
  proof(role: string, ...parts: ProofPart[]): Uint8Array {
    const h = createHmac('sha256', this.key);
    for (const part of ['tccl-auth-v1', role, this.jobId, ...parts]) {
      const bytes = typeof part === 'number' ? Buffer.from(String(part)) : typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
      const len = Buffer.alloc(4);
      len.writeUInt32LE(bytes.length);
      h.update(len);
      h.update(bytes);
    }
    return new Uint8Array(h.digest());
  }

  /** Constant-time check of a proof received from the other side. */
  verify(received: Uint8Array | undefined | null, role: string, ...parts: ProofPart[]): boolean {
    if (!received || received.length !== PROOF_BYTES) return false;
    return timingSafeEqual(received, this.proof(role, ...parts));
  }
}
