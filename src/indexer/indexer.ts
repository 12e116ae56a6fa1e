// libindex: index(manifest) -> IndexReport, as a small state machine after claircore's
// (CheckManifest -> FetchLayers -> ScanLayers -> Coalesce -> IndexManifest -> IndexFinished | IndexError).
// Every state is persisted as it is entered so a reader sees progress. Fetching and scanning a layer are
// one streaming pass; layers already scanned by every current scanner version are not fetched at all.
import { CaptureBudget } from "../layers/entries.js";
import { DEFAULT_MAX_SCAN_CAPTURED_BYTES, type WalkLimits } from "../layers/walk.js";
import type { TocWalkTuning } from "../layers/toc/index.js";
import type { Scanner, ScannerInfo } from "../model/scanner.js";
import { type LayerArtifacts, type ManifestPackageRow, scannedKey, type Store } from "../store/types.js";
import { scannerSetHash } from "./scanner-set.js";
import { buildReport, coalesce, type Coalesced, type CoalesceLayer } from "./coalesce.js";
import type { IndexReport, IndexState } from "../model/index-report.js";
import { inProcessScanning, type LayerRead, type LayerScanning, type LayerSource } from "./scan-layer.js";
import type { Distribution, Package } from "../model/packages.js";
import type { LayerDescriptor, LayerSoci, ManifestToIndex } from "../model/image.js";
import { compressionOfMediaType } from "../layers/decompress.js";
import { tocFormat } from "../layers/toc/index.js";
import { PortcullisError } from "../errors.js";

export interface IndexerOptions {
  store: Store;
  scanners: readonly Scanner[];
  /** Layers fetched and scanned at once for one manifest (claircore's default: 10). */
  layerConcurrency?: number;
  limits?: Partial<WalkLimits>;
  /** The wanted files' bytes one manifest's layers may hold in all, in this process (default 1 GiB). */
  maxScanCapturedBytes?: number;
  /** Read layers that carry a table of contents partially (default true). */
  partialReads?: boolean;
  tocTuning?: Partial<TocWalkTuning>;
  /** Where a partial read that fell back to a full one is reported (level, message, fields). */
  log?: (level: "info" | "warn", msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Where layer bytes are parsed: default in this process with the options above; `serve` passes a pool of
   * worker processes (./workers/), which then owns limits, partialReads and tocTuning.
   */
  scanning?: LayerScanning;
}

export interface IndexStats {
  layers: number;
  /** Layers downloaded and walked in this call. */
  layersFetched: number;
  /** Layers whose every scanner result was already in the store. */
  layersReused: number;
  /** Foreign (non-distributable) layers skipped. */
  layersSkipped: number;
  bytesFetched: number;
  bytesDecompressed: number;
  /** True when the stored report was returned without any work. */
  cached: boolean;
  /** How each layer fetched in this call was read, in the order they finished (always set by Indexer). */
  layerReads?: LayerRead[];
  durationMs: number;
}

/** Layers whose results were in the store already: all of them when the report was answered from it. */
export function layersReused(stats: IndexStats): number {
  return stats.cached ? stats.layers : stats.layersReused;
}

export interface IndexResult {
  report: IndexReport;
  stats: IndexStats;
  /** For IndexError: the error, whose `code` (LayerError, RegistryError) callers branch on. */
  error?: Error;
}

export interface IndexProgress {
  manifest: string;
  state: IndexState;
  layer?: string;
  bytes?: number;
}

/** A finished manifest's coalesced packages, with purls, licences and dependencies (for SBOMs). */
export interface Inventory extends Coalesced {
  manifest: string;
  /** Layer digests, bottom to top. */
  layers: string[];
}

/** Why there is no inventory of a manifest: never indexed, not finished, or indexed by other scanner versions. */
export class InventoryError extends PortcullisError {
  readonly domain = "indexer";
  override name = "InventoryError";
  constructor(
    readonly code: "NOT_INDEXED" | "NOT_FINISHED" | "STALE_INDEX",
    message: string,
  ) {
    super(message);
  }
}

/** The stored progress state of an index is written at most this often (see Indexer.index). */
export const PROGRESS_WRITE_MS = 1000;

export class Indexer {
  private readonly scanners: readonly Scanner[];
  private readonly infos: ScannerInfo[];
  readonly scannerSet: string;
  private registered: Promise<void> | undefined;
  private readonly scanning: LayerScanning;
  /** Layers being scanned by this process: another manifest with the same layer waits, then reuses it. */
  private readonly layerFlights = new Map<string, Promise<boolean>>();

