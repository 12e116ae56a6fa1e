// zstd:chunked (containers/storage; written by podman, buildah and skopeo `--dest-compress-format
// zstd:chunked`): a zstd layer whose files are compressed in frames of their own, large files in several
// pieces cut where a rolling checksum says, and a table of contents (a CRFS-style JSON document, itself a zstd
// frame inside a skippable frame near the end) that lists every tar entry with the compressed range of its
// content, its size and its sha256. The layer descriptor's annotations say where the table is
// (`manifest-position`: offset:length:uncompressed length:type, type 1 = this JSON) and give the sha256 of
// its compressed bytes (`manifest-checksum`); the descriptor comes from the digest-verified image manifest,
// so a table whose bytes hash to the checksum is the one the image's author published.
import { createHash } from "node:crypto";
import { MAX_LAYER_ZSTD_WINDOW } from "../decompress.js";
import { checkZstdFrames, decompressInto } from "../zstd.js";
import { setImmediate as turn } from "node:timers/promises";
import { crfsEntries, ENTRY_TYPES, parseRawEntry, TURN_ENTRIES } from "./crfs.js";
import { TocError } from "./errors.js";
import type { RangeReader, TableOfContents, TocChunk, TocEntry } from "./types.js";

const PREFIXES = ["io.containers.zstd-chunked.", "io.github.containers.zstd-chunked."];

export interface ZstdChunkedLocator {
  offset: number;
  length: number;
  uncompressed: number;
  checksum: string;
}

export interface TocLimits {
  /** Largest table of contents accepted, uncompressed (a 100,000-file layer has a table of about 30 MB). */
  maxTocBytes: number;
  maxEntries: number;
}

export const DEFAULT_TOC_LIMITS: TocLimits = { maxTocBytes: 64 * 1024 * 1024, maxEntries: 2_000_000 };

