// ELF executables as the layer walk streams them: the file header (class, byte order, where the program and
// section header tables are), both tables captured as they go by, and the offset of every byte seen.
// Scanners that look for data in a section (cargo-auditable's `.dep-v0`) feed their chunks through an
// ElfStream; nothing of the file is kept but the header and the two tables (bounded). Scanners that hold a
// file's first bytes anyway (the Go build-info reader) read the header and program headers from them with
// readElfHead, and turn addresses into file offsets with the loadable segments (fileOffset, segmentFlagsAt).
// Layout: https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html, ch4.sheader.html, ch5.pheader.html,
// notes: ch5.pheader.html#note_section.

export const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
/** Header tables bigger than this are not kept (65,535 sections of 64 bytes is 4 MiB; real programs have < 100). */
export const MAX_TABLE = 1 << 20;
/** readElfHead calls more program headers than this damaged (real programs have about 10). */
export const MAX_SEGMENTS = 512;

export interface ElfHeader {
  is64: boolean;
  littleEndian: boolean;
  /** File offset of the program header table (0: none), its entry size and count. */
  phoff: number;
  phentsize: number;
  phnum: number;
  /** File offset of the section header table (0: none). */
  shoff: number;
  shentsize: number;
  /** Number of section headers; 0 with shoff set means "in section 0's sh_size" (resolved by parseSections). */
  shnum: number;
  shstrndx: number;
}

export interface ElfSection {
  /** Offset of the name in the section name string table. */
  nameOffset: number;
  type: number;
  flags: number;
  offset: number;
  size: number;
}

export interface ElfSegment {
  type: number;
  /** File offset and size of the bytes the file holds for it. */
  offset: number;
  filesz: number;
  /** Virtual address it is mapped at. */
  vaddr: number;
  /** PF_X, PF_W, PF_R bits. */
  flags: number;
}

export interface ElfNote {
  /** The name as the note holds it: namesz bytes, NUL padding included (latin1). */
  name: string;
  type: number;
}

/** SHT_NOBITS: the section occupies no bytes in the file (.bss). */
export const SHT_NOBITS = 8;
/** SHF_ALLOC: the section is loaded into memory (part of a PT_LOAD segment). */
export const SHF_ALLOC = 2;
/** PT_LOAD: a segment mapped from the file. */
export const PT_LOAD = 1;
/** PT_NOTE: a segment of notes (build IDs, ABI tags). */
export const PT_NOTE = 4;
/** Segment flags: executable, writable. */
export const PF_X = 1;
export const PF_W = 2;

function u16(b: Buffer, off: number, le: boolean): number {
  return le ? b.readUInt16LE(off) : b.readUInt16BE(off);
}
function u32(b: Buffer, off: number, le: boolean): number {
  return le ? b.readUInt32LE(off) : b.readUInt32BE(off);
}
/** 64-bit fields as numbers; offsets beyond 2^53 are nonsense in a container layer and read as Infinity. */
function u64(b: Buffer, off: number, le: boolean): number {
  const v = le ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
}

/** The ELF file header at the start of `b`, or undefined when `b` is not (the start of) an ELF file. */
export function parseElfHeader(b: Buffer): ElfHeader | undefined {
  if (b.length < 52 || !b.subarray(0, 4).equals(ELF_MAGIC)) return undefined;
  const cls = b[4];
  const data = b[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) return undefined;
  const is64 = cls === 2;
  const le = data === 1;
  if (is64 && b.length < 64) return undefined;
  return is64
    ? { is64, littleEndian: le, phoff: u64(b, 0x20, le), phentsize: u16(b, 0x36, le), phnum: u16(b, 0x38, le), shoff: u64(b, 0x28, le), shentsize: u16(b, 0x3a, le), shnum: u16(b, 0x3c, le), shstrndx: u16(b, 0x3e, le) }
    : { is64, littleEndian: le, phoff: u32(b, 0x1c, le), phentsize: u16(b, 0x2a, le), phnum: u16(b, 0x2c, le), shoff: u32(b, 0x20, le), shentsize: u16(b, 0x2e, le), shnum: u16(b, 0x30, le), shstrndx: u16(b, 0x32, le) };
}

