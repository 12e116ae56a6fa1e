// What matching found for one image, in the two forms the cluster keeps: the summary an ImageScan's status
// carries (a few hundred bytes, no CVE lists in etcd) and the compact finding list the store keeps for the
// admission webhook (policies on ids, severities and fixes) and for re-matching's diffs. Types only.
import type { FixState, Severity } from "./advisory.js";
import type { CoverageState, VulnerabilitySummary } from "./match.js";

/**
 * How much of the image the advisory data covers: the distribution's state when the image has OS packages
 * and it is not `supported`; else `partial` when some ecosystem looked up has no data or no source.
 */
export type SummaryCoverage = CoverageState | "partial";

/** The status block: counts of distinct vulnerabilities (flagged under-investigation ones left out). */
export interface FindingsSummary extends VulnerabilitySummary {
  coverage: SummaryCoverage;
  /** One short line: `Debian:12 supported; npm no data; 2 packages unmatchable`. */
  coverageMessage: string;
  /** RFC 3339. */
  matchedAt: string;
  /** The oldest of the vulnerability sources' last refresh (update, unchanged check or import), RFC 3339. */
  databaseUpdatedAt?: string;
}

/** One finding of one package, as policies and denial messages read it (details live in the report API). */
export interface Finding {
  id: string;
  /** Other ids of the same vulnerability (GHSA, DSA, …) so a policy may name any of them. */
  aliases?: string[];
  severity: Severity;
  package: string;
  /** The installed version (the binary package's). */
  version: string;
  fixState: FixState;
  fixedIn?: string;
  /** In CISA's Known Exploited Vulnerabilities catalogue. */
  kev?: true;
}

export interface StoredFindings {
  summary: FindingsSummary;
  /** Sorted: severity (Critical first), then id, then package. Flagged findings are not kept. */
  findings: Finding[];
}
