// Clair's AffectedManifests run "backwards": given vulnerabilities in Clair's form (a package name, a
// distribution or a repository, a fixed version or a range), which stored manifests have an affected
// package? The semantics are claircore's (libindex AffectedManifests, datastore/postgres/affectedmanifest.go
// and each ecosystem's matcher `Vulnerable`), on the store's manifest_package rows (binary packages and,
// as in claircore's manifest_index, their source packages with the source version):
//
// - The package name must equal the row's (binary or source) name; PyPI names compare PEP 503-normalised
//   (a wheel's METADATA says `Jinja2`, OSV and Clair say `jinja2`).
// - With a `distribution`: only OS package rows (dpkg, apk, rpm) of an image of that distribution: `did`
//   must be the image's family, and when `version_id` is given the release must be the same advisory
//   release (`3.18` and an image's `3.18.4` are both Alpine:v3.18; `12` and `12.4` both Debian:12).
//   Without a `did` (or for a distribution Portcullis has no version scheme for) the vulnerability is not
//   applicable, as claircore answers ErrVulnNotApplicable.
// - Without a distribution: a language package, whose ecosystem comes from `repository.name` as claircore's
//   OSV updater names it (pypi, npm, maven, go, rubygems); without a known repository it is not applicable
//   (a bare name such as "requests" is ambiguous across ecosystems).
// - The version decides as claircore's matchers do: a `range` (`[` lower inclusive, `)` upper exclusive;
//   claircore's normalised `semver:` bounds are read too) when given; else `fixed_in_version` "" means
//   every version is affected, "0" none, `introduced=A&fixed=B` / `lastAffected=C` (claircore's encoding of
//   OSV ECOSYSTEM ranges) the range, and any other string a version the installed one must be below. The
//   scheme is the distribution's (dpkg, apk, rpm) or the ecosystem's (PEP 440, semver, Maven, Go, RubyGems).
// - A version that the scheme cannot read (installed or bound) affects nothing: it is counted in `skipped`.
// - `Invert` (claircore's "these packages are NOT affected" assertion) affects nothing.
//
// The answer is Clair's AffectedManifests: every requested vulnerability under `vulnerabilities` (by id),
// and for each affected manifest the ids, most severe first.
import type { Severity } from "../model/advisory.js";
import { normaliseName } from "../advisories/sources/osv/index.js";
import type { ManifestPackageMatch } from "../store/types.js";
import { canonicalGoVersion, schemeFor, UnmatchableVersionError, type VersionScheme } from "../versions/index.js";
import { distributionKey } from "./distribution.js";
import { packageType } from "./keys.js";
import type { PackageType } from "../model/match.js";

/** What the request says of one vulnerability (Clair's Vulnerability / VulnerabilitySummary), as read. */
export interface VulnerabilityQuery {
  id: string;
  name?: string;
  normalized_severity?: Severity;
  fixed_in_version?: string;
  range?: { "["?: string; ")"?: string };
  package?: { name: string; kind?: string };
  distribution?: { did?: string; version_id?: string; name?: string; pretty_name?: string };
  repository?: { name?: string; uri?: string };
  /** claircore's Invert: an assertion that matched packages are NOT affected. */
  invert?: boolean;
}

export interface AffectedManifestsResult {
  /** Manifest digest → vulnerability ids, most severe first (then by id). */
  vulnerableManifests: Record<string, string[]>;
  /** Vulnerabilities that can affect nothing stored here, and why (by id). */
  notApplicable: Record<string, string>;
  /** (row, vulnerability) pairs left out because a version could not be read. */
  skipped: number;
}

const RANK: Record<Severity, number> = { Critical: 5, High: 4, Medium: 3, Low: 2, Negligible: 1, Unknown: 0 };

/** claircore's OSV repository names → the package database kind and the OSV ecosystem. */
const REPOSITORIES: Record<string, { type: PackageType; ecosystem: string }> = {
  pypi: { type: "python", ecosystem: "PyPI" },
  npm: { type: "npm", ecosystem: "npm" },
  maven: { type: "maven", ecosystem: "Maven" },
  go: { type: "go", ecosystem: "Go" },
  rubygems: { type: "ruby", ecosystem: "RubyGems" },
};

