// NVD CVE API 2.0 (a page of `/rest/json/cves/2.0`, or the JSON 2.0 feed files, plain or gzipped):
// `vulnerabilities[].cve.metrics.cvssMetricV40/V31/V30/V2[]`, each with `source`, `type` (Primary: NVD's own
// assessment; Secondary: a CNA's) and `cvssData.{version, vectorString, baseScore}`.

import { z } from "zod";
import { CvssError, parseCvss, toCvss } from "../cvss.js";
import { AdvisoryInputError, MiB, contentText, hasControlChars, isCveId, parseJsonText, sniffText } from "../input.js";
import type { Cvss, Enrichment, RawFile } from "../../model/advisory.js";
import type { EnrichmentParseResult } from "./common.js";

export interface NvdParseOptions {
  /** Largest (decompressed) file (default 384 MiB; a 2,000-record API page is about 10 MB, a yearly feed ~200 MB). */
  maxBytes?: number;
}

export interface NvdParseResult extends EnrichmentParseResult {
  cvss: NonNullable<Enrichment["cvss"]>;
}

/** Metric lists, newest CVSS version first. */
const METRIC_KEYS = [
  ["cvssMetricV40", ["4.0"]],
  ["cvssMetricV31", ["3.1"]],
  ["cvssMetricV30", ["3.0"]],
  ["cvssMetricV2", ["2.0"]],
] as const;

const Metric = z.object({
  source: z.string().max(256).nullish(),
  type: z.string().max(32).nullish(),
  cvssData: z.object({ version: z.string().max(8), vectorString: z.string().max(512), baseScore: z.number().nullish() }),
});

/**
 * Parses an NVD page or feed into per-CVE CVSS lists: Primary before Secondary within a version; `source` is
 * "nvd" for NVD's own scores (nvd@nist.gov), else the CNA's source identifier. A record with no metrics gives an
 * empty list (NVD knows the CVE, has no score). A metric that cannot be used is skipped (`CVE-…#cvssMetricV31[0]`).
 */
export function parseNvd(file: RawFile, options?: NvdParseOptions): NvdParseResult {
  const value = parseJsonText(file.path, contentText(file, options?.maxBytes ?? 384 * MiB));
  const list = value !== null && typeof value === "object" ? (value as { vulnerabilities?: unknown }).vulnerabilities : undefined;
  const format = value !== null && typeof value === "object" ? (value as { format?: unknown }).format : undefined;
  const first: unknown = Array.isArray(list) ? list[0] : undefined;
  const firstCve = first !== null && typeof first === "object" ? (first as { cve?: unknown }).cve : undefined;
  const firstHasCve = firstCve !== null && typeof firstCve === "object"; // CSAF has "cve" strings there
  if (!Array.isArray(list) || !(format === "NVD_CVE" || list.length === 0 || firstHasCve)) {
    throw new AdvisoryInputError("BAD_SHAPE", file.path, "not an NVD CVE API 2.0 document: no vulnerabilities list of cve records");
  }
  const out: NvdParseResult = { cvss: [], skipped: [] };
  const seen = new Set<string>();
  list.forEach((item, i) => {
    const cve = item !== null && typeof item === "object" ? (item as { cve?: unknown }).cve : undefined;
    const id = cve !== null && typeof cve === "object" ? (cve as { id?: unknown }).id : undefined;
    if (!isCveId(id)) {
      out.skipped.push({ file: file.path, record: `vulnerabilities[${i}]`, reason: "no cve.id, or not a CVE id" });
      return;
    }
    if (seen.has(id)) {
      out.skipped.push({ file: file.path, record: id, reason: `${id} repeated` });
      return;
    }
    seen.add(id);
    const metrics = (cve as { metrics?: unknown }).metrics;
    const scores: Cvss[] = [];
    for (const [key, versions] of METRIC_KEYS) {
      const raw = metrics !== null && typeof metrics === "object" ? (metrics as Record<string, unknown>)[key] : undefined;
      if (raw === undefined) continue;
      if (!Array.isArray(raw)) {
        out.skipped.push({ file: file.path, record: `${id}#${key}`, reason: "not a list" });
        continue;
      }
      const primary: Cvss[] = [];
      const secondary: Cvss[] = [];
      raw.forEach((m, j) => {
        const record = `${id}#${key}[${j}]`;
        const parsed = Metric.safeParse(m);
        if (!parsed.success) {
          out.skipped.push({ file: file.path, record, reason: `invalid metric: ${parsed.error.issues[0]?.message ?? "invalid"}` });
          return;
        }
        const { source, type, cvssData } = parsed.data;
        try {
          const vector = parseCvss(cvssData.vectorString);
          if (!(versions as readonly string[]).includes(vector.version) || cvssData.version !== vector.version) {
            throw new CvssError(cvssData.vectorString, `${key} with version ${cvssData.version} holds a CVSS ${vector.version} vector`);
          }
          const c = toCvss(vector.vector, sourceName(source));
          // NVD's own Base score is kept when it gives one; the computed one otherwise.
          const given = cvssData.baseScore;
          if (typeof given === "number" && given >= 0 && given <= 10) c.score = given;
          (type === "Primary" ? primary : secondary).push(c);
        } catch (e) {
          if (!(e instanceof CvssError)) throw e;
          out.skipped.push({ file: file.path, record, reason: e.message });
        }
      });
      scores.push(...primary, ...secondary);
    }
    out.cvss.push({ cve: id, cvss: scores });
  });
  return out;
}

