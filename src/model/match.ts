// The matcher's model: what matchReport returns for an IndexReport. Types only.
import type { Cvss, FixState, Severity } from "./advisory.js";

/**
 * How well an ecosystem (a distribution release, npm, PyPI, ...) is covered: `supported` (Portcullis knows it
 * and the store has data for it), `no_data` (known, but nothing was imported for it: no finding means nothing),
 * `unsupported` (no advisory source exists for it in Portcullis), `end_of_life` (known and matched, but its
 * vendor no longer publishes fixes for it: the absence of a finding says little).
 */
export type CoverageState = "supported" | "no_data" | "unsupported" | "end_of_life";

/** The kind of package database a package came from, from its environment's `package_db`. */
export type PackageType = "dpkg" | "apk" | "rpm" | "npm" | "python" | "maven" | "go" | "ruby" | "node" | "cargo" | "nuget" | "composer";

export const OS_PACKAGE_TYPES: ReadonlySet<PackageType> = new Set(["dpkg", "apk", "rpm"]);

/** A package of the report as the matcher names it in its results. */
export interface PackageRef {
  /** The IndexReport's document-local package id. */
  id: string;
  name: string;
  version: string;
  /** Clair's kind: the report's packages are binaries; their sources hang below them. */
  kind: "binary" | "source";
  type?: PackageType;
  /** The environment's package_db (`var/lib/dpkg/status`, `python:usr/lib/...`). */
  packageDb: string;
  source?: { name: string; version: string };
  module?: string;
  arch?: string;
}

/** An OS package that owns the files of a language package (the jinja2 case). */
export interface OsOwner {
  type: "dpkg" | "rpm" | "apk";
  name: string;
  version: string;
  source?: { name: string; version: string };
}

/**
 * Who owns a file of the image, by path relative to the image root (no leading `/`): the OS package that
 * installed it, or undefined. Built from dpkg's `info/*.list`, rpm's file lists or apk's `F:`/`R:` lines.
 */
export type Ownership = (path: string) => OsOwner | undefined;

/** One advisory row that made (part of) a match. */
export interface MatchedBy {
  /** The source's name (`debian`, `alpine`, `osv-npm`, ...). */
  source: string;
  /** The update operation the row belongs to. */
  operationRef: string;
  ecosystem: string;
  /** The advisory's id in its source. */
  record: string;
  /** Where the record came from in the source's raw files. */
  origin: { file: string; record: string };
  /** The package name the row speaks about, and whether it is a source or binary name. */
  name: string;
  nameKind: "source" | "binary";
  /** The row's fix state as the source gives it. */
  fixState: FixState;
  /** The lowest fix above the compared version, by this row. */
  fixedIn?: string;
  /** What decided: a version range, the `versions` list, Node.js constraints, or the fix state alone. */
  via: AffectsVia;
}

export type AffectsVia = "range" | "versions" | "constraints" | "fixed_versions" | "state";

/** One vulnerability of one package of the image (records of the same vulnerability merged). */
export interface Match {
  /** The vulnerability: the CVE when one of the merged records names one, else the first record id. */
  id: string;
  /** Every other id of the merged records (record ids and their aliases), sorted. */
  aliases: string[];
  /** Vendor advisories (DSA, DLA, USN, RHSA, GHSA of non-GHSA records), sorted. */
  advisoryIds: string[];
  package: PackageRef;
  /** The version compared with the advisories (the source version for dpkg, `v1.19.8` for Go's stdlib). */
  installedVersionCompared: string;
  /**
   * `fixed` when a fix above the installed version exists (`fixedIn`); otherwise the sources' state
   * (`not_fixed`, `wont_fix`, `deferred`, `end_of_life`, `under_investigation`).
   */
  fixState: FixState;
  fixedIn?: string;
  /** When the fix became available, when the source says. */
  fixAvailableAt?: string;
  /** Normalised severity: the highest the matched records give for this package (Unknown when none). */
  severity: Severity;
  /** The source's own word for that severity (Debian urgency, Ubuntu priority, Red Hat impact, GHSA's). */
  vendorSeverity?: string;
  /** Set when the severity was derived from CVSS (enrichMatches), e.g. `CVSS 3.1 9.8 (nvd)`. */
  severityFrom?: string;
  cvss: Cvss[];
  /** From enrichMatches: FIRST EPSS and CISA KEV for the vulnerability's CVE. */
  epss?: { epss: number; percentile: number; date: string };
  kev?: { dateAdded: string; dueDate?: string; ransomware?: string };
  summary?: string;
  published?: string;
  references: string[];
  /** The layer that introduced the package (the environment's `introduced_in`). */
  introducedIn?: string;
  /** Set for matches every record of which is `under_investigation`: listed, not counted by default. */
  flagged?: "under_investigation";
  /** The rows that matched, one per (record, row). */
  matchedBy: MatchedBy[];
}

export interface EcosystemCoverage {
  /** `Debian:12`, `npm`, `Node.js`, ... */
  ecosystem: string;
  state: CoverageState;
  /** Packages of the image looked up in it. */
  packages: number;
  reason?: string;
  /** YYYY-MM-DD, for end_of_life. */
  endOfLife?: string;
}

export interface DistributionCoverage {
  state: CoverageState;
  /** The advisory ecosystem of the OS packages (`Debian:12`), when the distribution is known. */
  ecosystem?: string;
  /** What the image says it is. */
  did: string;
  versionId: string;
  prettyName: string;
  reason?: string;
  endOfLife?: string;
}

export interface Coverage {
  /** The image's distribution; absent when the image has neither a distribution nor OS packages. */
  distribution?: DistributionCoverage;
  /** Per ecosystem the image's packages were looked up in (or would have been), sorted by name. */
  ecosystems: EcosystemCoverage[];
  packages: number;
  /** Packages that were looked up. */
  matched: number;
  unmatchable: number;
  /** Language packages whose files an OS package owns: matched through the OS advisory only. */
  governedByOs: number;
  /** Packages looked up whose keys have no advisory row at all: "no advisory data", not "clean". */
  withoutAdvisoryData: number;
  /** Advisory rows skipped because the matcher could not read them, per reason. */
  skippedRows: number;
}

export interface Unmatchable {
  package: PackageRef;
  reason: string;
}

export interface Governed {
  package: PackageRef;
  owner: OsOwner;
  reason: string;
}

export interface SkippedRow {
  source: string;
  record: string;
  ecosystem: string;
  name: string;
  reason: string;
}

export interface MatchResult {
  matches: Match[];
  coverage: Coverage;
  unmatchable: Unmatchable[];
  /** Language packages left to the OS advisory (the jinja2 case). */
  governed: Governed[];
  /** Packages looked up that no advisory row names at all (no data, which is not the same as clean). */
  withoutAdvisoryData: Array<{ package: PackageRef; keys: string[] }>;
  /** Advisory rows the matcher could not evaluate (an invalid version in the record), with the reason. */
  skippedRows: SkippedRow[];
}

/** Counts of an image's distinct vulnerabilities by severity and fixability (vulnerability-report.ts's summarize). */
export interface VulnerabilitySummary {
  critical: number;
  high: number;
  medium: number;
  low: number;
  negligible: number;
  unknown: number;
  /** Distinct vulnerabilities (a CVE in libssl3 and libcrypto3 counts once). */
  total: number;
  /** Vulnerabilities every affected package of which has a fixed version to upgrade to. */
  fixable: number;
  /** The others: some affected package has no fix (not fixed yet, will not be fixed, deferred, end of life). */
  unfixed: number;
}
