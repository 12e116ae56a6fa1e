// A small reader of zip archives held in memory: the central directory, and the contents of the entries
// asked for (stored or deflated), each capped. Enough for jars; not a general unzip.
//
// Hostile archives: entries whose data overlap or repeat an offset are refused (a 64 KB jar whose 100
// directory records all point at one 60 MiB deflated entry would otherwise be inflated 100 times), a reader
// shares an inflate budget across the entries and nested archives of one file (InflateBudget), and every
// inflate runs on libuv's thread pool (a zlib stream), never on the event loop: a 64 MiB entry took 0.5 s to
// inflate with inflateRawSync. Its output goes chunk by chunk into a buffer of the size the directory
// declares (never past it): zlib's one-call inflateRaw joins its chunks at the end, one copy of 0.2 to 0.4 s.
import { createInflateRaw } from "node:zlib";
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

/**
 * BAD_ZIP: not a zip archive, or a damaged one (a file named .jar may be anything). ZIP_BOMB: entries that
 * overlap or repeat an offset. ZIP_LIMIT: over a limit of the reader (the inflate budget, an entry's size).
 */
export type ZipErrorCode = "BAD_ZIP" | "ZIP_BOMB" | "ZIP_LIMIT";

export class ZipError extends PortcullisError {
  readonly domain = "scanner";
  override name = "ZipError";
  constructor(
    message: string,
    readonly code: ZipErrorCode = "BAD_ZIP",
  ) {
    super(message);
  }
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

/**
 * Each entry's local header and data lie inside the archive, and no two entries share bytes (a sort: 65,535
 * records, the most a plain directory can count, take a few milliseconds).
 */
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
    const [a, b] = [spans[i - 1]!, spans[i]!];
    if (b.start === a.start) throw new ZipError(`entries ${a.name} and ${b.name} start at the same offset ${a.start}: refused as a zip bomb`, "ZIP_BOMB");
    if (b.start < a.end) throw new ZipError(`entries ${a.name} and ${b.name} overlap: refused as a zip bomb`, "ZIP_BOMB");
  }
}

/**
 * An entry's bytes: stored ones as a view of `buf`, deflated ones inflated off the event loop, at most
 * `maxBytes` and what is left of `budget`. Throws ZipError (ZIP_LIMIT past a limit, BAD_ZIP otherwise).
 */
export async function readZipEntry(buf: Buffer, e: ZipEntry, maxBytes: number, budget?: InflateBudget): Promise<Buffer> {
  const o = e.localOffset;
  if (o + 30 > buf.length || buf.readUInt32LE(o) !== 0x04034b50) throw new ZipError(`${e.name}: local header missing`);
  const start = o + 30 + buf.readUInt16LE(o + 26) + buf.readUInt16LE(o + 28);
  const end = start + e.compressedSize;
  if (end > buf.length) throw new ZipError(`${e.name}: runs past the end of the archive`);
  if (e.size > maxBytes) throw new ZipError(`${e.name}: ${e.size} bytes, over ${maxBytes}`, "ZIP_LIMIT");
  const data = buf.subarray(start, end);
  if (e.method === 0) return data;
  if (e.method === 8) {
    if (budget && budget.left <= 0) throw new ZipError(`${e.name}: the archive's inflate budget is spent`, "ZIP_LIMIT");
    const cap = budget ? Math.min(maxBytes, budget.left) : maxBytes;
    if (e.size > cap) throw new ZipError(`${e.name}: inflates to more than ${cap} bytes (the archive's inflate budget)`, "ZIP_LIMIT");
    const out = await inflateInto(data, e);
    if (budget) budget.left -= out.length;
    return out;
  }
  throw new ZipError(`${e.name}: compression method ${e.method} not supported`);
}

/** Inflates `data` on the thread pool into a buffer of the entry's declared size; more is ZIP_BOMB, fewer BAD_ZIP. */
function inflateInto(data: Buffer, e: ZipEntry): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(e.size);
    let at = 0;
    let settled = false;
    const z = createInflateRaw({ chunkSize: 256 * 1024 });
    const settle = (err?: ZipError) => {
      if (settled) return;
      settled = true;
      z.destroy();
      if (err) reject(err);
      else resolve(out);
    };
    z.on("data", (c: Buffer) => {
      if (at + c.length > out.length) return settle(new ZipError(`${e.name}: inflates past the ${e.size} bytes its directory record declares`, "ZIP_BOMB"));
      c.copy(out, at);
      at += c.length;
    });
    z.on("error", (err) => settle(new ZipError(`${e.name}: ${err.message}`)));
    z.on("end", () => settle(at === out.length ? undefined : new ZipError(`${e.name}: inflates to ${at} bytes, not the ${e.size} its directory record declares`)));
    z.end(data);
  });
}
