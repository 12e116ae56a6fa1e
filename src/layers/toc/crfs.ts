// The entry shape both tables of contents read here inherit from CRFS's stargz (Google's container registry
// filesystem): a JSON list of every tar entry, in archive order, with a large file's later pieces as
// `chunk` entries that follow it. zstd:chunked adds `endOffset` and `chunkType`; eStargz adds per-piece
// digests to every piece. Fields neither reader uses (times, owners, xattrs) are dropped by the schema.
import { z } from "zod";
import { TocError } from "./errors.js";
import type { TocEntry } from "./types.js";

const Int = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const Sha256 = z.string().regex(/^sha256:[0-9a-f]{64}$/);

export const RawEntry = z.object({
  type: z.enum(["reg", "dir", "symlink", "hardlink", "char", "block", "fifo", "chunk"]),
  name: z.string().min(1).max(4096),
  linkName: z.string().max(4096).optional(),
  mode: Int.optional(),
  size: Int.optional(),
  digest: Sha256.optional(),
  offset: Int.optional(),
  endOffset: Int.optional(),
  chunkSize: Int.optional(),
  chunkOffset: Int.optional(),
  chunkDigest: Sha256.optional(),
  chunkType: z.string().optional(),
});
export type RawEntry = z.infer<typeof RawEntry>;

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
