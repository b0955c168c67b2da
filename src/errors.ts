/** Stable error codes: callers branch on `code`, never on message text. */
export type TcclErrorCode =
  | 'TCCL_ERR_TIMEOUT'
  | 'TCCL_ERR_PEER_LOST'
  | 'TCCL_ERR_INVALID_ARGUMENT'
  | 'TCCL_ERR_TRUNCATED'
  | 'TCCL_ERR_CLOSED'
  | 'TCCL_ERR_ABORTED'
  | 'TCCL_ERR_DESYNC'
  | 'TCCL_ERR_PROTOCOL'
  | 'TCCL_ERR_STORE'
  | 'TCCL_ERR_INTERNAL';

/** Where an error happened: every field is optional, the message names those given. */
export interface ErrorContext {
  rank?: number;
  peer?: number | number[];
  op?: string;
  seq?: number;
  key?: string;
  cause?: unknown;
}

/** The one error class tccl throws; `code` is stable, the message names rank, peer, op and seq. */
export class TcclError extends Error {
  readonly code: TcclErrorCode;
  readonly rank?: number;
  readonly peer?: number | number[];
  readonly op?: string;
  readonly seq?: number;
  /** What went wrong, without the code prefix and the (rank, peer, …) suffix: for wrapping. */
  readonly detail: string;

  constructor(code: TcclErrorCode, message: string, ctx: ErrorContext = {}) {
    super(formatMessage(code, message, ctx), ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = 'TcclError';
    this.code = code;
    this.detail = message;
    this.rank = ctx.rank;
    this.peer = ctx.peer;
    this.op = ctx.op;
    this.seq = ctx.seq;
  }
}

function formatMessage(code: TcclErrorCode, message: string, ctx: ErrorContext): string {
  const where: string[] = [];
  if (ctx.rank !== undefined) where.push(`rank ${ctx.rank}`);
  if (ctx.peer !== undefined) where.push(Array.isArray(ctx.peer) ? `peers [${ctx.peer.join(',')}]` : `peer ${ctx.peer}`);
  if (ctx.op !== undefined) where.push(`op ${ctx.op}`);
  if (ctx.seq !== undefined) where.push(`seq ${ctx.seq}`);
  if (ctx.key !== undefined) where.push(`key "${ctx.key}"`);
  return `${code}: ${message}${where.length ? ` (${where.join(', ')})` : ''}`;
}

export const invalidArgument = (message: string, ctx?: ErrorContext) =>
  new TcclError('TCCL_ERR_INVALID_ARGUMENT', message, ctx);

export const isTcclError = (e: unknown, code?: TcclErrorCode): e is TcclError =>
  e instanceof TcclError && (code === undefined || e.code === code);
