// The one thing the two backends differ in: how a query reaches PostgreSQL. Everything above this
// (migrations, the store's SQL) is shared, so PostgreSQL and the embedded PGlite behave the same.
import type { LockWait } from "./locks.js";

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs a script of several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  /** Runs `fn` in a transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` while holding a named lock `key` (PostgreSQL: a session advisory lock, on a connection kept
   * for locks, not one of the pool's): concurrent indexers of one manifest, across processes, do the work
   * once. Waits a bounded time, then throws LockWaitError (code LOCK_TIMEOUT) naming `o.what`.
   */
  withLock<T>(key: bigint, fn: () => Promise<T>, o?: LockWait): Promise<T>;
  close(): Promise<void>;
  readonly kind: "postgres" | "embedded";
}

/** A stable 63-bit advisory-lock key for a string (FNV-1a 64, sign bit cleared). */
export function lockKey(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h & 0x7fffffffffffffffn;
}
