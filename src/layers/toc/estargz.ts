// eStargz (containerd's stargz-snapshotter): a gzip layer that is still one valid gzip stream of the tar,
// but written as many gzip members: each regular file's content (large files cut into pieces of 4 MiB by
// default) starts a member of its own, so a reader can inflate one file from its offset. At the end, a
// member holding a tar whose one entry, `stargz.index.json`, is the table of contents (CRFS entries with the
// member offset, size, digest and per-piece digests of every file), then a 51-byte footer: an empty gzip
// member whose extra field `SG` holds the table's offset as 16 hex digits and `STARGZ`.
//
// Trust: the footer and the table's bytes come from the blob, which is only verified as a whole, so they
// are untrusted until the table's JSON hashes to the descriptor's `containerd.io/snapshot/stargz/toc.digest`
// (the descriptor comes from the digest-verified manifest). A piece's member runs from its offset to the
// next piece's offset (or the table's); what it inflates to beyond the piece's size (tar headers of the
// entries in between) is never produced past the size and never reaches a scanner.
import { createHash } from "node:crypto";
import { gunzip } from "node:zlib";
import { setImmediate as turn } from "node:timers/promises";
import { crfsEntries, ENTRY_TYPES, parseRawEntry, TURN_ENTRIES, type RawEntry } from "./crfs.js";
import { TocError } from "./errors.js";
import type { RangeReader, TableOfContents, TocChunk, TocContent, TocEntry } from "./types.js";
import type { TocLimits } from "./zstd-chunked.js";

export const ESTARGZ_TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest";
const FOOTER_SIZE = 51;
const TOC_NAME = "stargz.index.json";

/** The descriptor's table-of-contents digest; undefined when it has none. Throws TocError when malformed. */
export function estargzTocDigest(layer: { digest: string; size: number; annotations?: Record<string, string> }): string | undefined {
  const d = layer.annotations?.[ESTARGZ_TOC_DIGEST];
  if (d === undefined) return undefined;
  if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new TocError(layer.digest, `eStargz ${ESTARGZ_TOC_DIGEST} ${JSON.stringify(d.slice(0, 80))} is not a sha256 digest`);
  if (layer.size < FOOTER_SIZE + 20) throw new TocError(layer.digest, `eStargz blob of ${layer.size} bytes is too small to hold a table of contents`);
  return d;
}

/** The table's offset from the footer; throws TocError unless it is eStargz's 51-byte footer. */
export function parseFooter(layer: string, footer: Buffer, size: number): number {
  const bad = (why: string) => new TocError(layer, `eStargz footer: ${why}`);
  if (footer.length !== FOOTER_SIZE) throw bad(`${footer.length} bytes, not ${FOOTER_SIZE}`);
  if (footer[0] !== 0x1f || footer[1] !== 0x8b || footer[2] !== 8) throw bad("not a gzip member");
  if (!(footer[3]! & 0x04)) throw bad("no extra field");
  if (footer.readUInt16LE(10) !== 26 || footer[12] !== 0x53 || footer[13] !== 0x47 || footer.readUInt16LE(14) !== 22) throw bad("the extra field is not one 'SG' subfield of 22 bytes");
  const sub = footer.subarray(16, 38).toString("latin1");
  if (!/^[0-9a-f]{16}STARGZ$/.test(sub)) throw bad(`subfield ${JSON.stringify(sub)} is not 16 hex digits and STARGZ`);
  const offset = Number.parseInt(sub.slice(0, 16), 16);
  if (!Number.isSafeInteger(offset) || offset <= 0 || offset >= size - FOOTER_SIZE) throw bad(`table offset ${offset} lies outside the ${size}-byte blob`);
  return offset;
}

