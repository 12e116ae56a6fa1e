// A partial layer walk: the table of contents stands in for the tar headers. Every entry goes through the
// same EntrySelector as the tar walk, in archive order; only the files it keeps or pushes to a scanner's sink
// are fetched, by byte ranges, decompressed (zstd frames or gzip members, never past their stated sizes; SOCI:
// gzip spans inflated from their checkpoints, each span's bytes checked first) and checked against the digests
// the table gives; then the actions are applied in archive order, so the scanners see exactly what a full
// read would give them.
//
// Files kept whole (package databases, release files, metadata) are fetched whole, every one in the first
// round. Files pushed to a sink (executables, for the Go and Rust scanners) are fed piece by piece in order,
// each piece checked against its own digest before the scanner sees it, in windows that double (the first
// piece, then up to 1 MiB, 2 MiB, ...) until the scanners say they have enough or the file ends; pieces
// wholly before the offset the scanners still need (FileSink.next: past an ELF's code, to its writable data
// and what follows its loaded part) are not fetched. The first round also fetches each such file's last
// pieces (tailBytes): where an ELF keeps its section headers, and beside the next file's first piece in the
// blob, so both come in one request. A file that is not ELF costs its first piece and its last ones.
import { createHash } from "node:crypto";
import type { Scanner } from "../../model/scanner.js";
import { applyLink, EntrySelector, openConsumer, type EntryAction, type EntryHeader, type OpenConsumer } from "../entries.js";
import { CapturedLayerFiles } from "../files.js";
import { DEFAULT_WALK_LIMITS, type LayerWalk, type WalkLimits } from "../walk.js";
import { TocError } from "./errors.js";
import { decodeGzipPieces, decodePieces } from "./frames.js";
import { coalesce, DEFAULT_RANGE_TUNING, fetchRanges, type Range, type RangeTuning } from "./ranges.js";
import type { RangeReader, TableOfContents, TocChunk, TocContent, TocEntry } from "./types.js";

export interface TocWalkTuning extends RangeTuning {
  /** Compressed bytes fetched in one round at most (memory held at once), beyond the first file of the round. */
  roundBytes: number;
  /** A partial read that could fetch more than this fraction of the blob is not tried: the full read is as cheap. */
  maxFraction: number;
  /** The largest window of pieces fetched at once for a file a scanner reads as a stream. */
  maxWindow: number;
  /**
   * A file a scanner reads as a stream also has its last pieces, up to this many compressed bytes, fetched
   * in the first round with its first piece (0: never). An ELF file's section headers are at its end, and
   * the Rust scanner reads them: fetched in the first round, a file's end and the next file's first piece
   * are neighbours in the blob and go in one request, instead of one request each in two rounds.
   */
  tailBytes: number;
}

export const DEFAULT_TOC_WALK_TUNING: TocWalkTuning = { ...DEFAULT_RANGE_TUNING, roundBytes: 64 * 1024 * 1024, maxFraction: 0.8, maxWindow: 16 * 1024 * 1024, tailBytes: 32 * 1024 };

export interface TocWalkOptions {
  digest: string;
  /** The blob's size (the descriptor's). */
  size: number;
  scanners: readonly Scanner[];
  limits?: Partial<WalkLimits>;
  tuning?: Partial<TocWalkTuning>;
  signal?: AbortSignal;
}

export interface TocWalk extends LayerWalk {
  /** Range requests made for file content (the table's own request not counted). */
  requests: number;
}

const HEADER_TYPES: Record<TocEntry["type"], string> = { file: "file", link: "link", symlink: "symlink", directory: "directory", other: "other" };

/** zstd's (and deflate's) worst case is a few bytes per block; more compressed bytes than this for a file is a lie. */
function maxCompressed(size: number, pieces: number): number {
  return size + Math.ceil(size / 128) + 64 * pieces + 4096;
}

interface Capture {
  action: Extract<EntryAction, { kind: "capture" }>;
  content?: TocContent;
  data?: Buffer;
}

interface Consume {
  path: string;
  consumer: OpenConsumer;
  content: TocContent;
  /** Index of the next piece to feed. */
  next: number;
  window: number;
  /** The file's last pieces, from piece `from` on, fetched ahead (compressed; the blob's bytes from `base`). */
  ahead?: { from: number; base: number; bytes: Buffer };
  /** The scanners have all they need, or the file ended: nothing more is kept for it. */
  done?: boolean;
}

