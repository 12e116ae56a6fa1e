// Partial layer reads: when a layer's descriptor carries a table of contents of a format read here, the
// scanners' files are fetched by byte ranges instead of the whole blob (walk.ts): zstd:chunked and eStargz
// (announced by the descriptor's annotations), and SOCI (a zTOC from a separate index artifact, which the
// layer source finds and fetches: the descriptor's `soci`).
import type { LayerSoci } from "../../model/image.js";
import { compressionOfMediaType } from "../decompress.js";
import { TocError } from "./errors.js";
import { ESTARGZ_TOC_DIGEST, estargzTocDigest, readEstargzToc } from "./estargz.js";
import { DEFAULT_SOCI_LIMITS, parseZtoc, sociToc } from "./soci.js";
import type { RangeReader, TableOfContents, TocFormat } from "./types.js";
import { walkToc, type TocWalk, type TocWalkOptions } from "./walk.js";
import { DEFAULT_TOC_LIMITS, readZstdChunkedToc, zstdChunkedLocator, type TocLimits } from "./zstd-chunked.js";

export { TocError } from "./errors.js";
export type { RangeReader, TableOfContents, TocEntry, TocFormat } from "./types.js";
export type { TocWalk, TocWalkTuning } from "./walk.js";

export interface TocDescriptor {
  digest: string;
  size: number;
  mediaType: string;
  annotations?: Record<string, string>;
  soci?: LayerSoci;
}

/** The table of contents format a descriptor announces, or undefined (then the layer is read in full). */
export function tocFormat(layer: TocDescriptor): TocFormat | undefined {
  const compression = compressionOfMediaType(layer.mediaType);
  const keys = Object.keys(layer.annotations ?? {});
  if (compression === "zstd") return keys.some((k) => /^io\.(github\.)?containers\.zstd-chunked\.manifest-/.test(k)) ? "zstd:chunked" : undefined;
  // eStargz first: its table gives every file's digest, a zTOC none.
  if (compression === "gzip") return keys.includes(ESTARGZ_TOC_DIGEST) ? "estargz" : layer.soci ? "soci" : undefined;
  return undefined;
}

export interface PartialWalk extends TocWalk {
  format: TocFormat;
}

/**
 * Reads the layer through its table of contents. Throws (TocError, or the reader's error) when the table
 * is malformed or fails its checksum, a range cannot be fetched, or a file's bytes do not match: the caller
 * reads the layer in full then, never keeps a partial answer.
 */
export async function walkPartial(layer: TocDescriptor, reader: RangeReader, opts: Omit<TocWalkOptions, "digest" | "size"> & { tocLimits?: TocLimits }): Promise<PartialWalk> {
  const format = tocFormat(layer);
  const limits = opts.tocLimits ?? DEFAULT_TOC_LIMITS;
  let toc: TableOfContents;
  if (format === "zstd:chunked") toc = await readZstdChunkedToc(layer.digest, zstdChunkedLocator(layer, limits)!, reader, limits, opts.signal);
  else if (format === "estargz") toc = await readEstargzToc(layer.digest, layer.size, estargzTocDigest(layer)!, reader, limits, opts.signal);
  else if (format === "soci") {
    const soci = layer.soci!;
    if ("error" in soci) throw new TocError(layer.digest, soci.error);
    const bytes = Buffer.from(soci.bytes.buffer, soci.bytes.byteOffset, soci.bytes.byteLength);
    const sociLimits = { ...DEFAULT_SOCI_LIMITS, maxZtocBytes: limits.maxTocBytes, maxEntries: limits.maxEntries };
    toc = sociToc(layer, await parseZtoc(layer, bytes, sociLimits), bytes.length, sociLimits);
  }
  else throw new TocError(layer.digest, "no table of contents this reader knows");
  const walk = await walkToc(toc, reader, { ...opts, digest: layer.digest, size: layer.size });
  return { ...walk, format };
}
