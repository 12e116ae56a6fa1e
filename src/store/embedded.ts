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

  private constructor(private readonly db: PGlite) {}

  /** `dataDir` undefined: in memory (tests). */
  static async open(dataDir?: string): Promise<EmbeddedDb> {
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    const db = dataDir ? new PGlite(dataDir) : new PGlite();
    await db.waitReady;
    return new EmbeddedDb(db);
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
    await this.db.close();
  }
}
