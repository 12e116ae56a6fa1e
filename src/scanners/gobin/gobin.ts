// Go binaries: the build information the Go linker embeds (buildinfo.ts): the Go version, the main module
// and every dependency with its version, as `go version -m` prints them. Executables stream through
// consume(); nothing of them is kept but:
//   - their first bytes (at most 64 KiB), for the ELF program headers;
//   - from the build info's magic on, the build info itself (at most 1 MiB);
//   - for a Go program (its ELF carries the Go build-ID note), the bytes outside its code segments, at most
//     MAX_RETAINED (64 MiB), until the build info shows which layout it has. Programs built before Go 1.18
//     keep their version and module text elsewhere in the file, mostly before the build info, and a stream
//     cannot seek back; from Go 1.18 on everything is inline and those bytes are dropped at once.
import type { Package } from "../../model/packages.js";
import { type ElfSegment, fileOffset, parseNotes, PF_W, PF_X, PT_LOAD, PT_NOTE, readElfHead, segmentFlagsAt } from "../elf/elf.js";
import { purl } from "../purl.js";
import type { EntryInfo, FileSink, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";
import { type BuildInfoPointers, type GoBuildInfo, isPointers, MAGIC, parseHeader, parseModInfo, readPtr, stdlibVersion } from "./buildinfo.js";

export type { GoBuildInfo } from "./buildinfo.js";

/** The most bytes of a file read to find its ELF program headers. */
const MAX_HEAD = 64 * 1024;
/** Header (32 bytes) + two varint-prefixed strings; module lists of big programs run to a few hundred KB. */
const MAX_TAIL = 1 << 20;
/** The most bytes of one Go program held to read a pre-1.18 build info (its read-only data, not its code). */
export const MAX_RETAINED = 64 * 1024 * 1024;
/** The build info header is 16-byte aligned in the file (its section is; Go's own reader requires it). */
const ALIGN = 16;
/** The name of the build-ID note the Go linker writes into every ELF program, cgo or not. */
const GO_NOTE = "Go\0\0";

interface ElfHead {
  loads: ElfSegment[];
  /** The Go build-ID note lies in the bytes given. */
  goNote: boolean;
}

/**
 * The loadable segments and whether the Go note is there, from `head` (the first bytes of the file):
 * "more" when the program headers, or notes that start within the first MAX_HEAD bytes, lie beyond it;
 * undefined when this is not ELF or its headers are damaged.
 */
function readHead(head: Buffer): ElfHead | "more" | undefined {
  const elf = readElfHead(head);
  if (elf === "more" || elf === undefined) return elf;
  const notes = elf.segments.filter((s) => s.type === PT_NOTE);
  if (notes.some((n) => n.offset < MAX_HEAD && Math.min(n.offset + n.filesz, MAX_HEAD) > head.length)) return "more";
  const goNote = notes.some((n) => parseNotes(elf.header, head.subarray(n.offset, n.offset + n.filesz)).some((x) => x.name === GO_NOTE));
  return { loads: elf.segments.filter((s) => s.type === PT_LOAD), goNote };
}

type State = "head" | "search" | "header" | "pointers" | "done";

/** One executable's bytes in, its build info (or undefined) out. */
class BuildInfoSink implements FileSink {
  private pos = 0;
  private state: State = "head";
  private head: Buffer[] = [];
  private headLen = 0;
  private elf: ElfHead | undefined;
  private carry = Buffer.alloc(0);
  private tail: Buffer[] = [];
  private tailLen = 0;
  /** Bytes outside code segments of a Go program, by file offset, in file order; undefined when not kept. */
  private retained: Array<{ off: number; buf: Buffer }> | undefined;
  private retainedLen = 0;
  /** The tail length at which to try the header again (parsing after every small chunk would be quadratic). */
  private nextTry = 0;
  private pointers: BuildInfoPointers | undefined;
  /** Pre-1.18: the string headers and strings once read (each is looked up in the held bytes once). */
  private strings: { version?: string } = {};
  private readonly readCache = new Map<string, Buffer>();
  private result: GoBuildInfo | undefined;

  constructor(private readonly maxRetained: number) {}

  write(chunk: Buffer): boolean {
    const start = this.pos;
    this.pos += chunk.length;
    if (this.state === "done") return false;
    if (this.state !== "head") return this.feed(chunk, start);
    // Copied: the decompressor may reuse its output buffers.
    this.head.push(Buffer.from(chunk));
    this.headLen += chunk.length;
    const head = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head);
    const elf = readHead(head);
    if (elf === "more" && this.headLen < MAX_HEAD) {
      this.head = [head];
      return true;
    }
    this.head = [];
    if (elf === undefined || elf === "more") return this.finish(undefined);
    this.elf = elf;
    if (elf.goNote && this.maxRetained > 0) this.retained = [];
    this.state = "search";
    return this.feed(head, 0);
  }

  /**
   * While searching: only writable loaded segments can hold the build info (and MAGIC's length past their end,
   * for a magic that starts inside one); for a Go program whose bytes are being held, everything but code
   * segments. Every other state reads on from where it is.
   */
  next(): number {
    if (this.state === "done") return Infinity;
    if (this.state !== "search" || !this.elf!.loads.length) return this.pos;
    const loads = this.elf!.loads;
    if (this.retained) {
      for (const c of loads) if ((c.flags & PF_X) !== 0 && (c.flags & PF_W) === 0 && this.pos >= c.offset && this.pos < c.offset + c.filesz) return c.offset + c.filesz;
      return this.pos;
    }
    let next = Infinity;
    for (const w of loads) {
      if ((w.flags & PF_W) === 0) continue;
      if (this.pos < w.offset + w.filesz + MAGIC.length - 1) next = Math.min(next, Math.max(this.pos, w.offset));
    }
    return next;
  }

  skip(to: number): void {
    this.pos = to;
    this.carry = Buffer.alloc(0);
  }

  end(): GoBuildInfo | undefined {
    if (this.state === "header") {
      this.nextTry = 0;
      this.header();
    }
    return this.result;
  }

  private finish(result: GoBuildInfo | undefined): false {
    this.result = result;
    this.state = "done";
    this.retained = undefined;
    this.tail = [];
    this.carry = Buffer.alloc(0);
    return false;
  }

  private feed(chunk: Buffer, start: number): boolean {
    if (this.retained) this.retain(chunk, start);
    if (this.state === "pointers") return this.resolve();
    if (this.state === "header") {
      this.tail.push(Buffer.from(chunk));
      this.tailLen += chunk.length;
      return this.header();
    }
    // search
    const window = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const windowStart = start - this.carry.length;
    for (let at = window.indexOf(MAGIC); at >= 0; at = window.indexOf(MAGIC, at + 1)) {
      const off = windowStart + at;
      if (off % ALIGN !== 0) continue;
      // Go keeps it in a writable segment (.go.buildinfo, or the data of old binaries); a copy of the
      // magic in read-only data (the go command's own debug/buildinfo) is not it.
      const flags = this.elf!.loads.length ? segmentFlagsAt(this.elf!.loads, off) : PF_W;
      if (flags === undefined || (flags & PF_W) === 0) continue;
      this.state = "header";
      this.tail = [Buffer.from(window.subarray(at))];
      this.tailLen = window.length - at;
      this.carry = Buffer.alloc(0);
      return this.header();
    }
    this.carry = Buffer.from(window.subarray(Math.max(0, window.length - (MAGIC.length - 1))));
    return true;
  }

  private header(): boolean {
    if (this.tailLen < this.nextTry) return true;
    const buf = this.tail.length === 1 ? this.tail[0]! : Buffer.concat(this.tail);
    this.tail = [buf];
    const h = parseHeader(buf);
    if (h === "more") {
      if (this.tailLen >= MAX_TAIL) return this.finish(undefined);
      this.nextTry = Math.min(MAX_TAIL, Math.max(2 * this.tailLen, this.tailLen + 4096));
      return true;
    }
    if (h === undefined) return this.finish(undefined);
    if (!isPointers(h)) return this.finish(h);
    this.pointers = h;
    this.state = "pointers";
    this.tail = [];
    return this.resolve();
  }

  /** Pre-1.18: follows the two pointers to string headers and on to the strings. */
  private resolve(): boolean {
    const p = this.pointers!;
    const read = (addr: number, len: number): Buffer | "more" | undefined => {
      if (len === 0) return Buffer.alloc(0);
      const off = fileOffset(this.elf!.loads, addr, len);
      if (off === undefined) return undefined;
      if (off + len > this.pos) return "more";
      const key = `${off}:${len}`;
      const hit = this.readCache.get(key);
      if (hit) return hit;
      const got = this.readRetained(off, len);
      if (got) this.readCache.set(key, got);
      return got;
    };
    const str = (addr: number, max: number): string | "more" | undefined => {
      const hdr = read(addr, 2 * p.ptrSize);
      if (hdr === "more" || hdr === undefined) return hdr;
      const dataAddr = readPtr(hdr, 0, p.ptrSize, p.bigEndian);
      const len = readPtr(hdr, p.ptrSize, p.ptrSize, p.bigEndian);
      if (len > max) return undefined;
      const data = read(dataAddr, len);
      return data === "more" || data === undefined ? data : data.toString("utf8");
    };
    if (this.strings.version === undefined) {
      const version = str(p.versionAddr, 1024);
      if (version === "more") return true;
      if (version === undefined || !/^(go|devel)/.test(version)) return this.finish(undefined);
      this.strings.version = version;
    }
    const mod = str(p.modAddr, MAX_TAIL);
    if (mod === "more") return true;
    if (mod === undefined) return this.finish(undefined);
    return this.finish(parseModInfo(this.strings.version, mod));
  }

  /** Keeps the bytes of `chunk` (at file offset `start`) that lie outside code segments. */
  private retain(chunk: Buffer, start: number): void {
    const code = this.elf!.loads.filter((s) => (s.flags & PF_X) !== 0);
    const end = start + chunk.length;
    let s = start;
    while (s < end) {
      const inCode = code.find((c) => s >= c.offset && s < c.offset + c.filesz);
      if (inCode) {
        s = Math.min(end, inCode.offset + inCode.filesz);
        continue;
      }
      let next = end;
      for (const c of code) if (c.offset > s && c.offset < next) next = c.offset;
      this.retained!.push({ off: s, buf: Buffer.from(chunk.subarray(s - start, next - start)) });
      this.retainedLen += next - s;
      if (this.retainedLen > this.maxRetained) {
        // Too big to hold: a pre-1.18 build info in it stays unread (the file is still searched).
        this.retained = undefined;
        return;
      }
      s = next;
    }
  }

  private readRetained(off: number, len: number): Buffer | undefined {
    const pieces = this.retained;
    if (!pieces) return undefined;
    const out = Buffer.alloc(len);
    let filled = 0;
    for (const p of pieces) {
      const want = off + filled;
      if (p.off + p.buf.length <= want) continue;
      if (p.off > want) return undefined; // a gap: those bytes were code, or dropped
      const n = Math.min(p.buf.length - (want - p.off), len - filled);
      p.buf.copy(out, filled, want - p.off, want - p.off + n);
      filled += n;
      if (filled === len) return out;
    }
    return undefined;
  }
}

