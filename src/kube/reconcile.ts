// The reconciler contract, after controller-runtime's: reconcile(key, signal) looks at the object the key names
// (in the shared cache) and makes the world match it, then says when to look again. It returns nothing (done:
// the next change to the object brings the key back), { requeueAfterMs } (look again then, for a schedule:
// rescanAfter, a repository's interval, an exception's expiry), or throws: the key comes back after its
// backoff (per key, doubling), unless what it threw is a TerminalError, which retrying cannot fix (the key is
// then dropped until its object changes). One runner does this for every controller: no reconciler touches
// the work queue's forget, addRateLimited or addAfter.
import type { WorkQueue } from "./workqueue.js";
import { PortcullisError } from "../errors.js";

export type Result = void | { requeueAfterMs: number };

export type ReconcileFn<K extends string> = (key: K, signal: AbortSignal) => Promise<Result>;

/** What retrying cannot fix (an object the API server refuses as it is, a spec no version of us accepts). */
export class TerminalError extends PortcullisError {
  readonly domain = "kube";
  readonly code = "TERMINAL";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TerminalError";
  }
}

export interface WorkerOptions<K extends string> {
  /** Aborted when the controller stops; passed to every reconcile. */
  signal?: AbortSignal;
  /** A reconcile threw: the key comes back after `delayMs`. */
  onError(key: K, e: unknown, delayMs: number): void;
  /** A reconcile threw a TerminalError: the key is dropped (default: onError with a delay of -1). */
  onTerminal?(key: K, e: TerminalError): void;
}

/** setTimeout's limit: a longer requeue comes back at about 24.8 days, and asks again then. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * One worker: takes keys until the queue shuts down, and owns what happens to each key after its reconcile
 * (forget its failures, back off, requeue). Run several for concurrency: the queue never hands one key to two.
 */
export async function runWorker<K extends string>(queue: WorkQueue<K>, reconcile: ReconcileFn<K>, o: WorkerOptions<K>): Promise<void> {
  const signal = o.signal ?? new AbortController().signal;
  for (;;) {
    const key = await queue.get();
    if (key === undefined) return;
    try {
      const result = await reconcile(key, signal);
      queue.forget(key);
      if (result && result.requeueAfterMs >= 0) queue.addAfter(key, Math.min(result.requeueAfterMs, MAX_DELAY_MS));
    } catch (e) {
      if (e instanceof TerminalError) {
        queue.forget(key);
        if (o.onTerminal) o.onTerminal(key, e);
        else o.onError(key, e, -1);
      } else o.onError(key, e, queue.addRateLimited(key));
    } finally {
      queue.done(key);
    }
  }
}