/** The JSON of the tar inside the table's member: exactly one regular entry named stargz.index.json. */
function tocJson(layer: string, tar: Buffer, max: number): Buffer {
  const bad = (why: string) => new TocError(layer, `eStargz table of contents: ${why}`);
  if (tar.length < 512) throw bad("the tar is shorter than one header");
  const header = tar.subarray(0, 512);
  const name = header.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
  if (name !== TOC_NAME) throw bad(`the tar's entry is ${JSON.stringify(name.slice(0, 100))}, not ${TOC_NAME}`);
  if (header[156] !== 0x30 && header[156] !== 0) throw bad("its tar entry is not a regular file");
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  const stored = Number.parseInt(header.subarray(148, 156).toString("latin1").replace(/[\0 ]+$/g, "").trim(), 8);
  if (stored !== sum) throw bad("its tar header fails its checksum");
  const sizeField = header.subarray(124, 136).toString("latin1").replace(/[\0 ]+$/g, "").trim();
  if (!/^[0-7]{1,11}$/.test(sizeField)) throw bad(`tar size field ${JSON.stringify(sizeField)} is not octal`);
  const size = Number.parseInt(sizeField, 8);
  if (size > max) throw bad(`${size} bytes, over the ${max}-byte limit`);
  if (512 + size > tar.length) throw bad(`the tar holds ${tar.length - 512} of its ${size} bytes`);
  return tar.subarray(512, 512 + size);
}

/**
 * Fetches an eStargz layer's footer and table of contents, checks the table against the descriptor's
 * digest, and returns its entries with every range checked to lie in the file data. Throws TocError for
 * anything wrong (the caller reads the layer in full).
 */
export async function readEstargzToc(layer: string, size: number, tocDigest: string, reader: RangeReader, limits: TocLimits, signal?: AbortSignal): Promise<TableOfContents> {
  const footer = await reader.read(size - FOOTER_SIZE, size, signal);
  const tocOffset = parseFooter(layer, footer, size);
  const length = size - FOOTER_SIZE - tocOffset;
  if (length > limits.maxTocBytes) throw new TocError(layer, `eStargz table of contents of ${length} compressed bytes is over the ${limits.maxTocBytes}-byte limit`);
  const compressed = await reader.read(tocOffset, tocOffset + length, signal);
  let tar: Buffer;
  try {
    // The JSON, its tar header and padding, and the tar's two end blocks; inflated on the thread pool (64 MiB
    // took 0.6 s with gunzipSync, the event loop held all that time).
    tar = await new Promise<Buffer>((resolve, reject) => gunzip(compressed, { maxOutputLength: limits.maxTocBytes + 4096 }, (e, r) => (e ? reject(e) : resolve(r))));
  } catch (e) {
    throw new TocError(layer, `eStargz table of contents does not inflate within ${limits.maxTocBytes} bytes: ${(e as Error).message}`, { cause: e });
  }
  const json = tocJson(layer, tar, limits.maxTocBytes);
  const got = `sha256:${createHash("sha256").update(json).digest("hex")}`;
  if (got !== tocDigest) throw new TocError(layer, `eStargz table of contents has digest ${got}, but the manifest says ${tocDigest}`);
  const entries = crfsEntries(layer, "eStargz", json, limits.maxEntries);
  return { format: "estargz", entries: await estargzEntries(layer, entries, tocOffset), fetchedBytes: footer.length + compressed.length };
}

/** What a header-only entry may add to the member before it, compressed (its header, a PAX header for long names). */
function headerAllowance(e: RawEntry): number {
  return 2048 + 2 * (Buffer.byteLength(e.name) + Buffer.byteLength(e.linkName ?? ""));
}

/**
 * The raw entries as TocEntry[]: pieces folded into their file, each piece's member ending where the next
 * piece's begins (the last one where the table begins), offsets strictly increasing, every piece sized and
 * digested, the pieces adding up to the file.
 */
