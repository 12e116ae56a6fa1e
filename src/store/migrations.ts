// Versioned schema migrations, shared by PostgreSQL and the embedded store. Append only: never edit a
// migration that has shipped; add the next number.
import { lockKey, type Db } from "./db.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "index store",
    sql: `
CREATE TABLE scanner (
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  kind TEXT NOT NULL,
  UNIQUE (name, version, kind)
);
CREATE TABLE layer (
  id BIGSERIAL PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  -- What the last walk of the layer found for coalescing: paths it deletes and directories it makes opaque.
  whiteouts JSONB NOT NULL DEFAULT '[]',
  opaque_dirs JSONB NOT NULL DEFAULT '[]',
  -- The paths scanners captured from it: a package database present but empty still replaces the one below.
  files JSONB NOT NULL DEFAULT '[]'
);
CREATE TABLE manifest (
  id BIGSERIAL PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE
);
CREATE TABLE manifest_layer (
  manifest_id BIGINT NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
  layer_id BIGINT NOT NULL REFERENCES layer(id),
  i INT NOT NULL,
  PRIMARY KEY (manifest_id, i)
);
CREATE INDEX manifest_layer_layer ON manifest_layer (layer_id);
-- A layer scanned by a versioned scanner, with what it found: content addressed, shared by every
-- manifest that has the layer.
CREATE TABLE scanned_layer (
  layer_id BIGINT NOT NULL REFERENCES layer(id) ON DELETE CASCADE,
  scanner_id BIGINT NOT NULL REFERENCES scanner(id) ON DELETE CASCADE,
  artifacts JSONB NOT NULL,
  scanned_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (layer_id, scanner_id)
);
CREATE TABLE index_report (
  manifest_id BIGINT PRIMARY KEY REFERENCES manifest(id) ON DELETE CASCADE,
  state TEXT NOT NULL,
  scanner_set TEXT NOT NULL,
  report JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The coalesced packages of each finished manifest, for AffectedManifests.
CREATE TABLE manifest_package (
  manifest_id BIGINT NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  kind TEXT NOT NULL,
  package_db TEXT NOT NULL,
  dist_did TEXT,
  dist_version_id TEXT
);
CREATE INDEX manifest_package_name ON manifest_package (name, version);
CREATE INDEX manifest_package_manifest ON manifest_package (manifest_id);
`,
  },
];

const MIGRATION_LOCK = lockKey("portcullis:migrations");

/**
 * Applies the migrations this database lacks, each in its own transaction, under an advisory lock so
 * several replicas starting at once apply each migration exactly once. Returns the versions applied.
 */
export async function migrate(db: Db, migrations: Migration[] = MIGRATIONS): Promise<number[]> {
  return db.withLock(MIGRATION_LOCK, async () => {
    await db.query(`CREATE TABLE IF NOT EXISTS portcullis_schema_migrations (
      version INT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    const done = new Set((await db.query<{ version: number }>("SELECT version FROM portcullis_schema_migrations")).rows.map((r) => r.version));
    const newest = Math.max(0, ...done);
    const known = Math.max(0, ...migrations.map((m) => m.version));
    if (newest > known) {
      throw new Error(`the database's schema is at version ${newest}, newer than this Portcullis knows (${known}): run a newer version or restore a matching database`);
    }
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await db.transaction(async (tx) => {
        await tx.exec(m.sql);
        await tx.query("INSERT INTO portcullis_schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      });
      applied.push(m.version);
    }
    return applied;
  });
}
