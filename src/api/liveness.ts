// Noticing a worker that died without an `error` event (terminated from outside, crashed,
// killed for memory): the worker holds a Web Lock (navigator.locks) named for it for as long
// as it lives, and the page queues a request for the same lock. The browser grants it only
// when the holder's context is gone, so the grant is the death notice, with no polling. Where
// Web Locks are missing, only the `error` events are watched. A worker that is alive but stuck
// still holds its lock: that is the client's heartbeat's to notice (client.ts, WORKER_UNRESPONSIVE).

/** In the worker: takes the lock and keeps it until the worker ends; resolves once it is held. */
export function holdLivenessLock(name: string): Promise<void> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return Promise.resolve();
  return new Promise<void>((held) => {
    void locks.request(name, () => {
      held();
      return new Promise<never>(() => {}); // released only with the worker
    });
  });
}

/**
 * On the page: once the worker holds `name` (`held` resolved), calls `onDeath` when the lock
 * is released, i.e. when the worker is gone. The returned function stops watching (the page
 * ended the worker itself).
 */
export function watchLiveness(name: string, held: Promise<void>, onDeath: () => void): () => void {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  const stop = new AbortController();
  if (!locks) return () => {};
  void held.then(() => {
    if (stop.signal.aborted) return;
    locks.request(name, { signal: stop.signal }, () => {
      if (!stop.signal.aborted) onDeath();
    }).catch(() => {}); // aborted: the page stopped watching
  }, () => {});
  return () => stop.abort();
}

let seq = 0;
/** A lock name no other worker of this origin uses. */
export function livenessLockName(): string {
  return `pop-llm-worker-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${seq++}`;
}
