import { homedir } from "node:os";
import { join } from "node:path";
import type { Store } from "./types.js";

/** The default embedded store folder: $XDG_DATA_HOME/portcullis/store, else ~/.local/share/portcullis/store. */
export function defaultStorePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME ?? join(homedir(), ".local", "share"), "portcullis", "store");
}

const POSTGRES = /^postgres(ql)?:\/\//;

/**
 * Opens a store with every part in SQL (serve, and tests): `postgres://` / `postgresql://` URLs go to
 * PostgreSQL; a folder is PGlite in the folder's database (its `pg/`, or the folder itself when an earlier
 * version made it), held under the folder's lock for as long as the store is open; `memory:` is an in-memory
 * PGlite. Migrations run first.
 */
export async function openStore(location?: string): Promise<Store> {
  const where = location ?? defaultStorePath();
  // Each backend's driver loads only when used: `portcullis scan` on the embedded store never loads pg.
  const { SqlStore } = await import("./sql-store.js");
  if (POSTGRES.test(where)) return SqlStore.open(new (await import("./postgres.js")).PostgresDb({ url: where }));
  if (where === "memory:") return SqlStore.open(await (await import("./embedded.js")).EmbeddedDb.open());
  return (await import("./local.js")).openLockedDatabase(where);
}

/**
 * Opens the store of the CLI (`scan`, `db`): the same as openStore for PostgreSQL and `memory:`; a folder is
 * the file index with PGlite opened only when the advisory data is touched (./local.ts).
 */
export async function openCliStore(location?: string, opts: { onWait?: (owner: string) => void } = {}): Promise<Store> {
  const where = location ?? defaultStorePath();
  if (POSTGRES.test(where) || where === "memory:") return openStore(where);
  return (await import("./local.js")).LocalStore.open(where, opts);
}

/** What the CLI prints when the folder's database is held by another process. */
export function waitNotice(owner: string): void {
  process.stderr.write(`portcullis: waiting for ${owner}, which has the store's advisory database open\n`);
}