/** The entries of a header table, `entsize` bytes apart; none when entries are smaller than `min`, and none cut off by its end. */
function entries<T>(table: Buffer, entsize: number, min: number, read: (off: number) => T): T[] {
  if (entsize < min) return [];
  const out: T[] = [];
  for (let off = 0; off + entsize <= table.length; off += entsize) out.push(read(off));
  return out;
}

/** The program headers in `table` (the bytes at the header's phoff). */
export function parseSegments(h: ElfHeader, table: Buffer): ElfSegment[] {
  const le = h.littleEndian;
  return entries(table, h.phentsize, h.is64 ? 56 : 32, (off) => h.is64
    ? { type: u32(table, off, le), flags: u32(table, off + 4, le), offset: u64(table, off + 8, le), vaddr: u64(table, off + 16, le), filesz: u64(table, off + 32, le) }
    : { type: u32(table, off, le), offset: u32(table, off + 4, le), vaddr: u32(table, off + 8, le), filesz: u32(table, off + 16, le), flags: u32(table, off + 24, le) });
}

/**
 * The file header and program headers from `head`, a file's first bytes: "more" when the header or the
 * program header table lies beyond `head`; undefined when this is not ELF, or its program header table is
 * damaged (entries too small, more than MAX_SEGMENTS, or beyond any real file).
 */
export function readElfHead(head: Buffer): { header: ElfHeader; segments: ElfSegment[] } | "more" | undefined {
  if (head.length >= 4 && !head.subarray(0, 4).equals(ELF_MAGIC)) return undefined;
  if (head.length < 52 || (head[4] === 2 && head.length < 64)) return "more";
  const header = parseElfHeader(head);
  if (!header) return undefined;
  if (header.phnum === 0) return { header, segments: [] };
  if (header.phentsize < (header.is64 ? 56 : 32) || header.phnum > MAX_SEGMENTS) return undefined;
  const end = header.phoff + header.phentsize * header.phnum;
  if (!Number.isSafeInteger(end)) return undefined;
  if (end > head.length) return "more";
  return { header, segments: parseSegments(header, head.subarray(header.phoff, end)) };
}

/**
 * The notes in `b` (the bytes of a PT_NOTE segment or SHT_NOTE section): each is namesz, descsz and type,
 * then the name and the description, each padded to 4 bytes. A note cut off by the end of `b` is left out.
 */
export function parseNotes(h: ElfHeader, b: Buffer): ElfNote[] {
  const out: ElfNote[] = [];
  const le = h.littleEndian;
  for (let p = 0; p + 12 <= b.length; ) {
    const namesz = u32(b, p, le);
    const descsz = u32(b, p + 4, le);
    if (p + 12 + namesz > b.length) break;
    out.push({ name: b.toString("latin1", p + 12, p + 12 + namesz), type: u32(b, p + 8, le) });
    p += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
  }
  return out;
}

/** The file offset of the `len` bytes at virtual address `addr`, when a loadable segment holds them in the file. */
export function fileOffset(segments: readonly ElfSegment[], addr: number, len: number): number | undefined {
  for (const s of segments) {
    if (s.type === PT_LOAD && addr >= s.vaddr && addr + len <= s.vaddr + s.filesz) return s.offset + (addr - s.vaddr);
  }
  return undefined;
}

/** The flags of the loadable segment whose file bytes hold `offset`, or undefined. */
export function segmentFlagsAt(segments: readonly ElfSegment[], offset: number): number | undefined {
  for (const s of segments) if (s.type === PT_LOAD && offset >= s.offset && offset < s.offset + s.filesz) return s.flags;
  return undefined;
}

/** The section headers in `table` (the bytes at the header's shoff). Entries cut off by the end of `table` are left out. */
export function parseSections(h: ElfHeader, table: Buffer): ElfSection[] {
  const le = h.littleEndian;
  return entries(table, h.shentsize, h.is64 ? 64 : 40, (off) => h.is64
    ? { nameOffset: u32(table, off, le), type: u32(table, off + 4, le), flags: u64(table, off + 8, le), offset: u64(table, off + 24, le), size: u64(table, off + 32, le) }
    : { nameOffset: u32(table, off, le), type: u32(table, off + 4, le), flags: u32(table, off + 8, le), offset: u32(table, off + 16, le), size: u32(table, off + 20, le) });
}

