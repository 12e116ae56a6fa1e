// Matching a report against the store's advisory data: the one sequence every reader of findings uses
// (`portcullis scan`, the controller after indexing, re-matching after a database update, the report API).
// The matcher (../matcher/) stays pure; this is where it meets the store.
import type { IndexReport } from "../indexer/report.js";
import { enrichMatches, enrichmentKeys, matchReport, reportLookupKeys, type Match, type MatchOptions, type MatchResult } from "../matcher/index.js";
import type { AdvisoryStore, PackageKey } from "../store/advisory-types.js";

export interface StoreMatch {
  /** The matcher's result; `result.matches` are not enriched. */
  result: MatchResult;
  /** Every match (flagged ones included), enriched with EPSS, KEV and CVSS from the enrichment sources. */
  matches: Match[];
  /** The package keys the report was looked up by (for the reverse index of re-matching). */
  keys: PackageKey[];
}

export type StoreMatchOptions = Omit<MatchOptions, "ecosystemsWithData">;

/**
 * Matches `report` against the advisory store, or answers undefined when the store has no advisory data at
 * all (so callers say "not checked", never "0 vulnerabilities").
 */
export async function matchWithStore(advisories: AdvisoryStore, report: IndexReport, opts: StoreMatchOptions = {}): Promise<StoreMatch | undefined> {
  const ecosystemsWithData = await advisories.ecosystems();
  if (ecosystemsWithData.size === 0) return undefined;
  const options: MatchOptions = { ...opts, ecosystemsWithData };
  const keys = reportLookupKeys(report, options);
  const result = matchReport(report, keys.length ? await advisories.candidates(keys) : [], options);
  const cves = enrichmentKeys(result.matches);
  const matches = cves.length ? enrichMatches(result.matches, await advisories.enrichment(cves)) : result.matches;
  return { result, matches, keys };
}
