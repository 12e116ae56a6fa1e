// The Store over any Db: the same SQL for PostgreSQL and the embedded PGlite.
import type { IndexReport } from "../model/index-report.js";
import type { ManifestToIndex } from "../model/image.js";
import type { ScannerInfo, ScanOutput } from "../model/scanner.js";
import { SqlAdvisoryStore } from "./advisories.js";
import { SqlFindingsStore } from "./findings.js";
import { SqlIndexJobStore } from "./jobs.js";
import { SqlWatchedRepositoryStore } from "./repositories.js";
import type { AdvisoryStore } from "./advisory-types.js";
import { lockKey, type Db, type Queryable } from "./db.js";
import { migrate } from "./migrations.js";
import { scannedKey, type IndexJobStore, type WatchedRepositoryStore, type FindingsStore, type LayerArtifacts, type LayerWalkFacts, type ManifestPackageMatch, type ManifestPackageRow, type Store } from "./types.js";

export class SqlStore implements Store {
  private readonly scannerIds = new Map<string, number>();

  readonly advisories: AdvisoryStore;
  readonly findings: FindingsStore;
  readonly repositories: WatchedRepositoryStore;
  readonly jobs: IndexJobStore;

  private constructor(private readonly db: Db) {
    this.jobs = new SqlIndexJobStore(db);
    this.advisories = new SqlAdvisoryStore(db);
    this.findings = new SqlFindingsStore(db);
    this.repositories = new SqlWatchedRepositoryStore(db);
  }

  /** The database, for a store that keeps part of its data elsewhere (./local.ts: findings' manifest rows). */
  get sql(): Queryable {
    return this.db;
  }

  get kind(): "postgres" | "embedded" {
    return this.db.kind;
  }

