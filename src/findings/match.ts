// Matching a report against the store's advisory data: the one sequence every reader of findings uses
// (`portcullis scan`, the controller after indexing, re-matching after a database update, the report API).
// The matcher (../matcher/) stays pure; this is where it meets the store.
import type { IndexReport } from "../model/index-report.js";
import { enrichMatches, enrichmentKeys, matchReport, reportLookupKeys, type MatchOptions } from "../matcher/index.js";
import type { Match, MatchResult } from "../model/match.js";
import type { AdvisoryStore, Candidate, EnrichmentRow, PackageKey } from "../store/advisory-types.js";

export interface StoreMatch {
  /** The matcher's result; `result.matches` are not enriched. */
  result: MatchResult;
  /** Every match (flagged ones included), enriched with EPSS, KEV and CVSS from the enrichment sources. */
  matches: Match[];
  /** The package keys the report was looked up by (for the reverse index of re-matching). */
  keys: PackageKey[];
}

export interface StoreMatchOptions extends Omit<MatchOptions, "ecosystemsWithData"> {
  /** What a caller matching many reports fetched once (re-matching); by default each is asked of the store. */
  prefetched?: {
    ecosystemsWithData: ReadonlySet<string>;
    candidates(keys: readonly PackageKey[]): Promise<readonly Candidate[]>;
    enrichment(cves: readonly string[]): Promise<Map<string, EnrichmentRow>>;
  };
}

/**
 * Matches `report` against the advisory store, or answers undefined when the store has no advisory data at
 * all (so callers say "not checked", never "0 vulnerabilities").
 */
export async function matchWithStore(advisories: AdvisoryStore, report: IndexReport, opts: StoreMatchOptions = {}): Promise<StoreMatch | undefined> {
  const { prefetched, ...rest } = opts;
  const ecosystemsWithData = prefetched?.ecosystemsWithData ?? (await advisories.ecosystems());
  if (ecosystemsWithData.size === 0) return undefined;
  const options: MatchOptions = { ...rest, ecosystemsWithData };
  const keys = reportLookupKeys(report, options);
  const candidates = (k: readonly PackageKey[]) => (prefetched ? prefetched.candidates(k) : advisories.candidates(k));
  const result = matchReport(report, keys.length ? await candidates(keys) : [], options);
  const cves = enrichmentKeys(result.matches);
  const enrichment = (c: readonly string[]) => (prefetched ? prefetched.enrichment(c) : advisories.enrichment(c));
  const matches = cves.length ? enrichMatches(result.matches, await enrichment(cves)) : result.matches;
  return { result, matches, keys };
}
