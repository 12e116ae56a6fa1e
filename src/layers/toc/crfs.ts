// The entry shape both tables of contents read here inherit from CRFS's stargz (Google's container registry
// filesystem): a JSON list of every tar entry, in archive order, with a large file's later pieces as
// `chunk` entries that follow it. zstd:chunked adds `endOffset` and `chunkType`; eStargz adds per-piece
// digests to every piece. Fields neither reader uses (times, owners, xattrs) are dropped by the schema.
import { z } from "zod";
import { TocError } from "./errors.js";
import type { TocEntry } from "./types.js";

/** One entry of a CRFS-style table, with the fields the readers use (the rest are dropped). */
export interface RawEntry {
  type: "reg" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "chunk";
  name: string;
  linkName?: string;
  mode?: number;
  size?: number;
  digest?: string;
  offset?: number;
  endOffset?: number;
  chunkSize?: number;
  chunkOffset?: number;
  chunkDigest?: string;
  chunkType?: string;
}

const TYPES = new Set<string>(["reg", "dir", "symlink", "hardlink", "char", "block", "fifo", "chunk"]);
const SHA256 = /^sha256:[0-9a-f]{64}$/;
const INT_FIELDS = ["mode", "size", "offset", "endOffset", "chunkSize", "chunkOffset"] as const;

/**
 * One entry checked and copied, or what is wrong with it (`field: why`). Checked by hand, not by a schema: a
 * table has an entry per file (16,175 for the large benchmark layer, up to a million accepted), and a schema
 * library's parse took 100 to 250 ms of a partial read that takes about a second.
 */
export function parseRawEntry(x: unknown): RawEntry | string {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return "(entry): not an object";
  const o = x as Record<string, unknown>;
  if (typeof o.type !== "string" || !TYPES.has(o.type)) return `type: not one of ${[...TYPES].join(", ")}`;
  if (typeof o.name !== "string" || o.name.length < 1 || o.name.length > 4096) return "name: not a string of 1 to 4096 characters";
  const e: RawEntry = { type: o.type as RawEntry["type"], name: o.name };
  if (o.linkName !== undefined) {
    if (typeof o.linkName !== "string" || o.linkName.length > 4096) return "linkName: not a string of at most 4096 characters";
    e.linkName = o.linkName;
  }
  for (const k of INT_FIELDS) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return `${k}: not a whole number from 0 to 2^53-1`;
    e[k] = v;
  }
  for (const k of ["digest", "chunkDigest"] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== "string" || !SHA256.test(v)) return `${k}: not sha256:<64 hex digits>`;
    e[k] = v;
  }
  if (o.chunkType !== undefined) {
    if (typeof o.chunkType !== "string") return "chunkType: not a string";
    e.chunkType = o.chunkType;
  }
  return e;
}

/** CRFS entry types as the tar walk names them (tar-stream's names). */
export const ENTRY_TYPES: Record<Exclude<RawEntry["type"], "chunk">, TocEntry["type"]> = { reg: "file", dir: "directory", symlink: "symlink", hardlink: "link", char: "other", block: "other", fifo: "other" };

/**
 * Entries checked between two turns of the event loop: a hostile table of 2,000,000 tiny entries took 1.6 to
 * 2 s to check in one go. (The JSON.parse before it is one call: up to the table's 64 MiB, 0.6 to 4 s for the
 * worst shapes; the indexer's worker processes keep it off the webhook's event loop.)
 */
export const TURN_ENTRIES = 16_384;

const RawToc = z.object({ version: z.literal(1), entries: z.array(z.unknown()) });

/** The raw entries of a table's JSON (`{"version": 1, "entries": [...]}`), at most `maxEntries`; TocError otherwise. */
export function crfsEntries(layer: string, format: string, json: Buffer, maxEntries: number): unknown[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json.toString("utf8"));
  } catch (e) {
    throw new TocError(layer, `${format} table of contents is not JSON: ${(e as Error).message.slice(0, 120)}`);
  }
  const top = RawToc.safeParse(doc);
  if (!top.success) throw new TocError(layer, `${format} table of contents: ${top.error.issues[0]?.path.join(".") || "(top level)"}: ${top.error.issues[0]?.message}`);
  if (top.data.entries.length > maxEntries) throw new TocError(layer, `${format} table of contents has ${top.data.entries.length} entries, over the ${maxEntries} accepted`);
  return top.data.entries;
}
