// Rust programs built with cargo-auditable (https://github.com/rust-secure-code/cargo-auditable): the crates
// linked in, as zlib-compressed JSON (`{"packages":[{"name","version","source","kind","dependencies","root"}]}`)
// in an ELF section named `.dep-v0`. cargo-auditable gives the section no flags, so it is not loaded and
// lies after every PT_LOAD segment, before the section header table at the end of the file. The file
// streams through consume(): past the loaded part, each zlib header whose first bytes inflate to that JSON
// is kept (a few MiB at most), and at the end a candidate counts only where the section table has a
// non-loaded section starting at that very offset. Nothing else of the executable is held.
import { constants, inflateSync } from "node:zlib";
import type { Package } from "../../model/packages.js";
import { ElfStream, SHF_ALLOC, SHT_NOBITS } from "../elf/elf.js";
import { purl } from "../purl.js";
import { ScannerError } from "../errors.js";
import type { EntryInfo, FileSink, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

/** Compressed bytes tried per candidate zlib header: enough for a dynamic Huffman table and the first literals. */
const PROBE = 256;
/** The most compressed bytes kept per candidate (the data of thousands of crates compresses to ~100 KiB). */
export const MAX_COMPRESSED = 4 << 20;
/** The most the JSON may inflate to (cargo-auditable's own reader stops at 8 MiB). */
export const MAX_JSON = 16 << 20;
export const MAX_CRATES = 100_000;
const MAX_CANDIDATES = 8;
/**
 * Zlib headers probed per file at most. A probe costs 30 to 200 us (a zlib handle and its 32 KiB window); a
 * file made of headers that pass plausible() had 16,000 of them per 128 KiB chunk, 0.5 s of event loop each.
 * Random bytes give about one per 100 MB; a real program's compressed debug sections a few dozen.
 */
export const MAX_PROBES = 256;
const MAX_FIELD = 1024;
/** zlib FLG bytes for CMF 0x78 (deflate, 32 KiB window) without a preset dictionary, one per FLEVEL. */
const FLG = new Set([0x01, 0x5e, 0x9c, 0xda]);
const JSON_START = /^\{\s*"(packages|format)"\s*:/;

export interface Crate {
  name: string;
  version: string;
  /** `crates.io`, `git`, `local`, `registry`, `builtin`, ... as cargo-auditable writes it. */
  source: string;
  kind: "runtime" | "build";
  root: boolean;
  dependencies: number[];
}

/** What the sink leaves for scan(): the crates, or why the embedded data could not be read. */
export type DepInfo = { crates: Crate[] } | { error: string; code?: string };

/**
 * Whether the deflate data after a zlib header at `p` can start the JSON, from the first block header alone:
 * a stored block must have LEN = ~NLEN and start with `{`, a fixed-Huffman block must code `{` first, a
 * dynamic one must declare at most 286 literal and 30 distance codes and a complete code-length code. Zlib
 * handles are dear (a 32 KiB window each); this spares them for nearly all the random 0x78 bytes in symbol
 * tables and debug sections.
 */
export function plausible(b: Buffer, p: number): boolean {
  if (p + 7 > b.length) return true; // too little to tell: the probe decides
  const h = b[p + 2]!;
  const btype = (h >> 1) & 3;
  if (btype === 3) return false;
  if (btype === 0) return (b.readUInt16LE(p + 3) ^ b.readUInt16LE(p + 5)) === 0xffff && b[p + 7] === 0x7b;
  if (btype === 1) {
    // Bits after the 3-bit header, least significant first; Huffman codes are read most significant bit first.
    let code = 0;
    for (let i = 3; i < 11; i++) code = (code << 1) | ((b[p + 2 + (i >> 3)]! >> (i & 7)) & 1);
    return code === 0x30 + 0x7b; // literals 0-143 are the 8-bit codes 0x30-0xbf
  }
  // Dynamic: HLIT, HDIST, HCLEN, then HCLEN + 4 three-bit lengths of the code-length code, which zlib
  // accepts only as a complete prefix code (Kraft sum exactly 1): random bytes rarely are one.
  if (p + 12 > b.length) return true;
  const bits = (at: number, n: number) => {
    let v = 0;
    for (let k = 0; k < n; k++) v |= ((b[p + 2 + ((at + k) >> 3)]! >> ((at + k) & 7)) & 1) << k;
    return v;
  };
  const hlit = bits(3, 5);
  const hdist = bits(8, 5);
  const hclen = bits(13, 4) + 4;
  if (hlit > 29 || hdist > 29) return false;
  let kraft = 0;
  for (let i = 0; i < hclen; i++) {
    const len = bits(17 + 3 * i, 3);
    if (len) kraft += 1 << (7 - len);
  }
  return kraft === 128;
}

function probe(b: Buffer): boolean {
  try {
    const out = inflateSync(b, { finishFlush: constants.Z_SYNC_FLUSH, chunkSize: 1024, maxOutputLength: 1 << 20 });
    return JSON_START.test(out.toString("latin1", 0, 64));
  } catch {
    return false;
  }
}

interface Candidate {
  offset: number;
  chunks: Buffer[];
  length: number;
}

/** Reads cargo-auditable's JSON; throws an Error saying what is wrong with it. */
export function parseDepInfo(json: Buffer): Crate[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json.toString("utf8"));
  } catch (e) {
    throw new Error(`the .dep-v0 data is not JSON (${(e as Error).message})`);
  }
  const pkgs = (doc as { packages?: unknown } | null)?.packages;
  if (!Array.isArray(pkgs)) throw new Error("the .dep-v0 JSON has no packages array");
  if (pkgs.length > MAX_CRATES) throw new Error(`the .dep-v0 JSON lists ${pkgs.length} crates, more than the ${MAX_CRATES} accepted`);
  return pkgs.map((p: unknown, i): Crate => {
    const o = p as Record<string, unknown> | null;
    const str = (k: string, dflt?: string): string => {
      const v = o?.[k] ?? dflt;
      if (typeof v !== "string" || !v || v.length > MAX_FIELD) throw new Error(`crate ${i}: ${k} is not a string of 1 to ${MAX_FIELD} characters`);
      return v;
    };
    const kind = str("kind", "runtime");
    if (kind !== "runtime" && kind !== "build") throw new Error(`crate ${i}: kind ${JSON.stringify(kind)} is neither runtime nor build`);
    const deps = o?.dependencies ?? [];
    if (!Array.isArray(deps) || !deps.every((d) => Number.isInteger(d) && d >= 0 && d < pkgs.length)) {
      throw new Error(`crate ${i}: dependencies are not indices into the packages array`);
    }
    return { name: str("name"), version: str("version"), source: str("source", "crates.io"), kind, root: o?.root === true, dependencies: deps as number[] };
  });
}

