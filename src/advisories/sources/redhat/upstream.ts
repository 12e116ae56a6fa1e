// Red Hat's upstream: every CSAF VEX document in one archive (`archive_latest.txt` names the current
// `csaf_vex_YYYY-MM-DD.tar.zst`), and `changes.csv` / `deletions.csv` listing what changed or went away
// since, each document downloadable by its path. docs/advisories.md ("Red Hat") says how an update uses
// them. The archive is hundreds of MB compressed and several times that as JSON, so nothing here holds
// it in memory: it is downloaded to a temporary file (capped), decompressed as a stream (zstd window
// capped), walked as a tar stream, and each document is parsed and stored as it arrives, in batches,
// inside the one transaction of the operation.
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createHash } from "node:crypto";
import * as tar from "tar-stream";
import type { AdvisoryStore, Operation, OperationFile, SourceKind } from "../../../store/advisory-types.js";
import { AdvisoryFetchError, downloadToFile, fetchFile, fetchText, parseFingerprint, type Fingerprint } from "../../http.js";
import type { SelfUpdateContext, SelfUpdateResult } from "../../source.js";
import { boundedZstdDecoder, DEFAULT_MAX_ZSTD_WINDOW } from "../../../layers/zstd.js";
import { GiB, MiB, SIZE_CAPS } from "../../input.js";
import { parse } from "./index.js";
import { DEFAULT_BATCH_LIMITS, DocumentBatch, type BatchLimits } from "../../batch.js";
import { PortcullisError } from "../../../errors.js";

export const REDHAT_VEX = "https://security.access.redhat.com/data/csaf/v2/vex/";

/** The fingerprint key under which an operation keeps which archive it grew from and since when it is current. */
export const STATE_KEY = "redhat:state";

export interface RedhatLimits extends BatchLimits {
  /** The compressed archive, on disk. */
  archiveBytes: number;
  /** The archive decompressed (streamed: this bounds work and time, not memory). */
  decompressedBytes: number;
  /** Entries in the archive. */
  entries: number;
  /** One document (the parser's cap): a larger one is a skipped record. */
  documentBytes: number;
  /** Documents fetched one by one after the archive; more than this and the archive is read again. */
  delta: number;
  /** changes.csv and deletions.csv each. */
  csvBytes: number;
  /** Largest zstd window a frame may declare. */
  zstdWindow: number;
}

export const DEFAULT_REDHAT_LIMITS: RedhatLimits = {
  archiveBytes: 4 * GiB,
  decompressedBytes: 64 * GiB,
  entries: 1_000_000,
  documentBytes: SIZE_CAPS.other,
  delta: 20_000,
  csvBytes: 64 * MiB,
  zstdWindow: DEFAULT_MAX_ZSTD_WINDOW,
  ...DEFAULT_BATCH_LIMITS,
};

export interface RedhatSourceInfo {
  name: string;
  kind: SourceKind;
  parserVersion: string;
  licence: string;
  attribution: string;
}

export interface RedhatUpdateOptions extends SelfUpdateContext {
  limits?: Partial<RedhatLimits>;
  /** Where the temporary download goes (default: the system's temporary directory). */
  tmpDir?: string;
  /** Documents fetched at once after the archive. */
  concurrency?: number;
}

interface State {
  /** The archive the chain of operations grew from. */
  archive: string;
  /** changes.csv / deletions.csv rows at or after this instant are what a next update fetches. */
  since: string;
}

const ARCHIVE_NAME = /^csaf_vex_(\d{4}-\d{2}-\d{2})\.tar\.zst$/;
/** What a document path looks like: it becomes a URL, so nothing else is accepted. */
export const DOCUMENT_PATH = /^\d{4}\/cve-\d{4}-\d{4,}\.json$/;
/** How far back the next update looks before the newest change it saw (a row written late, a clock skew). */
const OVERLAP_MS = 60 * 60 * 1000;

export class RedhatUpstreamError extends PortcullisError {
  readonly domain = "advisory";
  override name = "RedhatUpstreamError";
  readonly code = "REDHAT_UPSTREAM";
}

/**
 * Updates the Red Hat source: a full operation from the archive `archive_latest.txt` names (the first
 * time, when that archive changes, after a parser change, or when more documents changed than
 * `limits.delta`), else an incremental operation on top of the latest one with the documents
 * `changes.csv` and `deletions.csv` list since it. Either way the documents changed or deleted since
 * the archive's date are applied in the same operation, so it is current, not a week old.
 */