  constructor(private readonly options: IndexerOptions) {
    const names = new Set<string>();
    for (const s of options.scanners) {
      if (names.has(s.name)) throw new Error(`two scanners are named ${s.name}`);
      names.add(s.name);
    }
    this.scanners = options.scanners;
    this.infos = options.scanners.map((s) => ({ name: s.name, version: s.version, kind: s.kind }));
    this.scannerSet = scannerSetHash(this.infos);
    this.scanning = options.scanning ?? inProcessScanning({ limits: options.limits, partialReads: options.partialReads, tocTuning: options.tocTuning, log: options.log });
  }

  get store(): Store {
    return this.options.store;
  }

  private ensureRegistered(): Promise<void> {
    this.registered ??= this.options.store.registerScanners(this.infos).catch((e: unknown) => {
      this.registered = undefined;
      throw e;
    });
    return this.registered;
  }

  /** The stored report for a manifest, if any (finished, in progress or failed). */
  async indexReport(manifest: string): Promise<IndexReport | undefined> {
    return (await this.options.store.indexReport(manifest))?.report;
  }

  /** The stored report of a manifest this scanner set finished indexing, else undefined (nothing to do then). */
  async finishedReport(manifest: string): Promise<IndexReport | undefined> {
    const known = await this.options.store.indexReport(manifest);
    return known && known.scannerSet === this.scannerSet && known.report.state === "IndexFinished" ? known.report : undefined;
  }

  /**
   * The coalesced packages of a manifest this scanner set finished indexing, re-read from the stored layer
   * results (the IndexReport keeps to Clair's wire format, which has no room for purls, licences or
   * dependencies). Throws an InventoryError when there is none; index the manifest first.
   */
  async inventory(manifest: string): Promise<Inventory> {
    const store = this.options.store;
    const known = await store.indexReport(manifest);
    if (!known) throw new InventoryError("NOT_INDEXED", `${manifest} is not indexed`);
    if (known.report.state !== "IndexFinished") throw new InventoryError("NOT_FINISHED", `${manifest} is not indexed yet (state ${known.report.state}${known.report.err ? `: ${known.report.err}` : ""})`);
    if (known.scannerSet !== this.scannerSet) throw new InventoryError("STALE_INDEX", `${manifest} was indexed by other scanner versions; index it again for an SBOM`);
    await this.ensureRegistered();
    const layers = (await store.manifestLayers(manifest)) ?? [];
    const arts = await store.layerArtifacts(layers, this.infos);
    // A foreign layer (never fetched) has no stored results: it adds nothing, as at indexing.
    const stack: CoalesceLayer[] = layers.map((digest) => {
      const a = arts.get(digest);
      return { digest, whiteouts: a?.whiteouts ?? [], opaqueDirs: a?.opaqueDirs ?? [], files: a?.files ?? [], outputs: a ? [...a.outputs.values()] : [] };
    });
    return { manifest, layers, ...coalesce(stack) };
  }

