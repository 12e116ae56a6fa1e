// The build information the Go linker embeds in every program, as `go version -m` reads it. It starts
// with a 16-byte aligned header: the magic "\xff Go buildinf:", the pointer size, and flags (bit 0 big
// endian, bit 1 "inline"). Since Go 1.18 the Go version and the module text follow inline as two
// varint-prefixed strings; before, the header holds two pointers to Go string headers (runtime.buildVersion
// and runtime.modinfo) whose bytes lie elsewhere in the file, usually earlier (in .rodata).

export const MAGIC = Buffer.from("\xff Go buildinf:", "latin1");
const FLAG_BIG_ENDIAN = 0x1;
const FLAG_INLINE = 0x2;
/** The module text is wrapped in two 16-byte sentinels; `go version -m` cuts them off the same way. */
const SENTINEL = 16;

export interface GoModule {
  path: string;
  version: string;
}

export interface GoBuildInfo {
  /** As the binary records it: `go1.22.1`, `go1.22.1 X:loopvar`, `go1.26.0-X:foo`, `devel go1.23-abc ...`. */
  goVersion: string;
  /** The main package's import path (`path` line); the only identity of a GOPATH build. */
  path?: string;
  main?: GoModule;
  deps: Array<GoModule & { replacedBy?: GoModule }>;
}

/** The pointer-format header of a binary built before Go 1.18: where the two string headers are. */
export interface BuildInfoPointers {
  ptrSize: 4 | 8;
  bigEndian: boolean;
  versionAddr: number;
  modAddr: number;
}

function readVarint(buf: Buffer, off: number): [number, number] | "more" | undefined {
  let v = 0;
  let shift = 0;
  for (let i = off; i < off + 10; i++) {
    if (i >= buf.length) return "more";
    const b = buf[i]!;
    v += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [v, i + 1];
    shift += 7;
  }
  return undefined;
}

/** The module lines (`path`, `mod`, `dep`, `=>`) of the text between the sentinels. */
export function parseModInfo(goVersion: string, raw: string): GoBuildInfo {
  let mod = raw;
  mod = mod.length >= 2 * SENTINEL + 1 && mod[mod.length - SENTINEL - 1] === "\n" ? mod.slice(SENTINEL, -SENTINEL) : "";
  const info: GoBuildInfo = { goVersion, deps: [] };
  for (const line of mod.split("\n")) {
    const f = line.split("\t");
    if (f[0] === "path" && f[1]) info.path = f[1];
    else if (f[0] === "mod" && f[1]) info.main = { path: f[1], version: f[2] ?? "" };
    else if (f[0] === "dep" && f[1]) info.deps.push({ path: f[1], version: f[2] ?? "" });
    else if (f[0] === "=>" && f[1] && info.deps.length) info.deps[info.deps.length - 1]!.replacedBy = { path: f[1], version: f[2] ?? "" };
  }
  return info;
}

/**
 * Reads the header at `buf[0]` (the magic). Inline (Go >= 1.18): the build info, or "more" when `buf`
 * ends before it does. Pointer format: the pointers, to be followed by the caller. undefined: not build
 * info (a damaged header, or a stray copy of the magic).
 */
export function parseHeader(buf: Buffer): GoBuildInfo | BuildInfoPointers | "more" | undefined {
  if (buf.length < 32) return "more";
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const ptrSize = buf[14]!;
  const flags = buf[15]!;
  if ((flags & FLAG_INLINE) === 0) {
    if (ptrSize !== 4 && ptrSize !== 8) return undefined;
    const bigEndian = (flags & FLAG_BIG_ENDIAN) !== 0;
    return { ptrSize, bigEndian, versionAddr: readPtr(buf, 16, ptrSize, bigEndian), modAddr: readPtr(buf, 16 + ptrSize, ptrSize, bigEndian) };
  }
  const v = readVarint(buf, 32);
  if (v === "more" || v === undefined) return v;
  if (v[0] > 1024) return undefined;
  if (v[1] + v[0] > buf.length) return "more";
  const goVersion = buf.toString("utf8", v[1], v[1] + v[0]);
  if (!/^(go|devel)/.test(goVersion)) return undefined;
  const m = readVarint(buf, v[1] + v[0]);
  if (m === "more" || m === undefined) return m;
  if (m[1] + m[0] > buf.length) return "more";
  return parseModInfo(goVersion, buf.toString("utf8", m[1], m[1] + m[0]));
}

export function readPtr(buf: Buffer, off: number, ptrSize: 4 | 8, bigEndian: boolean): number {
  if (ptrSize === 4) return bigEndian ? buf.readUInt32BE(off) : buf.readUInt32LE(off);
  return Number(bigEndian ? buf.readBigUInt64BE(off) : buf.readBigUInt64LE(off));
}

export function isPointers(x: GoBuildInfo | BuildInfoPointers): x is BuildInfoPointers {
  return (x as BuildInfoPointers).ptrSize !== undefined;
}

/**
 * The standard library's version as a module version: `go1.22.1` → `v1.22.1`, without what Go appends
 * after it (` X:loopvar` experiments, `-X:foo` since Go 1.26, ` (Red Hat 1.22.1-1.el9)` vendor builds).
 */
export function stdlibVersion(goVersion: string): string {
  const m = /^go(\d+(?:\.\d+)*(?:(?:rc|beta)\d+)?)/.exec(goVersion);
  if (m) return `v${m[1]}`;
  return goVersion.split(" ")[0]!.replace(/^go/, "v");
}
