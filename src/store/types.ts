// The store, split as claircore splits it: what the indexer writes (Setter), what it reads (Querier), and
// the manifest-level operations the API needs. One interface, two backends (PostgreSQL, embedded).
import type { IndexReport } from "../model/index-report.js";
import type { ManifestToIndex } from "../model/image.js";
import type { ScannerInfo, ScanOutput } from "../model/scanner.js";
import type { StoredFindings } from "../model/findings.js";
import type { AdvisoryStore, PackageKey } from "./advisory-types.js";

export interface LayerWalkFacts {
  whiteouts: string[];
  opaqueDirs: string[];
  /** Paths of the files scanners captured from the layer (after link resolution). */
  files: string[];
}

export interface LayerArtifacts extends LayerWalkFacts {
  /** Outputs by scanner name, for the scanner versions asked about. */
  outputs: Map<string, ScanOutput>;
}

/** A coalesced package of a finished manifest, for AffectedManifests. */
export interface ManifestPackageRow {
  name: string;
  version: string;
  kind: string;
  package_db: string;
  dist_did?: string;
  dist_version_id?: string;
}

/** A manifest_package row with the digest of its manifest, for AffectedManifests. */
export interface ManifestPackageMatch extends ManifestPackageRow {
  manifest: string;
}

export interface Setter {
  registerScanners(scanners: readonly ScannerInfo[]): Promise<void>;
  /** Records the manifest and its layers, in order. Idempotent. */
  persistManifest(m: ManifestToIndex): Promise<void>;
  /** Records, in one transaction, that `layer` was walked and what each scanner found in it. */
  /**
   * Stores a walk of a layer and its scanners' results; answers the layer's walk facts as stored (the files
   * are the union of every walk's), so an indexer that scanned the layer just now need not read them back.
   */
  setLayerScanned(layer: string, facts: LayerWalkFacts, results: ReadonlyArray<{ scanner: ScannerInfo; output: ScanOutput }>): Promise<LayerWalkFacts>;
  /** An intermediate (or error) report, so readers see progress. */
  setIndexReport(report: IndexReport, scannerSet: string): Promise<void>;
  /** The final report and the coalesced package rows, in one transaction. */
  setIndexFinished(report: IndexReport, scannerSet: string, packages: readonly ManifestPackageRow[]): Promise<void>;
}

export interface Querier {
  /** Keys `layer\0scanner\0version` for the (layer, scanner version) pairs already scanned. */
  scannedLayers(layers: readonly string[], scanners: readonly ScannerInfo[]): Promise<Set<string>>;
  layerArtifacts(layers: readonly string[], scanners: readonly ScannerInfo[]): Promise<Map<string, LayerArtifacts>>;
  indexReport(manifest: string): Promise<{ report: IndexReport; scannerSet: string } | undefined>;
  /** The layer digests of a persisted manifest, bottom to top; undefined for an unknown manifest. */
  manifestLayers(manifest: string): Promise<string[] | undefined>;
  /** Digests of finished manifests that contain a package of this name (and version, when given). */
  affectedManifests(q: { name: string; version?: string; dist_did?: string }): Promise<string[]>;
  /**
   * The package rows (binary, and source since source rows are written) of manifests whose report is
   * IndexFinished: named one of `names`, or Python packages (package_db `python:`) whose PEP 503-normalised
   * name is one of `pypiNames`; at most `limit` rows (ask for one more than you take to tell a cut).
   */
  manifestPackages(q: { names: readonly string[]; pypiNames?: readonly string[] }, limit: number): Promise<ManifestPackageMatch[]>;
}

export interface ManifestAdmin {
  /** Deletes manifests (unknown digests are not an error) and layers no manifest uses any more. Returns the digests deleted. */
  deleteManifests(digests: readonly string[]): Promise<string[]>;
  /**
   * Runs `fn` holding the manifest's lock, across processes for PostgreSQL; a bounded wait, then an error with
   * code LOCK_TIMEOUT naming the manifest.
   */
  withManifestLock<T>(manifest: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Runs `fn` holding a layer's scan lock across processes, when the store has one (the CLI's folder store, the
   * SQL stores): two indexers of images that share a layer scan it once.
   */
  withLayerLock?<T>(layer: string, fn: () => Promise<T>): Promise<T>;
}

/** What matching found per manifest (../findings/), and the reverse index re-matching reads. */
export interface FindingsStore {
  /** Replaces the manifest's findings and (when given) the package keys it was looked up by, in one transaction. */
  put(manifest: string, findings: StoredFindings, keys?: readonly PackageKey[]): Promise<void>;
  get(manifest: string): Promise<StoredFindings | undefined>;
  /** Matched manifests looked up by any of these keys. */
  manifestsForKeys(keys: readonly PackageKey[]): Promise<string[]>;
  /** Finished manifests that were never matched (indexed while the store had no advisory data). */
  unmatched(): Promise<string[]>;
  /** Matched manifests whose coverage was not `supported` (new data for a new ecosystem may change them). */
  notCovered(): Promise<string[]>;
  /** The id of the last advisory operation whose changes re-matching applied (0: none yet). */
  cursor(): Promise<number>;
  setCursor(operationId: number): Promise<void>;
}

/** A tag of a watched repository, as the store keeps it. */
export interface WatchedTag {
  tag: string;
  /** The manifest (or index) digest the tag pointed to when last resolved. */
  digest?: string;
  /** The image's creation time from its config (RFC 3339), when it was read. */
  created?: string;
  /** When the digest was last resolved (RFC 3339). */
  checkedAt?: string;
}

