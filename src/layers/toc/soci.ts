// SOCI (AWS's Seekable OCI, awslabs/soci-snapshotter): a plain gzip layer is left as it is, and a separate
// artifact, the SOCI index, lists a zTOC per layer. A zTOC (a FlatBuffers document, schema `ztoc.fbs` of the
// SOCI specification, version 0.9) holds:
// - the layer's tar entries in archive order: name, type, mode, size, link target, and where the content
//   starts in the *uncompressed* tar stream (no digest of the content);
// - checkpoints of the gzip stream every span (4 MiB of uncompressed data by default), each where a deflate
//   block ends: compressed and uncompressed offsets, the leftover bits, and the 32 KiB window (the zinfo
//   blob: i32 count, i64 span size, then per checkpoint i64 in, i64 out, u8 bits, 32768 bytes of window,
//   all little-endian; version 1 blobs leave out the first checkpoint, which is then at byte 10, out 0);
// - the sha256 of each span's compressed bytes: span i runs from checkpoint i (the byte before it when it
//   has leftover bits) to checkpoint i + 1 (the last to the end of the blob).
//
// A file is read by fetching the spans that hold it and its tar header, checking each span's bytes against
// its digest, inflating each span from its checkpoint (checkpoint.ts), and cutting the file out. The tar
// header in the 512 bytes before the content must be a regular file of the zTOC's size and (when the name
// fits a ustar header) name, with a valid checksum: a zTOC that points a name at another entry's content is
// refused. What no partial read can check is in docs/partial-reads.md: the windows are not authenticated by
// the span digests (only the compressed bytes are), so a zTOC's author can make a span inflate to other bytes
// than a full read gives; the zTOC is trusted as far as the SOCI index that names it (src/indexer/sources/soci.ts).
import { createHash } from "node:crypto";
import { setImmediate as turn } from "node:timers/promises";
import { TURN_ENTRIES } from "./crfs.js";
import { WINDOW_SIZE, inflateFrom, type Checkpoint } from "./checkpoint.js";
import { TocError } from "./errors.js";
import { FlatTable } from "./flatbuffers.js";
import type { TableOfContents, TocChunk, TocEntry } from "./types.js";

export interface SociLimits {
  /** Largest zTOC accepted (a 1 GB layer's is about 9 MB: 32 KiB per 4 MiB span, and the file list). */
  maxZtocBytes: number;
  maxEntries: number;
  /** Largest span accepted, uncompressed (what one checkpoint's inflate may produce). */
  maxSpanBytes: number;
  /** Uncompressed spans kept between the files of one walk (several small files share a span). */
  spanCacheBytes: number;
}

export const DEFAULT_SOCI_LIMITS: SociLimits = { maxZtocBytes: 64 * 1024 * 1024, maxEntries: 2_000_000, maxSpanBytes: 64 * 1024 * 1024, spanCacheBytes: 32 * 1024 * 1024 };

const PACKED_CHECKPOINT = 8 + 8 + 1 + WINDOW_SIZE;
const ZINFO_HEADER = 4 + 8;
const TYPES: Record<string, TocEntry["type"]> = { reg: "file", dir: "directory", symlink: "symlink", hardlink: "link", char: "other", block: "other", fifo: "other" };

/** A zTOC as read here: its checkpoints and span digests, and its entries with their uncompressed offsets. */
export interface Ztoc {
  version: string;
  compressedSize: number;
  uncompressedSize: number;
  checkpoints: Checkpoint[];
  spanDigests: string[];
  files: Array<{ name: string; type: TocEntry["type"]; offset: number; size: number; mode: number; linkname: string | null }>;
}