export class CargoAuditableScanner implements Scanner {
  readonly name = "cargo-auditable";
  readonly version = "1";
  readonly kind = "package" as const;

  wants(e: EntryInfo): boolean {
    // Executable regular files; a Rust program with the standard library is far over 16 KiB.
    return e.type === "file" && (e.mode & 0o111) !== 0 && e.size >= 16 * 1024;
  }

  consume(): FileSink {
    const elf = new ElfStream();
    const found: Candidate[] = [];
    /** The last PROBE - 1 bytes seen (past the loaded part), whose positions wait for the next chunk's bytes. */
    let carry = Buffer.alloc(0);
    let carryOffset = 0;
    let probes = 0;
    /**
     * Looks for zlib headers of the JSON at positions [from, until) of `window` (file offset `windowOffset`),
     * past the loaded part; a hit keeps `capture(p)`: the compressed bytes from there to the chunk's end.
     */
    const search = (window: Buffer, windowOffset: number, from: number, until: number, capture: (p: number) => Buffer) => {
      let p = Math.max(from, (elf.loadEnd() ?? 0) - windowOffset);
      while (found.length < MAX_CANDIDATES) {
        p = window.indexOf(0x78, p);
        if (p < 0 || p >= until) break;
        if (FLG.has(window[p + 1]!) && plausible(window, p)) {
          if (++probes > MAX_PROBES) break;
          if (!probe(window.subarray(p, p + PROBE))) {
            p++;
            continue;
          }
          const first = capture(p);
          found.push({ offset: windowOffset + p, chunks: [first], length: first.length });
        }
        p++;
      }
    };
    return {
      write(chunk: Buffer): boolean {
        if (probes > MAX_PROBES) return false;
        elf.push(chunk);
        if (!elf.elf) return false;
        if (!elf.header) return true;
        const offset = elf.offset;
        // Candidates found in earlier chunks take this one too, up to their cap.
        for (const c of found) {
          if (c.length < MAX_COMPRESSED && c.offset + c.length === offset) {
            const part = Buffer.from(chunk.subarray(0, MAX_COMPRESSED - c.length));
            c.chunks.push(part);
            c.length += part.length;
          }
        }
        // The loaded segments (nearly all of a program) hold no .dep-v0: nothing to look at or keep.
        if (offset + chunk.length <= (elf.loadEnd() ?? 0)) {
          carry = Buffer.alloc(0);
          return true;
        }
        // A header needs PROBE bytes after it: positions in the last PROBE - 1 bytes wait for the next chunk.
        if (chunk.length >= PROBE) {
          if (carry.length) {
            const joint = Buffer.concat([carry, chunk.subarray(0, PROBE - 1)]);
            const held = carry;
            search(joint, carryOffset, 0, carry.length, (p) => Buffer.concat([held.subarray(p), chunk]).subarray(0, MAX_COMPRESSED));
          }
          search(chunk, offset, 0, chunk.length - PROBE + 1, (p) => Buffer.from(chunk.subarray(p, p + MAX_COMPRESSED)));
          carry = Buffer.from(chunk.subarray(chunk.length - (PROBE - 1)));
          carryOffset = offset + chunk.length - carry.length;
        } else {
          const window = carry.length ? Buffer.concat([carry, chunk]) : chunk;
          const windowOffset = carry.length ? carryOffset : offset;
          search(window, windowOffset, 0, window.length - PROBE + 1, (p) => Buffer.from(window.subarray(p, p + MAX_COMPRESSED)));
          const keep = Math.min(window.length, PROBE - 1);
          carry = Buffer.from(window.subarray(window.length - keep));
          carryOffset = windowOffset + window.length - keep;
        }
        return true;
      },
      // Everything until the program headers are read; then the section header table and all past the loaded
      // part (the search starts there), nothing of the loaded segments in between.
      next(): number {
        const at = elf.position;
        const loadEnd = elf.header ? elf.loadEnd() : undefined;
        if (loadEnd === undefined || at >= loadEnd) return at;
        const table = elf.sectionTable();
        if (table && at < table.end && table.start < loadEnd) return Math.max(at, table.start);
        return loadEnd;
      },
      skip(to: number): void {
        elf.skip(to);
        carry = Buffer.alloc(0);
      },
      end(): DepInfo | undefined {
        if (!elf.header) return undefined;
        if (probes <= MAX_PROBES) search(carry, carryOffset, 0, carry.length, (p) => Buffer.from(carry.subarray(p)));
        if (!found.length && probes > MAX_PROBES) return { error: `more than ${MAX_PROBES} places in it read as the start of zlib data: not searched further for the .dep-v0 section`, code: "SCAN_LIMIT" };
        if (!found.length) return undefined;
        const sections = elf.sections();
        for (const c of found) {
          let data = Buffer.concat(c.chunks);
          if (sections) {
            const s = sections.find((x) => x.offset === c.offset && x.type !== SHT_NOBITS && (x.flags & SHF_ALLOC) === 0 && x.size > 0);
            if (!s) continue; // zlib data that happens to read as JSON, inside some other section
            data = data.subarray(0, s.size);
          }
          let json: Buffer;
          try {
            json = inflateSync(data, { maxOutputLength: MAX_JSON });
          } catch (e) {
            if (e instanceof RangeError) return { error: `the .dep-v0 data at offset ${c.offset} inflates to more than ${MAX_JSON} bytes` };
            return { error: `the .dep-v0 data at offset ${c.offset} does not inflate (${(e as Error).message})` };
          }
          try {
            return { crates: parseDepInfo(json) };
          } catch (e) {
            return { error: (e as Error).message };
          }
        }
        return undefined;
      },
    };
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const [path, value] of files.consumed?.(this.name) ?? []) {
      const info = value as DepInfo;
      if ("error" in info) throw new ScannerError(this.name, path, info.error, info.code);
      // Build-time crates (build scripts, proc macros) are not in the program: reported by no peer either.
      for (const c of info.crates) {
        if (c.kind !== "runtime") continue;
        packages.push({ name: c.name, version: c.version, kind: "binary", package_db: `cargo:${path}`, filepath: path, purl: purl("cargo", c.name, c.version) });
      }
    }
    return { packages };
  }
}
