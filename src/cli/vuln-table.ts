// The vulnerability table block and Trivy's CI filters (--severity, --ignore-unfixed), shared by `portcullis
// scan` (matches from its own store) and `portcullis report --vulns` (a VulnerabilityReport from the report
// API). Types only from the matcher: this module loads nothing heavy, so either command can use it.
import type { Severity } from "../model/advisory.js";
import type { Coverage, Match, VulnerabilitySummary } from "../model/match.js";
import { age } from "./age.js";
import { UsageError } from "./exit.js";

export const SEVERITY_ORDER: readonly Severity[] = ["Critical", "High", "Medium", "Low", "Negligible", "Unknown"];

/** The most finding lines the table prints; the rest are counted and left to the JSON output. */
export const TABLE_LIMIT = 50;

export const NO_ADVISORY_DATA = "vulnerabilities: not checked: the store has no advisory data; run `portcullis db update` (or `portcullis db import FILE` / `portcullis db pull REF` for an offline bundle)\n";

export interface VulnFilter {
  /** Only these severities are shown and counted; undefined = all. */
  severities?: ReadonlySet<Severity>;
  /** Only findings with a fixed version to upgrade to. */
  ignoreUnfixed: boolean;
}

/** What the table needs of a finding. */
export type TableMatch = Pick<Match, "id" | "severity" | "fixedIn" | "fixState" | "flagged"> & { package: Pick<Match["package"], "name" | "version"> };

/** What the table shows: findings already filtered, their summary, the advisory data's age and the coverage. */
export type TableInput =
  | { data: false }
  | {
      data: true;
      matches: readonly TableMatch[];
      summary: VulnerabilitySummary;
      /** Each advisory source and when its latest operation was recorded (enrichment sources are left out). */
      sources: ReadonlyArray<{ source: string; kind?: string; latest: { createdAt: string } }>;
      /** Absent when the report came from a server that does not say (another Clair). */
      result?: { coverage: Coverage };
    };

/** `--severity critical,HIGH` → the set, or a usage error naming the unknown word. */
export function parseSeverities(text: string): Set<Severity> {
  const out = new Set<Severity>();
  for (const word of text.split(",").map((w) => w.trim()).filter(Boolean)) {
    const sev = SEVERITY_ORDER.find((s) => s.toLowerCase() === word.toLowerCase());
    if (!sev) throw new UsageError(`--severity: unknown severity ${JSON.stringify(word)}; known: ${SEVERITY_ORDER.map((s) => s.toUpperCase()).join(", ")}`);
    out.add(sev);
  }
  if (!out.size) throw new UsageError("--severity needs at least one severity");
  return out;
}

/** What is shown and what counts: no under-investigation findings, then the severity and fix filters. */
export function filterMatches<M extends Pick<Match, "severity" | "fixedIn" | "flagged">>(matches: readonly M[], filter: VulnFilter): M[] {
  return matches.filter((m) => !m.flagged && (!filter.severities || filter.severities.has(m.severity)) && (!filter.ignoreUnfixed || m.fixedIn !== undefined));
}

const FIX_WORDS: Record<string, string> = {
  not_fixed: "not fixed", wont_fix: "won't fix", deferred: "fix deferred", end_of_life: "not fixed (end of life)", affected: "not fixed",
};

function fixText(m: TableMatch): string {
  return m.fixedIn !== undefined ? `fixed in ${m.fixedIn}` : FIX_WORDS[m.fixState] ?? m.fixState.replace(/_/g, " ");
}

const STATE_WORDS: Record<string, string> = { supported: "supported", no_data: "no data", unsupported: "unsupported", end_of_life: "end of life" };

function coverageText(c: Coverage): string {
  const d = c.distribution;
  const parts: string[] = [];
  if (d) parts.push(`${d.ecosystem ?? (d.prettyName || d.did || "distribution")} ${STATE_WORDS[d.state] ?? d.state}${d.endOfLife ? ` (${d.endOfLife})` : ""}`);
  else parts.push("no distribution");
  for (const e of c.ecosystems) if (e.ecosystem !== d?.ecosystem) parts.push(`${e.ecosystem} ${STATE_WORDS[e.state] ?? e.state}`);
  return `${parts.join(", ")}; ${c.unmatchable} package${c.unmatchable === 1 ? "" : "s"} unmatchable`;
}

/** The table's `vulnerabilities:` block. `allHint` says where the lines past `limit` are. */
export function vulnTable(scan: TableInput, filter: VulnFilter, limit = TABLE_LIMIT, allHint = "--format vuln-json"): string {
  if (!scan.data) return NO_ADVISORY_DATA;
  const s = scan.summary;
  const shown = SEVERITY_ORDER.filter((sev) => !filter.severities || filter.severities.has(sev));
  const counts = shown.map((sev) => `${sev} ${s[sev.toLowerCase() as Lowercase<Severity>]}`).join(", ");
  const lines = [`vulnerabilities: ${s.total} (${counts}; fixable ${s.fixable})${filter.ignoreUnfixed ? " — unfixed ones left out" : ""}`];
  const sorted = [...scan.matches].sort((a, b) =>
    SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity) || a.id.localeCompare(b.id) || a.package.name.localeCompare(b.package.name));
  const listed = sorted.slice(0, limit);
  const w = [0, 0, 0];
  for (const m of listed) {
    w[0] = Math.max(w[0]!, m.id.length);
    w[1] = Math.max(w[1]!, m.package.name.length);
    w[2] = Math.max(w[2]!, m.package.version.length);
  }
  let current: Severity | undefined;
  for (const m of listed) {
    if (m.severity !== current) {
      current = m.severity;
      lines.push(`  ${current}`);
    }
    lines.push(`    ${m.id.padEnd(w[0]!)}  ${m.package.name.padEnd(w[1]!)}  ${m.package.version.padEnd(w[2]!)}  ${fixText(m)}`);
  }
  if (sorted.length > listed.length) lines.push(`  … and ${sorted.length - listed.length} more (${allHint} for all)`);
  const sources = scan.sources.filter((src) => src.kind !== "enrichment");
  lines.push(`advisory data: ${sources.length ? sources.map((src) => `${src.source} ${age(src.latest.createdAt)} old`).join(", ") : "none"}`);
  if (scan.result) lines.push(`coverage:      ${coverageText(scan.result.coverage)}`);
  return `${lines.join("\n")}\n`;
}
