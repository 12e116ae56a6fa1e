// rpm header blobs, as the package databases store them: an index of (tag, type, offset, count) entries
// and a data store. Only the tags a scanner needs are read; every offset is bounds-checked.
import { PortcullisError } from "../../errors.js";

export class RpmHeaderError extends PortcullisError {
  readonly domain = "scanner";
  readonly code = "RPM_HEADER_INVALID";
  override name = "RpmHeaderError";
}

export const Tag = {
  NAME: 1000, VERSION: 1001, RELEASE: 1002, EPOCH: 1003, LICENSE: 1014, ARCH: 1022, SOURCERPM: 1044,
  DIRINDEXES: 1116, BASENAMES: 1117, DIRNAMES: 1118, MODULARITYLABEL: 5096,
} as const;

const STRING = 6;
const INT32 = 4;
const I18NSTRING = 9;
const STRING_ARRAY = 8;

export interface RpmHeader {
  name: string;
  version: string;
  release: string;
  epoch?: number;
  arch?: string;
  sourceRpm?: string;
  module?: string;
  /** The License tag: the package's licence, an SPDX or Fedora short-name expression. */
  license?: string;
  /** With `opts.files`: the installed paths (DIRNAMES[DIRINDEXES[i]] + BASENAMES[i], no leading `/`) it accepts. */
  files?: string[];
}

export interface RpmHeaderOptions {
  /** Read the file list and keep the paths this accepts (file ownership); without it the list is not read. */
  files?: (path: string) => boolean;
}

/** More files than any real package has (texlive's biggest subpackages have about 200,000). */
const MAX_FILES = 1_000_000;

export function parseRpmHeader(blob: Uint8Array, opts: RpmHeaderOptions = {}): RpmHeader {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (buf.length < 8) throw new RpmHeaderError(`header of ${buf.length} bytes is too short`);
  const il = buf.readUInt32BE(0);
  const dl = buf.readUInt32BE(4);
  if (il === 0 || il > 0xffff) throw new RpmHeaderError(`header claims ${il} index entries`);
  const dataStart = 8 + il * 16;
  if (dataStart + dl > buf.length) throw new RpmHeaderError(`header claims ${il} entries and ${dl} data bytes, more than its ${buf.length} bytes`);
  const found = new Map<number, IndexEntry>();
  for (let i = 0; i < il; i++) {
    const p = 8 + i * 16;
    const tag = buf.readUInt32BE(p);
    if (tag >= 1000 && tag <= 5096 && !found.has(tag)) found.set(tag, { type: buf.readUInt32BE(p + 4), offset: buf.readInt32BE(p + 8), count: buf.readUInt32BE(p + 12) });
  }
  const str = (tag: number): string | undefined => {
    const e = found.get(tag);
    if (!e) return undefined;
    if (e.type !== STRING && e.type !== I18NSTRING && e.type !== STRING_ARRAY) throw new RpmHeaderError(`tag ${tag} has type ${e.type}, not a string`);
    if (e.offset < 0 || e.offset >= dl) throw new RpmHeaderError(`tag ${tag} points outside the data (${e.offset} of ${dl})`);
    const start = dataStart + e.offset;
    const end = buf.indexOf(0, start);
    if (end < 0 || end > dataStart + dl) throw new RpmHeaderError(`tag ${tag} string is not terminated`);
    return buf.toString("utf8", start, end);
  };
  const name = str(Tag.NAME);
  const version = str(Tag.VERSION);
  const release = str(Tag.RELEASE);
  if (!name || version === undefined || release === undefined) throw new RpmHeaderError("header lacks NAME, VERSION or RELEASE");
  const h: RpmHeader = { name, version, release };
  const ep = found.get(Tag.EPOCH);
  if (ep) {
    if (ep.type !== INT32 || ep.offset < 0 || ep.offset + 4 > dl) throw new RpmHeaderError("EPOCH is malformed");
    h.epoch = buf.readUInt32BE(dataStart + ep.offset);
  }
  const arch = str(Tag.ARCH);
  if (arch) h.arch = arch;
  const src = str(Tag.SOURCERPM);
  if (src) h.sourceRpm = src;
  const license = str(Tag.LICENSE)?.trim();
  if (license) h.license = license;
  const mod = str(Tag.MODULARITYLABEL);
  if (mod) h.module = mod;
  if (opts.files) h.files = files(buf, dataStart, dl, found, opts.files);
  return h;
}

type IndexEntry = { type: number; offset: number; count: number };

/** The header's file list (BASENAMES, DIRNAMES, DIRINDEXES), bounds-checked, filtered by `keep`. */
function files(buf: Buffer, dataStart: number, dl: number, found: ReadonlyMap<number, IndexEntry>, keep: (path: string) => boolean): string[] {
  const base = found.get(Tag.BASENAMES);
  const dirs = found.get(Tag.DIRNAMES);
  const idx = found.get(Tag.DIRINDEXES);
  if (!base && !dirs && !idx) return []; // a package without files (basesystem, gpg-pubkey)
  if (!base || !dirs || !idx) throw new RpmHeaderError("file list incomplete: BASENAMES, DIRNAMES and DIRINDEXES go together");
  if (base.count !== idx.count) throw new RpmHeaderError(`file list has ${base.count} BASENAMES and ${idx.count} DIRINDEXES`);
  if (base.count > MAX_FILES || dirs.count > MAX_FILES) throw new RpmHeaderError(`file list claims ${Math.max(base.count, dirs.count)} entries`);
  const dirNames = stringArray(buf, dataStart, dl, Tag.DIRNAMES, dirs);
  const baseNames = stringArray(buf, dataStart, dl, Tag.BASENAMES, base);
  if (idx.type !== INT32 || idx.offset < 0 || idx.offset + 4 * idx.count > dl) throw new RpmHeaderError("DIRINDEXES is malformed");
  const out: string[] = [];
  // A directory the package owns is listed as a file of its parent (`/usr/lib/python3.9/site-packages/x.egg-info`).
  for (let i = 0; i < baseNames.length; i++) {
    const d = buf.readInt32BE(dataStart + idx.offset + 4 * i);
    if (d < 0 || d >= dirNames.length) throw new RpmHeaderError(`DIRINDEXES[${i}] = ${d}, but there are ${dirNames.length} DIRNAMES`);
    const path = `${dirNames[d]!}${baseNames[i]!}`.replace(/^\/+/, "");
    if (path && keep(path)) out.push(path);
  }
  return out;
}

function stringArray(buf: Buffer, dataStart: number, dl: number, tag: number, e: IndexEntry): string[] {
  if (e.type !== STRING_ARRAY) throw new RpmHeaderError(`tag ${tag} has type ${e.type}, not a string array`);
  if (e.offset < 0 || e.offset >= dl) throw new RpmHeaderError(`tag ${tag} points outside the data (${e.offset} of ${dl})`);
  const out: string[] = [];
  let at = dataStart + e.offset;
  const end = dataStart + dl;
  for (let i = 0; i < e.count; i++) {
    const z = buf.indexOf(0, at);
    if (z < 0 || z >= end) throw new RpmHeaderError(`tag ${tag} string ${i} of ${e.count} is not terminated inside the data`);
    out.push(buf.toString("utf8", at, z));
    at = z + 1;
  }
  return out;
}

/** `name-version-release.src.rpm` (name may contain dashes) */
export function parseSourceRpm(s: string): { name: string; version: string; release: string } | undefined {
  const m = /^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/.exec(s);
  return m ? { name: m[1]!, version: m[2]!, release: m[3]! } : undefined;
}
