import pg from "pg";
import type { Db, Queryable } from "./db.js";

export interface PostgresOptions {
  url: string;
  /** Connections in the pool. */
  max?: number;
}

/** The cluster's store: a `pg` pool. */
export class PostgresDb implements Db {
  readonly kind = "postgres" as const;
  private readonly pool: pg.Pool;

  constructor(o: PostgresOptions) {
    this.pool = new pg.Pool({ connectionString: o.url, max: o.max ?? 10, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 });
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

  async withLock<T>(key: bigint, fn: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const lost = held(client);
    try {
      await client.query("SELECT pg_advisory_lock($1)", [key.toString()]);
      try {
        return await fn();
      } finally {
        await client.query("SELECT pg_advisory_unlock($1)", [key.toString()]);
      }
    } finally {
      lost.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * A client checked out of the pool and held between queries (a lock's session, a transaction): its connection
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
