// Named locks for the SQL stores, held without starving the connection pool. A PostgreSQL session advisory
// lock lives on the connection that took it, so a lock taken on a pooled connection keeps that connection
// for as long as the work under it runs (an index: minutes) while the work needs other connections for its
// queries: with as many manifests being indexed as the pool has connections (10), every connection held a
// lock and every index waited for a connection that none would give back.
//
// Here every lock of a process lives on one connection of its own (the lock session, outside the pool), which
// can hold any number of them; a waiter asks with pg_try_advisory_lock and, refused, sleeps and asks again, so
// waiting holds no connection and no server-side wait either. A session's advisory locks are re-entrant, so
// two callers of one process must not both ask it for one key: callers of one key queue in the process first
// (KeyedMutex, here), and only the head of the queue asks PostgreSQL (LockSession, ./lock-session.ts, apart so
// that the embedded store's users never load pg). Every wait is bounded (LockWaitError).

/** How long a lock waits by default: an index or a database update may take about that long. */
export const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;

export interface LockWait {
  /** What the lock guards, for the error (`manifest sha256:…`). */
  what?: string;
  /** How long to wait for the lock before giving up with LockWaitError (default: the Db's). */
  waitMs?: number;
}

/** A lock not granted within its wait: another holder kept it that long. */
export class LockWaitError extends Error {
  override name = "LockWaitError";
  readonly code = "LOCK_TIMEOUT";
  constructor(
    readonly what: string,
    readonly waitedMs: number,
    where: string,
  ) {
    super(`gave up waiting for the lock of ${what} after ${(waitedMs / 1000).toFixed(1)} s: ${where} held it all that time`);
  }
}

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout;
}

/** One holder per key in this process; the others queue in order, each for at most its own wait. */
export class KeyedMutex {
  /** Keys held, each with the callers waiting for it, first come first served. */
  private readonly held = new Map<bigint, Waiter[]>();

  /** Resolves to the release function once `key` is this caller's; rejects with LockWaitError at `deadline`. */
  acquire(key: bigint, deadline: number, what: string): Promise<() => void> {
    const t0 = Date.now();
    const release = () => {
      const queue = this.held.get(key);
      const next = queue?.shift();
      if (next) {
        clearTimeout(next.timer);
        next.grant();
      } else this.held.delete(key);
    };
    const queue = this.held.get(key);
    if (!queue) {
      this.held.set(key, []);
      return Promise.resolve(once(release));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => resolve(once(release)),
        timer: setTimeout(() => {
          const at = queue.indexOf(waiter);
          if (at >= 0) queue.splice(at, 1);
          reject(new LockWaitError(what, Date.now() - t0, "another task of this process"));
        }, Math.max(0, deadline - t0)),
      };
      queue.push(waiter);
    });
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}
