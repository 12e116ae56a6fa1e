// The matcher: IndexReport + advisory candidates → matches, coverage, Clair's VulnerabilityReport.
export { affects, lowestFixAbove, type AffectsResult } from "./affects.js";
export { enrichMatches, enrichmentKeys } from "./enrich.js";
export { distributionCoverage, distributionKey, type DistributionCoverageOptions, type DistributionInput, type DistributionKey, type DistributionKeyResult } from "./distribution.js";
export { lookupKeys, packageKeys, packageType, type MatchTarget, type PackageKeys, type PackageKeysOptions } from "./keys.js";
export { defaultEndOfLife, type EndOfLife, type EndOfLifeLookup, type Family } from "./lifecycle.js";
export { matchReport, matchReportWith, reportLookupKeys, rowSeverity, type CandidateLookup, type MatchOptions } from "./match.js";
export { ownershipFromDpkgLists, ownershipFromMap, ownershipFromReport } from "./ownership.js";
export {
  PORTCULLIS_COVERAGE_ENRICHMENT,
  PORTCULLIS_PACKAGE_ENRICHMENT,
  PORTCULLIS_VULNERABILITY_ENRICHMENT,
  summarize,
  vulnerabilityReport,
  type CoverageEnrichment,
  type PackageVulnerabilityDetail,
  type VulnerabilityDetail,
  type VulnerabilityReport,
  type VulnerabilityReportOptions,
  type WireVulnerability,
} from "./vulnerability-report.js";
