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

  // Each write below is one statement (atomic on its own, and one round trip): the manifest, its layers and
  // their order; a layer's walk facts and its scanners' results; a report and its package rows. They were
  // transactions of a statement per row, with BEGIN and COMMIT round trips of their own.

  async persistManifest(m: ManifestToIndex): Promise<void> {
    // A manifest's layers never change (its digest names them); rows from a different list are replaced,
    // position by position, and any past the end go. Layers are made in sorted order, so two manifests
    // sharing layers lock their rows in the same order.
    await this.db.query(
      `WITH m AS (INSERT INTO manifest (hash) VALUES ($1) ON CONFLICT (hash) DO UPDATE SET hash = EXCLUDED.hash RETURNING id),
       l AS (INSERT INTO layer (hash) SELECT h FROM (SELECT DISTINCT h FROM unnest($2::text[]) AS h ORDER BY h) AS s
             ON CONFLICT (hash) DO UPDATE SET hash = EXCLUDED.hash RETURNING id, hash),
       gone AS (DELETE FROM manifest_layer WHERE manifest_id = (SELECT id FROM m) AND i >= cardinality($2::text[]))
       INSERT INTO manifest_layer (manifest_id, layer_id, i)
       SELECT m.id, l.id, x.n - 1 FROM m, unnest($2::text[]) WITH ORDINALITY AS x(h, n) JOIN l ON l.hash = x.h
       ON CONFLICT (manifest_id, i) DO UPDATE SET layer_id = EXCLUDED.layer_id WHERE manifest_layer.layer_id <> EXCLUDED.layer_id`,
      [m.digest, m.layers.map((l) => l.digest)],
    );
  }

  async setLayerScanned(layer: string, facts: LayerWalkFacts, results: ReadonlyArray<{ scanner: ScannerInfo; output: ScanOutput }>): Promise<LayerWalkFacts> {
    // A walk for a new scanner captures only that scanner's files: keep the union of what walks captured.
    const { rows } = await this.db.query<{ whiteouts: string[] | string; opaque_dirs: string[] | string; files: string[] | string }>(
      `WITH l AS (
         INSERT INTO layer (hash, whiteouts, opaque_dirs, files)
         VALUES ($1, $2, $3, (SELECT coalesce(jsonb_agg(DISTINCT x ORDER BY x), '[]'::jsonb) FROM jsonb_array_elements_text($4::jsonb) AS x))
         ON CONFLICT (hash) DO UPDATE SET whiteouts = EXCLUDED.whiteouts, opaque_dirs = EXCLUDED.opaque_dirs,
           files = (SELECT coalesce(jsonb_agg(DISTINCT x ORDER BY x), '[]'::jsonb) FROM jsonb_array_elements_text(layer.files || EXCLUDED.files) AS x)
         RETURNING id, whiteouts, opaque_dirs, files),
       s AS (INSERT INTO scanned_layer (layer_id, scanner_id, artifacts)
         SELECT l.id, x.scanner_id, x.artifacts FROM l, unnest($5::bigint[], $6::jsonb[]) AS x(scanner_id, artifacts)
         ON CONFLICT (layer_id, scanner_id) DO UPDATE SET artifacts = EXCLUDED.artifacts, scanned_at = now())
       SELECT whiteouts, opaque_dirs, files FROM l`,
      [layer, JSON.stringify(facts.whiteouts), JSON.stringify(facts.opaqueDirs), JSON.stringify(facts.files), results.map((r) => this.scannerId(r.scanner)), results.map((r) => JSON.stringify(r.output))],
    );
    const r = rows[0]!;
    return { whiteouts: parseJson(r.whiteouts), opaqueDirs: parseJson(r.opaque_dirs), files: parseJson(r.files) };
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
    await this.db.query(`WITH ${REPORT_CTES} SELECT manifest_id FROM r`, reportParams(report, scannerSet));
  }

  async setIndexFinished(report: IndexReport, scannerSet: string, packages: readonly ManifestPackageRow[]): Promise<void> {
    // The report, and the package rows from arrays (the same text whatever their number; a VALUES list took
    // six parameters a package, in batches under PostgreSQL's 65,535) replacing the rows of any earlier index.
    const col = <T>(f: (p: ManifestPackageRow) => T) => packages.map(f);
    await this.db.query(
      `WITH ${REPORT_CTES},
       gone AS (DELETE FROM manifest_package WHERE manifest_id = (SELECT manifest_id FROM r))
       INSERT INTO manifest_package (manifest_id, name, version, kind, package_db, dist_did, dist_version_id)
       SELECT r.manifest_id, x.name, x.version, x.kind, x.package_db, x.dist_did, x.dist_version_id
       FROM r, unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS x(name, version, kind, package_db, dist_did, dist_version_id)`,
      [...reportParams(report, scannerSet), col((p) => p.name), col((p) => p.version), col((p) => p.kind), col((p) => p.package_db), col((p) => p.dist_did ?? null), col((p) => p.dist_version_id ?? null)],
    );
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

/**
 * The manifest's row (made if new) and its report ($1-$4: reportParams), as the common table expressions m
 * and r (r answers manifest_id): PostgreSQL takes data-modifying ones only at a statement's top level.
 */
const REPORT_CTES = `m AS (INSERT INTO manifest (hash) VALUES ($1) ON CONFLICT (hash) DO UPDATE SET hash = EXCLUDED.hash RETURNING id),
     r AS (INSERT INTO index_report (manifest_id, state, scanner_set, report) SELECT m.id, $2, $3, $4 FROM m
       ON CONFLICT (manifest_id) DO UPDATE SET state = EXCLUDED.state, scanner_set = EXCLUDED.scanner_set, report = EXCLUDED.report, updated_at = now()
       RETURNING manifest_id)`;

function reportParams(report: IndexReport, scannerSet: string): unknown[] {
  return [report.manifest_hash, report.state, scannerSet, JSON.stringify(report)];
}

function parseJson<T>(v: T | string): T {
  return typeof v === "string" ? (JSON.parse(v) as T) : v;
}
