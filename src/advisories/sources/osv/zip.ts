// A bounded ZIP reader for the OSV exports (`<ecosystem>/all.zip`: one JSON file per record). It reads the
// central directory (ZIP64 included), then inflates one entry at a time with fflate's streaming Inflate, fed in
// small slices with a running byte count, so no entry can produce more than it declared or more than the
// per-entry limit, and the archive as a whole no more than the total limit. Nothing is written to disk.
//
// Entries that are honest but unusable (declared larger than the per-entry limit, encrypted, a compression
// method other than stored/deflate) are yielded as skipped. An archive that lies or climbs out (an entry that
// inflates past its declared size, a CRC mismatch, offsets outside the file, a name with `..` or an absolute
// path, more entries or more bytes than the limits) is refused with an AdvisoryInputError naming archive and entry.

import * as zlib from "node:zlib";
import { Inflate } from "fflate";
import { AdvisoryInputError, GiB, KiB, MiB } from "../../input.js";

export interface ZipLimits {
  /** Largest decompressed entry (default 8 MiB). */
  maxEntryBytes: number;
  /** Most decompressed bytes in one archive, skipped entries included (default 4 GiB). */
  maxTotalBytes: number;
  /** Most entries in one archive (default 1,000,000). */
  maxEntries: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = { maxEntryBytes: 8 * MiB, maxTotalBytes: 4 * GiB, maxEntries: 1_000_000 };

export type ZipEntry = { name: string; data: Uint8Array } | { name: string; skipped: string };

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const MAX_NAME_LENGTH = 4096;
/** Compressed bytes pushed per step: deflate expands at most ~1032:1, so one step overshoots by at most ~4 MiB. */
const INFLATE_STEP = 4 * KiB;

interface CentralEntry {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** Whether the bytes start like a ZIP archive (a local file header, or the end record of an empty archive). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const sig = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  return sig === SIG_LOCAL || sig === SIG_EOCD;
}

/** The entries of an archive, in central-directory order; directories are left out. */
export function* readZip(archive: string, bytes: Uint8Array, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Generator<ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries = centralDirectory(archive, bytes, view, limits);
  let declaredTotal = 0;
  for (const e of entries) declaredTotal += e.size;
  if (declaredTotal > limits.maxTotalBytes) {
    throw new AdvisoryInputError("ZIP_LIMIT", archive, `entries declare ${declaredTotal} bytes, over the limit of ${limits.maxTotalBytes}`);
  }
  const total = { bytes: 0 };
  for (const e of entries) {
    if (e.name.endsWith("/")) continue;
    if (e.flags & 1) {
      yield { name: e.name, skipped: "encrypted entry" };
      continue;
    }
    if (e.method !== 0 && e.method !== 8) {
      yield { name: e.name, skipped: `compression method ${e.method} is not supported (only stored and deflate)` };
      continue;
    }
    if (e.size > limits.maxEntryBytes) {
      yield { name: e.name, skipped: `declares ${e.size} bytes, over the per-entry limit of ${limits.maxEntryBytes}` };
      continue;
    }
    const data = entryData(archive, bytes, view, e);
    const out = e.method === 0 ? stored(archive, e, data) : inflate(archive, e, data, limits, total);
    if (e.method === 0) total.bytes += out.length;
    if (total.bytes > limits.maxTotalBytes) {
      throw new AdvisoryInputError("ZIP_LIMIT", { file: archive, entry: e.name }, `decompresses to more than ${limits.maxTotalBytes} bytes`);
    }
    if (out.length !== e.size) {
      throw new AdvisoryInputError("BAD_ZIP", { file: archive, entry: e.name }, `inflates to ${out.length} bytes, not the ${e.size} it declares`);
    }
    if (crc32(out) !== e.crc) throw new AdvisoryInputError("BAD_ZIP", { file: archive, entry: e.name }, "CRC-32 mismatch");
    yield { name: e.name, data: out };
  }
}

function centralDirectory(archive: string, bytes: Uint8Array, view: DataView, limits: ZipLimits): CentralEntry[] {
  const bad = (why: string): never => {
    throw new AdvisoryInputError("BAD_ZIP", archive, why);
  };
  // The end-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes, at the end of the file.
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) bad("no end-of-central-directory record (not a ZIP archive, or truncated)");
  if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) bad("multi-disk archives are not supported");
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  let cdEnd = eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || view.getUint32(loc, true) !== SIG_ZIP64_LOCATOR) bad("ZIP64 end-of-central-directory locator missing");
    const z64 = u64(view, loc + 8, bad);
    if (z64 + 56 > loc || view.getUint32(z64, true) !== SIG_ZIP64_EOCD) bad("ZIP64 end-of-central-directory record missing");
    count = u64(view, z64 + 32, bad);
    cdSize = u64(view, z64 + 40, bad);
    cdOffset = u64(view, z64 + 48, bad);
    cdEnd = z64;
  }
  if (count > limits.maxEntries) {
    throw new AdvisoryInputError("ZIP_LIMIT", archive, `${count} entries, over the limit of ${limits.maxEntries}`);
  }
  if (cdOffset + cdSize > cdEnd) bad("central directory runs past its end record");
  const entries: CentralEntry[] = [];
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cdOffset + cdSize || view.getUint32(p, true) !== SIG_CENTRAL) bad(`central directory entry ${n} is malformed`);
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localOffset = view.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdOffset + cdSize) bad(`central directory entry ${n} runs past the directory`);
    const rawName = bytes.subarray(p + 46, p + 46 + nameLen);
    const name = flags & 0x800 ? new TextDecoder("utf-8").decode(rawName) : latin1(rawName);
    checkName(archive, name);
    // ZIP64 extended information: the 64-bit values, in this order, for the fields that hold 0xFFFFFFFF.
    if (size === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
      let q = p + 46 + nameLen;
      const extraEnd = q + extraLen;
      let found = false;
      while (q + 4 <= extraEnd) {
        const id = view.getUint16(q, true);
        const len = view.getUint16(q + 2, true);
        if (q + 4 + len > extraEnd) break;
        if (id === 0x0001) {
          let r = q + 4;
          const take = () => {
            if (r + 8 > q + 4 + len) bad(`entry ${name}: ZIP64 extra field too short`);
            const v = u64(view, r, bad);
            r += 8;
            return v;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localOffset === 0xffffffff) localOffset = take();
          found = true;
          break;
        }
        q += 4 + len;
      }
      if (!found) bad(`entry ${name}: ZIP64 sizes without a ZIP64 extra field`);
    }
    entries.push({ name, flags, method, crc, compressedSize, size, localOffset });
    p = end;
  }
  return entries;
}