  async index(m: ManifestToIndex, source: LayerSource, opts: { signal?: AbortSignal; onProgress?: (p: IndexProgress) => void } = {}): Promise<IndexResult> {
    const t0 = performance.now();
    const stats: IndexStats = { layers: m.layers.length, layersFetched: 0, layersReused: 0, layersSkipped: 0, bytesFetched: 0, bytesDecompressed: 0, cached: false, layerReads: [], durationMs: 0 };
    const finish = (report: IndexReport, error?: Error): IndexResult => ({ report, stats: { ...stats, durationMs: performance.now() - t0 }, ...(error ? { error } : {}) });
    const store = this.options.store;
    // The stored progress state: the first one, then a state entered at least PROGRESS_WRITE_MS after the last
    // write (an image indexed in 60 ms costs two writes of its report, not five; a long step is shown once the
    // next one starts). No timer: every write is made, and done, by the step that enters its state.
    let written = -Infinity;
    const progress = async (state: IndexState) => {
      opts.onProgress?.({ manifest: m.digest, state });
      if (performance.now() - written < PROGRESS_WRITE_MS) return;
      written = performance.now();
      await store.setIndexReport({ manifest_hash: m.digest, state, success: false }, this.scannerSet);
    };

    // CheckManifest, without the lock: the common case (already indexed by this scanner set) stays cheap.
    const known = await this.finishedReport(m.digest);
    if (known) {
      stats.cached = true;
      return finish(known);
    }
    await this.ensureRegistered();
    return store.withManifestLock(m.digest, async () => {
      // Someone may have finished it while we waited for the lock.
      const again = await this.finishedReport(m.digest);
      if (again) {
        stats.cached = true;
        return finish(again);
      }
      try {
        await progress("CheckManifest");
        await store.persistManifest(m);
        await progress("FetchLayers");
        // What this index scanned with every scanner of the set is what the store now holds: not read back.
        const scannedNow = new Map<string, LayerArtifacts>();
        await this.fetchAndScan(m, source, stats, opts, scannedNow);
        await progress("Coalesce");
        const layers = m.layers.filter((l) => !l.urls?.length).map((l) => l.digest);
        const arts = await store.layerArtifacts(layers.filter((d) => !scannedNow.has(d)), this.infos);
        const stack: CoalesceLayer[] = layers.map((digest) => {
          const a = scannedNow.get(digest) ?? arts.get(digest);
          if (!a) throw new Error(`layer ${digest} has no stored scan results after scanning`);
          return { digest, whiteouts: a.whiteouts, opaqueDirs: a.opaqueDirs, files: a.files, outputs: [...a.outputs.values()] };
        });
        const coalesced = coalesce(stack);
        await progress("IndexManifest");
        const report = buildReport(m.digest, coalesced);
        const rows = manifestPackageRows(coalesced.packages.map(({ pkg }) => pkg), coalesced.distribution);
        await store.setIndexFinished(report, this.scannerSet, rows);
        opts.onProgress?.({ manifest: m.digest, state: "IndexFinished" });
        return finish(report);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        const report: IndexReport = { manifest_hash: m.digest, state: "IndexError", success: false, err: (e as Error).message };
        await store.setIndexReport(report, this.scannerSet).catch(() => undefined);
        opts.onProgress?.({ manifest: m.digest, state: "IndexError" });
        return finish(report, e as Error);
      }
    });
  }