/** Parses and checks a zTOC against the layer it is for; throws TocError naming what is wrong. */
export async function parseZtoc(layer: { digest: string; size: number }, bytes: Buffer, limits: SociLimits = DEFAULT_SOCI_LIMITS): Promise<Ztoc> {
  const bad = (why: string) => new TocError(layer.digest, `SOCI zTOC: ${why}`);
  if (bytes.length > limits.maxZtocBytes) throw bad(`${bytes.length} bytes, over the ${limits.maxZtocBytes}-byte limit`);
  try {
    const root = FlatTable.root(bytes, "zTOC");
    const version = root.string(0, 64) ?? "";
    if (!/^0\.9(\.\d+)?$/.test(version)) throw bad(`version ${JSON.stringify(version.slice(0, 20))} is not read (only 0.9)`);
    const compressedSize = root.int64(2, 0);
    const uncompressedSize = root.int64(3, 0);
    if (compressedSize !== layer.size) throw bad(`made for a blob of ${compressedSize} bytes, but the layer has ${layer.size}`);
    if (uncompressedSize < 1024) throw bad(`uncompressed size ${uncompressedSize} is not a tar's`);
    const info = root.table(5, "zTOC compression info");
    if (!info) throw bad("no compression info");
    const algorithm = info.int8(0, 1);
    if (algorithm !== 1) throw bad(`compression algorithm ${algorithm} is not gzip`);
    // Absent means the schema's default, 0 (flatc leaves defaults out): one span.
    const spans = info.int32(1, 0) + 1;
    const maxSpans = Math.floor(limits.maxZtocBytes / PACKED_CHECKPOINT) + 1;
    if (spans < 1 || spans > maxSpans) throw bad(`${spans} spans`);
    const n = info.vectorLength(2, maxSpans);
    if (n !== spans) throw bad(`${n} span digests for ${spans} spans`);
    const spanDigests: string[] = [];
    for (let i = 0; i < n; i++) {
      const d = info.stringAt(2, i, 80);
      if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw bad(`span digest ${i} ${JSON.stringify(d.slice(0, 80))} is not a sha256 digest`);
      spanDigests.push(d);
    }
    const blob = info.bytes(3, limits.maxZtocBytes);
    if (!blob) throw bad("no checkpoints");
    const checkpoints = parseCheckpoints(blob, spans, compressedSize, uncompressedSize, limits, bad);

    const toc = root.table(4, "zTOC file list");
    const count = toc ? toc.vectorLength(0, limits.maxEntries) : 0;
    const files: Ztoc["files"] = [];
    // Archive order: every entry with content starts after the previous one's content and its own header.
    let lastEnd = 0;
    for (let i = 0; i < count; i++) {
      if (i % TURN_ENTRIES === TURN_ENTRIES - 1) await turn();
      const m = toc!.tableAt(0, i, "zTOC file");
      const name = m.string(0, 4096);
      const rawType = m.string(1, 16) ?? "";
      const type = TYPES[rawType];
      if (!name) throw bad(`entry ${i} has no name`);
      if (!type) throw bad(`entry ${i} (${JSON.stringify(name.slice(0, 100))}) has type ${JSON.stringify(rawType)}`);
      const offset = m.int64(2, 0);
      const size = type === "file" ? m.int64(3, 0) : 0;
      const mode = m.int64(5, 0);
      if (size < 0 || mode < 0 || offset < 0) throw bad(`entry ${i} (${name.slice(0, 100)}) has a negative offset, size or mode`);
      if (type === "file" && size > 0) {
        if (offset < lastEnd + 512 || offset % 512 !== 0 || offset + size > uncompressedSize) throw bad(`file ${JSON.stringify(name.slice(0, 100))} at ${offset}+${size} is not after the previous content (${lastEnd}) and its own tar header, on a tar block, inside the ${uncompressedSize}-byte tar`);
        lastEnd = offset + size;
      }
      const linkname = type === "symlink" || type === "link" ? (m.string(4, 4096) ?? "") : null;
      files.push({ name, type, offset, size, mode, linkname });
    }
    return { version, compressedSize, uncompressedSize, checkpoints, spanDigests, files };
  } catch (e) {
    if (e instanceof TocError) throw e;
    throw bad((e as Error).message);
  }
}

function parseCheckpoints(blob: Buffer, spans: number, compressedSize: number, uncompressedSize: number, limits: SociLimits, bad: (why: string) => TocError): Checkpoint[] {
  if (blob.length < ZINFO_HEADER) throw bad("the checkpoint blob has no header");
  const count = blob.readInt32LE(0);
  if (count !== spans) throw bad(`${count} checkpoints for ${spans} spans`);
  const out: Checkpoint[] = [];
  let at = ZINFO_HEADER;
  if (blob.length === ZINFO_HEADER + count * PACKED_CHECKPOINT) {
    // version 2: every checkpoint written
  } else if (count > 0 && blob.length === ZINFO_HEADER + (count - 1) * PACKED_CHECKPOINT) {
    // version 1: the first checkpoint is implied, after a 10-byte gzip header
    out.push({ in: 10, out: 0, bits: 0, window: Buffer.alloc(0) });
  } else {
    throw bad(`a checkpoint blob of ${blob.length} bytes cannot hold ${count} checkpoints`);
  }
  while (out.length < count) {
    const cin = blob.readBigInt64LE(at);
    const cout = blob.readBigInt64LE(at + 8);
    if (cin < 0n || cout < 0n || cin > BigInt(Number.MAX_SAFE_INTEGER) || cout > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`checkpoint ${out.length} has offsets ${cin}/${cout}`);
    out.push({ in: Number(cin), out: Number(cout), bits: blob[at + 16]!, window: blob.subarray(at + 17, at + 17 + WINDOW_SIZE) });
    at += PACKED_CHECKPOINT;
  }
  for (let i = 0; i < out.length; i++) {
    const c = out[i]!;
    const prev = out[i - 1];
    if (c.bits > 7) throw bad(`checkpoint ${i} has ${c.bits} leftover bits`);
    if (i === 0 ? c.out !== 0 || c.bits !== 0 || c.in < 10 : c.in <= prev!.in || c.out <= prev!.out) throw bad(`checkpoint ${i} (${c.in}/${c.out}) is not after the one before it`);
    if (c.in >= compressedSize || c.out >= uncompressedSize) throw bad(`checkpoint ${i} (${c.in}/${c.out}) lies outside the blob or the tar`);
    const end = out[i + 1]?.out ?? uncompressedSize;
    if (end - c.out > limits.maxSpanBytes) throw bad(`span ${i} inflates to ${end - c.out} bytes, over the ${limits.maxSpanBytes}-byte limit`);
  }
  return out;
}