/** What the ImageRepository controller learned about one repository (../controller/repositories.ts). */
export interface WatchedRepository {
  /** `namespace/name` of the ImageRepository. */
  key: string;
  /** The repository it watched (a change of spec.image starts over). */
  image: string;
  /** The last successful listing (RFC 3339). */
  listedAt?: string;
  tags: WatchedTag[];
}

export interface WatchedRepositoryStore {
  get(key: string): Promise<WatchedRepository | undefined>;
  /**
   * Records a listing in one transaction: the listing time, tags added or changed (`upsert`), and tags gone
   * (`remove`). A different `image` than the stored one drops every stored tag first.
   */
  record(key: string, image: string, change: { listedAt?: string; upsert?: readonly WatchedTag[]; remove?: readonly string[] }): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key the store has (to forget ImageRepositories deleted while no controller ran). */
  keys(): Promise<string[]>;
}

/**
 * The CLI store's cache of matches (./local.ts): a scan of an image already matched against the same
 * advisory data answers without opening the database that holds it.
 */
export interface MatchCache {
  /** The advisory data as last closed, known without opening the database; undefined when unknown. */
  state(): Promise<{ data: false } | { data: true; fingerprint: string } | undefined>;
  /** The fingerprint of the advisory data now (opens the database). */
  fingerprint(): Promise<string>;
  get<T>(manifest: string, key: string): Promise<T | undefined>;
  /** False when the value was too large to cache. */
  put(manifest: string, key: string, value: unknown): Promise<boolean>;
}

/**
 * What a registry reference resolved to (the CLI's folder store): a digest names immutable content, so the
 * image manifest chosen from it for a platform never changes, and a warm scan needs no GET to learn it.
 */
export interface ResolutionCache {
  get(resolvedDigest: string, platform: string): Promise<{ digest: string; platform?: string } | undefined>;
  put(resolvedDigest: string, platform: string, to: { digest: string; platform?: string }): Promise<void>;
}

export interface Store extends Setter, Querier, ManifestAdmin {
  readonly kind: "postgres" | "embedded";
  /** Only the CLI's folder store has one. */
  readonly matchCache?: MatchCache;
  /** Only the CLI's folder store has one. */
  readonly resolutions?: ResolutionCache;
  /** The advisory database (update operations, records, enrichment), in the same database. */
  readonly advisories: AdvisoryStore;
  readonly findings: FindingsStore;
  /** What watched repositories' listings found. */
  readonly repositories: WatchedRepositoryStore;
  /** Manifests waiting for an indexer process (SQL stores; serve uses it with PostgreSQL). */
  readonly jobs?: IndexJobStore;
  close(): Promise<void>;
}

export function scannedKey(layer: string, s: Pick<ScannerInfo, "name" | "version">): string {
  return `${layer}\0${s.name}\0${s.version}`;
}

/** The index job queue (./jobs.ts). */
export interface IndexJobStore {
  /** Asks for a manifest to be indexed: joins its queued or running job, or starts a finished one over. */
  enqueue(job: IndexJobInput): Promise<IndexJob>;
  get(manifest: string, scannerSet: string): Promise<IndexJob | undefined>;
  /**
   * The next job of this scanner set to run (priority first, then oldest), or one whose owner's lease expired;
   * counts an attempt. (During a rolling upgrade each version takes only the jobs its own controller asked for.)
   */
  claim(owner: string, leaseMs: number, scannerSet: string): Promise<IndexJob | undefined>;
  /** Renews the lease; false when the job is no longer this owner's (it expired and was taken). */
  heartbeat(id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** How the owner's attempt ended; false when the job is no longer this owner's. */
  finish(id: string, owner: string, outcome: IndexJobOutcome): Promise<boolean>;
  stats(): Promise<IndexJobQueueStats>;
  /** Deletes finished jobs older than a day. */
  prune(): Promise<number>;
}

export interface IndexJobInput {
  manifest: string;
  scannerSet: string;
  /** repository@digest, as the indexer fetches it. */
  reference: string;
  platform?: string;
  /** Whose pull secrets fetch it. */
  namespace: string;
  pullSecrets: string[];
  priority: boolean;
  maxAttempts: number;
}

export interface IndexJob extends Omit<IndexJobInput, "maxAttempts"> {
  id: string;
  state: "queued" | "running" | "done" | "failed";
  attempts: number;
  maxAttempts: number;
  notBefore: string;
  owner?: string;
  leaseExpires?: string;
  /** The last failure's code and message (failed; or queued again after a retryable one). */
  code?: string;
  message?: string;
  stats?: { layers: number; layersFetched: number; layersReused: number; bytesFetched: number; durationMs: number };
  created: string;
  updated: string;
}

export type IndexJobOutcome =
  | { state: "done"; stats: NonNullable<IndexJob["stats"]> }
  | { state: "failed"; code: string; message: string }
  /** Queued again after `afterMs` (the attempt counts). */
  | { state: "retry"; code: string; message: string; afterMs: number }
  /** Given back at once, the attempt not counted (the owner is stopping). */
  | { state: "release" };

export interface IndexJobQueueStats {
  queued: number;
  running: number;
  /** Finished jobs kept (a day). */
  done: number;
  failed: number;
  oldestQueuedMs: number;
}