  /** FetchLayers + ScanLayers: one streaming pass per layer that lacks some scanner's results. */
  private async fetchAndScan(m: ManifestToIndex, source: LayerSource, stats: IndexStats, opts: { signal?: AbortSignal; onProgress?: (p: IndexProgress) => void }, scannedNow: Map<string, LayerArtifacts>): Promise<void> {
    const layers = m.layers.filter((l) => {
      if (l.urls?.length) stats.layersSkipped++;
      return !l.urls?.length;
    });
    const unique = [...new Map(layers.map((l) => [l.digest, l])).values()];
    const done = await this.options.store.scannedLayers(unique.map((l) => l.digest), this.infos);
    const work = unique
      .map((l) => ({ layer: l, scanners: this.scanners.filter((s) => !done.has(scannedKey(l.digest, s))) }))
      .filter((w) => {
        if (w.scanners.length === 0) stats.layersReused++;
        return w.scanners.length > 0;
      });
    if (work.length && this.options.partialReads !== false && source.soci && source.ranges) await this.attachSoci(work, source, opts.signal);
    const concurrency = Math.max(1, this.options.layerConcurrency ?? 10);
    // One budget for the wanted files of all the layers walked at once for this manifest.
    const capture = new CaptureBudget(this.options.maxScanCapturedBytes ?? DEFAULT_MAX_SCAN_CAPTURED_BYTES);
    let next = 0;
    const controller = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
    const worker = async () => {
      while (next < work.length) {
        const w = work[next++]!;
        if (!(await this.scanLayerOnce(w, source, stats, signal, capture, scannedNow))) continue;
        opts.onProgress?.({ manifest: m.digest, state: "ScanLayers", layer: w.layer.digest, bytes: w.layer.size });
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, work.length) }, worker));
    } catch (e) {
      controller.abort(e);
      throw e;
    }
  }

  /**
   * The SOCI zTOCs of the gzip layers to scan that carry no table of contents of their own, from the source
   * (the descriptors the scans get; the manifest's are not changed). A failed lookup is logged and the layers
   * are read in full, as without SOCI.
   */
  private async attachSoci(work: Array<{ layer: LayerDescriptor }>, source: LayerSource, signal: AbortSignal | undefined): Promise<void> {
    const candidates = work.filter((w) => compressionOfMediaType(w.layer.mediaType) === "gzip" && !tocFormat(w.layer));
    if (!candidates.length) return;
    let found: Map<string, LayerSoci>;
    try {
      found = await source.soci!(candidates.map((w) => w.layer), signal);
    } catch (e) {
      if (signal?.aborted) throw e;
      this.options.log?.("warn", "SOCI index lookup failed; reading the layers in full", { reason: (e as Error).message });
      return;
    }
    for (const w of candidates) {
      const soci = found.get(w.layer.digest);
      if (soci) w.layer = { ...w.layer, soci };
    }
  }

  /**
   * Scans a layer unless another index in this process is scanning it already, in which case it waits for
   * that one and reuses its results (two images on one base, indexed at once, download the base once).
   * Returns false when the layer was reused.
   */
  private async scanLayerOnce(w: { layer: LayerDescriptor; scanners: Scanner[] }, source: LayerSource, stats: IndexStats, signal: AbortSignal, capture: CaptureBudget, scannedNow: Map<string, LayerArtifacts>): Promise<boolean> {
    const digest = w.layer.digest;
    // Wait for a scan of this layer in flight; then (and before starting our own) look at the store again:
    // the list of work was made before other indexes may have finished this layer.
    // With a store lock per layer, the look under the lock is the one that counts: the list of work was made
    // just now, so the first look here would only repeat it.
    let checked = this.options.store.withLayerLock !== undefined;
    for (;;) {
      const running = this.layerFlights.get(digest);
      if (running) {
        await running.catch(() => undefined);
        signal.throwIfAborted();
        checked = false;
        continue;
      }
      if (checked) break;
      const done = await this.options.store.scannedLayers([digest], this.infos);
      w.scanners = w.scanners.filter((s) => !done.has(scannedKey(digest, s)));
      if (w.scanners.length === 0) {
        stats.layersReused++;
        return false;
      }
      checked = true;
    }
    // No await between the last look at layerFlights and registering ours.
    const store = this.options.store;
    const flight = store.withLayerLock
      ? // Across processes (the CLI's folder store): under the layer's lock, look at the store once more.
        store.withLayerLock(digest, async () => {
          const done = await store.scannedLayers([digest], this.infos);
          const left = w.scanners.filter((s) => !done.has(scannedKey(digest, s)));
          if (!left.length) return false;
          await this.scanLayer(w.layer, left, source, stats, signal, capture, scannedNow);
          return true;
        })
      : this.scanLayer(w.layer, w.scanners, source, stats, signal, capture, scannedNow).then(() => true);
    this.layerFlights.set(digest, flight);
    try {
      if (await flight) return true;
      stats.layersReused++;
      return false;
    } finally {
      if (this.layerFlights.get(digest) === flight) this.layerFlights.delete(digest);
    }
  }

  private async scanLayer(layer: LayerDescriptor, scanners: Scanner[], source: LayerSource, stats: IndexStats, signal: AbortSignal, capture: CaptureBudget, scannedNow: Map<string, LayerArtifacts>): Promise<void> {
    const scanned = await this.scanning.scan({ layer, scanners, source, signal, capture });
    stats.layersFetched++;
    stats.bytesFetched += scanned.read.bytes;
    stats.bytesDecompressed += scanned.uncompressedBytes;
    stats.layerReads!.push(scanned.read);
    // Nothing is stored until the whole layer streamed and its digest matched (the walk throws otherwise).
    const facts = await this.options.store.setLayerScanned(layer.digest, { whiteouts: scanned.whiteouts, opaqueDirs: scanned.opaqueDirs, files: scanned.files }, scanned.results);
    if (scanners.length === this.scanners.length) scannedNow.set(layer.digest, { ...facts, outputs: new Map(scanned.results.map((r) => [r.scanner.name, r.output])) });
  }
}

/**
 * The manifest_package rows of a finished manifest: every package, and (as claircore's manifest_index
 * does) its source package as a row of kind "source" with the source's version when the scanner knows it
 * (dpkg `Source: name (version)`, apk origin, source RPM), so that an advisory naming a source package
 * (Debian, Ubuntu, Alpine) finds the manifests through AffectedManifests. One row per distinct
 * (name, version, kind, package_db).
 */
export function manifestPackageRows(packages: readonly Package[], dist: Distribution | undefined): ManifestPackageRow[] {
  const rows = new Map<string, ManifestPackageRow>();
  const add = (name: string, version: string, kind: string, packageDb: string) => {
    const key = `${name}\0${version}\0${kind}\0${packageDb}`;
    if (!rows.has(key)) rows.set(key, { name, version, kind, package_db: packageDb, dist_did: dist?.did, dist_version_id: dist?.version_id });
  };
  for (const p of packages) {
    add(p.name, p.version, p.kind ?? "binary", p.package_db ?? "");
    if (p.source?.name) add(p.source.name, p.source.version || p.version, "source", p.package_db ?? "");
  }
  return [...rows.values()];
}

export { scannerSetHash };