function annotation(annotations: Record<string, string> | undefined, name: string): string | undefined {
  for (const p of PREFIXES) {
    const v = annotations?.[p + name];
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * Where a zstd:chunked layer's table of contents is, from its descriptor; undefined when the descriptor
 * says nothing of one. Throws TocError when the annotations are there but malformed.
 */
export function zstdChunkedLocator(layer: { digest: string; size: number; annotations?: Record<string, string> }, limits: TocLimits = DEFAULT_TOC_LIMITS): ZstdChunkedLocator | undefined {
  const position = annotation(layer.annotations, "manifest-position");
  const checksum = annotation(layer.annotations, "manifest-checksum");
  if (position === undefined && checksum === undefined) return undefined;
  if (position === undefined || checksum === undefined) throw new TocError(layer.digest, `zstd:chunked annotations incomplete: ${position === undefined ? "manifest-position" : "manifest-checksum"} is missing`);
  const m = /^(\d{1,15}):(\d{1,15}):(\d{1,15}):(\d{1,3})$/.exec(position);
  if (!m) throw new TocError(layer.digest, `zstd:chunked manifest-position ${JSON.stringify(position.slice(0, 80))} is not offset:length:uncompressed:type`);
  const [offset, length, uncompressed, type] = m.slice(1).map(Number) as [number, number, number, number];
  if (type !== 1) throw new TocError(layer.digest, `zstd:chunked table of contents of type ${type}; only type 1 (JSON) is read`);
  if (!/^sha256:[0-9a-f]{64}$/.test(checksum)) throw new TocError(layer.digest, `zstd:chunked manifest-checksum ${JSON.stringify(checksum.slice(0, 80))} is not a sha256 digest`);
  if (length === 0 || offset + length > layer.size) throw new TocError(layer.digest, `zstd:chunked table of contents at ${offset}+${length} lies outside the ${layer.size}-byte blob`);
  if (uncompressed > limits.maxTocBytes || length > limits.maxTocBytes) throw new TocError(layer.digest, `zstd:chunked table of contents of ${uncompressed} bytes is over the ${limits.maxTocBytes}-byte limit`);
  return { offset, length, uncompressed, checksum };
}

/**
 * Pieces of data, and pieces of zeros: skopeo 1.9 marks runs of zeros `zeros` but still writes them as a
 * (tiny) frame, so they are fetched and checked like any piece. A piece type without bytes in the blob would
 * need another reader: refused (the layer is read in full).
 */
const PIECE_TYPES = new Set(["", "zeros"]);

/**
 * Fetches the table of contents of a zstd:chunked layer, checks it against the descriptor's checksum, and
 * returns its entries with every range checked to lie inside the file data. Throws TocError for anything
 * wrong (the caller reads the layer in full).
 */
export async function readZstdChunkedToc(layer: string, at: ZstdChunkedLocator, reader: RangeReader, limits: TocLimits = DEFAULT_TOC_LIMITS, signal?: AbortSignal): Promise<TableOfContents> {
  const compressed = await reader.read(at.offset, at.offset + at.length, signal);
  const got = `sha256:${createHash("sha256").update(compressed).digest("hex")}`;
  if (got !== at.checksum) throw new TocError(layer, `zstd:chunked table of contents has digest ${got}, but the manifest says ${at.checksum}`);
  // Decoded in one call into a buffer of the size the manifest gives (at most maxTocBytes), once the frame
  // walker has checked the frames' structure and window: the streaming decoder took two to four times as long.
  // The buffer is zero-filled: fzstd does not say how much it wrote, and a table that decodes short then
  // ends in zeros, which JSON.parse refuses (never in bytes left from earlier allocations).
  const json = Buffer.alloc(at.uncompressed);
  try {
    checkZstdFrames(compressed, { maxWindow: MAX_LAYER_ZSTD_WINDOW, maxOutput: at.uncompressed, name: `the table of contents of layer ${layer}` });
    decompressInto(compressed, json);
  } catch (e) {
    throw new TocError(layer, `zstd:chunked table of contents: ${(e as Error).message}`, { cause: e });
  }
  const entries = crfsEntries(layer, "zstd:chunked", json, limits.maxEntries);
  return { format: "zstd:chunked", entries: await tocEntries(layer, entries, at.offset), fetchedBytes: compressed.length };
}

/** The raw entries as TocEntry[]: chunk entries folded into their file, every range checked below `dataEnd`. */
export async function tocEntries(layer: string, raws: unknown[], dataEnd: number): Promise<TocEntry[]> {
  const out: TocEntry[] = [];
  const bad = (i: number, why: string) => new TocError(layer, `zstd:chunked table of contents, entry ${i}: ${why}`);
  let file: TocEntry | undefined;
  const close = (i: number) => {
    const c = file?.content;
    if (!c) return;
    const last = c.chunks[c.chunks.length - 1]!;
    last.end = c.end;
    if (last.offset >= last.end) throw bad(i, `the last piece of ${file!.name} starts at or after its end`);
    if (last.at + last.size !== file!.size) throw bad(i, `the pieces of ${file!.name} add up to ${last.at + last.size} bytes, not its ${file!.size}`);
    if (c.chunks.length > 1 && c.chunks.some((k) => !k.digest)) throw bad(i, `a piece of ${file!.name} has no digest`);
    file = undefined;
  };
  for (let i = 0; i < raws.length; i++) {
    if (i % TURN_ENTRIES === TURN_ENTRIES - 1) await turn();
    const e = parseRawEntry(raws[i]);
    if (typeof e === "string") throw bad(i, e);
    if (e.type === "chunk") {
      const c = file?.content;
      if (!c || file!.name !== e.name) throw bad(i, `a piece of ${JSON.stringify(e.name)} that does not follow its file`);
      if (!PIECE_TYPES.has(e.chunkType ?? "")) throw bad(i, `piece type ${JSON.stringify(e.chunkType)} is not read`);
      const prev = c.chunks[c.chunks.length - 1]!;
      if (e.offset === undefined || e.chunkOffset === undefined || !e.chunkSize || !e.chunkDigest) throw bad(i, "a piece without offset, size or digest");
      if (e.offset <= prev.offset || e.offset >= c.end) throw bad(i, `piece of ${e.name} at ${e.offset} is outside its file's range or out of order`);
      if (e.chunkOffset !== prev.at + prev.size) throw bad(i, `piece of ${e.name} starts at ${e.chunkOffset}, not ${prev.at + prev.size}`);
      prev.end = e.offset;
      c.chunks.push({ offset: e.offset, end: c.end, at: e.chunkOffset, size: e.chunkSize, digest: e.chunkDigest });
      continue;
    }
    close(i);
    const entry: TocEntry = { name: e.name, type: ENTRY_TYPES[e.type]!, size: e.type === "reg" ? (e.size ?? 0) : 0, mode: e.mode ?? 0, linkname: e.type === "symlink" || e.type === "hardlink" ? (e.linkName ?? null) : null };
    if (e.type === "reg" && entry.size > 0) {
      if (!e.digest || e.offset === undefined || e.endOffset === undefined) throw bad(i, `file ${e.name} of ${entry.size} bytes has no digest or range`);
      if (e.offset >= e.endOffset || e.endOffset > dataEnd) throw bad(i, `file ${e.name} has range ${e.offset}-${e.endOffset}, outside the file data (0-${dataEnd})`);
      if (!PIECE_TYPES.has(e.chunkType ?? "")) throw bad(i, `piece type ${JSON.stringify(e.chunkType)} is not read`);
      const first: TocChunk = { offset: e.offset, end: e.endOffset, at: 0, size: e.chunkSize || entry.size, ...(e.chunkDigest ? { digest: e.chunkDigest } : {}) };
      entry.content = { digest: e.digest, offset: e.offset, end: e.endOffset, chunks: [first] };
      file = entry;
    }
    out.push(entry);
  }
  close(raws.length);
  return out;
}
