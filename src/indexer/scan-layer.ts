// One layer's bytes to its scanners' results: the only step of indexing that parses image bytes. The
// Indexer decides which layers need it and stores what it returns; where it runs is its `LayerScanning`:
// in this process (`scanLayerBytes`), or in a worker process that holds no credentials, no database and no
// network (./workers/), so that a hostile layer costs that worker and not the process answering admission.
import type { Readable } from "node:stream";
import { LayerError } from "../layers/errors.js";
import { tocFormat, walkPartial, type RangeReader, type TocFormat, type TocWalkTuning } from "../layers/toc/index.js";
import type { CaptureBudget } from "../layers/entries.js";
import { walkLayer, type LayerWalk, type WalkLimits } from "../layers/walk.js";
import type { Scanner, ScannerInfo, ScanOutput } from "../model/scanner.js";
import type { LayerDescriptor, LayerSoci } from "../model/image.js";

/** How layer bytes become scanner results, wherever that runs. */
export interface LayerScanning {
  scan(req: LayerScanRequest): Promise<ScannedLayer>;
}

export interface LayerScanTuning {
  limits?: Partial<WalkLimits>;
  /** Read layers that carry a table of contents partially (default true). */
  partialReads?: boolean;
  tocTuning?: Partial<TocWalkTuning>;
  /** Where a partial read that fell back to a full one is reported (level, message, fields). */
  log?: (level: "info" | "warn", msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Walks one layer (partially through its table of contents when it has one the source can serve, else in
 * full) and runs `scanners` over the files they asked for. A partial read that fails for any reason falls
 * back to the full read, never to a partial answer. Nothing is stored here.
 */
export async function scanLayerBytes(req: LayerScanRequest, tuning: LayerScanTuning = {}): Promise<ScannedLayer> {
  const { layer, scanners, source, signal } = req;
  const limits = req.capture ? { ...tuning.limits, scanCapture: req.capture } : tuning.limits;
  const toc = source.ranges && tuning.partialReads !== false ? tocFormat(layer) : undefined;
  let walk: LayerWalk | undefined;
  let read: LayerRead | undefined;
  // A zTOC comes with the descriptor (the source fetched it): its bytes count as this layer's.
  let attempted = layer.soci && "bytes" in layer.soci ? layer.soci.bytes.byteLength : 0;
  if (toc) {
    try {
      const partial = await walkPartial(layer, countingReader(source.ranges!(layer), (n) => (attempted += n)), { scanners, limits, tuning: tuning.tocTuning, signal });
      walk = partial;
      read = { digest: layer.digest, mode: "partial", toc, bytes: attempted, requests: partial.requests };
    } catch (e) {
      if (signal.aborted) throw e;
      // Never a partial answer: whatever went wrong, the whole layer is read and decides.
      const why = (e as Error).message;
      tuning.log?.("warn", "partial layer read failed; reading the layer in full", { layer: layer.digest, toc, reason: why, bytes: attempted });
      read = { digest: layer.digest, mode: "full", toc, bytes: 0, fallback: why };
    }
  }
  if (!walk) {
    let stream: Readable;
    try {
      stream = await source.open(layer, signal);
    } catch (e) {
      if (e instanceof LayerError || signal.aborted) throw e;
      throw Object.assign(e as Error, { layer: layer.digest });
    }
    walk = await walkLayer(stream, { digest: layer.digest, size: layer.size, mediaType: layer.mediaType, scanners, limits, skipDigestCheck: source.verifiesDigests, signal });
    read = { ...(read ?? { digest: layer.digest, mode: "full" }), bytes: attempted + walk.compressedBytes };
  }
  const results: ScannedLayer["results"] = [];
  for (const s of scanners) {
    results.push({ scanner: { name: s.name, version: s.version, kind: s.kind }, output: await s.scan(walk.files) });
  }
  return { whiteouts: walk.whiteouts, opaqueDirs: walk.opaqueDirs, files: walk.files.paths(), results, read: read!, uncompressedBytes: walk.uncompressedBytes, capturedBytes: walk.capturedBytes };
}

/** The in-process LayerScanning: scanLayerBytes with fixed tuning. */
export function inProcessScanning(tuning: LayerScanTuning = {}): LayerScanning {
  return { scan: (req) => scanLayerBytes(req, tuning) };
}

/** A reader that counts the bytes it returns (what a partial read downloaded, whether it finished or not). */
function countingReader(r: RangeReader, add: (n: number) => void): RangeReader {
  return { read: async (start, end, signal) => {
    const b = await r.read(start, end, signal);
    add(b.length);
    return b;
  } };
}

/** Where layer bytes come from: a registry, an OCI layout, an archive. */
export interface LayerSource {
  /** The layer's blob (compressed, as the descriptor describes it). */
  open(layer: LayerDescriptor, signal?: AbortSignal): Promise<Readable>;
  /** True when the stream already checks digest and size itself (the registry client does). */
  readonly verifiesDigests: boolean;
  /**
   * Byte ranges of the layer's blob, for partial reads of layers with a table of contents; absent when the
   * source cannot serve ranges (then every layer is read in full).
   */
  ranges?(layer: LayerDescriptor): RangeReader;
  /**
   * SOCI zTOCs of the image's gzip layers among `layers` (tables of contents kept in a SOCI index outside the
   * image manifest; see sources/soci.ts): by layer digest, the zTOC's verified bytes or why the index could
   * not be used. Layers it does not name have none. Asked once per index call, for the layers to scan.
   */
  soci?(layers: readonly LayerDescriptor[], signal?: AbortSignal): Promise<Map<string, LayerSoci>>;
}

/** How one layer was read in one index call. */
export interface LayerRead {
  digest: string;
  /** partial: only the scanners' files, by byte ranges, through the layer's table of contents. */
  mode: "full" | "partial";
  /** The table of contents format, for partial reads and for full reads that fell back from one. */
  toc?: TocFormat;
  /** Compressed bytes downloaded for it (a fallback counts the attempt and the full read). */
  bytes: number;
  /** Partial reads: range requests for file content (the table's own not counted). */
  requests?: number;
  /** Why a layer with a table of contents was read in full. */
  fallback?: string;
}

export interface LayerScanRequest {
  layer: LayerDescriptor;
  /** The scanners that have no result for this layer yet. */
  scanners: readonly Scanner[];
  source: LayerSource;
  signal: AbortSignal;
  /**
   * The bytes of wanted files the whole scan may hold (its layers are walked at once): counted where the walk
   * runs in this process; a worker process is bounded by its own memory limit instead.
   */
  capture?: CaptureBudget;
}

/** One layer's scan: what the store keeps for it, and how it was read. */
export interface ScannedLayer {
  whiteouts: string[];
  opaqueDirs: string[];
  /** Every captured path (for file ownership). */
  files: string[];
  results: Array<{ scanner: ScannerInfo; output: ScanOutput }>;
  read: LayerRead;
  uncompressedBytes: number;
  /** Bytes of the wanted files the walk held (for a scan's budget kept outside the walk). */
  capturedBytes: number;
}
