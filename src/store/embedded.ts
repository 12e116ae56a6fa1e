import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import type { Db, Queryable } from "./db.js";

/**
 * The single-machine store: PostgreSQL compiled to WASM (PGlite) in a data folder, the same SQL and
 * migrations as the cluster's. One process owns the folder; locks are in-process.
 */
export class EmbeddedDb implements Db {
  readonly kind = "embedded" as const;
  private readonly locks = new Map<bigint, Promise<unknown>>();

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

  async withLock<T>(key: bigint, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    this.locks.set(key, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === run) this.locks.delete(key);
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