/** A piece of a file, as the SOCI decoder needs it: which spans, from where in the tar, and the tar header to check. */
interface SpanPiece {
  first: number;
  last: number;
  /** Offset in the tar of the first byte this piece inflates to (the tar header, for a file's first piece). */
  from: number;
  header?: { name: string; size: number };
}

/**
 * A parsed zTOC as the walk's TableOfContents: every entry, and every regular file's content as pieces of
 * whole spans (the first also holding its tar header), decoded by `decode` (span digests, checkpoints).
 */
export function sociToc(layer: { digest: string; size: number }, z: Ztoc, ztocBytes: number, limits: SociLimits = DEFAULT_SOCI_LIMITS): TableOfContents {
  const cps = z.checkpoints;
  const start = (i: number) => cps[i]!.in - (cps[i]!.bits ? 1 : 0);
  const end = (i: number) => (i + 1 < cps.length ? cps[i + 1]!.in : z.compressedSize);
  const outEnd = (i: number) => (i + 1 < cps.length ? cps[i + 1]!.out : z.uncompressedSize);
  const spanOf = (x: number) => {
    let lo = 0;
    let hi = cps.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (cps[mid]!.out <= x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const pieces = new Map<TocChunk, SpanPiece>();
  const entries: TocEntry[] = z.files.map((f) => {
    const e: TocEntry = { name: f.name, type: f.type, size: f.size, mode: f.mode, linkname: f.linkname };
    if (f.type !== "file" || f.size === 0) return e;
    const chunks: TocChunk[] = [];
    const fileEnd = f.offset + f.size;
    const a = spanOf(f.offset - 512);
    let s = spanOf(f.offset);
    const firstSize = Math.min(fileEnd, outEnd(s)) - f.offset;
    const first: TocChunk = { offset: start(a), end: end(s), at: 0, size: firstSize };
    pieces.set(first, { first: a, last: s, from: f.offset - 512, header: { name: f.name, size: f.size } });
    chunks.push(first);
    for (let at = firstSize; at < f.size; ) {
      s++;
      const size = Math.min(fileEnd, outEnd(s)) - (f.offset + at);
      const c: TocChunk = { offset: start(s), end: end(s), at, size };
      pieces.set(c, { first: s, last: s, from: f.offset + at });
      chunks.push(c);
      at += size;
    }
    const offset = chunks[0]!.offset;
    const last = chunks[chunks.length - 1]!.end;
    // The spans are the checkpoints' (checked against the blob): no bound of the file's size applies to them.
    e.content = { offset, end: last, chunks, slack: last - offset };
    return e;
  });

  // Spans inflated in this walk, most recently used last, up to spanCacheBytes; a span the walk was told is
  // held (holds()) is pinned until decoded, so the walk need not fetch it again.
  const cache = new Map<number, Buffer>();
  const pinned = new Map<number, number>();
  let cached = 0;
  const span = async (i: number, compressed: Buffer, base: number, what: string): Promise<Buffer> => {
    const hit = cache.get(i);
    if (hit) {
      const pins = pinned.get(i) ?? 0;
      if (pins > 1) pinned.set(i, pins - 1);
      else pinned.delete(i);
      cache.delete(i);
      cache.set(i, hit);
      return hit;
    }
    const bytes = compressed.subarray(start(i) - base, end(i) - base);
    if (start(i) < base || bytes.length !== end(i) - start(i)) throw new TocError(layer.digest, `${what}: span ${i} is cut short`);
    const got = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (got !== z.spanDigests[i]) throw new TocError(layer.digest, `${what}: span ${i} (bytes ${start(i)}-${end(i)}) has digest ${got}, but the zTOC says ${z.spanDigests[i]}`);
    const last = i === cps.length - 1;
    let data: Buffer;
    try {
      // The last span runs to the end of the stream: the tar's end blocks and padding follow its last file.
      data = await inflateFrom(cps[i]!, bytes, last ? { max: limits.maxSpanBytes } : { exact: outEnd(i) - cps[i]!.out, max: limits.maxSpanBytes });
    } catch (e) {
      throw new TocError(layer.digest, `${what}: span ${i}: ${(e as Error).message}`, { cause: e });
    }
    for (const [k, v] of cache) {
      if (cached + data.length <= limits.spanCacheBytes) break;
      if (pinned.has(k)) continue;
      cache.delete(k);
      cached -= v.length;
    }
    // Not kept when the pinned spans leave no room.
    if (cached + data.length > limits.spanCacheBytes) return data;
    cache.set(i, data);
    cached += data.length;
    return data;
  };
  const holds = (list: readonly TocChunk[], pin = true): boolean => {
    const spans: number[] = [];
    for (const p of list) {
      const sp = pieces.get(p);
      if (!sp) return false;
      for (let i = sp.first; i <= sp.last; i++) {
        if (!cache.has(i)) return false;
        spans.push(i);
      }
    }
    if (pin) for (const i of spans) pinned.set(i, (pinned.get(i) ?? 0) + 1);
    return true;
  };

  const decode = async (compressed: Buffer, base: number, list: readonly TocChunk[], what: string): Promise<Buffer> => {
    const out = Buffer.allocUnsafe(list.reduce((n, p) => n + p.size, 0));
    let at = 0;
    for (const p of list) {
      const sp = pieces.get(p);
      if (!sp) throw new TocError(layer.digest, `${what}: a piece the zTOC did not make`);
      const wantFrom = sp.from;
      const wantEnd = sp.from + (sp.header ? 512 : 0) + p.size;
      const parts: Buffer[] = [];
      for (let i = sp.first; i <= sp.last; i++) {
        const data = await span(i, compressed, base, what);
        const s0 = cps[i]!.out;
        if (s0 + data.length < Math.min(wantEnd, outEnd(i))) throw new TocError(layer.digest, `${what}: span ${i} inflates to ${data.length} bytes, short of the ${Math.min(wantEnd, outEnd(i)) - s0} it must hold`);
        parts.push(data.subarray(Math.max(0, wantFrom - s0), Math.min(data.length, wantEnd - s0)));
      }
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (bytes.length !== wantEnd - wantFrom) throw new TocError(layer.digest, `${what}: the spans give ${bytes.length} bytes, not ${wantEnd - wantFrom}`);
      if (sp.header) {
        const why = tarHeaderMismatch(bytes.subarray(0, 512), sp.header.name, sp.header.size);
        if (why) throw new TocError(layer.digest, `${what}: the tar header before the content the zTOC gives ${sp.header.name}: ${why}`);
      }
      bytes.copy(out, at, sp.header ? 512 : 0);
      at += p.size;
    }
    return out;
  };
  return { format: "soci", entries, fetchedBytes: ztocBytes, decode, holds };
}

/** Why `h` is not the ustar header of a regular file `name` of `size` bytes, or undefined when it is. */
export function tarHeaderMismatch(h: Buffer, name: string, size: number): string | undefined {
  if (h.length !== 512) return `${h.length} bytes`;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  const field = (a: number, b: number) => h.subarray(a, b).toString("latin1").replace(/\0.*$/s, "");
  const stored = Number.parseInt(field(148, 156).trim(), 8);
  if (stored !== sum) return "not a tar header (its checksum fails)";
  const type = h[156];
  if (type !== 0x30 && type !== 0 && type !== 0x37) return `an entry of type ${JSON.stringify(String.fromCharCode(type!))}, not a regular file`;
  let hsize: number;
  if (h[124]! & 0x80) {
    hsize = 0;
    for (let i = 125; i < 136; i++) hsize = hsize * 256 + h[i]!;
  } else {
    hsize = Number.parseInt(field(124, 136).trim() || "0", 8);
  }
  if (hsize !== size) return `a file of ${hsize} bytes, not ${size}`;
  // POSIX ustar has a name prefix; GNU's format ("ustar  \0") keeps other fields there.
  const ustar = h.subarray(257, 263).toString("latin1") === "ustar\0";
  const prefix = ustar ? field(345, 500) : "";
  const hname = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
  // A name a ustar header cannot hold (long, or not ASCII) comes from a PAX or GNU record before it.
  const fits = /^[\x20-\x7e]*$/.test(name) && name.length <= 100;
  if (hname !== name && fits) return `it names ${JSON.stringify(hname.slice(0, 120))}`;
  return undefined;
}
