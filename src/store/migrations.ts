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
  {
    version: 2,
    name: "advisory database",
    sql: `
-- Raw upstream files, content addressed and kept in chunks (a tracker JSON is tens of MB): a parser
-- upgrade re-parses them without a download, and a bundle is these files plus a manifest.
CREATE TABLE advisory_raw (
  sha256 TEXT PRIMARY KEY,
  size BIGINT NOT NULL,
  chunks INT NOT NULL,
  stored_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE advisory_raw_chunk (
  sha256 TEXT NOT NULL REFERENCES advisory_raw(sha256) ON DELETE CASCADE,
  i INT NOT NULL,
  bytes BYTEA NOT NULL,
  PRIMARY KEY (sha256, i)
);
-- One update or import of one source, committed whole with everything below it.
CREATE TABLE advisory_operation (
  id BIGSERIAL PRIMARY KEY,
  ref UUID NOT NULL UNIQUE,
  source TEXT NOT NULL,
  kind TEXT NOT NULL,
  origin TEXT NOT NULL,
  parser_version TEXT NOT NULL,
  -- What the upstream said (ETag, Last-Modified per URL): the next update sends it back.
  fingerprint JSONB NOT NULL,
  -- [{path, sha256, size, url, retrievedAt}] in the order the parser read them.
  files JSONB NOT NULL,
  licence TEXT NOT NULL DEFAULT '',
  attribution TEXT NOT NULL DEFAULT '',
  stats JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX advisory_operation_source ON advisory_operation (source, id DESC);
-- Parsed records, write once: an unchanged record is shared by every operation that contains it.
CREATE TABLE advisory (
  id BIGSERIAL PRIMARY KEY,
  source TEXT NOT NULL,
  ext_id TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  severity TEXT NOT NULL,
  withdrawn BOOLEAN NOT NULL DEFAULT false,
  aliases TEXT[] NOT NULL DEFAULT '{}',
  record JSONB NOT NULL,
  UNIQUE (source, content_hash)
);
CREATE INDEX advisory_ext_id ON advisory (ext_id);
CREATE INDEX advisory_aliases ON advisory USING GIN (aliases);
-- One row per affected package of a record, looked up by (ecosystem, package name); the matcher compares
-- versions in TypeScript, the database only narrows.
CREATE TABLE advisory_affected (
  advisory_id BIGINT NOT NULL REFERENCES advisory(id) ON DELETE CASCADE,
  i INT NOT NULL,
  ecosystem TEXT NOT NULL,
  package_name TEXT NOT NULL,
  fix_state TEXT NOT NULL,
  affected JSONB NOT NULL,
  PRIMARY KEY (advisory_id, i)
);
CREATE INDEX advisory_affected_key ON advisory_affected (ecosystem, package_name);
CREATE TABLE advisory_operation_member (
  operation_id BIGINT NOT NULL REFERENCES advisory_operation(id) ON DELETE CASCADE,
  advisory_id BIGINT NOT NULL REFERENCES advisory(id),
  PRIMARY KEY (operation_id, advisory_id)
);
CREATE INDEX advisory_operation_member_advisory ON advisory_operation_member (advisory_id);
CREATE TABLE advisory_operation_raw (
  operation_id BIGINT NOT NULL REFERENCES advisory_operation(id) ON DELETE CASCADE,
  sha256 TEXT NOT NULL REFERENCES advisory_raw(sha256),
  PRIMARY KEY (operation_id, sha256)
);
-- What an operation changed against the source's previous one, by record id: re-matching needs it.
CREATE TABLE advisory_change (
  operation_id BIGINT NOT NULL REFERENCES advisory_operation(id) ON DELETE CASCADE,
  ext_id TEXT NOT NULL,
  change TEXT NOT NULL CHECK (change IN ('added', 'removed', 'modified')),
  old_advisory_id BIGINT,
  new_advisory_id BIGINT,
  PRIMARY KEY (operation_id, ext_id)
);
-- Enrichment by CVE, replaced whole by each operation of its source.
CREATE TABLE advisory_enrichment (
  source TEXT NOT NULL,
  cve TEXT NOT NULL,
  operation_id BIGINT NOT NULL REFERENCES advisory_operation(id) ON DELETE CASCADE,
  data JSONB NOT NULL,
  PRIMARY KEY (source, cve)
);
CREATE INDEX advisory_enrichment_cve ON advisory_enrichment (cve);
`,
  },
  {
    version: 3,
    name: "findings",
    sql: `
-- What matching found for each manifest: the ImageScan status summary and the compact finding list the
-- webhook's policies read. Replaced whole on every match.
CREATE TABLE manifest_findings (
  manifest_id BIGINT PRIMARY KEY REFERENCES manifest(id) ON DELETE CASCADE,
  matched_at TIMESTAMPTZ NOT NULL,
  coverage TEXT NOT NULL,
  summary JSONB NOT NULL,
  findings JSONB NOT NULL
);
-- The advisory package keys each matched manifest was looked up by: after an update, only the manifests
-- whose keys the changed records touch are matched again.
CREATE TABLE manifest_advisory_key (
  ecosystem TEXT NOT NULL,
  name TEXT NOT NULL,
  manifest_id BIGINT NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
  PRIMARY KEY (ecosystem, name, manifest_id)
);
CREATE INDEX manifest_advisory_key_manifest ON manifest_advisory_key (manifest_id);
-- The last advisory operation whose changes re-matching has applied (one row).
CREATE TABLE findings_cursor (
  id INT PRIMARY KEY CHECK (id = 1),
  operation_id BIGINT NOT NULL
);
-- When an update last found the source unchanged upstream: the data is as fresh as that check.
ALTER TABLE advisory_operation ADD COLUMN checked_at TIMESTAMPTZ;
`,
  },
  {
    version: 4,
    name: "advisory operations that list their files in a table",
    sql: `
-- The files of an operation too large to list inline (Red Hat's ~67,000 VEX documents): one row per
-- file, so an incremental operation carries the previous one's list over in SQL and a status read does
-- not parse megabytes of JSON. advisory_operation.files is then '[]' and file_count says how many.
CREATE TABLE advisory_operation_file (
  operation_id BIGINT NOT NULL REFERENCES advisory_operation(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL REFERENCES advisory_raw(sha256),
  size BIGINT NOT NULL,
  url TEXT,
  retrieved_at TEXT,
  PRIMARY KEY (operation_id, path)
);
ALTER TABLE advisory_operation ADD COLUMN file_count INT;
`,
  },
  {
    version: 5,
    name: "watched repositories",
    sql: `
-- What the ImageRepository controller learned about a watched repository, so a restart or another replica
-- neither lists it again within its interval nor resolves tags it already knows. key: namespace/name.
CREATE TABLE watched_repository (
  id BIGSERIAL PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  image TEXT NOT NULL,
  listed_at TIMESTAMPTZ
);
-- One row per tag of the last listing: its digest and image creation time once resolved (null before).
CREATE TABLE watched_repository_tag (
  repository_id BIGINT NOT NULL REFERENCES watched_repository(id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  digest TEXT,
  created TIMESTAMPTZ,
  checked_at TIMESTAMPTZ,
  PRIMARY KEY (repository_id, tag)
);
`,
  },
  {
    version: 6,
    name: "index jobs",
    sql: `
-- Manifests to index, handed out to the indexer processes of every replica (./jobs.ts): claimed with
-- FOR UPDATE SKIP LOCKED, held by a lease its owner renews, taken by another when the lease expires. One row
-- per (manifest, scanner set): asking again for a manifest being indexed joins its job.
CREATE TABLE index_job (
  id BIGSERIAL PRIMARY KEY,
  manifest TEXT NOT NULL,
  scanner_set TEXT NOT NULL,
  reference TEXT NOT NULL,
  platform TEXT,
  namespace TEXT NOT NULL,
  pull_secrets TEXT[] NOT NULL DEFAULT '{}',
  priority BOOLEAN NOT NULL DEFAULT false,
  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
  attempts INT NOT NULL DEFAULT 0,
  max_attempts INT NOT NULL,
  not_before TIMESTAMPTZ NOT NULL DEFAULT now(),
  owner TEXT,
  lease_expires TIMESTAMPTZ,
  code TEXT,
  message TEXT,
  stats JSONB,
  created TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (manifest, scanner_set)
);
CREATE INDEX index_job_ready ON index_job (priority DESC, id) WHERE state IN ('queued', 'running');
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
  }, { what: "the schema migrations (being applied by another replica)" });
}
