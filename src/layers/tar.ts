// The tar framing of the layer walk: headers are decoded by tar-stream's own codec (ustar, PAX, GNU long
// names, base-256 sizes, checksums), but entries are not turned into streams: each entry's bytes go
// straight to the sink its handler returns, or are skipped by counting. Per entry that saves the stream
// machinery, which dominates the walk of layers with many small files.
import { createRequire } from "node:module";

interface TarStreamHeaders {
  decode(buf: Buffer, filenameEncoding: string, allowUnknownFormat: boolean): RawHeader | null;
  decodePax(buf: Buffer): Record<string, string>;
  decodeLongPath(buf: Buffer, encoding: string): string;
}

interface RawHeader {
  name: string;
  mode: number | null;
  size: number;
  type: string;
  linkname: string | null;
}

const headers = createRequire(import.meta.url)("tar-stream/headers.js") as TarStreamHeaders;

export interface TarHeader {
  name: string;
  type: string;
  size: number;
  mode: number;
  linkname: string | null;
}

export interface TarEntrySink {
  data(chunk: Buffer): void;
  end(): void;
}

const META_TYPES = new Set(["pax-header", "pax-global-header", "gnu-long-path", "gnu-long-link-path"]);

const TYPES: Record<number, string> = {
  0: "file", 48: "file", 55: "contiguous-file", 49: "link", 50: "symlink", 51: "character-device", 52: "block-device",
  53: "directory", 54: "fifo", 120: "pax-header", 103: "pax-global-header", 76: "gnu-long-path", 75: "gnu-long-link-path",
};

function octalField(b: Buffer, start: number, len: number): number {
  if (b[start]! & 0x80) {
    // GNU base-256 for values that do not fit in octal.
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  let v = 0;
  let i = start;
  const end = start + len;
  while (i < end && b[i] === 32) i++;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  return v;
}

function stringField(b: Buffer, start: number, len: number): string {
  let end = start;
  const max = start + len;
  while (end < max && b[end] !== 0) end++;
  return b.toString("utf8", start, end);
}

/**
 * The common case of a header (ustar or GNU, valid checksum) decoded without allocating more than the
 * strings it returns; undefined sends the block to tar-stream's general decoder (old formats, errors).
 */
function fastHeader(b: Buffer): RawHeader | null | undefined {
  let sum = 0;
  let zero = true;
  for (let i = 0; i < 512; i++) {
    const c = b[i]!;
    if (c !== 0) zero = false;
    sum += i >= 148 && i < 156 ? 32 : c;
  }
  if (zero) return null;
  if (sum !== octalField(b, 148, 8)) return undefined;
  // "ustar\0" (POSIX) or "ustar " (GNU)
  if (b[257] !== 0x75 || b[258] !== 0x73 || b[259] !== 0x74 || b[260] !== 0x61 || b[261] !== 0x72) return undefined;
  const posix = b[262] === 0;
  const type = TYPES[b[156]!] ?? "other";
  let name = stringField(b, 0, 100);
  if (posix && b[345] !== 0) name = `${stringField(b, 345, 155)}/${name}`;
  return {
    name,
    mode: octalField(b, 100, 8),
    size: octalField(b, 124, 12),
    type,
    linkname: type === "link" || type === "symlink" ? stringField(b, 157, 100) : null,
  };
}
const MAX_META = 1024 * 1024;

export class TarReader {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes of the current entry's content still to come, then its padding. */
  private remaining = 0;
  private padding = 0;
  private sink: TarEntrySink | undefined;
  private meta: { type: string; chunks: Buffer[]; len: number } | undefined;
  private pax: Record<string, string> | undefined;
  private longPath: string | undefined;
  private longLink: string | undefined;
  private done = false;
  private inEntry = false;

  constructor(private readonly onEntry: (h: TarHeader) => TarEntrySink | undefined) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.done) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - off);
        if (this.meta) {
          this.meta.chunks.push(Buffer.from(chunk.subarray(off, off + n)));
          this.meta.len += n;
        } else if (this.sink) this.sink.data(chunk.subarray(off, off + n));
        this.remaining -= n;
        off += n;
        if (this.remaining === 0) this.finishEntry();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - off);
        this.padding -= n;
        off += n;
        continue;
      }
      // A header: 512 bytes, possibly split across chunks.
      const need = 512 - this.pendingLen;
      if (this.pendingLen === 0 && chunk.length - off >= 512) {
        this.header(chunk.subarray(off, off + 512));
        off += 512;
        continue;
      }
      const n = Math.min(need, chunk.length - off);
      this.pending.push(chunk.subarray(off, off + n));
      this.pendingLen += n;
      off += n;
      if (this.pendingLen === 512) {
        const block = Buffer.concat(this.pending);
        this.pending = [];
        this.pendingLen = 0;
        this.header(block);
      }
    }
  }

  /** At the end of the data: an archive cut in the middle of an entry is an error. */
  end(): void {
    if (this.inEntry) throw new Error("the archive ends in the middle of an entry (truncated)");
    if (this.pendingLen > 0 && !this.done) throw new Error("the archive ends in the middle of a header (truncated)");
  }

  private header(block: Buffer): void {
    const fast = fastHeader(block);
    const h = fast === undefined ? headers.decode(block, "utf-8", true) : fast;
    if (h === null) {
      // The end-of-archive marker; anything after it is not part of the archive.
      this.done = true;
      return;
    }
    const size = h.size ?? 0;
    this.padding = (512 - (size % 512)) % 512;
    this.remaining = size;
    this.inEntry = true;
    if (META_TYPES.has(h.type)) {
      if (size > MAX_META) throw new Error(`a ${h.type} record of ${size} bytes is over ${MAX_META}`);
      this.meta = { type: h.type, chunks: [], len: 0 };
    } else {
      const pax = this.pax;
      const header: TarHeader = {
        name: pax?.path ?? this.longPath ?? h.name,
        type: h.type ?? "file",
        size: pax?.size !== undefined ? Number(pax.size) : size,
        mode: h.mode ?? 0,
        linkname: pax?.linkpath ?? this.longLink ?? h.linkname,
      };
      if (header.size !== size) {
        this.remaining = header.size;
        this.padding = (512 - (header.size % 512)) % 512;
      }
      this.pax = undefined;
      this.longPath = undefined;
      this.longLink = undefined;
      this.sink = this.onEntry(header);
    }
    if (this.remaining === 0) this.finishEntry();
  }

  private finishEntry(): void {
    this.inEntry = false;
    const meta = this.meta;
    if (meta) {
      this.meta = undefined;
      const buf = Buffer.concat(meta.chunks, meta.len);
      if (meta.type === "pax-header") this.pax = headers.decodePax(buf);
      else if (meta.type === "gnu-long-path") this.longPath = headers.decodeLongPath(buf, "utf-8");
      else if (meta.type === "gnu-long-link-path") this.longLink = headers.decodeLongPath(buf, "utf-8");
      // pax-global-header: nothing a scanner needs.
      return;
    }
    const sink = this.sink;
    this.sink = undefined;
    sink?.end();
  }
}
