// Node.js runtime vulnerabilities from nodejs/security-wg: `vuln/core/index.json` (an object keyed "1".."N") or
// the per-entry files `vuln/core/<N>.json`. Each entry gives semver ranges for the `node` binary: affected iff
// the version satisfies `vulnerable` and not `patched`. docs/advisories.md has the mapping.

import semver from "semver";
import { z } from "zod";
import { CvssError, severityFromCvss, toCvss } from "../../cvss.js";
import { CVE_RE, KiB, MiB, firstIssue, hasControlChars, httpUrl, parseJsonBytes } from "../../input.js";
import type { Advisory, AffectedPackage, Cvss, ParseResult, RawFile, Severity, SkippedRecord } from "../../../model/advisory.js";

export interface NodejsParseOptions {
  /** Largest file (default 16 MiB; index.json is about 120 KB). */
  maxFileBytes?: number;
}

const DEFAULT_MAX_FILE_BYTES = 16 * MiB;

const SEVERITIES: Readonly<Record<string, Severity>> = { critical: "Critical", high: "High", medium: "Medium", low: "Low" };

const Range = z
  .string()
  .max(1024)
  .refine((s) => !hasControlChars(s), "control character in range");
const Entry = z.object({
  cve: z.array(z.string().max(64)).max(1000),
  vulnerable: Range,
  patched: Range.nullish(),
  severity: z.string().max(32).nullish(),
  ref: z.string().max(4096).nullish(),
  description: z.string().max(16 * KiB).nullish(),
  overview: z.string().max(1 * MiB).nullish(),
  publish_date: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, "not a YYYY-MM-DD date")
    .nullish(),
  affectedEnvironments: z.array(z.string().max(64)).max(100).nullish(),
  cvss: z.string().max(512).nullish(),
  cvss_score: z.number().nullish(),
  type: z.string().max(1024).nullish(),
});
type NodejsEntry = z.infer<typeof Entry>;

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** One entry file (`vuln/core/171.json`) rather than the index: an object with `vulnerable` and a `cve` list. */
function isEntry(v: Record<string, unknown>): boolean {
  return typeof v.vulnerable === "string" && Array.isArray(v.cve);
}

/**
 * Parses `vuln/core/index.json` and per-entry `vuln/core/<N>.json` files. An entry of the wrong shape (or with
 * ranges semver cannot read) is a SkippedRecord; a file that is not JSON, or too large, throws AdvisoryInputError.
 * An entry identical to an earlier one under another key is skipped as a duplicate (index.json has one: 141 and
 * 150); an entry whose first CVE is already another entry's id gets the id `NSWG-CORE-<key>`.
 */
export function parseNodejsCore(files: RawFile[], options?: NodejsParseOptions): ParseResult {
  const max = options?.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const out: ParseResult = { advisories: [], skipped: [] };
  const seen = new Map<string, { key: string; json: string }>();
  for (const file of files) {
    const value = parseJsonBytes(file.path, file.bytes, max);
    if (!isPlainObject(value)) {
      out.skipped.push({ file: file.path, record: basename(file.path), reason: "not a Node.js core index: expected a JSON object" });
      continue;
    }
    let entries: Array<[string, unknown]>;
    if (isEntry(value)) {
      const key = basename(file.path).replace(/\.json$/i, "");
      if (!/^\d{1,9}$/.test(key)) {
        out.skipped.push({ file: file.path, record: basename(file.path), reason: "an entry file's name must be its number (<N>.json)" });
        continue;
      }
      entries = [[key, value]];
    } else {
      entries = Object.entries(value);
    }
    for (const [key, raw] of entries) {
      const record = key.length > 64 ? `${key.slice(0, 64)}…` : key;
      if (!/^\d{1,9}$/.test(key)) {
        out.skipped.push({ file: file.path, record, reason: "key is not an entry number" });
        continue;
      }
      const mapped = mapEntry(raw, key, file.path, seen);
      if ("skip" in mapped) out.skipped.push({ file: file.path, record, reason: mapped.skip });
      else {
        out.advisories.push(mapped.advisory);
        out.skipped.push(...mapped.notes);
      }
    }
  }
  return out;
}