export async function estargzEntries(layer: string, raws: unknown[], tocOffset: number): Promise<TocEntry[]> {
  const bad = (i: number, why: string) => new TocError(layer, `eStargz table of contents, entry ${i}: ${why}`);
  const parsed: RawEntry[] = [];
  for (let i = 0; i < raws.length; i++) {
    if (i % TURN_ENTRIES === TURN_ENTRIES - 1) await turn();
    const r = parseRawEntry(raws[i]);
    if (typeof r === "string") throw bad(i, r);
    parsed.push(r);
  }
  const out: TocEntry[] = [];
  let file: TocEntry | undefined;
  // The piece whose member is open (its end is the next offset), and the content it belongs to.
  let piece: TocChunk | undefined;
  let owner: TocContent | undefined;
  let lastOffset = 0;
  const endPiece = (end: number) => {
    if (!piece) return;
    piece.end = end;
    owner!.end = end;
    piece = owner = undefined;
  };
  const closeFile = (i: number) => {
    if (!file) return;
    const c = file.content!;
    const last = c.chunks[c.chunks.length - 1]!;
    if (last.at + last.size !== file.size) throw bad(i, `the pieces of ${file.name} add up to ${last.at + last.size} bytes, not its ${file.size}`);
    file = undefined;
  };
  for (let i = 0; i < parsed.length; i++) {
    const e = parsed[i]!;
    // Every entry's tar header (a piece continues its file: none) is written in the member still open.
    if (owner && e.type !== "chunk") owner.slack = (owner.slack ?? 0) + headerAllowance(e);
    if (e.offset) {
      if (e.offset <= lastOffset || e.offset >= tocOffset) throw bad(i, `offset ${e.offset} is not after the previous piece (${lastOffset}) and before the table (${tocOffset})`);
      endPiece(e.offset);
      lastOffset = e.offset;
    }
    if (e.type === "chunk") {
      const c = file?.content;
      if (!c || file!.name !== e.name) throw bad(i, `a piece of ${JSON.stringify(e.name)} that does not follow its file`);
      const prev = c.chunks[c.chunks.length - 1]!;
      if (!e.offset || e.chunkOffset === undefined || !e.chunkDigest) throw bad(i, "a piece without offset, position or digest");
      if (e.chunkOffset !== prev.at + prev.size) throw bad(i, `piece of ${e.name} starts at ${e.chunkOffset}, not ${prev.at + prev.size}`);
      const n = e.chunkSize || file!.size - e.chunkOffset;
      if (n <= 0 || e.chunkOffset + n > file!.size) throw bad(i, `piece of ${e.name} at ${e.chunkOffset} of ${n} bytes lies outside its ${file!.size}-byte file`);
      piece = { offset: e.offset, end: -1, at: e.chunkOffset, size: n, digest: e.chunkDigest };
      owner = c;
      c.chunks.push(piece);
      continue;
    }
    closeFile(i);
    const entry: TocEntry = { name: e.name, type: ENTRY_TYPES[e.type], size: e.type === "reg" ? (e.size ?? 0) : 0, mode: e.mode ?? 0, linkname: e.type === "symlink" || e.type === "hardlink" ? (e.linkName ?? null) : null };
    if (e.type === "reg" && entry.size > 0) {
      if (!e.digest || !e.offset) throw bad(i, `file ${e.name} of ${entry.size} bytes has no digest or offset`);
      if (e.chunkOffset) throw bad(i, `file ${e.name} starts with a piece at ${e.chunkOffset}, not 0`);
      const n = e.chunkSize || entry.size;
      if (n > entry.size) throw bad(i, `the first piece of ${e.name} is ${n} bytes, more than its ${entry.size}`);
      // A piece's own digest; a one-piece file is checked by the file's digest.
      piece = { offset: e.offset, end: -1, at: 0, size: n, ...(n < entry.size ? { digest: e.chunkDigest } : {}) };
      if (n < entry.size && !e.chunkDigest) throw bad(i, `the first piece of ${e.name} has no digest`);
      entry.content = owner = { digest: e.digest, offset: e.offset, end: -1, chunks: [piece] };
      file = entry;
    } else if (e.offset) {
      throw bad(i, `${e.type} entry ${e.name} has content at ${e.offset}`);
    }
    out.push(entry);
  }
  endPiece(tocOffset);
  closeFile(parsed.length);
  return out;
}
