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
// (KeyedMutex), and only the head of the queue asks PostgreSQL. Every wait is bounded (LockWaitError).
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";

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

/** First and longest sleep between two tries of a lock another process holds. */
const RETRY_FIRST_MS = 20;
const RETRY_MAX_MS = 1000;

/**
 * The connection that holds every advisory lock of one process. Connected when first needed; if it breaks
 * (the server restarted, the network dropped), the locks it held are gone with it (PostgreSQL releases a
 * session's locks when the session ends), the work under them runs on unguarded, and the next lock opens a
 * new session.
 */
export class LockSession {
  private current: { client: pg.Client; ready: Promise<pg.Client> } | undefined;
  /** Bumped whenever the session is lost: a lock taken in an earlier generation is no longer held. */
  private generation = 0;
  private closed = false;
  /** The session's queries, one at a time (a client runs one query at a time; pg 9 will refuse a second). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly config: pg.ClientConfig) {}

  private connect(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error("the store is closed"));
    if (this.current) return this.current.ready;
    // Named, so that an operator sees it in pg_stat_activity (and pg_locks) for what it is.
    const client = new pg.Client({ ...this.config, keepAlive: true, application_name: "portcullis-locks" });
    const ready = client.connect().then(() => client);
    this.current = { client, ready };
    client.on("error", () => this.drop(client));
    client.on("end", () => this.drop(client));
    ready.catch(() => this.drop(client));
    return ready;
  }

  /** Forgets a session that broke: its locks are gone (PostgreSQL released them); the next lock opens another. */
  private drop(client: pg.Client): void {
    if (this.current?.client !== client) return;
    this.current = undefined;
    this.generation++;
    client.end().catch(() => undefined);
  }

  /**
   * Takes `key` for this process, asking again with growing sleeps while another session holds it, until
   * `deadline`. The caller holds the key in the process (KeyedMutex): the session's locks are re-entrant.
   * A session found broken is replaced once per call.
   */
  async lock(key: bigint, deadline: number, what: string): Promise<() => Promise<void>> {
    const t0 = Date.now();
    let delay = RETRY_FIRST_MS;
    let replaced = false;
    for (;;) {
      const client = await this.connect();
      const generation = this.generation;
      let rows: Array<{ ok: boolean }>;
      try {
        rows = await this.run<{ ok: boolean }>(client, "SELECT pg_try_advisory_lock($1) AS ok", key);
      } catch (e) {
        if (!sessionLost(e)) throw e;
        this.drop(client);
        if (replaced) throw e;
        replaced = true;
        continue;
      }
      if (rows[0]?.ok) {
        return async () => {
          // A lost session released it already; a new one never held it.
          if (generation !== this.generation || this.closed) return;
          await this.run(client, "SELECT pg_advisory_unlock($1)", key).catch(() => undefined);
        };
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new LockWaitError(what, Date.now() - t0, "another PostgreSQL session (another indexer process)");
      // Jitter keeps waiters of several processes from asking in step.
      await sleep(Math.min(left, delay * (0.5 + Math.random())));
      delay = Math.min(RETRY_MAX_MS, delay * 2);
    }
  }

  private run<R>(client: pg.Client, sql: string, key: bigint): Promise<R[]> {
    const result = this.queue.then(async () => (await client.query<R & pg.QueryResultRow>(sql, [key.toString()])).rows);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.current;
    this.current = undefined;
    if (c) await (await c.ready.catch(() => undefined))?.end().catch(() => undefined);
  }
}

/**
 * Whether a query failed because the session is gone: no SQLSTATE (the socket broke, the client ended), or
 * class 08 (connection exception) or 57 (operator intervention: the server shut down or the backend was
 * terminated). Any other server error leaves the session and its locks as they were.
 */
function sessionLost(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith("08") || code.startsWith("57");
}