function mapEntry(
  raw: unknown,
  key: string,
  file: string,
  seen: Map<string, { key: string; json: string }>,
): { advisory: Advisory; notes: SkippedRecord[] } | { skip: string } {
  const parsed = Entry.safeParse(raw);
  if (!parsed.success) {
    return { skip: `invalid entry: ${firstIssue(parsed.error)}` };
  }
  const e = parsed.data;
  const cves = [...new Set(e.cve)];
  const badCve = cves.find((c) => !CVE_RE.test(c));
  if (badCve !== undefined) return { skip: `not a CVE id: ${JSON.stringify(badCve.slice(0, 64))}` };
  const vulnerable = e.vulnerable.trim();
  const patched = e.patched?.trim() || undefined;
  if (!vulnerable || semver.validRange(vulnerable) === null) return { skip: `vulnerable: semver cannot read ${JSON.stringify(vulnerable)}` };
  if (patched !== undefined && semver.validRange(patched) === null) return { skip: `patched: semver cannot read ${JSON.stringify(patched)}` };

  let id = cves[0] ?? `NSWG-CORE-${key}`;
  const json = JSON.stringify(e);
  const earlier = seen.get(id);
  if (earlier) {
    if (earlier.json === json) return { skip: `duplicate of entry ${earlier.key}` };
    id = `NSWG-CORE-${key}`;
  }
  seen.set(id, { key, json });
  const aliases = cves.filter((c) => c !== id);

  const notes: SkippedRecord[] = [];
  const cvss: Cvss[] = [];
  if (e.cvss) {
    // The file writes `3.0/AV:N/...`: the version without the `CVSS:` label.
    const vector = e.cvss.startsWith("CVSS:") ? e.cvss : `CVSS:${e.cvss}`;
    try {
      cvss.push(toCvss(vector, "nodejs"));
    } catch (err) {
      if (!(err instanceof CvssError)) throw err;
      notes.push({ file, record: `${key}#cvss`, reason: err.message });
    }
  }
  const vendor = e.severity?.toLowerCase();
  let severity: Severity = (vendor && SEVERITIES[vendor]) || "Unknown";
  if (severity === "Unknown" && cvss[0]?.score !== undefined) severity = severityFromCvss(cvss[0].score);

  const pkg: AffectedPackage = {
    ecosystem: "Node.js",
    name: "node",
    nameKind: "binary",
    fixState: patched ? "fixed" : "not_fixed",
    fixedVersions: patched ? fixedVersionsOf(patched) : [],
    ranges: [],
    constraints: patched ? { vulnerable, patched } : { vulnerable },
  };
  const environments = environmentsOf(e);
  if (environments.length) pkg.detail = { affectedEnvironments: environments };

  const advisory: Advisory = {
    id,
    aliases,
    advisoryIds: [],
    severity,
    cvss,
    references: [],
    affected: [pkg],
    origin: { file, record: key },
  };
  const ref = httpUrl(e.ref);
  if (ref) advisory.references.push({ type: "ADVISORY", url: ref });
  if (e.description) advisory.summary = e.description.trim();
  if (e.overview) advisory.details = e.overview.trim();
  if (e.publish_date) advisory.published = `${e.publish_date}T00:00:00Z`;
  if (e.severity) advisory.vendorSeverity = e.severity;
  return { advisory, notes };
}

/** The lowest version of each `||` alternative of `patched` (`^20.20.2 || >= 10.9.0` → 20.20.2, 10.9.0). */
function fixedVersionsOf(patched: string): string[] {
  const out: string[] = [];
  for (const part of patched.split("||")) {
    try {
      const v = semver.minVersion(part.trim())?.version;
      if (v && !out.includes(v)) out.push(v);
    } catch {
      // validRange accepted the whole; an alternative semver cannot bound adds no fixed version
    }
  }
  return out;
}

/** `all`, `linux`, `win32`, `darwin`...: a win32-only entry does not apply to a Linux container. */
function environmentsOf(e: NodejsEntry): string[] {
  return (e.affectedEnvironments ?? []).filter((s) => /^[a-z0-9_-]{1,32}$/i.test(s));
}

/**
 * Whether a file is Node.js core data, by content: a JSON object whose keys are entry numbers and whose first
 * entry has `vulnerable` and `patched`, or one entry file (an object with `cve` and `vulnerable`). Never throws.
 */
export function detectNodejsCore(file: RawFile, options?: NodejsParseOptions): boolean {
  try {
    const head = file.bytes.subarray(0, 64).toString("utf8").trimStart();
    if (!head.startsWith("{")) return false;
    const value = parseJsonBytes(file.path, file.bytes, options?.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES);
    if (!isPlainObject(value)) return false;
    if (isEntry(value)) return "patched" in value || "severity" in value;
    const keys = Object.keys(value);
    if (keys.length === 0 || !keys.every((k) => /^\d{1,9}$/.test(k))) return false;
    const first = value[keys[0] ?? ""];
    return isPlainObject(first) && "vulnerable" in first && "patched" in first;
  } catch {
    return false;
  }
}