const FAMILY_TYPE: Record<string, PackageType> = { debian: "dpkg", ubuntu: "dpkg", alpine: "apk", rhel: "rpm", centos: "rpm", "centos-stream": "rpm", rocky: "rpm", almalinux: "rpm", wolfi: "apk", chainguard: "apk" };
/** os-release IDs → the family distributionKey gives them, and an ecosystem of that family (for its version scheme). */
const FAMILIES: Record<string, string> = { debian: "debian", ubuntu: "ubuntu", alpine: "alpine", rhel: "rhel", centos: "centos", rocky: "rocky", almalinux: "almalinux", wolfi: "wolfi", chainguard: "chainguard" };
const FAMILY_ECOSYSTEM: Record<string, string> = { debian: "Debian:12", ubuntu: "Ubuntu:22.04:LTS", alpine: "Alpine:v3.18", rhel: "RHEL:8", centos: "RHEL:8", rocky: "Rocky Linux:8", almalinux: "AlmaLinux:8", wolfi: "Wolfi", chainguard: "Chainguard" };

type Scope =
  | { os: true; type: PackageType; family: string; ecosystem?: string; scheme: VersionScheme }
  | { os: false; type: PackageType; ecosystem: string; scheme: VersionScheme };

function scopeOf(v: VulnerabilityQuery): Scope | string {
  if (v.distribution) {
    const did = v.distribution.did?.trim().toLowerCase();
    if (!did) return "the distribution has no did";
    const versionId = v.distribution.version_id?.trim();
    if (!versionId) {
      // No release: every release of the family.
      const family = FAMILIES[did];
      if (!family) return `Portcullis has no advisory source for ${did}`;
      return { os: true, type: FAMILY_TYPE[family]!, family, scheme: schemeFor(FAMILY_ECOSYSTEM[family]!)! };
    }
    const key = distributionKey({ did, version_id: versionId, name: v.distribution.name, pretty_name: v.distribution.pretty_name });
    if (!key.key) return key.reason;
    const type = FAMILY_TYPE[key.key.family];
    const scheme = schemeFor(key.key.ecosystem);
    if (!type || !scheme) return `no version scheme for ${key.key.ecosystem}`;
    return { os: true, type, family: key.key.family, ecosystem: key.key.ecosystem, scheme };
  }
  const repo = v.repository?.name?.trim().toLowerCase();
  const known = repo ? REPOSITORIES[repo] : undefined;
  if (!known) return repo ? `no package ecosystem for repository ${JSON.stringify(repo)}` : "neither a distribution nor a known repository (pypi, npm, maven, go, rubygems): the ecosystem is unknown";
  return { os: false, type: known.type, ecosystem: known.ecosystem, scheme: schemeFor(known.ecosystem)! };
}

/** claircore's normalised version text (`semver:0.1.2.3.0.0.0.0.0.0`) as a plain semver, else the text. */
function plainBound(b: string | undefined, upper: boolean): string | undefined | null {
  if (b === undefined || b === "") return undefined;
  const m = /^([a-z0-9]+):(-?\d+(?:\.-?\d+){0,9})$/.exec(b);
  if (!m) return b;
  if (m[1] !== "semver") return null;
  const n = m[2]!.split(".").map(Number);
  // An upper bound of 65535 in the epoch slot is claircore's +Inf.
  if (upper && n[0] === 65535) return undefined;
  return `${n[1] ?? 0}.${n[2] ?? 0}.${n[3] ?? 0}`;
}

type Decide = (installed: string) => boolean;

/** The version test of a vulnerability, or why it has none. Throws UnmatchableVersionError for unreadable versions. */
function deciderOf(v: VulnerabilityQuery, scheme: VersionScheme): Decide | string {
  const cmp = (a: string, b: string) => scheme.compare(a, b);
  if (v.range && (v.range["["] || v.range[")"])) {
    const lo = plainBound(v.range["["], false);
    const hi = plainBound(v.range[")"], true);
    if (lo === null || hi === null) return "a range in a normalised version kind Portcullis cannot read";
    return (x) => (lo === undefined || cmp(x, lo) >= 0) && (hi === undefined || cmp(x, hi) < 0);
  }
  const fixed = v.fixed_in_version ?? "";
  if (fixed === "") return () => true;
  if (fixed === "0") return "fixed_in_version \"0\": not affected";
  if (/^(introduced|fixed|lastAffected)=/.test(fixed)) {
    const q = new URLSearchParams(fixed);
    const introduced = q.get("introduced") || undefined;
    const fix = q.get("fixed") || undefined;
    const last = q.get("lastAffected") || undefined;
    return (x) => (introduced === undefined || cmp(x, introduced) >= 0) && (fix !== undefined ? cmp(x, fix) < 0 : last !== undefined ? cmp(x, last) <= 0 : true);
  }
  return (x) => cmp(x, fixed) < 0;
}

