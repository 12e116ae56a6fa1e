// What the enrichment parsers share beyond reading input (../input.ts): the result type and the date check.

import type { Enrichment, SkippedRecord } from "../../model/advisory.js";

/** An Enrichment plus the rows or records that could not be used, each with the reason. */
export interface EnrichmentParseResult extends Enrichment {
  skipped: SkippedRecord[];
}

/** `YYYY-MM-DD` (a real calendar date), as KEV and EPSS write dates. */
export function isIsoDate(s: unknown): s is string {
  if (typeof s !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
}
