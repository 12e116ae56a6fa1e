import { homedir } from "node:os";
import { join } from "node:path";
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
  // Each backend's driver loads only when used: `portcullis scan` on the embedded store never loads pg.
  if (/^postgres(ql)?:\/\//.test(where)) return SqlStore.open(new (await import("./postgres.js")).PostgresDb({ url: where }));
  return SqlStore.open(await (await import("./embedded.js")).EmbeddedDb.open(where === "memory:" ? undefined : where));
}