/**
 * The names to look stored rows up by: `names` compared exactly; `pypiNames` PEP 503-normalised, compared
 * with the normalised names of Python package rows (a wheel's METADATA says `Jinja2`, OSV says `jinja2`).
 */
export function lookupNames(vulns: readonly VulnerabilityQuery[]): { names: string[]; pypiNames: string[] } {
  const names = new Set<string>();
  const pypiNames = new Set<string>();
  for (const v of vulns) {
    const name = v.package?.name;
    if (!name) continue;
    if (!v.distribution && v.repository?.name?.trim().toLowerCase() === "pypi") pypiNames.add(normaliseName("PyPI", name));
    else names.add(name);
  }
  return { names: [...names], pypiNames: [...pypiNames] };
}

/** Which of `rows` each vulnerability affects. */
export function affectedManifests(vulns: readonly VulnerabilityQuery[], rows: readonly ManifestPackageMatch[]): AffectedManifestsResult {
  const byName = new Map<string, ManifestPackageMatch[]>();
  const add = (name: string, r: ManifestPackageMatch) => {
    const list = byName.get(name);
    if (list) list.push(r);
    else byName.set(name, [r]);
  };
  for (const r of rows) {
    if (packageType(r.package_db).type === "python") add(`pypi\0${normaliseName("PyPI", r.name)}`, r);
    else add(r.name, r);
  }
  const hits = new Map<string, Set<string>>();
  const notApplicable: Record<string, string> = {};
  let skipped = 0;
  for (const v of vulns) {
    if (v.invert) {
      notApplicable[v.id] = "an inverted (not affected) assertion";
      continue;
    }
    if (!v.package?.name) {
      notApplicable[v.id] = "no package name";
      continue;
    }
    const scope = scopeOf(v);
    if (typeof scope === "string") {
      notApplicable[v.id] = scope;
      continue;
    }
    const decide = deciderOf(v, scope.scheme);
    if (typeof decide === "string") {
      notApplicable[v.id] = decide;
      continue;
    }
    {
      const key = scope.type === "python" ? `pypi\0${normaliseName("PyPI", v.package.name)}` : v.package.name;
      for (const r of byName.get(key) ?? []) {
        if (hits.get(r.manifest)?.has(v.id)) continue;
        if (packageType(r.package_db).type !== scope.type) continue;
        if (scope.os) {
          const k = distributionKey({ did: r.dist_did ?? "", version_id: r.dist_version_id ?? "" });
          if (!k.key || (k.key.family !== scope.family && !(scope.family === "centos" && k.key.family === "centos-stream"))) continue;
          if (scope.ecosystem !== undefined && k.key.ecosystem !== scope.ecosystem) continue;
        }
        let affected: boolean;
        try {
          const installed = scope.type === "go" ? goVersion(r.name, r.version) : r.version;
          affected = decide(installed);
        } catch (e) {
          if (!(e instanceof UnmatchableVersionError)) throw e;
          skipped++;
          continue;
        }
        if (!affected) continue;
        let set = hits.get(r.manifest);
        if (!set) hits.set(r.manifest, (set = new Set()));
        set.add(v.id);
      }
    }
  }
  const severity = new Map(vulns.map((v) => [v.id, RANK[v.normalized_severity ?? "Unknown"] ?? 0]));
  const vulnerableManifests: Record<string, string[]> = {};
  for (const manifest of [...hits.keys()].sort()) {
    vulnerableManifests[manifest] = [...hits.get(manifest)!].sort((a, b) => severity.get(b)! - severity.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
  }
  return { vulnerableManifests, notApplicable, skipped };
}

/** Go: the stdlib's `go1.19.8` and module versions, canonical (`v1.19.8`). */
function goVersion(name: string, version: string): string {
  return canonicalGoVersion(name === "stdlib" || name === "toolchain" ? version.trim().split(/\s+/)[0]! : version);
}