export async function walkToc(toc: TableOfContents, reader: RangeReader, opts: TocWalkOptions): Promise<TocWalk> {
  const selector = new EntrySelector(opts.digest, opts.scanners, { ...DEFAULT_WALK_LIMITS, ...opts.limits });
  try {
    return await walkTocWith(selector, toc, reader, opts);
  } catch (e) {
    // The full read that follows counts the layer's files again.
    selector.refund();
    throw e;
  }
}

async function walkTocWith(selector: EntrySelector, toc: TableOfContents, reader: RangeReader, opts: TocWalkOptions): Promise<TocWalk> {
  const layer = opts.digest;
  const limits = { ...DEFAULT_WALK_LIMITS, ...opts.limits };
  const tuning = { ...DEFAULT_TOC_WALK_TUNING, ...opts.tuning };

  // Decide every entry from the table, in archive order, as the tar walk would from the headers.
  const steps: Array<{ action: EntryAction; capture?: Capture; consumer?: OpenConsumer }> = [];
  const captures: Capture[] = [];
  const consumes: Consume[] = [];
  // Every range the files could need (SOCI's files share spans: their union, not their sum).
  const needed: Range[] = [];
  const header: EntryHeader = { name: "", type: "", size: 0, mode: 0, linkname: null };
  for (const e of toc.entries) {
    header.name = e.name;
    header.type = HEADER_TYPES[e.type];
    header.size = e.size;
    header.mode = e.mode;
    header.linkname = e.linkname;
    const action = selector.select(header);
    if (!action) continue;
    if (action.kind === "capture") {
      const c: Capture = { action, ...(e.content ? { content: e.content } : { data: Buffer.alloc(0) }) };
      if (e.content) {
        checkContent(layer, toc, e, e.content);
        needed.push({ start: e.content.offset, end: e.content.end });
        captures.push(c);
      }
      steps.push({ action, capture: c });
    } else if (action.kind === "consume") {
      const consumer = openConsumer(layer, action);
      if (!consumer) continue;
      if (e.content) {
        checkContent(layer, toc, e, e.content);
        needed.push({ start: e.content.offset, end: e.content.end });
        consumes.push({ path: action.path, consumer, content: e.content, next: 0, window: 0 });
      }
      steps.push({ action, consumer });
    } else {
      steps.push({ action });
    }
  }
  const upperBound = coalesce(needed, { maxGap: 0, maxRequest: Number.MAX_SAFE_INTEGER }).reduce((n, r) => n + r.end - r.start, 0);
  if (upperBound > tuning.maxFraction * opts.size) {
    throw new TocError(layer, `the files the scanners read could take ${upperBound} of the blob's ${opts.size} bytes: read in full instead`);
  }

  let fetched = 0;
  let requests = 0;
  let uncompressed = 0;
  // Rounds: every file kept whole and the next window of every stream still open, up to roundBytes.
  let waiting = captures.slice();
  let open = consumes;
  let first = true;
  // Compressed bytes of files' ends fetched ahead and not yet fed: they count against every round's budget.
  let aheadBytes = 0;
  const dropAhead = (s: Consume) => {
    if (s.ahead) aheadBytes -= s.ahead.bytes.length;
    s.ahead = undefined;
  };
  const finished = (s: Consume) => {
    s.done = true;
    dropAhead(s);
  };
  while (waiting.length || open.length) {
    opts.signal?.throwIfAborted();
    // Each job's range; none for a job whose pieces the table's decoder holds already (SOCI's decoded spans).
    const ranges: Array<Range | undefined> = [];
    const jobs: Array<{ capture: Capture } | { consume: Consume; pieces: TocChunk[]; ahead?: boolean } | { tail: Consume; from: number; start: number; end: number }> = [];
    let budget = tuning.roundBytes - aheadBytes;
    const fits = (n: number) => jobs.length === 0 || n <= budget || n === 0;
    const laterCaptures: Capture[] = [];
    for (const c of waiting) {
      const held = toc.holds?.(c.content!.chunks) ?? false;
      const n = held ? 0 : c.content!.end - c.content!.offset;
      if (!fits(n)) {
        laterCaptures.push(c);
        continue;
      }
      budget -= n;
      ranges.push(held ? undefined : { start: c.content!.offset, end: c.content!.end });
      jobs.push({ capture: c });
    }
    const laterStreams: Consume[] = [];
    for (const s of open) {
      // Pieces wholly before what the scanners still need are never fetched.
      const need = s.consumer.next();
      const chunks = s.content.chunks;
      while (s.next < chunks.length && chunks[s.next]!.at + chunks[s.next]!.size <= need) s.next++;
      if (s.next >= chunks.length) {
        finished(s);
        continue;
      }
      if (s.ahead && s.next >= s.ahead.from) {
        // The file's end, fetched ahead: fed from what is held.
        ranges.push(undefined);
        jobs.push({ consume: s, pieces: chunks.slice(s.next), ahead: true });
        continue;
      }
      // The pieces the table's decoder still holds, as far as they go; else the next window to fetch.
      const pieces: TocChunk[] = [];
      while (s.next + pieces.length < chunks.length && pieces.length < 64 && toc.holds?.([chunks[s.next + pieces.length]!])) pieces.push(chunks[s.next + pieces.length]!);
      const held = pieces.length > 0;
      if (!held) pieces.push(...windowOf(s, tuning.maxWindow, (c, i) => (s.ahead !== undefined && i >= s.ahead.from) || (toc.holds?.([c], false) ?? false)));
      const n = held ? 0 : pieces[pieces.length - 1]!.end - pieces[0]!.offset;
      if (!fits(n)) {
        laterStreams.push(s);
        continue;
      }
      budget -= n;
      ranges.push(held ? undefined : { start: pieces[0]!.offset, end: pieces[pieces.length - 1]!.end });
      jobs.push({ consume: s, pieces });
      // First round: the file's last pieces too (see tailBytes); not for a table whose decoder holds pieces.
      const tail = first && !held && !toc.decode ? tailOf(chunks, s.next + pieces.length, tuning.tailBytes) : undefined;
      if (tail !== undefined && fits(chunks[chunks.length - 1]!.end - chunks[tail]!.offset)) {
        const range = { start: chunks[tail]!.offset, end: chunks[chunks.length - 1]!.end };
        budget -= range.end - range.start;
        ranges.push(range);
        jobs.push({ tail: s, from: tail, ...range });
      }
    }
    first = false;
    const wanted = ranges.flatMap((r, j) => (r ? [j] : []));
    waiting = laterCaptures;
    open = laterStreams;
    const run = async (j: number, bytes: Buffer): Promise<void> => {
      const job = jobs[j]!;
      if ("tail" in job) {
        // A file's end, fetched ahead: kept (compressed) for the round that reaches it, unless its first
        // piece (decoded before it, in this round) was all the scanners needed.
        if (job.tail.done) return;
        job.tail.ahead = { from: job.from, base: job.start, bytes: Buffer.from(bytes) };
        aheadBytes += bytes.length;
        return;
      }
      if ("capture" in job) {
        const { action, content } = job.capture;
        const data = await decoded(toc, layer, action.path, bytes, content!.offset, content!.chunks, limits.maxZstdWindow);
        checkDigest(layer, action.path, data, content!.digest);
        uncompressed += data.length;
        job.capture.data = data;
        return;
      }
      const s = job.consume;
      if (job.ahead) {
        const a = s.ahead!;
        bytes = a.bytes.subarray(job.pieces[0]!.offset - a.base);
        dropAhead(s);
      }
      // The window's pieces are whole frames back to back: one decoder for all, then each piece checked
      // against its own digest before the scanner sees it.
      const first = job.pieces[0]!;
      const last = job.pieces[job.pieces.length - 1]!;
      const span = last.at + last.size - first.at;
      const what = `${s.path} (bytes ${first.at}-${first.at + span})`;
      const data = await decoded(toc, layer, what, bytes, first.offset, job.pieces, limits.maxZstdWindow);
      if (data.length !== span) throw new TocError(layer, `${what}: the pieces are not contiguous`);
      uncompressed += data.length;
      let more = true;
      for (const p of job.pieces) {
        const piece = data.subarray(p.at - first.at, p.at - first.at + p.size);
        checkDigest(layer, `${s.path} (bytes ${p.at}-${p.at + p.size})`, piece, p.digest ?? s.content.digest);
        s.next++;
        more = s.consumer.write(piece, p.at);
        if (!more) break;
      }
      if (more && s.next < s.content.chunks.length) open.push(s);
      else finished(s);
    };
    let got: { fetched: number; requests: number };
    if (toc.decode) {
      // Decoded in blob order once the round is fetched, not files-then-streams: SOCI's files share spans,
      // which its decoder keeps a few of.
      const fetchedParts = await fetchRanges(reader, wanted.map((j) => ranges[j]!), tuning, opts.signal);
      const parts: Buffer[] = new Array<Buffer>(jobs.length).fill(Buffer.alloc(0));
      wanted.forEach((j, k) => (parts[j] = fetchedParts.parts[k]!));
      const startOf = (j: number) => { const job = jobs[j]!; return "capture" in job ? job.capture.content!.offset : "tail" in job ? job.start : job.pieces[0]!.offset; };
      for (const j of jobs.map((_, j) => j).sort((a, b) => startOf(a) - startOf(b))) await run(j, parts[j]!);
      got = fetchedParts;
    } else {
      // Every file decoded as its bytes arrive, while the round's other requests are under way; a file's
      // pieces are all in one job, so the order of the jobs does not matter.
      for (const [j, r] of ranges.entries()) if (!r) await run(j, Buffer.alloc(0));
      got = await fetchRanges(reader, wanted.map((j) => ranges[j]!), tuning, opts.signal, (k, part) => run(wanted[k]!, part));
    }
    fetched += got.fetched;
    requests += got.requests;
  }

  // Apply in archive order.
  const files = new CapturedLayerFiles(layer);
  for (const step of steps) {
    const a = step.action;
    if (a.kind === "symlink" || a.kind === "hardlink") applyLink(files, a);
    else if (a.kind === "capture") files.addFile(a.path, step.capture!.data!);
    else step.consumer!.finish(files);
  }
  return {
    digest: layer, files, whiteouts: selector.whiteouts, opaqueDirs: selector.opaqueDirs, compression: toc.format === "zstd:chunked" ? "zstd" : "gzip",
    compressedBytes: toc.fetchedBytes + fetched, uncompressedBytes: uncompressed, entries: selector.entries, capturedBytes: selector.capturedBytes, requests,
  };
}

