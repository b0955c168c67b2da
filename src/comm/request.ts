/** What a completed point-to-point operation reports (MPI_Status). */
export interface Status {
  /** Sender's rank in the communicator. */
  source: number;
  tag: number;
  /** Bytes received (for a send: bytes sent). */
  bytes: number;
  /** Elements received, in the receive buffer's element type. */
  count: number;
}

/**
 * An in-flight operation: awaitable (`await req` gives its result), and also testable
 * without awaiting. A request nobody awaits never raises an unhandled rejection: its error
 * is delivered to whoever awaits it.
 */
export class Request<T = Status> implements PromiseLike<T> {
  /**
   * Made on the first then()/wait() (many requests, e.g. small collectives over shared memory,
   * are done before anyone asks: they never need a pending promise).
   */
  private promise: Promise<T> | null = null;
  // (Method syntax: checked bivariantly, so a Request<Float32Array> is also a Request<unknown>.)
  private settle: { resolve(v: T): void; reject(e: unknown): void } | null = null;
  private state: 'pending' | 'done' | 'failed' = 'pending';
  private value?: T;
  private error?: unknown;

  constructor(readonly op: string) {}

  get done(): boolean { return this.state !== 'pending'; }
  /** The result once done (undefined while pending); throws the error if it failed. */
  test(): T | undefined {
    if (this.state === 'failed') throw this.error;
    return this.value;
  }
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.wait().then(onfulfilled, onrejected);
  }
  /** Same as awaiting the request. */
  wait(): Promise<T> {
    if (this.promise) return this.promise;
    if (this.state === 'done') return (this.promise = Promise.resolve(this.value as T));
    if (this.state === 'failed') this.promise = Promise.reject(this.error);
    else this.promise = new Promise<T>((resolve, reject) => (this.settle = { resolve, reject }));
    // This promise is only ever handed out: whoever awaits it gets the error.
    this.promise.catch(() => undefined);
    return this.promise;
  }

  /** @internal */
  resolve(value: T): void {
    if (this.state !== 'pending') return;
    this.state = 'done';
    this.value = value;
    this.settle?.resolve(value);
  }
  /** @internal */
  reject(error: unknown): void {
    if (this.state !== 'pending') return;
    this.state = 'failed';
    this.error = error;
    this.settle?.reject(error);
  }
}

/** Wait for every request; rejects with the first failure (after all settled). */
export async function waitAll<T>(requests: Iterable<PromiseLike<T>>): Promise<T[]> {
  return Promise.all(requests);
}
