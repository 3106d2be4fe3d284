// One queue per engine: requests, reloads and unloads run one at a time in arrival order.
// A task whose signal aborts while it waits rejects with ABORTED and never runs; a failed
// task does not stop the ones behind it. `failAll` rejects everything waiting (a hook for
// worker death and device loss).
import { AbortError } from '../errors.ts';

interface Waiting {
  start: () => void;
  reject: (e: unknown) => void;
}

export class TaskQueue {
  private readonly waiting: Waiting[] = [];
  private busy = false;

  /** Tasks waiting (not counting the one running). */
  get length(): number {
    return this.waiting.length;
  }

  run<T>(task: () => Promise<T>, signal?: AbortSignal | null): Promise<T> {
    if (signal?.aborted) return Promise.reject(new AbortError('queue'));
    return new Promise<T>((resolve, reject) => {
      const entry: Waiting = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          task().then(resolve, reject).finally(() => this.next());
        },
        reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        reject(new AbortError('queue'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      if (!this.busy) this.next();
    });
  }

  /** Rejects every waiting task with `error` (the running one is the caller's to stop). */
  failAll(error: unknown): void {
    for (const w of this.waiting.splice(0)) w.reject(error);
  }

  private next(): void {
    const w = this.waiting.shift();
    this.busy = !!w;
    w?.start();
  }
}
