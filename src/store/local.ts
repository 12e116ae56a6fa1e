// The CLI's embedded store: one folder on this machine, in two parts.
//   index/          the index (layer results, manifests, reports) as content-addressed files (./file-index.ts):
//                   opens in a millisecond, safe for concurrent `portcullis scan` runs
//   pg/             PGlite, for what needs SQL: the advisory database, findings, watched repositories; opened
//                   only when one of them is touched, under database.lock (two processes must never open one
//                   PGlite folder at once: the second's close overwrites the first's commits)
//   advisories.rec  written when PGlite closes: whether it holds advisory data and a fingerprint of it, with
//                   the identity of PGlite's pg_control, so a scan knows without opening PGlite
//   index/matches/  each manifest's last match, keyed by the report, the advisory fingerprint, the build and the day
// A folder made by an earlier version is a PGlite data folder itself (PG_VERSION at its top): it stays where
// it is and is opened there, advisory data and all; its index tables are no longer read (images are indexed
// again into index/ on their next scan).
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { IndexReport } from "../model/index-report.js";
import type { ManifestToIndex } from "../model/image.js";
import type { ScannerInfo, ScanOutput } from "../model/scanner.js";
import type { AdvisoryStore } from "./advisory-types.js";
import type { EmbeddedDb } from "./embedded.js";
import { FileIndex } from "./file-index.js";
import { acquireLock, type FileLock } from "./lockfile.js";
import { readRecord, RecordError, writeRecord } from "./record.js";
import type { SqlStore } from "./sql-store.js";
import type { FindingsStore, LayerArtifacts, LayerWalkFacts, ManifestPackageMatch, ManifestPackageRow, MatchCache, ResolutionCache, Store, WatchedRepositoryStore } from "./types.js";

/** Where each part of a store folder is. */
export function storeLayout(root: string): { pgDir: string; lock: string; index: string; marker: string } {
  return {
    pgDir: existsSync(join(root, "PG_VERSION")) ? root : join(root, "pg"),
    lock: join(root, "database.lock"),
    index: join(root, "index"),
    marker: join(root, "advisories.rec"),
  };
}

const DIGEST = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/;

/** How long a process waits for another that has the store's database open (a `db update` may take minutes). */
const DATABASE_LOCK_TIMEOUT_MS = 10 * 60_000;
/** A match larger than this is not cached: such a scan opens PGlite each time to match. */
const MAX_CACHED_MATCH_BYTES = 32 * 1024 * 1024;

/**
 * Opens the PGlite folder of a store under its cross-process lock (waiting for another holder), with
 * migrations applied. `beforeRelease` runs after PGlite closed and before the lock is released.
 */
export async function openLockedDatabase(root: string, beforeRelease?: () => Promise<void>, onWait?: (owner: string) => void): Promise<SqlStore> {
  const layout = storeLayout(root);
  await mkdir(root, { recursive: true });
  const lock: FileLock = await acquireLock(layout.lock, { what: `the store database ${layout.pgDir}`, timeoutMs: DATABASE_LOCK_TIMEOUT_MS, ...(onWait ? { onWait } : {}) });
  let db: EmbeddedDb;
  try {
    // The marker says what the database held when it was last closed; from now on that is unknown.
    await unlink(layout.marker).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? undefined : Promise.reject(e)));
    const [{ EmbeddedDb }] = await Promise.all([import("./embedded.js")]);
    db = await EmbeddedDb.open(layout.pgDir, {
      afterClose: async () => {
        try {
          await beforeRelease?.();
        } finally {
          lock.release();
        }
      },
    });
  } catch (e) {
    lock.release();
    throw e;
  }
  const { SqlStore } = await import("./sql-store.js");
  try {
    return await SqlStore.open(db);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
}

interface Marker {
  data: boolean;
  fingerprint: string;
  pgControl: { size: number; mtimeMs: number; ino: number };
}

export class LocalStore implements Store {
  readonly kind = "embedded" as const;
  readonly advisories: AdvisoryStore;
  readonly repositories: WatchedRepositoryStore;
  readonly findings: FindingsStore;
  readonly matchCache: MatchCache;
  readonly resolutions: ResolutionCache;
  private sql: Promise<SqlStore> | undefined;
  /** The fingerprint to write into the marker when the database closes. */
  private closingFingerprint: { data: boolean; fingerprint: string } | undefined;
  private readonly layout: ReturnType<typeof storeLayout>;

