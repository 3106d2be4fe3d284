// An async iterable fed by a producer: a stream's chunks, pushed while the request runs and
// pulled by the caller at its own pace (nothing polls).
/** A stream's chunks, produced while the queue runs the request and consumed by the caller. */
export class ChunkStream<C> implements AsyncIterable<C> {
  private readonly items: C[] = [];
  private done = false;
  private failure: unknown = null;
  private wake: (() => void) | null = null;

  push(c: C): void {
    this.items.push(c);
    this.notify();
  }
  end(failure: unknown = null): void {
    this.done = true;
    this.failure = failure;
    this.notify();
  }
  private notify(): void {
    this.wake?.();
    this.wake = null;
  }
  async *[Symbol.asyncIterator](): AsyncIterator<C> {
    for (;;) {
      while (this.items.length) yield this.items.shift()!;
      if (this.failure) throw this.failure;
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