export async function updateRedhat(store: AdvisoryStore, source: RedhatSourceInfo, o: RedhatUpdateOptions = {}): Promise<SelfUpdateResult> {
  const limits = { ...DEFAULT_REDHAT_LIMITS, ...o.limits };
  const base = o.mirror ? `${o.mirror.replace(/\/+$/, "")}/` : REDHAT_VEX;
  const url = (p: string) => `${base}${p}`;
  const latest = await store.latestOperation(source.name);
  const state = readState(latest);
  const pointer = (await fetchText(url("archive_latest.txt"), o)).trim();
  const m = ARCHIVE_NAME.exec(pointer);
  if (!m) throw new RedhatUpstreamError(`${url("archive_latest.txt")} names ${JSON.stringify(pointer.slice(0, 200))}, not an archive csaf_vex_YYYY-MM-DD.tar.zst`);
  const archiveDate = Date.parse(`${m[1]}T00:00:00Z`);
  if (!Number.isFinite(archiveDate)) throw new RedhatUpstreamError(`${url("archive_latest.txt")} names ${pointer}, whose date is not a date`);
  let incremental = Boolean(latest && state && latest.streamed && latest.parserVersion === source.parserVersion && state.archive === pointer);
  let cutoff = incremental ? Date.parse(state!.since) : archiveDate;
  const previous = (u: string) => (incremental ? parseFingerprint(latest!.fingerprint[u]) : undefined);

  let downloaded = 0;
  const readCsv = async (name: string): Promise<{ rows: CsvRow[]; fingerprint?: Fingerprint; notModified: boolean }> => {
    const got = await fetchFile({ url: url(name), maxBytes: limits.csvBytes }, previous(url(name)), o);
    if (got.notModified) return { rows: [], notModified: true };
    if (got.missing) throw new Error("unreachable: not optional");
    downloaded += got.bytes.length;
    return { rows: parseChangeList(got.bytes.toString("utf8"), name), fingerprint: got.fingerprint, notModified: false };
  };
  const changes = await readCsv("changes.csv");
  const deletions = await readCsv("deletions.csv");
  if (incremental && changes.notModified && deletions.notModified) {
    // The data is as fresh as this check (policies' maxDatabaseAge, the age metric).
    await store.markChecked(latest!.ref);
    return { status: "unchanged", operation: latest, downloaded, files: latest!.fileCount };
  }
  let delta = since(changes.rows, deletions.rows, cutoff);
  if (incremental && delta.changed.length > limits.delta) {
    o.log?.(`${source.name}: ${delta.changed.length} documents changed since ${new Date(cutoff).toISOString()}, more than ${limits.delta}: reading the archive again`);
    incremental = false;
    cutoff = archiveDate;
    delta = since(changes.rows, deletions.rows, cutoff);
  }
  if (!incremental && (changes.notModified || deletions.notModified)) {
    throw new RedhatUpstreamError("changes.csv or deletions.csv answered 304 to an update that did not ask conditionally");
  }
  if (delta.changed.length > limits.delta) {
    throw new RedhatUpstreamError(`${delta.changed.length} documents changed since the archive ${pointer} was built, more than the ${limits.delta} fetched one by one: the archive is not being rebuilt`);
  }
  let newest = cutoff;
  for (const r of [...changes.rows, ...deletions.rows]) newest = Math.max(newest, r.at);
  const nextState: State = { archive: pointer, since: new Date(Math.max(cutoff, newest - OVERLAP_MS)).toISOString() };

  const tmp = await mkdtemp(join(o.tmpDir ?? tmpdir(), "portcullis-redhat-"));
  try {
    // Network first, onto disk: the store's transaction is not held open across downloads.
    const archiveUrl = url(pointer);
    const fingerprint: Record<string, string> = { [STATE_KEY]: JSON.stringify(nextState) };
    const retrievedAt = new Date().toISOString();
    if (!incremental) {
      const got = await downloadToFile(archiveUrl, join(tmp, "archive.tar.zst"), limits.archiveBytes, undefined, o);
      if (got.notModified) throw new RedhatUpstreamError(`${archiveUrl} answered 304 to an unconditional GET`);
      downloaded += got.bytes;
      fingerprint[archiveUrl] = JSON.stringify(got.fingerprint);
    } else {
      fingerprint[archiveUrl] = latest!.fingerprint[archiveUrl] ?? "{}";
    }
    fingerprint[url("changes.csv")] = changes.notModified ? latest!.fingerprint[url("changes.csv")] ?? "{}" : JSON.stringify(changes.fingerprint ?? {});
    fingerprint[url("deletions.csv")] = deletions.notModified ? latest!.fingerprint[url("deletions.csv")] ?? "{}" : JSON.stringify(deletions.fingerprint ?? {});
    const fetched = await fetchDocuments(delta.changed, url, join(tmp, "documents"), limits, o);
    downloaded += fetched.bytes;
    // A document listed as changed but gone (404) was deleted between the two lists being written.
    const gone = [...delta.deleted, ...fetched.missing];
    for (const p of fetched.missing) o.log?.(`${source.name}: ${p} is listed in changes.csv but not served (404): treated as deleted`);

    const rec = await store.recordStreamedOperation(
      {
        source: source.name, kind: source.kind, origin: "update", parserVersion: source.parserVersion, fingerprint,
        licence: source.licence, attribution: source.attribution, base: incremental ? latest : undefined,
      },
      async (w) => {
        const batch = new DocumentBatch(w, parse, limits, o.signal);
        const add = (path: string, bytes: Buffer) => batch.add(documentFile(path, bytes, url, retrievedAt), bytes);
        if (!incremental) {
          const skip = new Set([...delta.changed, ...gone]);
          await walkArchive(join(tmp, "archive.tar.zst"), pointer, limits, skip, batch, add);
        }
        await w.drop(gone);
        for (const d of fetched.files) {
          const bytes = await readFile(d.file);
          await add(d.path, bytes);
        }
        await batch.flush();
      },
    );
    if (rec.unchanged) await store.markChecked(rec.operation.ref);
    return { status: rec.unchanged ? "unchanged" : "updated", operation: rec.operation, downloaded, files: rec.operation.fileCount };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function readState(op: Operation | undefined): State | undefined {
  const raw = op?.fingerprint[STATE_KEY];
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as Partial<State>;
    if (typeof s.archive === "string" && typeof s.since === "string" && Number.isFinite(Date.parse(s.since))) return { archive: s.archive, since: s.since };
  } catch {
    // An unreadable state starts over from the archive.
  }
  return undefined;
}

export interface CsvRow {
  path: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/**
 * Reads `changes.csv` / `deletions.csv`: one `"YYYY/cve-YYYY-N.json","2025-12-10T10:00:00+00:00"` row
 * per document. A path that is not a document path or a time that is not one is an error naming the
 * line: the path becomes a URL.
 */
export function parseChangeList(text: string, name: string): CsvRow[] {
  const rows: CsvRow[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    const m = /^"?([^",]*)"?,"?([^",]*)"?$/.exec(line.trim());
    if (!m) throw new RedhatUpstreamError(`${name} line ${i + 1} is not two fields "path","time": ${JSON.stringify(line.slice(0, 200))}`);
    const [, path, time] = m as unknown as [string, string, string];
    if (!DOCUMENT_PATH.test(path)) throw new RedhatUpstreamError(`${name} line ${i + 1} names ${JSON.stringify(path.slice(0, 200))}, which is not a document path (YYYY/cve-YYYY-N.json)`);
    const at = Date.parse(time);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(time) || !Number.isFinite(at)) throw new RedhatUpstreamError(`${name} line ${i + 1} has the time ${JSON.stringify(time.slice(0, 100))}, which is not an RFC 3339 time`);
    rows.push({ path, at });
  }
  return rows;
}

/** The documents changed and deleted at or after `cutoff`; for a path in both lists the later event wins. */
export function since(changes: readonly CsvRow[], deletions: readonly CsvRow[], cutoff: number): { changed: string[]; deleted: string[] } {
  const last = new Map<string, { at: number; deleted: boolean }>();
  const note = (r: CsvRow, deleted: boolean) => {
    if (r.at < cutoff) return;
    const prev = last.get(r.path);
    if (!prev || r.at > prev.at || (r.at === prev.at && !deleted)) last.set(r.path, { at: r.at, deleted });
  };
  for (const r of changes) note(r, false);
  for (const r of deletions) note(r, true);
  const changed: string[] = [];
  const deleted: string[] = [];
  for (const [p, e] of [...last].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) (e.deleted ? deleted : changed).push(p);
  return { changed, deleted };
}

/** Fetches each changed document onto disk, a few at a time; a 404 is reported as missing. */
async function fetchDocuments(paths: readonly string[], url: (p: string) => string, dir: string, limits: RedhatLimits, o: RedhatUpdateOptions): Promise<{ files: Array<{ path: string; file: string }>; missing: string[]; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const files: Array<{ path: string; file: string }> = [];
  const missing: string[] = [];
  let bytes = 0;
  const width = Math.max(1, o.concurrency ?? 4);
  for (let i = 0; i < paths.length; i += width) {
    const part = paths.slice(i, i + width);
    const got = await Promise.all(part.map((p) => fetchFile({ url: url(p), maxBytes: limits.documentBytes, optional: true }, undefined, o)));
    for (const [j, g] of got.entries()) {
      const p = part[j]!;
      if (g.notModified) throw new AdvisoryFetchError("ADVISORY_HTTP_STATUS", `${url(p)} answered 304 to an unconditional GET`);
      if (g.missing) {
        missing.push(p);
        continue;
      }
      const file = join(dir, `${i + j}.json`);
      await writeFile(file, g.bytes);
      bytes += g.bytes.length;
      files.push({ path: p, file });
    }
  }
  return { files, missing, bytes };
}

/** The file entry of one Red Hat document: its digest, the URL it is published at, when it was read. */
function documentFile(path: string, bytes: Buffer, url: (p: string) => string, retrievedAt: string): OperationFile {
  return { path, sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length, url: url(path), retrievedAt };
}

/**
 * Streams the archive: zstd (window and output capped) → tar → each regular file at a document path,
 * parsed and queued; paths in `skip` (changed or deleted since the archive) are passed over, as the
 * delta replaces them. A truncated or corrupt archive throws, and the caller's transaction rolls back.
 */
async function walkArchive(file: string, name: string, limits: RedhatLimits, skip: ReadonlySet<string>, batch: DocumentBatch, add: (path: string, bytes: Buffer) => Promise<void>): Promise<void> {
  const extract = tar.extract();
  let entries = 0;
  let documents = 0;
  extract.on("entry", (header, stream, next) => {
    const done = (e?: unknown) => next(e as Error | undefined);
    const path = header.name.replace(/^\.\//, "");
    if (++entries > limits.entries) {
      stream.resume();
      return done(new RedhatUpstreamError(`${name} has more than ${limits.entries} entries`));
    }
    const drain = (after?: () => void) => {
      stream.on("end", () => {
        after?.();
        done();
      });
      stream.on("error", done);
      stream.resume();
    };
    if (header.type !== "file") return drain();
    if (!DOCUMENT_PATH.test(path)) {
      // index.txt, changes.csv and the like, if an archive carries them; anything else is named.
      return drain(() => {
        if (!/^[^/]*\.(txt|csv|asc|sha256)$/.test(path)) batch.skip({ file: name, record: path.slice(0, 256), reason: "not a document path (YYYY/cve-YYYY-N.json)" });
      });
    }
    documents++;
    if (skip.has(path)) return drain();
    if ((header.size ?? 0) > limits.documentBytes) {
      return drain(() => batch.skip({ file: path, record: path, reason: `${header.size} bytes, more than the ${limits.documentBytes} accepted for one document` }));
    }
    const parts: Buffer[] = [];
    let n = 0;
    stream.on("data", (c: Buffer) => {
      n += c.length;
      if (n > limits.documentBytes) stream.destroy(new RedhatUpstreamError(`${name}: ${path} is longer than its tar header says`));
      else parts.push(c);
    });
    stream.on("error", done);
    stream.on("end", () => {
      add(path, Buffer.concat(parts)).then(() => done(), done);
    });
  });
  try {
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), boundedZstdDecoder({ maxWindow: limits.zstdWindow, maxOutput: limits.decompressedBytes, name }), extract);
  } catch (e) {
    if (e instanceof RedhatUpstreamError || (e as { code?: string }).code?.startsWith("ZSTD_")) throw e;
    throw new RedhatUpstreamError(`${name} cannot be read as a tar archive: ${(e as Error).message}`);
  }
  if (!documents) throw new RedhatUpstreamError(`${name} holds no VEX document (YYYY/cve-YYYY-N.json)`);
}