  /** Opens the store on `db`, applying migrations first. */
  static async open(db: Db): Promise<SqlStore> {
    await migrate(db);
    return new SqlStore(db);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private static sKey(s: ScannerInfo): string {
    return `${s.name}\0${s.version}\0${s.kind}`;
  }

  async registerScanners(scanners: readonly ScannerInfo[]): Promise<void> {
    for (const s of scanners) {
      if (this.scannerIds.has(SqlStore.sKey(s))) continue;
      const { rows } = await this.db.query<{ id: string }>(
        `INSERT INTO scanner (name, version, kind) VALUES ($1, $2, $3)
         ON CONFLICT (name, version, kind) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
        [s.name, s.version, s.kind],
      );
      this.scannerIds.set(SqlStore.sKey(s), Number(rows[0]!.id));
    }
  }

  private scannerId(s: ScannerInfo): number {
    const id = this.scannerIds.get(SqlStore.sKey(s));
    if (id === undefined) throw new Error(`scanner ${s.name} ${s.version} is not registered with the store`);
    return id;
  }

  async persistManifest(m: ManifestToIndex): Promise<void> {
    await this.db.transaction(async (tx) => {
      const manifestId = await upsertId(tx, "manifest", m.digest);
      const existing = await tx.query<{ n: string }>("SELECT count(*) AS n FROM manifest_layer WHERE manifest_id = $1", [manifestId]);
      if (Number(existing.rows[0]!.n) === m.layers.length) return;
      await tx.query("DELETE FROM manifest_layer WHERE manifest_id = $1", [manifestId]);
      for (const [i, l] of m.layers.entries()) {
        const layerId = await upsertId(tx, "layer", l.digest);
        await tx.query("INSERT INTO manifest_layer (manifest_id, layer_id, i) VALUES ($1, $2, $3)", [manifestId, layerId, i]);
      }
    });
  }

  async setLayerScanned(layer: string, facts: LayerWalkFacts, results: ReadonlyArray<{ scanner: ScannerInfo; output: ScanOutput }>): Promise<void> {
    await this.db.transaction(async (tx) => {
      const layerId = await upsertId(tx, "layer", layer);
      // A walk for a new scanner captures only that scanner's files: keep the union of what walks captured.
      await tx.query(
        `UPDATE layer SET whiteouts = $2, opaque_dirs = $3,
           files = (SELECT coalesce(jsonb_agg(DISTINCT x ORDER BY x), '[]'::jsonb) FROM jsonb_array_elements_text(layer.files || $4::jsonb) AS x)
         WHERE id = $1`,
        [layerId, JSON.stringify(facts.whiteouts), JSON.stringify(facts.opaqueDirs), JSON.stringify(facts.files)],
      );
      // Every scanner's result in one statement (a round trip each was most of a small layer's database time).
      if (results.length) {
        await tx.query(
          `INSERT INTO scanned_layer (layer_id, scanner_id, artifacts)
           SELECT $1, x.scanner_id, x.artifacts FROM unnest($2::bigint[], $3::jsonb[]) AS x(scanner_id, artifacts)
           ON CONFLICT (layer_id, scanner_id) DO UPDATE SET artifacts = EXCLUDED.artifacts, scanned_at = now()`,
          [layerId, results.map((r) => this.scannerId(r.scanner)), results.map((r) => JSON.stringify(r.output))],
        );
      }
    });
  }

  async scannedLayers(layers: readonly string[], scanners: readonly ScannerInfo[]): Promise<Set<string>> {
    const out = new Set<string>();
    if (!layers.length || !scanners.length) return out;
    const { rows } = await this.db.query<{ hash: string; name: string; version: string }>(
      `SELECT l.hash, s.name, s.version FROM scanned_layer sl
       JOIN layer l ON l.id = sl.layer_id JOIN scanner s ON s.id = sl.scanner_id
       WHERE l.hash = ANY($1::text[]) AND sl.scanner_id = ANY($2::bigint[])`,
      [layers, scanners.map((s) => this.scannerId(s))],
    );
    for (const r of rows) out.add(scannedKey(r.hash, r));
    return out;
  }

  async layerArtifacts(layers: readonly string[], scanners: readonly ScannerInfo[]): Promise<Map<string, LayerArtifacts>> {
    const out = new Map<string, LayerArtifacts>();
    if (!layers.length) return out;
    const facts = await this.db.query<{ hash: string; whiteouts: string[]; opaque_dirs: string[]; files: string[] }>(
      "SELECT hash, whiteouts, opaque_dirs, files FROM layer WHERE hash = ANY($1::text[])",
      [layers],
    );
    for (const r of facts.rows) out.set(r.hash, { whiteouts: parseJson(r.whiteouts), opaqueDirs: parseJson(r.opaque_dirs), files: parseJson(r.files), outputs: new Map() });
    if (!scanners.length) return out;
    const { rows } = await this.db.query<{ hash: string; name: string; artifacts: ScanOutput | string }>(
      `SELECT l.hash, s.name, sl.artifacts FROM scanned_layer sl
       JOIN layer l ON l.id = sl.layer_id JOIN scanner s ON s.id = sl.scanner_id
       WHERE l.hash = ANY($1::text[]) AND sl.scanner_id = ANY($2::bigint[])`,
      [layers, scanners.map((s) => this.scannerId(s))],
    );
    for (const r of rows) out.get(r.hash)?.outputs.set(r.name, parseJson(r.artifacts));
    return out;
  }

  async manifestLayers(manifest: string): Promise<string[] | undefined> {
    const { rows } = await this.db.query<{ hash: string | null }>(
      `SELECT l.hash FROM manifest m LEFT JOIN manifest_layer ml ON ml.manifest_id = m.id LEFT JOIN layer l ON l.id = ml.layer_id
       WHERE m.hash = $1 ORDER BY ml.i`,
      [manifest],
    );
    if (!rows.length) return undefined;
    return rows.flatMap((r) => (r.hash ? [r.hash] : []));
  }

  async setIndexReport(report: IndexReport, scannerSet: string): Promise<void> {
    // One statement (atomic on its own): the progress states are written as they are entered.
    await writeReport(this.db, report, scannerSet);
  }

  async setIndexFinished(report: IndexReport, scannerSet: string, packages: readonly ManifestPackageRow[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      const manifestId = await writeReport(tx, report, scannerSet);
      await tx.query("DELETE FROM manifest_package WHERE manifest_id = $1", [manifestId]);
      // One statement from arrays, whatever the number of packages (a VALUES list took six parameters a
      // package, in batches under PostgreSQL's 65,535), with the same text every time.
      if (!packages.length) return;
      const col = <T>(f: (p: ManifestPackageRow) => T) => packages.map(f);
      await tx.query(
        `INSERT INTO manifest_package (manifest_id, name, version, kind, package_db, dist_did, dist_version_id)
         SELECT $1, x.name, x.version, x.kind, x.package_db, x.dist_did, x.dist_version_id
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS x(name, version, kind, package_db, dist_did, dist_version_id)`,
        [manifestId, col((p) => p.name), col((p) => p.version), col((p) => p.kind), col((p) => p.package_db), col((p) => p.dist_did ?? null), col((p) => p.dist_version_id ?? null)],
      );
    });
  }

  async indexReport(manifest: string): Promise<{ report: IndexReport; scannerSet: string } | undefined> {
    const { rows } = await this.db.query<{ report: IndexReport | string; scanner_set: string }>(
      "SELECT r.report, r.scanner_set FROM index_report r JOIN manifest m ON m.id = r.manifest_id WHERE m.hash = $1",
      [manifest],
    );
    const r = rows[0];
    return r ? { report: parseJson(r.report), scannerSet: r.scanner_set } : undefined;
  }

  async affectedManifests(q: { name: string; version?: string; dist_did?: string }): Promise<string[]> {
    const { rows } = await this.db.query<{ hash: string }>(
      `SELECT DISTINCT m.hash FROM manifest_package p JOIN manifest m ON m.id = p.manifest_id
       WHERE p.name = $1 AND ($2::text IS NULL OR p.version = $2) AND ($3::text IS NULL OR p.dist_did = $3)
       ORDER BY m.hash`,
      [q.name, q.version ?? null, q.dist_did ?? null],
    );
    return rows.map((r) => r.hash);
  }

  async manifestPackages(q: { names: readonly string[]; pypiNames?: readonly string[] }, limit: number): Promise<ManifestPackageMatch[]> {
    const names = [...new Set(q.names)];
    const pypi = [...new Set(q.pypiNames ?? [])];
    if ((!names.length && !pypi.length) || limit <= 0) return [];
    const select = `SELECT m.hash, p.name, p.version, p.kind, p.package_db, p.dist_did, p.dist_version_id
       FROM manifest_package p JOIN manifest m ON m.id = p.manifest_id JOIN index_report r ON r.manifest_id = p.manifest_id
       WHERE r.state = 'IndexFinished' AND `;
    // Exact names use the (name, version) index; normalised Python names are compared on Python rows only.
    const parts: string[] = [];
    const params: unknown[] = [];
    if (names.length) parts.push(`${select}p.name = ANY($${params.push(names)}::text[])`);
    if (pypi.length) parts.push(`${select}p.package_db LIKE 'python:%' AND lower(regexp_replace(p.name, '[-_.]+', '-', 'g')) = ANY($${params.push(pypi)}::text[])`);
    const { rows } = await this.db.query<{ hash: string; name: string; version: string; kind: string; package_db: string; dist_did: string | null; dist_version_id: string | null }>(
      `${parts.join(" UNION ALL ")} LIMIT $${params.push(limit)}`,
      params,
    );
    return rows.map((r) => {
      const row: ManifestPackageMatch = { manifest: r.hash, name: r.name, version: r.version, kind: r.kind, package_db: r.package_db };
      if (r.dist_did !== null) row.dist_did = r.dist_did;
      if (r.dist_version_id !== null) row.dist_version_id = r.dist_version_id;
      return row;
    });
  }

  async deleteManifests(digests: readonly string[]): Promise<string[]> {
    if (!digests.length) return [];
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ hash: string }>("DELETE FROM manifest WHERE hash = ANY($1::text[]) RETURNING hash", [digests]);
      // Layers no manifest refers to any more go too (their scan results cascade).
      await tx.query("DELETE FROM layer l WHERE NOT EXISTS (SELECT 1 FROM manifest_layer ml WHERE ml.layer_id = l.id)");
      return rows.map((r) => r.hash);
    });
  }

  async withManifestLock<T>(manifest: string, fn: () => Promise<T>): Promise<T> {
    return this.db.withLock(lockKey(`portcullis:manifest:${manifest}`), fn, { what: `manifest ${manifest} (being indexed by another indexer)` });
  }

  /**
   * A layer's scan lock: indexers of different manifests that share a layer, in different processes, scan
   * it once (within one process the Indexer shares the scan already). Taken under a manifest's lock and never
   * the other way round, and one layer at a time, so two indexers never wait for each other.
   */
  async withLayerLock<T>(layer: string, fn: () => Promise<T>): Promise<T> {
    return this.db.withLock(lockKey(`portcullis:layer:${layer}`), fn, { what: `layer ${layer} (being scanned by another indexer)` });
  }
}

async function upsertId(tx: Queryable, table: "manifest" | "layer", hash: string): Promise<number> {
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO ${table} (hash) VALUES ($1) ON CONFLICT (hash) DO UPDATE SET hash = EXCLUDED.hash RETURNING id`,
    [hash],
  );
  return Number(rows[0]!.id);
}

/** The manifest's row (made if new) and its report, in one statement; answers the manifest's id. */
async function writeReport(q: Queryable, report: IndexReport, scannerSet: string): Promise<number> {
  const { rows } = await q.query<{ manifest_id: string }>(
    `WITH m AS (INSERT INTO manifest (hash) VALUES ($1) ON CONFLICT (hash) DO UPDATE SET hash = EXCLUDED.hash RETURNING id)
     INSERT INTO index_report (manifest_id, state, scanner_set, report) SELECT m.id, $2, $3, $4 FROM m
     ON CONFLICT (manifest_id) DO UPDATE SET state = EXCLUDED.state, scanner_set = EXCLUDED.scanner_set, report = EXCLUDED.report, updated_at = now()
     RETURNING manifest_id`,
    [report.manifest_hash, report.state, scannerSet, JSON.stringify(report)],
  );
  return Number(rows[0]!.manifest_id);
}

function parseJson<T>(v: T | string): T {
  return typeof v === "string" ? (JSON.parse(v) as T) : v;
}