/**
 * The next pieces of a stream: the first piece alone, then windows that double up to maxWindow compressed
 * bytes, ending before a piece the table's decoder holds already (`held`: the next round takes it from there).
 */
function windowOf(s: Consume, maxWindow: number, held: (c: TocChunk, i: number) => boolean): TocChunk[] {
  const chunks = s.content.chunks;
  const out = [chunks[s.next]!];
  let n = out[0]!.end - out[0]!.offset;
  for (let i = s.next + 1; i < chunks.length; i++) {
    const c = chunks[i]!;
    if (n + (c.end - c.offset) > s.window || held(c, i)) break;
    n += c.end - c.offset;
    out.push(c);
  }
  s.window = s.window === 0 ? 1024 * 1024 : Math.min(maxWindow, s.window * 2);
  return out;
}

/**
 * The first of a file's last pieces that together take at most `max` compressed bytes, when they start at or
 * after piece `after` (the pieces before it are fetched anyway); undefined when there are none.
 */
function tailOf(chunks: readonly TocChunk[], after: number, max: number): number | undefined {
  const end = chunks[chunks.length - 1]!.end;
  let from = chunks.length;
  while (from > after && end - chunks[from - 1]!.offset <= max) from--;
  return from < chunks.length ? from : undefined;
}

function checkContent(layer: string, toc: TableOfContents, e: TocEntry, c: TocContent): void {
  // A file without a content digest is read only through a decoder that checks the compressed bytes.
  if (!c.digest && !toc.decode) throw new TocError(layer, `the table of contents gives ${e.name} no digest`);
  if (c.end - c.offset > maxCompressed(e.size, c.chunks.length) + (c.slack ?? 0)) {
    throw new TocError(layer, `the table of contents gives ${e.name} ${c.end - c.offset} compressed bytes for ${e.size} bytes of content`);
  }
}

/** The pieces decoded (frames.ts); anything wrong is a TocError. */
async function decoded(toc: TableOfContents, layer: string, what: string, compressed: Buffer, base: number, pieces: readonly TocChunk[], maxWindow: number): Promise<Buffer> {
  try {
    if (toc.decode) return await toc.decode(compressed, base, pieces, `${what} in layer ${layer}`);
    if (toc.format === "estargz") return await decodeGzipPieces(compressed, base, pieces, `${what} in layer ${layer}`);
    return await decodePieces(compressed, base, pieces, `${what} in layer ${layer}`, maxWindow);
  } catch (e) {
    throw new TocError(layer, `${what}: ${(e as Error).message}`, { cause: e });
  }
}

function checkDigest(layer: string, what: string, data: Buffer, digest: string | undefined): void {
  // No digest: the table's decoder checked the compressed bytes (checkContent allows nothing else).
  if (digest === undefined) return;
  const got = `sha256:${createHash("sha256").update(data).digest("hex")}`;
  if (got !== digest) throw new TocError(layer, `${what}: content has digest ${got}, but the table of contents says ${digest}`);
}
