import pg from "pg";
import type { Db, Queryable } from "./db.js";
import { LockSession } from "./lock-session.js";
import { DEFAULT_LOCK_WAIT_MS, KeyedMutex, type LockWait } from "./locks.js";

export interface PostgresOptions {
  url: string;
  /** Connections in the pool for queries (advisory locks live on one more connection of their own: ./locks.ts). */
  max?: number;
  /** How long an advisory lock waits for another holder before LockWaitError (default 10 minutes). */
  lockWaitMs?: number;
  /**
   * PostgreSQL's `lock_timeout` for the pool's connections, in ms: the longest any statement waits for a row
   * or table lock another transaction holds (default 2 minutes; the store's own transactions take seconds).
   */
  rowLockTimeoutMs?: number;
}

export const DEFAULT_ROW_LOCK_TIMEOUT_MS = 120_000;

/** The cluster's store: a `pg` pool for queries, and one session for every advisory lock of the process. */
export class PostgresDb implements Db {
  readonly kind = "postgres" as const;
  private readonly pool: pg.Pool;
  private readonly locks: LockSession;
  private readonly queued = new KeyedMutex();
  private readonly lockWaitMs: number;

  constructor(o: PostgresOptions) {
    this.lockWaitMs = o.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS;
    this.pool = new pg.Pool({
      connectionString: o.url, max: o.max ?? 10, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000,
      lock_timeout: o.rowLockTimeoutMs ?? DEFAULT_ROW_LOCK_TIMEOUT_MS,
    });
    this.locks = new LockSession({ connectionString: o.url, connectionTimeoutMillis: 10_000 });
    // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
    this.pool.on("error", () => undefined);
  }

  async query<R>(sql: string, params: unknown[] = []): Promise<{ rows: R[] }> {
    const res = await this.pool.query(sql, params);
    return { rows: res.rows as R[] };
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const lost = held(client);
    try {
      await client.query("BEGIN");
      const tx: Queryable = {
        query: async <R>(sql: string, params: unknown[] = []) => ({ rows: (await client.query(sql, params)).rows as R[] }),
        exec: async (sql: string) => void (await client.query(sql)),
      };
      const out = await fn(tx);
      await client.query("COMMIT");
      return out;
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      lost.release();
    }
  }

  /**
   * Runs `fn` holding the session advisory lock `key` on the lock session, never on a pooled connection, so
   * `fn`'s queries have the whole pool (./locks.ts). Waits at most `o.waitMs` (default: lockWaitMs).
   */
  async withLock<T>(key: bigint, fn: () => Promise<T>, o: LockWait = {}): Promise<T> {
    const what = o.what ?? `advisory lock ${key}`;
    const deadline = Date.now() + (o.waitMs ?? this.lockWaitMs);
    const leave = await this.queued.acquire(key, deadline, what);
    try {
      const unlock = await this.locks.lock(key, deadline, what);
      try {
        return await fn();
      } finally {
        await unlock();
      }
    } finally {
      leave();
    }
  }

  async close(): Promise<void> {
    await this.locks.close();
    await this.pool.end();
  }
}

/**
 * A client checked out of the pool and held between queries (a transaction): its connection
 * dropping (the server restarting) emits `error` on it, which without a listener ends the process. The error
 * is kept; the next query on the client fails on its own, and the client goes back to the pool destroyed.
 */
function held(client: pg.PoolClient): { release(): void } {
  let broken: Error | undefined;
  const onError = (e: Error) => {
    broken = e;
  };
  client.on("error", onError);
  return {
    release() {
      client.off("error", onError);
      client.release(broken);
    },
  };
}

/**
 * Whether `e` says the database could not be reached or went away (a restart, a failover), rather than that
 * the query was wrong: connection refused or reset, the server shutting down or starting up, a connection
 * terminated mid-query. Such a failure is the database's, not the work's: callers wait and try again.
 */
export function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && (CONNECTION_CODES.has(code) || code.startsWith("08"))) return true;
  return /Connection terminated|connection timeout|terminating connection|not queryable|the database system is (starting up|shutting down)/i.test((e as Error | undefined)?.message ?? "");
}

/** Node's socket errors and PostgreSQL's admin_shutdown, crash_shutdown, cannot_connect_now (class 08 is connection_exception). */
const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "57P01", "57P02", "57P03"]);