  private constructor(readonly root: string, private readonly index: FileIndex, private readonly onWait?: (owner: string) => void) {
    this.layout = storeLayout(root);
    this.advisories = lazy<AdvisoryStore>(async () => (await this.database()).advisories);
    this.repositories = lazy<WatchedRepositoryStore>(async () => (await this.database()).repositories);
    this.findings = this.findingsStore();
    this.matchCache = {
      state: () => this.advisoryState(),
      fingerprint: async () => (await fingerprintOf(await this.database())).fingerprint,
      get: (manifest, key) => this.cachedMatch(manifest, key),
      put: (manifest, key, value) => this.putMatch(manifest, key, value),
    };
    this.resolutions = {
      get: async (resolved, platform) => {
        const v = await readRecord<{ digest: string; platform?: string }>(this.resolutionPath(resolved, platform), `resolution ${resolved} ${platform}`, 4096)
          .catch((e: unknown) => (e instanceof RecordError ? undefined : Promise.reject(e)));
        return v && typeof v.digest === "string" && DIGEST.test(v.digest) && (v.platform === undefined || typeof v.platform === "string") ? v : undefined;
      },
      put: (resolved, platform, to) => writeRecord(this.resolutionPath(resolved, platform), `resolution ${resolved} ${platform}`, to),
    };
  }

  private resolutionPath(resolved: string, platform: string): string {
    const m = DIGEST.exec(resolved);
    if (!m) throw Object.assign(new Error(`not a digest: ${JSON.stringify(resolved.slice(0, 100))}`), { code: "INVALID_DIGEST" });
    return join(this.layout.index, "resolved", m[1]!, `${m[2]!}@${encodeURIComponent(platform)}.rec`);
  }

  /** `onWait`: told who holds the database when this process has waited a second for it. */
  static async open(root: string, opts: { onWait?: (owner: string) => void } = {}): Promise<LocalStore> {
    await mkdir(root, { recursive: true });
    return new LocalStore(root, await FileIndex.open(storeLayout(root).index), opts.onWait);
  }

  /** The SQL part, opened (and locked) on first use. */
  private database(): Promise<SqlStore> {
    this.sql ??= openLockedDatabase(this.root, () => this.writeMarker(), this.onWait).catch((e: unknown) => {
      this.sql = undefined;
      throw e;
    });
    return this.sql;
  }

  /** True when the folder has a PGlite database (possibly empty). */
  private hasDatabase(): boolean {
    return existsSync(join(this.layout.pgDir, "PG_VERSION"));
  }

  private async pgControl(): Promise<Marker["pgControl"] | undefined> {
    const s = await stat(join(this.layout.pgDir, "global", "pg_control")).catch(() => undefined);
    return s ? { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino } : undefined;
  }

  private async writeMarker(): Promise<void> {
    const fp = this.closingFingerprint;
    const pgControl = await this.pgControl();
    if (!fp || !pgControl) return;
    await writeRecord(this.layout.marker, "advisory state", { ...fp, pgControl } satisfies Marker);
  }

  /**
   * What the advisory data is, without opening PGlite: none (no database, or an empty one), or its
   * fingerprint; undefined when the marker is missing or out of date (something else wrote the database).
   */
  private async advisoryState(): Promise<{ data: false } | { data: true; fingerprint: string } | undefined> {
    if (this.sql) return undefined;
    if (!this.hasDatabase()) return { data: false };
    const m = await readRecord<Marker>(this.layout.marker, "advisory state", 4096).catch((e: unknown) => (e instanceof RecordError ? undefined : Promise.reject(e)));
    const now = await this.pgControl();
    if (!m || !now || typeof m.fingerprint !== "string" || typeof m.data !== "boolean") return undefined;
    if (m.pgControl?.size !== now.size || m.pgControl.mtimeMs !== now.mtimeMs || m.pgControl.ino !== now.ino) return undefined;
    return m.data ? { data: true, fingerprint: m.fingerprint } : { data: false };
  }

  private matchPath(manifest: string): string {
    const m = DIGEST.exec(manifest);
    if (!m) throw Object.assign(new Error(`not a digest: ${JSON.stringify(manifest.slice(0, 100))}`), { code: "INVALID_DIGEST" });
    return join(this.layout.index, "matches", m[1]!, `${m[2]!}.rec`);
  }

  private async cachedMatch<T>(manifest: string, key: string): Promise<T | undefined> {
    // Another key (older data, another build or day) or a damaged file: a miss.
    return readRecord<T>(this.matchPath(manifest), `matches ${manifest} ${key}`, MAX_CACHED_MATCH_BYTES).catch((e: unknown) => (e instanceof RecordError ? undefined : Promise.reject(e)));
  }

  private async putMatch(manifest: string, key: string, value: unknown): Promise<boolean> {
    if (Buffer.byteLength(JSON.stringify(value)) > MAX_CACHED_MATCH_BYTES) return false;
    await writeRecord(this.matchPath(manifest), `matches ${manifest} ${key}`, value);
    return true;
  }

