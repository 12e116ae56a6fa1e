// Go binaries: the build information the Go linker embeds (since Go 1.18 inline in the .go.buildinfo
// section): the Go version, the main module and every dependency with its version. Executables stream
// through consume(), which looks for the section's magic and reads only the bytes after it; nothing else
// of the binary is kept.
import type { Package } from "../../indexer/types.js";
import { purl } from "../purl.js";
import type { EntryInfo, FileSink, LayerFiles, Scanner, ScanOutput } from "../types.js";

const MAGIC = Buffer.from("\xff Go buildinf:", "latin1");
const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
/** Header (32 bytes) + two varint-prefixed strings; module lists of big programs run to a few hundred KB. */
const MAX_TAIL = 1 << 20;

export interface GoBuildInfo {
  goVersion: string;
  path?: string;
  main?: { path: string; version: string };
  deps: Array<{ path: string; version: string; replacedBy?: { path: string; version: string } }>;
}

function readVarint(buf: Buffer, off: number): [number, number] | undefined {
  let v = 0;
  let shift = 0;
  for (let i = off; i < buf.length && i < off + 10; i++) {
    const b = buf[i]!;
    v += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [v, i + 1];
    shift += 7;
  }
  return undefined;
}

/** Parses the inline (Go >= 1.18) build info that starts at `buf[0]` (the magic). */
export function parseBuildInfo(buf: Buffer): GoBuildInfo | undefined {
  if (buf.length < 32 || !buf.subarray(0, 14).equals(MAGIC)) return undefined;
  const flags = buf[15]!;
  if ((flags & 0x2) === 0) return undefined; // pre-1.18 pointer format: needs random access; not read
  const v = readVarint(buf, 32);
  if (!v || v[1] + v[0] > buf.length) return undefined;
  const goVersion = buf.toString("utf8", v[1], v[1] + v[0]);
  const m = readVarint(buf, v[1] + v[0]);
  if (!m || m[1] + m[0] > buf.length) return undefined;
  let mod = buf.toString("utf8", m[1], m[1] + m[0]);
  // The module info is wrapped in 16-byte sentinels.
  if (mod.length >= 33 && mod[mod.length - 17] === "\n") mod = mod.slice(16, -16);
  const info: GoBuildInfo = { goVersion, deps: [] };
  for (const line of mod.split("\n")) {
    const f = line.split("\t");
    if (f[0] === "path") info.path = f[1];
    else if (f[0] === "mod" && f[1]) info.main = { path: f[1], version: f[2] ?? "" };
    else if (f[0] === "dep" && f[1]) info.deps.push({ path: f[1], version: f[2] ?? "" });
    else if (f[0] === "=>" && f[1] && info.deps.length) info.deps[info.deps.length - 1]!.replacedBy = { path: f[1], version: f[2] ?? "" };
  }
  return info;
}

export class GoBinaryScanner implements Scanner {
  readonly name = "gobin";
  readonly version = "1";
  readonly kind = "package" as const;

  wants(e: EntryInfo): boolean {
    // Executable regular files big enough to be a Go program.
    return e.type === "file" && (e.mode & 0o111) !== 0 && e.size >= 64 * 1024;
  }

  consume(): FileSink {
    let first = true;
    let carry = Buffer.alloc(0);
    let tail: Buffer[] | undefined;
    let tailLen = 0;
    let notElf = false;
    return {
      write(chunk: Buffer): boolean {
        if (first) {
          first = false;
          if (chunk.length < 4 || !chunk.subarray(0, 4).equals(ELF)) {
            notElf = true;
            return false;
          }
        }
        if (tail) {
          tail.push(chunk);
          tailLen += chunk.length;
          return tailLen < MAX_TAIL;
        }
        const window = carry.length ? Buffer.concat([carry, chunk]) : chunk;
        const at = window.indexOf(MAGIC);
        if (at >= 0) {
          // Copy: tar-stream may reuse the chunk's memory.
          tail = [Buffer.from(window.subarray(at))];
          tailLen = window.length - at;
          return tailLen < MAX_TAIL;
        }
        carry = Buffer.from(window.subarray(Math.max(0, window.length - (MAGIC.length - 1))));
        return true;
      },
      end(): GoBuildInfo | undefined {
        return notElf || !tail ? undefined : parseBuildInfo(Buffer.concat(tail));
      },
    };
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const [path, value] of files.consumed?.(this.name) ?? []) {
      const info = value as GoBuildInfo;
      const db = `go:${path}`;
      packages.push({ name: "stdlib", version: info.goVersion.replace(/^go/, "v"), kind: "binary", package_db: db, filepath: path, purl: purl("golang", "stdlib", info.goVersion.replace(/^go/, "v")) });
      if (info.main) packages.push({ name: info.main.path, version: info.main.version, kind: "binary", package_db: db, filepath: path, purl: purl("golang", info.main.path, info.main.version) });
      for (const d of info.deps) {
        // A module replaced by another module version runs that version's code; a directory replacement
        // has none ("(devel)"), so the required version stands.
        const eff = d.replacedBy && d.replacedBy.version && d.replacedBy.version !== "(devel)" ? d.replacedBy : d;
        packages.push({ name: d.path, version: eff.version, kind: "binary", package_db: db, filepath: path, purl: purl("golang", d.path, eff.version) });
      }
    }
    return { packages };
  }
}
