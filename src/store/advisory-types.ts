// The advisory side of the store: update operations of each source (raw files, parsed records, what
// changed), and the lookups the matcher and `portcullis db status` need. Same SQL on both backends.
import type { Advisory, AffectedPackage, Enrichment, SkippedRecord } from "../model/advisory.js";

export type SourceKind = "os" | "language" | "enrichment";

/** A raw upstream file as an operation keeps it. */
export interface OperationFile {
  /** Path relative to the source (`debian.json`, `v3.18/main.json`). */
  path: string;
  sha256: string;
  size: number;
  /** Where it was downloaded from; absent for imports. */
  url?: string;
  retrievedAt?: string;
}

/** What every operation says of itself, whole or streamed. */
export interface OperationHeader {
  source: string;
  kind: SourceKind;
  /** `update` (downloaded), `import PATH`, `bundle PATH`, `reparse`. */
  origin: string;
  parserVersion: string;
  /** What the upstream answered (ETag, Last-Modified) per URL, sent back by the next update. */
  fingerprint: Record<string, string>;
  licence?: string;
  attribution?: string;
}

export interface OperationInput extends OperationHeader {
  files: Array<OperationFile & { bytes: Buffer }>;
  advisories?: readonly Advisory[];
  enrichment?: Enrichment;
  skipped?: readonly SkippedRecord[];
}

export interface OperationStats {
  advisories: number;
  affected: number;
  enrichment: number;
  skipped: number;
  /** Records dropped because an earlier record of this operation had the same id. */
  duplicates: number;
  added: number;
  removed: number;
  modified: number;
  /** The ecosystems the operation's records speak about (`Debian:12`, `npm`), sorted. */
  ecosystems: string[];
  /** The first skipped records with their reasons (at most 100), for `db status` and logs. */
  skippedSample: SkippedRecord[];
}

export interface Operation {
  id: number;
  ref: string;
  source: string;
  kind: SourceKind;
  origin: string;
  parserVersion: string;
  fingerprint: Record<string, string>;
  /** The files, when the operation lists them inline; a streamed operation's are read with `operationFiles`. */
  files: OperationFile[];
  /** How many files the operation holds (`files.length`, or the rows of a streamed operation). */
  fileCount: number;
  /** True when the files are listed in their own table (`recordStreamedOperation`), not in `files`. */
  streamed: boolean;
  licence: string;
  attribution: string;
  stats: OperationStats;
  createdAt: string;
  /** The last time an update found the upstream unchanged (the data is as fresh as that), when later than createdAt. */
  checkedAt?: string;
}

/** The header of an operation written piece by piece (`recordStreamedOperation`). */
export interface StreamedOperationInput extends OperationHeader {
  /**
   * An operation of the same source whose files and records this one starts from (an incremental
   * update): its files are carried over, then `drop` and `add` change them. Without it the operation
   * starts empty (a full update).
   */
  base?: { id: number; ref: string };
}

/** Writes one streamed operation's parts, inside its transaction. */
export interface OperationWriter {
  /** Drops carried-over files at these paths and the records read from them (a deleted upstream document). */
  drop(paths: readonly string[]): Promise<void>;
  /**
   * Stores raw files (in chunks, now) and the records parsed from them. A path the operation already
   * holds is replaced, with the records read from it; a record id the operation already holds from
   * another file is replaced too (counted in `duplicates`).
   */
  add(files: ReadonlyArray<OperationFile & { bytes: Buffer }>, advisories: readonly Advisory[], skipped?: readonly SkippedRecord[]): Promise<void>;
  /** A stored raw file, read inside the transaction (the embedded store has one connection). */
  rawFile(sha256: string): Promise<Buffer | undefined>;
}

/** What recordOperation did: a new operation, or nothing (`unchanged`, the latest returned) because the files and parser are those of the latest. */
export interface RecordResult {
  unchanged: boolean;
  operation: Operation;
}

/** A candidate for the matcher: one affected package of a current record, with the record (without details). */
export interface Candidate {
  source: string;
  /** The operation the record belongs to (its source's latest). */
  operationRef: string;
  advisory: Omit<Advisory, "affected" | "details">;
  affected: AffectedPackage;
}

export interface PackageKey {
  ecosystem: string;
  name: string;
}

export interface EnrichmentRow {
  epss?: { epss: number; percentile: number; date: string };
  kev?: { dateAdded: string; dueDate?: string; ransomware?: string };
  cvss?: Advisory["cvss"];
}

export interface SourceStatus {
  source: string;
  kind: SourceKind;
  latest: Operation;
  operations: number;
  /** Current records and affected rows of the source. */
  advisories: number;
  affected: number;
}

export interface AdvisoryStore {
  /**
   * Records one operation whole, in one transaction under the source's lock: raw files, records (write
   * once, shared with earlier operations when unchanged), membership, enrichment, and the change set
   * against the source's previous operation. When the files (by digest) and the parser version equal
   * the latest operation's, nothing is written and `unchanged` is true.
   */
  recordOperation(input: OperationInput): Promise<RecordResult>;
  /**
   * Records one operation too large to hold in memory: `fill` adds its files and records in batches,
   * all in one transaction under the source's lock, so the operation is still there whole or not at
   * all (a throw from `fill` rolls everything back). The change set, counts and ecosystems are computed
   * in SQL at the end. When the files (by path and digest) and the parser version equal the latest
   * operation's, nothing is kept and `unchanged` is true.
   */
  recordStreamedOperation(input: StreamedOperationInput, fill: (w: OperationWriter) => Promise<void>): Promise<RecordResult>;
  /** An operation's files, inline or streamed, in path order. */
  operationFiles(operationRef: string): Promise<OperationFile[]>;
  latestOperation(source: string): Promise<Operation | undefined>;
  /** Newest first; `after`: only operations with a greater id. */
  operations(q?: { source?: string; limit?: number; after?: number }): Promise<Operation[]>;
  /** The affected rows of every source's latest operation for these packages; withdrawn records excluded. */
  candidates(keys: readonly PackageKey[]): Promise<Candidate[]>;
  /** The ecosystems (`Debian:12`, `npm`) the current records of all sources speak about: what has data at all. */
  ecosystems(): Promise<Set<string>>;
  /** A current record by source and id, whole. */
  advisory(source: string, id: string): Promise<Advisory | undefined>;
  /** The changes an operation made, and the package keys they touch (old and new rows), for re-matching. */
  changes(operationRef: string): Promise<{ changes: Array<{ id: string; change: "added" | "removed" | "modified" }>; packages: PackageKey[] }>;
  /** A raw file's bytes, checked against its digest. */
  rawFile(sha256: string): Promise<Buffer | undefined>;
  /** Enrichment by CVE id, merged over the enrichment sources. */
  enrichment(cves: readonly string[]): Promise<Map<string, EnrichmentRow>>;
  status(): Promise<SourceStatus[]>;
  /** Records that an update found the source's upstream unchanged since this operation (its data is current). */
  markChecked(operationRef: string): Promise<void>;
  /** Keeps the newest `keep` operations per source; deletes older ones, their orphaned records and raw files. */
  prune(keep?: number): Promise<{ operations: number; advisories: number; rawFiles: number }>;
}
