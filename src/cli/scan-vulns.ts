// The vulnerability half of `portcullis scan`: match the IndexReport against the store's advisory data,
// apply Trivy's CI filters (--severity, --ignore-unfixed), and render the table block (./vuln-table.ts) or
// Clair's VulnerabilityReport. Loaded with import() by scan.ts after indexing, so `scan --help` never loads the
// matcher (eslint.config.js, src/cli/startpath.test.ts).
import { createHash } from "node:crypto";
import type { IndexReport } from "../model/index-report.js";
import type { Match, MatchResult, VulnerabilitySummary } from "../model/match.js";
import type { VulnerabilityReport } from "../matcher/index.js";
import { summarize, vulnerabilityReport } from "../matcher/vulnerability-report.js";
import type { SourceStatus } from "../store/advisory-types.js";
import type { Store } from "../store/types.js";
import { version } from "./version.js";
import { filterMatches, type VulnFilter } from "./vuln-table.js";

// The table and the filters are shared with `portcullis report --vulns`.
export { filterMatches, NO_ADVISORY_DATA, SEVERITY_ORDER, TABLE_LIMIT, vulnTable, type VulnFilter } from "./vuln-table.js";

export type VulnScan =
  | { data: false }
  | { data: true; result: MatchResult; matches: Match[]; summary: VulnerabilitySummary; sources: SourceStatus[] };

/** What the CLI store's match cache keeps per manifest: a match before the filters. */
interface CachedMatch {
  result: MatchResult;
  matches: Match[];
  sources: SourceStatus[];
}

/**
 * Matches the report when the store has advisory data; `matches` are enriched and filtered (flagged ones
 * left out). With the CLI's folder store, an image matched before against the same advisory data (same
 * report, same build, same day: end-of-life depends on the date) is answered from its match cache, and a
 * store without advisory data says so, both without opening the database (PGlite) that holds the data.
 */
export async function scanVulnerabilities(store: Store, report: IndexReport, filter: VulnFilter): Promise<VulnScan> {
  const cache = store.matchCache;
  const known = await cache?.state();
  if (known && !known.data) return { data: false };
  const key = (fingerprint: string) =>
    createHash("sha256").update(JSON.stringify([fingerprint, version(), new Date().toISOString().slice(0, 10), report])).digest("hex");
  let found: CachedMatch | undefined = known ? await cache!.get<CachedMatch>(report.manifest_hash, key(known.fingerprint)) : undefined;
  if (!found) {
    // The matcher itself loads only here: a cached match needs none of it.
    const m = await (await import("../findings/match.js")).matchWithStore(store.advisories, report);
    if (!m) return { data: false };
    found = { result: m.result, matches: m.matches, sources: await store.advisories.status() };
    // The key is the fingerprint the database will have when it closes (this scan only reads it).
    if (cache) await cache.put(report.manifest_hash, key(await cache.fingerprint()), found);
  }
  const matches = filterMatches(found.matches, filter);
  return { data: true, result: found.result, matches, summary: summarize(matches), sources: found.sources };
}

/** Clair's VulnerabilityReport of what the filters kept (the matches are already enriched). */
export function vulnJson(report: IndexReport, scan: VulnScan): VulnerabilityReport {
  return vulnerabilityReport(report, scan.data ? scan.matches : []);
}
