// The advisory model: what every source's parser produces and what the store keeps. One model for OS
// distributions (Debian, Ubuntu, Alpine, Red Hat) and language ecosystems (OSV), after grype v6's
// affected/unaffected handles and OSV's ranges, with an explicit fix state per affected package
// (docs/advisories.md has each source's mapping). Types only: no I/O, no imports from the project.

/** Normalised severity, the order users filter by (Critical first). */
export type Severity = "Critical" | "High" | "Medium" | "Low" | "Negligible" | "Unknown";
export const SEVERITIES: readonly Severity[] = ["Critical", "High", "Medium", "Low", "Negligible", "Unknown"];

/**
 * What the source says about a package in a release: `fixed` (fixed_versions holds the fix), `not_fixed`
 * (affected, no fix yet), `wont_fix` (the vendor will not fix: Debian no-dsa/ignored, Red Hat "will not
 * fix"), `deferred` (Debian postponed, Red Hat "fix deferred"), `not_affected` (Debian fixed_version "0",
 * Alpine "0", VEX known_not_affected), `under_investigation` (Debian undetermined, VEX under
 * investigation), `end_of_life` (the release is out of support; the package is affected and will not be
 * fixed there). `affected` is used for language ecosystems, where the ranges decide.
 */
export type FixState =
  | "fixed"
  | "affected"
  | "not_fixed"
  | "wont_fix"
  | "deferred"
  | "not_affected"
  | "under_investigation"
  | "end_of_life";

/** A CVSS vector as the record gives it, with the base score when the record gives it or we computed it. */
export interface Cvss {
  version: "2.0" | "3.0" | "3.1" | "4.0";
  vector: string;
  score?: number;
  /** Who scored it: "nvd", "redhat", "ghsa", the CNA's name. */
  source?: string;
}

/**
 * One OSV-style range: events in any order, evaluated with the ecosystem's comparator. `introduced: "0"`
 * means "no lower bound". A range with only `fixed` events (Debian, Alpine) is one `introduced: "0"` plus
 * the fix. `limit` bounds the search as in OSV.
 */
export interface RangeEvent {
  introduced?: string;
  fixed?: string;
  last_affected?: string;
  limit?: string;
}

export interface AffectedRange {
  /** OSV's range type; `ECOSYSTEM` and `SEMVER` are evaluated with the ecosystem's comparator, `GIT` is kept but never matched. */
  type: "ECOSYSTEM" | "SEMVER" | "GIT";
  events: RangeEvent[];
}

/**
 * A package of one ecosystem or distribution release that an advisory speaks about. For OS
 * distributions `name` is the source package (Debian, Ubuntu, Red Hat) or the origin (Alpine), and the
 * ecosystem names the release.
 */
export interface AffectedPackage {
  /**
   * `Debian:12`, `Ubuntu:22.04:LTS`, `Ubuntu:Pro:16.04:LTS`, `Alpine:v3.18`, `RHEL:8` (other Red Hat products `Red Hat:<product>:<version>`),
   * `npm`, `PyPI`, `Go`, `Maven`, `RubyGems`, `crates.io`, `Node.js` (the runtime), as OSV writes them.
   */
  ecosystem: string;
  /** Normalised per ecosystem (PyPI PEP 503, Maven `group:artifact`, Go module path, npm as is). */
  name: string;
  /** Whether `name` is a source package (Debian, Ubuntu, Red Hat, Alpine origin) or the package itself. */
  nameKind: "source" | "binary";
  /** Red Hat module stream (`nodejs:18`), when the record is for a module. */
  module?: string;
  fixState: FixState;
  /** Versions that fix it (usually one; Alpine and Debian give one per release). */
  fixedVersions: string[];
  /** OSV ranges; empty for a package with no version semantics (not_affected without ranges). */
  ranges: AffectedRange[];
  /** OSV's explicit list of affected versions, when given. */
  versions?: string[];
  /**
   * Constraint ranges (Node.js core's `vulnerable` / `patched`, semver range syntax): affected iff the
   * version satisfies `vulnerable` and not `patched`.
   */
  constraints?: { vulnerable: string; patched?: string };
  /** The vendor's severity for this package in this release (Debian urgency, Ubuntu priority), verbatim. */
  vendorSeverity?: string;
  /** When the fix became available, if the source says. */
  fixAvailableAt?: string;
  /** Free-form source detail kept for explanation (Debian's `nodsa_reason`, VEX flags, Ubuntu binaries). */
  detail?: Record<string, unknown>;
}

export interface AdvisoryReference {
  type?: string;
  url: string;
}

/**
 * One record of a source: an OSV record, a Debian (source, CVE) entry across releases, a VEX document,
 * an Alpine (package, id) pair. `id` is unique within its source.
 */
export interface Advisory {
  /** The record's id in its source: `GHSA-…`, `GO-…`, `PYSEC-…`, `UBUNTU-CVE-…`, `CVE-…` (Debian, Alpine, Red Hat). */
  id: string;
  /** Other ids of the same vulnerability (CVE, GHSA), deduplicated, never including `id`. */
  aliases: string[];
  /** Vendor advisories that announced the fix: DSA-…, DLA-…, USN-…, RHSA-…. */
  advisoryIds: string[];
  /**
   * OSV `related`: ids of other vulnerabilities or notices the record relates to (a USN that names this CVE, a
   * similar but different issue). Not the same vulnerability, so never merged into `aliases`.
   */
  related?: string[];
  /** OSV `upstream`: the upstream vulnerabilities a downstream (distribution) record covers. */
  upstream?: string[];
  summary?: string;
  details?: string;
  published?: string;
  modified?: string;
  /** Set when the source withdrew the record: it must not match. */
  withdrawn?: string;
  /** Normalised severity (docs/advisories.md has each source's mapping); Unknown when the record has none. */
  severity: Severity;
  /** The source's own severity word, verbatim (Debian urgency, Ubuntu priority, Red Hat impact, GHSA's). */
  vendorSeverity?: string;
  cvss: Cvss[];
  references: AdvisoryReference[];
  affected: AffectedPackage[];
  /** Where the record came from: the file within the source's raw files and the key of the record in it. */
  origin: { file: string; record: string };
}

/** A record the parser could not use, and why: reported, never silently dropped. */
export interface SkippedRecord {
  file: string;
  record: string;
  reason: string;
}

/** One raw upstream file of a source, as downloaded or imported. */
export interface RawFile {
  /** A path relative to the source (`debian.json`, `v3.18/main.json`, `npm/all.zip`). */
  path: string;
  bytes: Buffer;
}

export interface ParseResult {
  advisories: Advisory[];
  skipped: SkippedRecord[];
}

/** Per-CVE enrichment that is not an advisory: EPSS, CISA KEV, NVD CVSS. */
export interface Enrichment {
  epss?: Array<{ cve: string; epss: number; percentile: number; date: string }>;
  kev?: Array<{ cve: string; dateAdded: string; dueDate?: string; ransomware?: string; vendor?: string; product?: string; name?: string }>;
  cvss?: Array<{ cve: string; cvss: Cvss[] }>;
}