/** Refuses names that climb out of the archive or are absolute: such an archive is not an OSV export. */
function checkName(archive: string, name: string): void {
  const refuse = (why: string): never => {
    throw new AdvisoryInputError("ZIP_PATH", { file: archive, entry: name.length > 200 ? `${name.slice(0, 200)}…` : name }, why);
  };
  if (name.length === 0) refuse("empty entry name");
  if (name.length > MAX_NAME_LENGTH) refuse(`entry name longer than ${MAX_NAME_LENGTH} characters`);
  if (name.includes("\0")) refuse("entry name contains NUL");
  const normal = name.replace(/\\/g, "/");
  if (normal.startsWith("/") || /^[A-Za-z]:/.test(normal)) refuse("absolute entry name refused");
  if (normal.split("/").includes("..")) refuse("entry name climbs out of the archive (`..`): refused");
}

function entryData(archive: string, bytes: Uint8Array, view: DataView, e: CentralEntry): Uint8Array {
  const at = e.localOffset;
  if (at + 30 > bytes.length || view.getUint32(at, true) !== SIG_LOCAL) {
    throw new AdvisoryInputError("BAD_ZIP", { file: archive, entry: e.name }, "local file header missing");
  }
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  const end = start + e.compressedSize;
  if (end > bytes.length) throw new AdvisoryInputError("BAD_ZIP", { file: archive, entry: e.name }, "entry data runs past the end of the archive");
  return bytes.subarray(start, end);
}

function stored(archive: string, e: CentralEntry, data: Uint8Array): Uint8Array {
  if (data.length !== e.size) {
    throw new AdvisoryInputError("BAD_ZIP", { file: archive, entry: e.name }, `stored entry holds ${data.length} bytes, not the ${e.size} it declares`);
  }
  return data;
}

function inflate(archive: string, e: CentralEntry, data: Uint8Array, limits: ZipLimits, total: { bytes: number }): Uint8Array {
  const chunks: Uint8Array[] = [];
  let produced = 0;
  let over = false;
  const inflater = new Inflate((chunk) => {
    produced += chunk.length;
    total.bytes += chunk.length;
    if (produced > e.size) over = true;
    else chunks.push(chunk);
  });
  try {
    for (let off = 0; off < data.length || off === 0; off += INFLATE_STEP) {
      const end = Math.min(data.length, off + INFLATE_STEP);
      inflater.push(data.subarray(off, end), end === data.length);
      if (total.bytes > limits.maxTotalBytes) {
        throw new AdvisoryInputError("ZIP_LIMIT", { file: archive, entry: e.name }, `decompresses to more than ${limits.maxTotalBytes} bytes`);
      }
      if (over) {
        throw new AdvisoryInputError(
          "ZIP_LIMIT",
          { file: archive, entry: e.name },
          `inflates past the ${e.size} bytes it declares (stopped at ${produced}; per-entry limit ${limits.maxEntryBytes})`,
        );
      }
      if (end === data.length) break;
    }
  } catch (err) {
    if (err instanceof AdvisoryInputError) throw err;
    throw new AdvisoryInputError("BAD_ZIP", { file: archive, entry: e.name }, `corrupt deflate data: ${(err as Error).message}`, { cause: err });
  }
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const out = new Uint8Array(produced);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function u64(view: DataView, at: number, bad: (why: string) => never): number {
  if (at + 8 > view.byteLength) bad("record runs past the end of the archive");
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad("64-bit size or offset too large");
  return Number(v);
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

let crcTable: Uint32Array | undefined;

/** zlib's native CRC-32 where Node has it (20.15 and later), some 20 times faster than the table below. */
const nativeCrc32: ((data: Uint8Array) => number) | undefined = typeof zlib.crc32 === "function" ? (d) => zlib.crc32(d) : undefined;

/** CRC-32 (ISO-HDLC, the ZIP one). */
export function crc32(data: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(data) : crc32Table(data);
}

/** The same, table-driven, for Node releases without zlib.crc32. */
export function crc32Table(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = (crcTable[(crc ^ (data[i] ?? 0)) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
