// A small reader of zip archives held in memory: the central directory, and the contents of the entries
// asked for (stored or deflated), each capped. Enough for jars; not a general unzip.
//
// Hostile archives: entries whose data overlap are refused (a 64 KB jar whose 100 directory records all
// point at one 60 MiB deflated entry would otherwise be inflated 100 times, synchronously), and a reader
// can share an inflate budget across the entries and nested archives of one file (InflateBudget).
import { inflateRawSync } from "node:zlib";
import { PortcullisError } from "../../errors.js";

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** Bytes a reader may still inflate, shared by every entry (and nested archive) read from one file. */
export interface InflateBudget {
  left: number;
}

export class ZipError extends PortcullisError {
  readonly domain = "scanner";
  readonly code = "ZIP_INVALID";
  override name = "ZipError";
}

export function listZip(buf: Buffer): ZipEntry[] {
  const min = Math.max(0, buf.length - 65_557);
  let eocd = -1;
  for (let i = buf.length - 22; i >= min; i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError("no end of central directory record");
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    const loc = eocd - 20;
    if (loc < 0 || buf.readUInt32LE(loc) !== 0x07064b50) throw new ZipError("zip64 locator missing");
    const rec = Number(buf.readBigUInt64LE(loc + 8));
    if (rec + 56 > buf.length || buf.readUInt32LE(rec) !== 0x06064b50) throw new ZipError("zip64 record missing");
    count = Number(buf.readBigUInt64LE(rec + 32));
    cdOffset = Number(buf.readBigUInt64LE(rec + 48));
  }
  const out: ZipEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw new ZipError(`central directory entry ${i} is damaged`);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    out.push({
      method: buf.readUInt16LE(p + 10),
      compressedSize: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24),
      localOffset: buf.readUInt32LE(p + 42),
      name: buf.toString("utf8", p + 46, p + 46 + nameLen),
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  checkNoOverlap(buf, out);
  return out;
}

/** Each entry's local header and data lie inside the archive, and no two entries share bytes. */
function checkNoOverlap(buf: Buffer, entries: readonly ZipEntry[]): void {
  const spans: Array<{ start: number; end: number; name: string }> = [];
  for (const e of entries) {
    const o = e.localOffset;
    if (o + 30 > buf.length || buf.readUInt32LE(o) !== 0x04034b50) throw new ZipError(`${e.name}: local header missing`);
    const end = o + 30 + buf.readUInt16LE(o + 26) + buf.readUInt16LE(o + 28) + e.compressedSize;
    if (end > buf.length) throw new ZipError(`${e.name}: runs past the end of the archive`);
    spans.push({ start: o, end, name: e.name });
  }
  spans.sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]!.start < spans[i - 1]!.end) throw new ZipError(`entries ${spans[i - 1]!.name} and ${spans[i]!.name} overlap: refused as a zip bomb`);
  }
}

export function readZipEntry(buf: Buffer, e: ZipEntry, maxBytes: number, budget?: InflateBudget): Buffer {
  const o = e.localOffset;
  if (o + 30 > buf.length || buf.readUInt32LE(o) !== 0x04034b50) throw new ZipError(`${e.name}: local header missing`);
  const start = o + 30 + buf.readUInt16LE(o + 26) + buf.readUInt16LE(o + 28);
  const end = start + e.compressedSize;
  if (end > buf.length) throw new ZipError(`${e.name}: runs past the end of the archive`);
  if (e.size > maxBytes) throw new ZipError(`${e.name}: ${e.size} bytes, over ${maxBytes}`);
  const data = buf.subarray(start, end);
  if (e.method === 0) return data;
  if (e.method === 8) {
    if (budget && budget.left <= 0) throw new ZipError(`${e.name}: the archive's inflate budget is spent`);
    const cap = budget ? Math.min(maxBytes, budget.left) : maxBytes;
    let out: Buffer;
    try {
      out = inflateRawSync(data, { maxOutputLength: cap });
    } catch (err) {
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw new ZipError(`${e.name}: inflates to more than ${cap} bytes${budget && cap < maxBytes ? " (the archive's inflate budget)" : ""}`);
      throw new ZipError(`${e.name}: ${(err as Error).message}`);
    }
    if (budget) budget.left -= out.length;
    return out;
  }
  throw new ZipError(`${e.name}: compression method ${e.method} not supported`);
}
