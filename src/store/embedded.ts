import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import type { Db, Queryable } from "./db.js";
import { DEFAULT_LOCK_WAIT_MS, KeyedMutex, type LockWait } from "./locks.js";

/**
 * The single-machine store: PostgreSQL compiled to WASM (PGlite) in a data folder, the same SQL and
 * migrations as the cluster's. One process owns the folder; locks are in-process (a bounded wait each).
 */
export class EmbeddedDb implements Db {
  readonly kind = "embedded" as const;
  private readonly locks = new KeyedMutex();

  private constructor(private readonly db: PGlite, private readonly afterClose?: () => Promise<void> | void) {}

  /**
   * `dataDir` undefined: in memory (tests). The caller holds the folder's cross-process lock (./local.ts):
   * PGlite has none, and two processes that open one folder at once lose each other's commits.
   * `afterClose` runs once PGlite has closed (or failed to open): the caller releases its lock there.
   */
  static async open(dataDir?: string, opts: { afterClose?: () => Promise<void> | void } = {}): Promise<EmbeddedDb> {
    try {
      if (dataDir) mkdirSync(dataDir, { recursive: true });
      const db = dataDir ? new PGlite(dataDir) : new PGlite();
      await db.waitReady;
      return new EmbeddedDb(db, opts.afterClose);
    } catch (e) {
      await opts.afterClose?.();
      throw e;
    }
  }

  async query<R>(sql: string, params: unknown[] = []): Promise<{ rows: R[] }> {
    const res = await this.db.query<R>(sql, params);
    return { rows: res.rows };
  }

  async exec(sql: string): Promise<void> {
    await this.db.exec(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(async (t) =>
      fn({
        query: async <R>(sql: string, params: unknown[] = []) => ({ rows: (await t.query<R>(sql, params)).rows }),
        exec: async (sql: string) => void (await t.exec(sql)),
      }),
    );
  }

  async withLock<T>(key: bigint, fn: () => Promise<T>, o: LockWait = {}): Promise<T> {
    const leave = await this.locks.acquire(key, Date.now() + (o.waitMs ?? DEFAULT_LOCK_WAIT_MS), o.what ?? `lock ${key}`);
    try {
      return await fn();
    } finally {
      leave();
    }
  }

  async close(): Promise<void> {
    try {
      await this.db.close();
    } finally {
      await this.afterClose?.();
    }
  }
}
