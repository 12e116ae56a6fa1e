// The vulnerability half of `portcullis scan`: match the IndexReport against the store's advisory data,
// apply Trivy's CI filters (--severity, --ignore-unfixed), and render the table block (./vuln-table.ts) or
// Clair's VulnerabilityReport. Loaded with import() by scan.ts after indexing, so `scan --help` never loads the
// matcher (eslint.config.js, src/cli/startpath.test.ts).
import type { IndexReport } from "../indexer/report.js";
import { matchWithStore } from "../findings/match.js";
import { summarize, vulnerabilityReport, type Match, type MatchResult, type VulnerabilityReport, type VulnerabilitySummary } from "../matcher/index.js";
import type { SourceStatus } from "../store/advisory-types.js";
import type { Store } from "../store/types.js";
import { filterMatches, type VulnFilter } from "./vuln-table.js";

// The table and the filters are shared with `portcullis report --vulns`.
export { filterMatches, NO_ADVISORY_DATA, SEVERITY_ORDER, TABLE_LIMIT, vulnTable, type VulnFilter } from "./vuln-table.js";

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

/** Clair's VulnerabilityReport of what the filters kept (the matches are already enriched). */
export function vulnJson(report: IndexReport, scan: VulnScan): VulnerabilityReport {
  return vulnerabilityReport(report, scan.data ? scan.matches : []);
}
