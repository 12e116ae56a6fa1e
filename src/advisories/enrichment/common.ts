// What the enrichment parsers share: the result type and reading a possibly gzipped file with bounds.

import { checkSize, decodeUtf8, gunzipBounded, isGzip } from "../input-guard.js";
import type { Enrichment, RawFile, SkippedRecord } from "../types.js";

/** An Enrichment plus the rows or records that could not be used, each with the reason. */
export interface EnrichmentParseResult extends Enrichment {
  skipped: SkippedRecord[];
}

/** The file's bytes, gunzipped when they are gzip (`.csv.gz`, `.json.gz`), bounded either way. */
export function contentBytes(file: RawFile, maxBytes: number): Uint8Array {
  if (isGzip(file.bytes)) return gunzipBounded(file.path, file.bytes, maxBytes);
  checkSize(file.path, file.bytes, maxBytes);
  return file.bytes;
}

export function contentText(file: RawFile, maxBytes: number): string {
  return decodeUtf8(file.path, contentBytes(file, maxBytes)).replace(/^\uFEFF/, "");
}

/** `YYYY-MM-DD` (a real calendar date), as KEV and EPSS write dates. */
export function isIsoDate(s: unknown): s is string {
  if (typeof s !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
}
