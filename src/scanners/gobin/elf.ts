// The little of ELF the Go build-info reader needs, from the first bytes of an executable: the loadable
// segments (to turn a virtual address into a file offset, and to know which bytes are code) and whether a
// Go build-ID note is there (the Go linker writes one into every program, cgo or not). Kept in gobin/:
// nothing else reads ELF yet.

const ELF_MAGIC = 0x7f454c46;
const PT_LOAD = 1;
const PT_NOTE = 4;
export const PF_X = 1;
export const PF_W = 2;

export interface Segment {
  /** File offset and size of the bytes the file holds for it. */
  offset: number;
  filesz: number;
  vaddr: number;
  flags: number;
}

export interface ElfHead {
  bigEndian: boolean;
  is64: boolean;
  loads: Segment[];
  /** A note named "Go" (the build ID the Go linker writes) lies in the bytes given. */
  goNote: boolean;
}

/**
 * Parses the ELF header and program headers from `head` (the first bytes of the file). "more" when the
 * program headers, or notes that start within the first `maxHead` bytes, lie beyond `head`; undefined
 * when this is not an ELF file or its headers are damaged.
 */
export function parseElfHead(head: Buffer, maxHead = 64 * 1024): ElfHead | "more" | undefined {
  if (head.length < 52) return "more";
  if (head.readUInt32BE(0) !== ELF_MAGIC) return undefined;
  const cls = head[4];
  const data = head[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) return undefined;
  const is64 = cls === 2;
  const bigEndian = data === 2;
  const u16 = (o: number) => (bigEndian ? head.readUInt16BE(o) : head.readUInt16LE(o));
  const u32 = (o: number) => (bigEndian ? head.readUInt32BE(o) : head.readUInt32LE(o));
  const u64 = (o: number) => Number(bigEndian ? head.readBigUInt64BE(o) : head.readBigUInt64LE(o));
  if (is64 && head.length < 64) return "more";
  const phoff = is64 ? u64(0x20) : u32(0x1c);
  const phentsize = is64 ? u16(0x36) : u16(0x2a);
  const phnum = is64 ? u16(0x38) : u16(0x2c);
  if (phnum === 0) return { bigEndian, is64, loads: [], goNote: false };
  if (phentsize < (is64 ? 56 : 32) || phnum > 512) return undefined;
  const end = phoff + phentsize * phnum;
  if (!Number.isSafeInteger(end)) return undefined;
  if (end > head.length) return "more";
  const loads: Segment[] = [];
  const notes: Array<{ offset: number; size: number }> = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = u32(p);
    const seg = is64
      ? { flags: u32(p + 4), offset: u64(p + 8), vaddr: u64(p + 16), filesz: u64(p + 32) }
      : { offset: u32(p + 4), vaddr: u32(p + 8), filesz: u32(p + 16), flags: u32(p + 24) };
    if (type === PT_LOAD) loads.push(seg);
    else if (type === PT_NOTE) notes.push({ offset: seg.offset, size: seg.filesz });
  }
  let goNote = false;
  for (const n of notes) {
    if (n.offset < maxHead && Math.min(n.offset + n.size, maxHead) > head.length) return "more";
  }
  for (const n of notes) {
    // Each note: namesz, descsz, type, then the name and the description, each padded to 4 bytes.
    let p = n.offset;
    const stop = Math.min(n.offset + n.size, head.length);
    while (!goNote && p + 12 <= stop) {
      const namesz = u32(p);
      const descsz = u32(p + 4);
      if (namesz === 4 && p + 16 <= stop && head.toString("latin1", p + 12, p + 16) === "Go\0\0") goNote = true;
      p += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return { bigEndian, is64, loads, goNote };
}

/** The file offset of a virtual address, when a loadable segment holds it in the file. */
export function fileOffset(elf: ElfHead, addr: number, len: number): number | undefined {
  for (const s of elf.loads) {
    if (addr >= s.vaddr && addr + len <= s.vaddr + s.filesz) return s.offset + (addr - s.vaddr);
  }
  return undefined;
}

/** The flags of the loadable segment whose file bytes contain `offset`, or undefined. */
export function segmentFlagsAt(elf: ElfHead, offset: number): number | undefined {
  for (const s of elf.loads) if (offset >= s.offset && offset < s.offset + s.filesz) return s.flags;
  return undefined;
}