/** The version a dependency is reported at: a directory replacement has no version of its own. */
const DEVEL = "(devel)";

export class GoBinaryScanner implements Scanner {
  readonly name = "gobin";
  readonly version = "2";
  readonly kind = "package" as const;

  constructor(private readonly maxRetained = MAX_RETAINED) {}

  wants(e: EntryInfo): boolean {
    // Executable regular files big enough to be a Go program.
    return e.type === "file" && (e.mode & 0o111) !== 0 && e.size >= 64 * 1024;
  }

  consume(): FileSink {
    return new BuildInfoSink(this.maxRetained);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const [path, value] of files.consumed?.(this.name) ?? []) {
      packages.push(...goPackages(value as GoBuildInfo, path));
    }
    return { packages };
  }
}

/**
 * The packages of one binary, as the peers report them: `stdlib` at the Go version without experiment or
 * vendor suffixes; the main module, or for a GOPATH build (no `mod` line) the main package's path at
 * `(devel)`; every dependency, a replaced one under its replacement's path and version.
 */
export function goPackages(info: GoBuildInfo, path: string): Package[] {
  const db = `go:${path}`;
  const pkg = (name: string, version: string): Package => {
    // purl-spec's golang type: the module path's last element is the name, the rest the namespace.
    const slash = name.lastIndexOf("/");
    const id = slash > 0 ? purl("golang", name.slice(slash + 1), version, name.slice(0, slash)) : purl("golang", name, version);
    return { name, version, kind: "binary", package_db: db, filepath: path, purl: id };
  };
  const out = [pkg("stdlib", stdlibVersion(info.goVersion))];
  if (info.main) out.push(pkg(info.main.path, info.main.version));
  // Not for `go build file.go` (its package is "command-line-arguments") nor the Go distribution's own
  // commands (`cmd/go`, `cmd/gofmt`: their code is the standard library's, reported as stdlib).
  else if (info.path && info.path !== "command-line-arguments" && !info.path.startsWith("cmd/")) out.push(pkg(info.path, DEVEL));
  for (const d of info.deps) {
    const m = d.replacedBy ?? d;
    out.push(pkg(m.path, m.version || DEVEL));
  }
  return out;
}