  /** Findings live in PGlite (serve's controller reads them); their manifests are the file index's. */
  private findingsStore(): FindingsStore {
    const sql = () => this.database();
    const withManifest = async (manifest: string) => {
      const s = await sql();
      // The SQL part has no index tables of its own here: a manifest row is enough for the findings' key.
      await s.sql.query("INSERT INTO manifest (hash) VALUES ($1) ON CONFLICT (hash) DO NOTHING", [manifest]);
      return s;
    };
    return {
      put: async (manifest, f, keys) => {
        if (!(await this.index.indexReport(manifest))) throw new Error(`manifest ${manifest} is not in the store: index it before matching it`);
        return (await withManifest(manifest)).findings.put(manifest, f, keys);
      },
      get: async (m) => (await sql()).findings.get(m),
      manifestsForKeys: async (k) => (await sql()).findings.manifestsForKeys(k),
      notCovered: async () => (await sql()).findings.notCovered(),
      cursor: async () => (await sql()).findings.cursor(),
      setCursor: async (id) => (await sql()).findings.setCursor(id),
      unmatched: async () => {
        const s = await sql();
        const { rows } = await s.sql.query<{ hash: string }>("SELECT m.hash FROM manifest_findings f JOIN manifest m ON m.id = f.manifest_id");
        const matched = new Set(rows.map((r) => r.hash));
        const out: string[] = [];
        for (const m of await this.index.manifests("reports")) {
          if (!matched.has(m) && (await this.index.indexReport(m))?.report.state === "IndexFinished") out.push(m);
        }
        return out;
      },
    };
  }

  registerScanners(scanners: readonly ScannerInfo[]): Promise<void> {
    return this.index.registerScanners(scanners);
  }
  persistManifest(m: ManifestToIndex): Promise<void> {
    return this.index.persistManifest(m);
  }
  setLayerScanned(layer: string, facts: LayerWalkFacts, results: ReadonlyArray<{ scanner: ScannerInfo; output: ScanOutput }>): Promise<LayerWalkFacts> {
    return this.index.setLayerScanned(layer, facts, results);
  }
  setIndexReport(report: IndexReport, scannerSet: string): Promise<void> {
    return this.index.setIndexReport(report, scannerSet);
  }
  setIndexFinished(report: IndexReport, scannerSet: string, packages: readonly ManifestPackageRow[]): Promise<void> {
    return this.index.setIndexFinished(report, scannerSet, packages);
  }
  scannedLayers(layers: readonly string[], scanners: readonly ScannerInfo[]): Promise<Set<string>> {
    return this.index.scannedLayers(layers, scanners);
  }
  layerArtifacts(layers: readonly string[], scanners: readonly ScannerInfo[]): Promise<Map<string, LayerArtifacts>> {
    return this.index.layerArtifacts(layers, scanners);
  }
  indexReport(manifest: string): Promise<{ report: IndexReport; scannerSet: string } | undefined> {
    return this.index.indexReport(manifest);
  }
  manifestLayers(manifest: string): Promise<string[] | undefined> {
    return this.index.manifestLayers(manifest);
  }
  affectedManifests(q: { name: string; version?: string; dist_did?: string }): Promise<string[]> {
    return this.index.affectedManifests(q);
  }
  manifestPackages(q: { names: readonly string[]; pypiNames?: readonly string[] }, limit: number): Promise<ManifestPackageMatch[]> {
    return this.index.manifestPackages(q, limit);
  }
  withManifestLock<T>(manifest: string, fn: () => Promise<T>): Promise<T> {
    return this.index.withManifestLock(manifest, fn);
  }
  withLayerLock<T>(layer: string, fn: () => Promise<T>): Promise<T> {
    return this.index.withLayerLock(layer, fn);
  }

  async deleteManifests(digests: readonly string[]): Promise<string[]> {
    const deleted = await this.index.deleteManifests(digests);
    // Their findings go too (they cascade from the manifest row in PGlite).
    if (deleted.length && (this.sql || this.hasDatabase())) {
      const s = await this.database();
      await s.sql.query("DELETE FROM manifest WHERE hash = ANY($1::text[])", [deleted]);
    }
    for (const d of deleted) await unlink(this.matchPath(d)).catch(() => undefined);
    return deleted;
  }

  async close(): Promise<void> {
    const sql = this.sql;
    this.sql = undefined;
    if (!sql) return;
    const s = await sql.catch(() => undefined);
    if (!s) return;
    this.closingFingerprint = await fingerprintOf(s).catch(() => undefined);
    await s.close();
  }
}

/** What the advisory data is, as the match cache keys it: the sources' status (operations, checks) and ecosystems. */
async function fingerprintOf(sql: SqlStore): Promise<{ data: boolean; fingerprint: string }> {
  const [ecosystems, status] = await Promise.all([sql.advisories.ecosystems(), sql.advisories.status()]);
  const fingerprint = createHash("sha256").update(JSON.stringify({ ecosystems: [...ecosystems].sort(), status })).digest("hex");
  return { data: ecosystems.size > 0, fingerprint };
}

/** An object whose every method first awaits `get()` (the PGlite part, opened on first use). */
function lazy<T extends object>(get: () => Promise<T>): T {
  return new Proxy({} as T, {
    // Never a thenable: `await` of the proxy is the proxy.
    get: (_t, prop) => prop === "then" ? undefined : async (...args: unknown[]) => {
      const target = await get();
      const f = (target as Record<string | symbol, unknown>)[prop];
      if (typeof f !== "function") throw new Error(`${String(prop)} is not a method of the store`);
      return (f as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
}
