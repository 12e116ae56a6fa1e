// rpm header blobs, as the package databases store them: an index of (tag, type, offset, count) entries
// and a data store. Only the tags a scanner needs are read; every offset is bounds-checked.

export class RpmHeaderError extends Error {
  override name = "RpmHeaderError";
}

export const Tag = { NAME: 1000, VERSION: 1001, RELEASE: 1002, EPOCH: 1003, ARCH: 1022, SOURCERPM: 1044, MODULARITYLABEL: 5096 } as const;

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
}

export function parseRpmHeader(blob: Uint8Array): RpmHeader {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (buf.length < 8) throw new RpmHeaderError(`header of ${buf.length} bytes is too short`);
  const il = buf.readUInt32BE(0);
  const dl = buf.readUInt32BE(4);
  if (il === 0 || il > 0xffff) throw new RpmHeaderError(`header claims ${il} index entries`);
  const dataStart = 8 + il * 16;
  if (dataStart + dl > buf.length) throw new RpmHeaderError(`header claims ${il} entries and ${dl} data bytes, more than its ${buf.length} bytes`);
  const found = new Map<number, { type: number; offset: number; count: number }>();
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
  const mod = str(Tag.MODULARITYLABEL);
  if (mod) h.module = mod;
  return h;
}

/** `name-version-release.src.rpm` (name may contain dashes) */
export function parseSourceRpm(s: string): { name: string; version: string; release: string } | undefined {
  const m = /^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/.exec(s);
  return m ? { name: m[1]!, version: m[2]!, release: m[3]! } : undefined;
}