/** A byte range of the file, filled as the stream passes it. */
class Capture {
  readonly buf: Buffer;
  readonly end: number;
  constructor(readonly start: number, size: number) {
    this.buf = Buffer.alloc(size);
    this.end = start + size;
  }
  take(chunk: Buffer, chunkStart: number): void {
    const from = Math.max(chunkStart, this.start);
    const to = Math.min(chunkStart + chunk.length, this.end);
    if (from < to) chunk.copy(this.buf, from - this.start, from - chunkStart, to - chunkStart);
  }
}

function tableCapture(offset: number, count: number, entsize: number): Capture | undefined {
  const size = count * entsize;
  return offset > 0 && size > 0 && size <= MAX_TABLE && Number.isFinite(offset) ? new Capture(offset, size) : undefined;
}

/**
 * Follows one ELF file through the walk's chunks: `push` each chunk before looking at it, then `offset` is
 * the file offset of the chunk's first byte. Keeps the first 64 bytes until the header is read, and the
 * program and section header tables as they pass (when each is at most MAX_TABLE bytes).
 */
export class ElfStream {
  /** File offset of the current chunk's first byte. */
  offset = 0;
  header: ElfHeader | undefined;
  /** False once the first bytes are known not to be ELF. */
  elf = true;
  private head: Buffer[] = [];
  private headLen = 0;
  private next = 0;
  private phdrs: Capture | undefined;
  private shdrs: Capture | undefined;
  private parsedSegments: ElfSegment[] | undefined;

  push(chunk: Buffer): void {
    this.offset = this.next;
    this.next += chunk.length;
    if (!this.elf) return;
    if (!this.header) {
      this.head.push(Buffer.from(chunk.subarray(0, 64 - this.headLen)));
      this.headLen = Math.min(64, this.headLen + chunk.length);
      const head = Buffer.concat(this.head);
      if (head.length >= 4 && !head.subarray(0, 4).equals(ELF_MAGIC)) {
        this.elf = false;
        return;
      }
      if (head.length < 64) return;
      this.head = [];
      this.header = parseElfHeader(head);
      if (!this.header) {
        this.elf = false;
        return;
      }
      const h = this.header;
      this.phdrs = tableCapture(h.phoff, h.phnum, h.phentsize);
      // shnum 0 with a table: the real count is in section 0's sh_size (more than 0xff00 sections); only entry 0 is kept.
      this.shdrs = tableCapture(h.shoff, h.shnum || (h.shoff ? 1 : 0), h.shentsize);
    }
    this.phdrs?.take(chunk, this.offset);
    this.shdrs?.take(chunk, this.offset);
  }

  /** The file offset of the next byte the stream expects. */
  get position(): number {
    return this.next;
  }

  /** Moves to file offset `to` without the bytes before it (withheld by the walk: FileSink.next). */
  skip(to: number): void {
    this.next = to;
  }

  /** The byte range of the section header table, when the header is read and the table is kept. */
  sectionTable(): { start: number; end: number } | undefined {
    return this.shdrs && { start: this.shdrs.start, end: this.shdrs.end };
  }

  /** The program headers, once the stream has gone past their table; undefined when they were not seen whole. */
  segments(): ElfSegment[] | undefined {
    const h = this.header;
    if (!h || !this.phdrs || this.next < this.phdrs.end) return undefined;
    // Read once: scanners ask for them (loadEnd) at every chunk.
    this.parsedSegments ??= parseSegments(h, this.phdrs.buf);
    return this.parsedSegments;
  }

  /** Where the bytes mapped into memory end (the last PT_LOAD segment's end in the file), when known. */
  loadEnd(): number | undefined {
    const segs = this.segments();
    if (!segs) return undefined;
    let end = 0;
    for (const s of segs) if (s.type === PT_LOAD) end = Math.max(end, s.offset + s.filesz);
    return end;
  }

  /** The section headers, once the stream has gone past their table; undefined when they were not seen whole. */
  sections(): ElfSection[] | undefined {
    const h = this.header;
    if (!h || !this.shdrs || this.next < this.shdrs.end) return undefined;
    const all = parseSections(h, this.shdrs.buf);
    if (h.shnum === 0 && all[0] && all[0].size > 1) return undefined;
    return all;
  }
}