function sourceName(source: string | null | undefined): string | undefined {
  if (!source || hasControlChars(source)) return undefined;
  return source === "nvd@nist.gov" ? "nvd" : source;
}

/**
 * An NVD CVE API 2.0 document, by its `"format": "NVD_CVE"` or a `vulnerabilities` list of `cve` objects near the
 * top (a CSAF document's `vulnerabilities` hold `cve` strings, and is not one).
 */
export function detectNvd(file: RawFile): boolean {
  const head = sniffText(file.bytes, 16 * 1024).trimStart();
  return head.startsWith("{") && (/"format"\s*:\s*"NVD_CVE"/.test(head) || /"vulnerabilities"\s*:\s*\[\s*\{\s*"cve"\s*:\s*\{/.test(head));
}

/** The `.meta` file NVD publishes beside each feed: its change time, sizes and digest, an update fingerprint. */
export interface NvdFeedMeta {
  lastModifiedDate: string;
  /** Size of the uncompressed feed, in bytes. */
  size?: number;
  zipSize?: number;
  gzSize?: number;
  /** SHA-256 of the uncompressed feed, lower-case hex. */
  sha256: string;
}

/** Parses a feed `.meta` file (`lastModifiedDate:…`, `size:…`, `zipSize:…`, `gzSize:…`, `sha256:…`, one per line). */
export function parseNvdMeta(file: RawFile): NvdFeedMeta {
  const text = contentText(file, 64 * 1024);
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const lastModifiedDate = fields.get("lastModifiedDate");
  const sha256 = fields.get("sha256");
  if (!lastModifiedDate || !/^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(lastModifiedDate)) {
    throw new AdvisoryInputError("BAD_SHAPE", file.path, "not an NVD feed .meta file: no lastModifiedDate");
  }
  if (!sha256 || !/^[0-9A-Fa-f]{64}$/.test(sha256)) throw new AdvisoryInputError("BAD_SHAPE", file.path, "not an NVD feed .meta file: no sha256");
  const meta: NvdFeedMeta = { lastModifiedDate, sha256: sha256.toLowerCase() };
  for (const key of ["size", "zipSize", "gzSize"] as const) {
    const v = fields.get(key);
    if (v !== undefined && /^\d{1,15}$/.test(v)) meta[key] = Number(v);
  }
  return meta;
}

/** An NVD feed `.meta` file, by its first line. */
export function detectNvdMeta(file: RawFile): boolean {
  return /^lastModifiedDate:\d{4}-/.test(sniffText(file.bytes, 256));
}
