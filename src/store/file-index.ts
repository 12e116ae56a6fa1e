// The index half of the store (Setter, Querier, ManifestAdmin) as content-addressed files, for the CLI's
// embedded store: opening it costs a mkdir, where PGlite costs ~0.85 s of WebAssembly start before the first
// query. Layout under the folder:
//   layers/<alg>/<hex>/walk.rec                 whiteouts, opaque directories, captured files (union of walks)
//   layers/<alg>/<hex>/<scanner>@<version>.rec  one scanner version's output for the layer
//   manifests/<alg>/<hex>.rec                   the manifest's layer digests, bottom to top
//   reports/<alg>/<hex>.rec                     the IndexReport and the scanner set that wrote it
//   packages/<alg>/<hex>.rec                    the coalesced package rows of a finished manifest
//   locks/                                      manifest locks and per-layer write locks (./lockfile.ts)
// Every file is a record (./record.ts): written to a temporary file, fsynced and renamed into place, so a
// reader sees the old or the new file and never half of one; read with a size bound and checked against its
// key and checksum. A damaged layer result is deleted and counts as not scanned (the layer is scanned again);
// a damaged report or manifest is an error that names the file.
import { mkdir, readdir, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { IndexReport } from "../model/index-report.js";
import type { ManifestToIndex } from "../model/image.js";
import type { ScannerInfo, ScanOutput } from "../model/scanner.js";
import { withFileLock } from "./lockfile.js";
import { readRecord, RecordError, writeRecord } from "./record.js";
import { scannedKey, type LayerArtifacts, type LayerWalkFacts, type ManifestAdmin, type ManifestPackageMatch, type ManifestPackageRow, type Querier, type Setter } from "./types.js";

/** Most bytes of one layer result, report or package list read back (a record larger is refused, by name). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/** Most bytes of a manifest's layer list. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]{16,256})$/;

export class FileIndex implements Setter, Querier, ManifestAdmin {
  private readonly registered = new Set<string>();

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<FileIndex> {
    await mkdir(join(dir, "locks"), { recursive: true });
    return new FileIndex(dir);
  }

  private digestPath(kind: "layers" | "manifests" | "reports" | "packages", digest: string, suffix = ".rec"): string {
    const m = DIGEST.exec(digest);
    if (!m) throw Object.assign(new Error(`not a digest: ${JSON.stringify(digest.slice(0, 100))}`), { code: "INVALID_DIGEST" });
    return join(this.dir, kind, m[1]!, `${m[2]!}${suffix}`);
  }

  private layerDir(layer: string): string {
    return this.digestPath("layers", layer, "");
  }

  private scannerFile(layer: string, s: Pick<ScannerInfo, "name" | "version">): string {
    return join(this.layerDir(layer), `${fileName(s.name)}@${fileName(s.version)}.rec`);
  }

  private lockPath(kind: string, digest: string): string {
    const m = DIGEST.exec(digest);
    if (!m) throw Object.assign(new Error(`not a digest: ${JSON.stringify(digest.slice(0, 100))}`), { code: "INVALID_DIGEST" });
    return join(this.dir, "locks", `${kind}-${m[1]!}-${m[2]!}.lock`);
  }

  private checkRegistered(s: ScannerInfo): void {
    if (!this.registered.has(sKey(s))) throw new Error(`scanner ${s.name} ${s.version} is not registered with the store`);
  }

  async registerScanners(scanners: readonly ScannerInfo[]): Promise<void> {
    for (const s of scanners) this.registered.add(sKey(s));
  }

  async persistManifest(m: ManifestToIndex): Promise<void> {
    const path = this.digestPath("manifests", m.digest);
    const layers = m.layers.map((l) => l.digest);
    for (const l of layers) this.layerDir(l);
    const known = await this.manifestLayers(m.digest).catch(() => undefined);
    if (known && known.length === layers.length && known.every((l, i) => l === layers[i])) return;
    await writeRecord(path, `manifest ${m.digest}`, { layers });
  }

  async setLayerScanned(layer: string, facts: LayerWalkFacts, results: ReadonlyArray<{ scanner: ScannerInfo; output: ScanOutput }>): Promise<LayerWalkFacts> {
    for (const r of results) this.checkRegistered(r.scanner);
    const dir = this.layerDir(layer);
    await mkdir(dir, { recursive: true });
    // A walk for a new scanner captures only that scanner's files: keep the union of what walks captured.
    // The read-modify-write of walk.rec is under the layer's lock, against another process doing the same.
    const stored = await withFileLock(this.lockPath("layer", layer), { what: `layer ${layer} of the index`, timeoutMs: 60_000 }, async () => {
      const walkPath = join(dir, "walk.rec");
      const old = await this.readWalk(layer).catch(() => undefined);
      const files = old ? [...new Set([...old.files, ...facts.files])].sort() : [...new Set(facts.files)].sort();
      const walk: LayerWalkFacts = { whiteouts: facts.whiteouts, opaqueDirs: facts.opaqueDirs, files };
      await writeRecord(walkPath, `walk ${layer}`, walk);
      return walk;
    });
    // The walk first: a scanner's result without its walk is never seen (a crash in between re-scans).
    for (const r of results) {
      await writeRecord(this.scannerFile(layer, r.scanner), scannerRecordKey(layer, r.scanner), r.output);
    }
    return stored;
  }

  private async readWalk(layer: string): Promise<LayerWalkFacts | undefined> {
    const v = await readRecord<LayerWalkFacts>(join(this.layerDir(layer), "walk.rec"), `walk ${layer}`, MAX_RECORD_BYTES);
    if (v === undefined) return undefined;
    if (!isStringArray(v.whiteouts) || !isStringArray(v.opaqueDirs) || !isStringArray(v.files)) throw new RecordError(join(this.layerDir(layer), "walk.rec"), "is not a layer walk");
    return v;
  }

  /** One scanner's stored output, or undefined when missing or damaged (a damaged file is removed: scan again). */
  private async readOutput(layer: string, s: ScannerInfo): Promise<ScanOutput | undefined> {
    const path = this.scannerFile(layer, s);
    try {
      const v = await readRecord<ScanOutput>(path, scannerRecordKey(layer, s), MAX_RECORD_BYTES);
      if (v !== undefined && (typeof v !== "object" || v === null || Array.isArray(v))) throw new RecordError(path, "is not a scanner output");
      return v;
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      await unlink(path).catch(() => undefined);
      return undefined;
    }
  }

  async scannedLayers(layers: readonly string[], scanners: readonly ScannerInfo[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const s of scanners) this.checkRegistered(s);
    for (const layer of new Set(layers)) {
      const walk = await this.readWalk(layer).catch((e: unknown) => (e instanceof RecordError ? undefined : Promise.reject(e)));
      if (!walk) continue;
      for (const s of scanners) if ((await this.readOutput(layer, s)) !== undefined) out.add(scannedKey(layer, s));
    }
    return out;
  }

  async layerArtifacts(layers: readonly string[], scanners: readonly ScannerInfo[]): Promise<Map<string, LayerArtifacts>> {
    const out = new Map<string, LayerArtifacts>();
    for (const s of scanners) this.checkRegistered(s);
    for (const layer of new Set(layers)) {
      const walk = await this.readWalk(layer);
      if (!walk) continue;
      const outputs = new Map<string, ScanOutput>();
      for (const s of scanners) {
        const o = await this.readOutput(layer, s);
        if (o !== undefined) outputs.set(s.name, o);
      }
      out.set(layer, { ...walk, outputs });
    }
    return out;
  }

  async manifestLayers(manifest: string): Promise<string[] | undefined> {
    const path = this.digestPath("manifests", manifest);
    const v = await readRecord<{ layers: string[] }>(path, `manifest ${manifest}`, MAX_MANIFEST_BYTES);
    if (v === undefined) return undefined;
    if (!isStringArray(v.layers)) throw new RecordError(path, "is not a manifest's layer list");
    return v.layers;
  }

  async setIndexReport(report: IndexReport, scannerSet: string): Promise<void> {
    await writeRecord(this.digestPath("reports", report.manifest_hash), `report ${report.manifest_hash}`, { report, scannerSet });
  }

  async setIndexFinished(report: IndexReport, scannerSet: string, packages: readonly ManifestPackageRow[]): Promise<void> {
    // The rows first, then the report that says they are final.
    await writeRecord(this.digestPath("packages", report.manifest_hash), `packages ${report.manifest_hash}`, packages);
    await this.setIndexReport(report, scannerSet);
  }

  async indexReport(manifest: string): Promise<{ report: IndexReport; scannerSet: string } | undefined> {
    const path = this.digestPath("reports", manifest);
    const v = await readRecord<{ report: IndexReport; scannerSet: string }>(path, `report ${manifest}`, MAX_RECORD_BYTES);
    if (v === undefined) return undefined;
    if (typeof v.scannerSet !== "string" || typeof v.report !== "object" || v.report === null || v.report.manifest_hash !== manifest) throw new RecordError(path, "is not an IndexReport of this manifest");
    return v;
  }

  private async packages(manifest: string): Promise<ManifestPackageRow[]> {
    const path = this.digestPath("packages", manifest);
    const v = await readRecord<ManifestPackageRow[]>(path, `packages ${manifest}`, MAX_RECORD_BYTES);
    if (v !== undefined && !Array.isArray(v)) throw new RecordError(path, "is not a package list");
    return v ?? [];
  }

  /** Digests of every manifest with a stored report (the folder listing, sorted). */
  async manifests(kind: "reports" | "packages" | "manifests" = "reports"): Promise<string[]> {
    const out: string[] = [];
    const root = join(this.dir, kind);
    for (const alg of await readdir(root).catch(() => [] as string[])) {
      for (const f of await readdir(join(root, alg)).catch(() => [] as string[])) {
        if (f.endsWith(".rec")) out.push(`${alg}:${f.slice(0, -4)}`);
      }
    }
    return out.filter((d) => DIGEST.test(d)).sort();
  }

  async affectedManifests(q: { name: string; version?: string; dist_did?: string }): Promise<string[]> {
    const out: string[] = [];
    for (const m of await this.manifests("packages")) {
      const rows = await this.packages(m);
      if (rows.some((p) => p.name === q.name && (q.version === undefined || p.version === q.version) && (q.dist_did === undefined || p.dist_did === q.dist_did))) out.push(m);
    }
    return out;
  }

  /** A scan of every finished manifest's rows: the CLI's store holds the images one machine scanned. */
  async manifestPackages(q: { names: readonly string[]; pypiNames?: readonly string[] }, limit: number): Promise<ManifestPackageMatch[]> {
    const names = new Set(q.names);
    const pypi = new Set(q.pypiNames ?? []);
    const out: ManifestPackageMatch[] = [];
    if ((!names.size && !pypi.size) || limit <= 0) return out;
    for (const m of await this.manifests("packages")) {
      if ((await this.indexReport(m))?.report.state !== "IndexFinished") continue;
      for (const p of await this.packages(m)) {
        if (names.has(p.name) || (p.package_db.startsWith("python:") && pypi.has(p.name.replace(/[-_.]+/g, "-").toLowerCase()))) {
          out.push({ manifest: m, ...p });
          if (out.length >= limit) return out;
        }
      }
    }
    return out;
  }

  /**
   * Not atomic against a concurrent index in another process: a manifest persisted after the listing below
   * may lose a shared layer's results, and its index ends in an error naming the layer (indexing it again
   * scans the layer again). The CLI never deletes; the report API's deletes run on serve's SQL store.
   */
  async deleteManifests(digests: readonly string[]): Promise<string[]> {
    const deleted: string[] = [];
    for (const d of new Set(digests)) {
      if (!DIGEST.test(d)) continue;
      let found = false;
      for (const kind of ["reports", "packages", "manifests"] as const) {
        found = (await unlink(this.digestPath(kind, d)).then(() => true, (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? false : Promise.reject(e)))) || found;
      }
      if (found) deleted.push(d);
    }
    if (!deleted.length) return deleted;
    // Layers no manifest refers to any more go too.
    const used = new Set<string>();
    for (const m of await this.manifests("manifests")) for (const l of (await this.manifestLayers(m).catch(() => undefined)) ?? []) used.add(l);
    const root = join(this.dir, "layers");
    for (const alg of await readdir(root).catch(() => [] as string[])) {
      for (const hex of await readdir(join(root, alg)).catch(() => [] as string[])) {
        if (!used.has(`${alg}:${hex}`)) await rm(join(root, alg, hex), { recursive: true, force: true });
      }
    }
    return deleted.sort();
  }

  async withLayerLock<T>(layer: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockPath("scan", layer), { what: `layer ${layer} (being scanned by another process)` }, fn);
  }

  async withManifestLock<T>(manifest: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockPath("manifest", manifest), { what: `manifest ${manifest} (being indexed by another process)` }, fn);
  }
}

function sKey(s: ScannerInfo): string {
  return `${s.name}\0${s.version}\0${s.kind}`;
}

function scannerRecordKey(layer: string, s: Pick<ScannerInfo, "name" | "version">): string {
  return `layer ${layer} scanner ${s.name}@${s.version}`;
}

/** A scanner name or version as a file name: percent-encoded, never `.` or `..`. */
function fileName(s: string): string {
  const e = encodeURIComponent(s).replace(/\*/g, "%2A");
  return e.replace(/^\.+$/, (m) => "%2E".repeat(m.length));
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}
