// The vulnerability half of `portcullis scan`: match the IndexReport against the store's advisory data,
// apply Trivy's CI filters (--severity, --ignore-unfixed), and render the table block or Clair's
// VulnerabilityReport. Loaded with import() by scan.ts after indexing, so `scan --help` never loads the
// matcher (eslint.config.js, src/cli/startpath.test.ts).
import type { Severity } from "../advisories/types.js";
import type { IndexReport } from "../indexer/report.js";
import { matchWithStore } from "../findings/match.js";
import { summarize, vulnerabilityReport, type Coverage, type Match, type MatchResult, type VulnerabilityReport, type VulnerabilitySummary } from "../matcher/index.js";
import type { SourceStatus } from "../store/advisory-types.js";
import type { Store } from "../store/types.js";
import { age } from "./age.js";

export const SEVERITY_ORDER: readonly Severity[] = ["Critical", "High", "Medium", "Low", "Negligible", "Unknown"];

/** The most finding lines the table prints; the rest are counted and left to --format vuln-json. */
export const TABLE_LIMIT = 50;

export const NO_ADVISORY_DATA = "vulnerabilities: not checked: the store has no advisory data; run `portcullis db update` (or `portcullis db import FILE` / `portcullis db pull REF` for an offline bundle)\n";

export interface VulnFilter {
  /** Only these severities are shown and counted; undefined = all. */
  severities?: ReadonlySet<Severity>;
  /** Only findings with a fixed version to upgrade to. */
  ignoreUnfixed: boolean;
}

export type VulnScan =
  | { data: false }
  | { data: true; result: MatchResult; matches: Match[]; summary: VulnerabilitySummary; sources: SourceStatus[] };

/** Matches the report when the store has advisory data; `matches` are enriched and filtered (flagged ones left out). */
export async function scanVulnerabilities(store: Store, report: IndexReport, filter: VulnFilter): Promise<VulnScan> {
  const found = await matchWithStore(store.advisories, report);
  if (!found) return { data: false };
  const matches = filterMatches(found.matches, filter);
  return { data: true, result: found.result, matches, summary: summarize(matches), sources: await store.advisories.status() };
}

/** What is shown and what counts: no under-investigation findings, then the severity and fix filters. */
export function filterMatches(matches: readonly Match[], filter: VulnFilter): Match[] {
  return matches.filter((m) => !m.flagged && (!filter.severities || filter.severities.has(m.severity)) && (!filter.ignoreUnfixed || m.fixedIn !== undefined));
}

/** Clair's VulnerabilityReport of what the filters kept (the matches are already enriched). */
export function vulnJson(report: IndexReport, scan: VulnScan): VulnerabilityReport {
  return vulnerabilityReport(report, scan.data ? scan.matches : []);
}

const FIX_WORDS: Record<string, string> = {
  not_fixed: "not fixed", wont_fix: "won't fix", deferred: "fix deferred", end_of_life: "not fixed (end of life)", affected: "not fixed",
};

function fixText(m: Match): string {
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

/** The table's `vulnerabilities:` block (after scan's summary). */
export function vulnTable(scan: VulnScan, filter: VulnFilter, limit = TABLE_LIMIT): string {
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
  if (sorted.length > listed.length) lines.push(`  … and ${sorted.length - listed.length} more (--format vuln-json for all)`);
  const sources = scan.sources.filter((src) => src.kind !== "enrichment");
  lines.push(`advisory data: ${sources.length ? sources.map((src) => `${src.source} ${age(src.latest.createdAt)} old`).join(", ") : "none"}`);
  lines.push(`coverage:      ${coverageText(scan.result.coverage)}`);
  return `${lines.join("\n")}\n`;
}
