// The connection that holds every advisory lock of one PostgreSQL store's process (./locks.ts says why).
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { LockWaitError } from "./locks.js";

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
