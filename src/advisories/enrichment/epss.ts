// FIRST EPSS daily scores: `epss_scores-YYYY-MM-DD.csv.gz` (or `epss_scores-current.csv.gz`), a CSV whose first
// line is a comment `#model_version:v2025.03.14,score_date:2025-03-15T00:00:00+0000`, then the header
// `cve,epss,percentile`, then one row per CVE. Plain or gzipped.

import { AdvisoryInputError, MiB, contentText, isCveId, sniffText } from "../input.js";
import type { Enrichment, RawFile, SkippedRecord } from "../../model/advisory.js";
import type { EnrichmentParseResult } from "./common.js";

export interface EpssParseOptions {
  /** Largest (decompressed) file; the full daily file is about 10 MB (default 256 MiB). */
  maxBytes?: number;
  /** The score date (`YYYY-MM-DD`) when the file has no `score_date` comment (files before 2022). */
  date?: string;
}

export interface EpssParseResult extends EnrichmentParseResult {
  epss: NonNullable<Enrichment["epss"]>;
  /** `model_version` from the comment line, when given. */
  model?: string;
  /** The score date every row carries (`YYYY-MM-DD`). */
  date: string;
}

/**
 * Parses an EPSS CSV. Rows that cannot be used (a malformed CVE id, a score outside 0-1, a repeated CVE) are
 * skipped with the reason (`record` is `line N`); a file without the header, or without a score date, throws.
 */
export function parseEpss(file: RawFile, options?: EpssParseOptions): EpssParseResult {
  const text = contentText(file, options?.maxBytes ?? 256 * MiB);
  const lines = text.split(/\r?\n/);
  let i = 0;
  const meta = new Map<string, string>();
  for (; i < lines.length && (lines[i]?.trim() === "" || lines[i]?.startsWith("#")); i++) {
    const line = lines[i] ?? "";
    if (!line.startsWith("#")) continue;
    for (const pair of line.slice(1).split(",")) {
      const colon = pair.indexOf(":");
      if (colon > 0) meta.set(pair.slice(0, colon).trim(), pair.slice(colon + 1).trim());
    }
  }
  const header = (lines[i] ?? "").split(",").map((h) => h.trim().toLowerCase());
  const col = { cve: header.indexOf("cve"), epss: header.indexOf("epss"), percentile: header.indexOf("percentile") };
  if (col.cve < 0 || col.epss < 0 || col.percentile < 0) {
    throw new AdvisoryInputError("BAD_CSV", file.path, `no cve,epss,percentile header (line ${i + 1})`);
  }
  const scoreDate = meta.get("score_date")?.slice(0, 10);
  const date = scoreDate ?? options?.date;
  if (!date || !/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    throw new AdvisoryInputError("BAD_CSV", file.path, "no score_date in the comment line and none given");
  }
  const out: EpssParseResult = { epss: [], skipped: [], date };
  const model = meta.get("model_version");
  if (model && model.length <= 64) out.model = model;
  const seen = new Set<string>();
  const skip = (n: number, reason: string): void => {
    out.skipped.push({ file: file.path, record: `line ${n}`, reason } satisfies SkippedRecord);
  };
  for (i++; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line.trim() === "") continue;
    const cells = line.split(",").map((c) => c.trim());
    const cve = cells[col.cve];
    const epss = Number(cells[col.epss]);
    const percentile = Number(cells[col.percentile]);
    if (!isCveId(cve)) skip(i + 1, `not a CVE id: ${JSON.stringify((cve ?? "").slice(0, 64))}`);
    else if (!(cells[col.epss] && epss >= 0 && epss <= 1)) skip(i + 1, `epss is not a probability: ${JSON.stringify((cells[col.epss] ?? "").slice(0, 32))}`);
    else if (!(cells[col.percentile] && percentile >= 0 && percentile <= 1)) {
      skip(i + 1, `percentile is not within 0-1: ${JSON.stringify((cells[col.percentile] ?? "").slice(0, 32))}`);
    } else if (seen.has(cve)) skip(i + 1, `${cve} repeated`);
    else {
      seen.add(cve);
      out.epss.push({ cve, epss, percentile, date });
    }
  }
  return out;
}

/** An EPSS CSV, plain or gzipped, by its first lines: the `#model_version` comment or the `cve,epss` header. */
export function detectEpss(file: RawFile): boolean {
  const head = sniffText(file.bytes, 1024);
  const lines = head.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines[0]?.startsWith("#model_version")) return true;
  const header = (lines[0]?.startsWith("#") ? lines[1] : lines[0])?.toLowerCase().replace(/\s/g, "");
  return header?.startsWith("cve,epss") ?? false;
}
