import { homedir } from "node:os";
import { join } from "node:path";
import { EmbeddedDb } from "./embedded.js";
import { PostgresDb } from "./postgres.js";
import { SqlStore } from "./sql-store.js";
import type { Store } from "./types.js";

/** The default embedded store folder: $XDG_DATA_HOME/portcullis/store, else ~/.local/share/portcullis/store. */
export function defaultStorePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME ?? join(homedir(), ".local", "share"), "portcullis", "store");
}

/**
 * Opens a store: `postgres://` / `postgresql://` URLs go to PostgreSQL, anything else is the folder of an
 * embedded store (created if missing); `memory:` is an in-memory embedded store. Migrations run first.
 */
export async function openStore(location?: string): Promise<Store> {
  const where = location ?? defaultStorePath();
  if (/^postgres(ql)?:\/\//.test(where)) return SqlStore.open(new PostgresDb({ url: where }));
  return SqlStore.open(await EmbeddedDb.open(where === "memory:" ? undefined : where));
}
