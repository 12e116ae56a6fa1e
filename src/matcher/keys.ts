// For each package of an IndexReport: which advisory rows can speak about it (ecosystem + name, and whether
// the row names a source or a binary package) and which version to compare with them. The store is asked
// for exactly these (ecosystem, name) keys.
//
// What each scanner leaves in the report (src/scanners/*), and what is compared:
// - dpkg (`var/lib/dpkg/status`, `status.d/*`): `source` = the `Source:` field, else the package itself,
//   with the source version when the field gives one. Source rows compare the SOURCE version: a binary
//   version such as postgresql-client 11+200+deb10u5 means nothing to an advisory about postgresql-common.
// - apk (`lib/apk/db/installed`): `source` = the `o:` origin (secdb names origins), version = the package's.
// - rpm (`var/lib/rpm/*`, `usr/lib/sysimage/rpm/*`): `source` = the SOURCERPM name with the binary's epoch;
//   `module` = name:stream. The binary's EVR is compared (a source RPM and its binaries share the
//   version-release); when a subpackage has a version of its own, its source's version-release is compared
//   with epochs left out (the source RPM's epoch is not recorded in the binary's header).
// - language packages by package_db prefix: `nodejs:` npm, `python:` PyPI (PEP 503 name), `maven:` Maven
//   (`group:artifact`; a jar known only by its manifest has no Maven coordinates), `go:` Go (module path;
//   `stdlib` compared as `v1.19.8`), `ruby:` RubyGems, `node:` the Node.js runtime (a `node` executable; no
//   scanner records it yet), `cargo:` crates.io (crates linked into a Rust program, cargo-auditable),
//   `nuget:` NuGet (.NET `*.deps.json`), `composer:` Packagist (`vendor/composer/installed.json`). An
//   ecosystem without a version scheme here leaves its packages unmatchable and the ecosystem `unsupported`
//   in the coverage, never "no vulnerabilities".
import { normaliseName } from "../advisories/sources/osv/index.js";
import type { IndexReport, WirePackage } from "../model/index-report.js";
import type { Environment } from "../model/packages.js";
import type { PackageKey } from "../store/advisory-types.js";
import { canonicalGoVersion, invalidVersion, rpm, schemeFor, UnmatchableVersionError, type VersionScheme } from "../versions/index.js";
import type { DistributionKey } from "./distribution.js";
import type { OsOwner, Ownership, PackageRef, PackageType } from "../model/match.js";

/** One (ecosystem, name) an advisory row may carry for a package, and the version to compare with that row. */
export interface MatchTarget {
  ecosystem: string;
  name: string;
  /** Rows whose nameKind is this one apply (a source row to the source name, a binary row to the binary name). */
  nameKind: "source" | "binary";
  /** The version compared with the row's versions. */
  version: string;
  scheme: VersionScheme;
  /** rpm: the package's module stream (`nodejs:18`); a row applies only when its module is the same (both may be absent). */
  module?: string;
  /** What the version is: "source version", "binary version", "source version-release, epochs ignored", ... */
  versionFrom: string;
}

export interface PackageKeys {
  package: PackageRef;
  introducedIn?: string;
  /** Where the package is known by (the package_db without its prefix, a jar path without `!nested`). */
  path?: string;
  /** Empty when the package cannot be matched (see `unmatchable`, `governedBy`, `unsupported`). */
  targets: MatchTarget[];
  /** The package's version (or name) cannot be read: it is neither vulnerable nor clean. */
  unmatchable?: string;
  /** An OS package owns the language package's files: the OS advisory governs it. */
  governedBy?: OsOwner;
  /** An OS package of a distribution Portcullis has no key for: covered by the distribution's coverage. */
  unsupported?: string;
  /** A language package of an ecosystem Portcullis cannot compare versions of: `unsupported` in the coverage. */
  unsupportedEcosystem?: string;
}

export interface PackageKeysOptions {
  /** The distribution key (distributionKey()); OS packages are not matched without one. */
  distribution?: DistributionKey;
  /** File ownership by OS packages; without it no language package counts as OS-owned. */
  ownership?: Ownership;
}

const PREFIXES: ReadonlyArray<readonly [string, PackageType]> = [
  ["nodejs:", "npm"],
  ["python:", "python"],
  ["maven:", "maven"],
  ["go:", "go"],
  ["ruby:", "ruby"],
  ["node:", "node"],
  ["cargo:", "cargo"],
  ["nuget:", "nuget"],
  ["composer:", "composer"],
];

/** The package database's kind and the file it names, from an environment's package_db. */
export function packageType(packageDb: string): { type?: PackageType; path: string } {
  for (const [prefix, type] of PREFIXES) if (packageDb.startsWith(prefix)) return { type, path: packageDb.slice(prefix.length) };
  if (packageDb === "var/lib/dpkg/status" || packageDb.startsWith("var/lib/dpkg/status.d/")) return { type: "dpkg", path: packageDb };
  if (packageDb === "lib/apk/db/installed") return { type: "apk", path: packageDb };
  if (packageDb.startsWith("var/lib/rpm/") || packageDb.startsWith("usr/lib/sysimage/rpm/")) return { type: "rpm", path: packageDb };
  return { path: packageDb };
}

function ecosystemOf(type: PackageType): string | undefined {
  switch (type) {
    case "npm":
      return "npm";
    case "python":
      return "PyPI";
    case "maven":
      return "Maven";
    case "go":
      return "Go";
    case "ruby":
      return "RubyGems";
    case "node":
      return "Node.js";
    case "cargo":
      return "crates.io";
    case "nuget":
      return "NuGet";
    case "composer":
      return "Packagist";
    default:
      return undefined;
  }
}

function ref(id: string, p: WirePackage, env: Environment | undefined, type: PackageType | undefined): PackageRef {
  const r: PackageRef = { id, name: p.name, version: p.version, kind: p.kind === "SOURCE" ? "source" : "binary", packageDb: env?.package_db ?? "" };
  if (type) r.type = type;
  if (p.source) r.source = { name: p.source.name, version: p.source.version };
  if (p.module) r.module = p.module;
  if (p.arch) r.arch = p.arch;
  return r;
}

const EPOCH = /^\d+:/;
const withoutEpoch = (v: string) => v.replace(EPOCH, "");

/** rpm order with epochs left out on both sides, for a subpackage whose source's epoch is unknown. */
const rpmIgnoringEpoch: VersionScheme = {
  name: "rpm (epochs ignored)",
  compare: (a, b) => rpm.compare(withoutEpoch(a), withoutEpoch(b)),
  valid: (v) => rpm.valid(withoutEpoch(v)),
};

/**
 * The OS package owning a language package: its metadata file (a jar nested in another: the outer one), else
 * the `.dist-info`/`.egg-info` directory that holds it. Only directories that belong to one package are
 * asked: `usr/bin` is in many packages' file lists.
 */
function ownerOf(ownership: Ownership | undefined, path: string | undefined): OsOwner | undefined {
  if (!ownership || !path) return undefined;
  const file = path.split("!")[0]!;
  const own = ownership(file);
  if (own) return own;
  const dir = file.slice(0, Math.max(0, file.lastIndexOf("/")));
  return /\.(dist|egg)-info$/.test(dir) ? ownership(dir) : undefined;
}

/** The Go version to compare: `go1.21rc2`, `v1.21.0`, `1.21`, and the scanner's `v1.21rc2` (from `go1.21rc2`), canonical. */
function goVersion(v: string): string {
  const bare = v.trim().split(/\s+/)[0] ?? v; // "go1.22.0 X:boringcrypto": the experiment does not change the version
  try {
    return canonicalGoVersion(bare);
  } catch (e) {
    // The gobin scanner turns go1.21rc2 into v1.21rc2, which is not a version: read it as the tag it was.
    if (/^v\d+(\.\d+)*(rc|beta)\d+$/.test(bare)) return canonicalGoVersion(`go${bare.slice(1)}`);
    throw e;
  }
}

function osTargets(type: "dpkg" | "apk" | "rpm", p: WirePackage, dist: DistributionKey): MatchTarget[] | string {
  const ecosystems = [dist.ecosystem, ...dist.extra];
  const scheme = schemeFor(dist.ecosystem);
  if (!scheme) return `no version scheme for ${dist.ecosystem}`;
  const expected = dist.family === "debian" || dist.family === "ubuntu" ? "dpkg" : dist.family === "alpine" || dist.family === "wolfi" || dist.family === "chainguard" ? "apk" : "rpm";
  if (type !== expected) return `a ${type} package on ${dist.ecosystem}, whose advisories speak about ${expected} packages`;
  const sourceName = p.source?.name || p.name;
  const out: MatchTarget[] = [];
  const add = (name: string, nameKind: "source" | "binary", version: string, versionFrom: string, s: VersionScheme = scheme) => {
    for (const ecosystem of ecosystems) {
      const t: MatchTarget = { ecosystem, name, nameKind, version, scheme: s, versionFrom };
      if (type === "rpm" && p.module) t.module = p.module;
      out.push(t);
    }
  };
  switch (type) {
    case "dpkg": {
      const v = p.source?.version || p.version;
      add(sourceName, "source", v, p.source?.version ? "source version" : "binary version (no source version)");
      add(p.name, "binary", p.version, "binary version");
      break;
    }
    case "apk":
      if (dist.family === "wolfi" || dist.family === "chainguard") {
        // Wolfi's and Chainguard's OSV records name the origin package (trivy looks them up by SrcName), and
        // the OSV parser files them as binary names (the schema does not call them source packages).
        add(sourceName, "binary", p.version, "package version (its origin's: Wolfi and Chainguard advisories name origins)");
        break;
      }
      add(sourceName, "source", p.version, "package version (origin's)");
      add(p.name, "binary", p.version, "package version");
      break;
    case "rpm": {
      const srcVr = p.source?.version ? withoutEpoch(p.source.version) : undefined;
      if (srcVr !== undefined && srcVr !== withoutEpoch(p.version)) {
        add(sourceName, "source", srcVr, "source version-release, epochs ignored (the subpackage has a version of its own)", rpmIgnoringEpoch);
      } else {
        add(sourceName, "source", p.version, "binary EVR (the source RPM's version-release)");
      }
      add(p.name, "binary", p.version, "binary EVR");
      break;
    }
  }
  return out;
}

/** Why a language ecosystem's packages cannot be matched at all, or undefined when they can. */
export function unsupportedEcosystem(type: PackageType): { ecosystem: string; reason: string } | undefined {
  const ecosystem = ecosystemOf(type);
  if (!ecosystem || schemeFor(ecosystem)) return undefined;
  return { ecosystem, reason: `Portcullis cannot compare ${ecosystem} versions yet: not matched` };
}

function languageTarget(type: PackageType, p: WirePackage): MatchTarget | string {
  const ecosystem = ecosystemOf(type)!;
  const scheme = schemeFor(ecosystem)!;
  switch (type) {
    case "python":
      return { ecosystem, name: normaliseName("PyPI", p.name), nameKind: "binary", version: p.version, scheme, versionFrom: "package version" };
    case "nuget":
      return { ecosystem, name: normaliseName("NuGet", p.name), nameKind: "binary", version: p.version, scheme, versionFrom: "package version" };
    case "maven":
      if (!/^[^:\s]+:[^:\s]+$/.test(p.name)) {
        return `no Maven coordinates: the archive has no pom.properties, and its manifest name ${JSON.stringify(p.name)} is not groupId:artifactId`;
      }
      return { ecosystem, name: p.name, nameKind: "binary", version: p.version, scheme, versionFrom: "package version" };
    case "go": {
      if (p.version === "" || p.version === "(devel)") return `Go module ${p.name} has no version (${p.version || "empty"}): built from a working tree`;
      let v: string;
      try {
        v = p.name === "stdlib" || p.name === "toolchain" ? goVersion(p.version) : canonicalGoVersion(p.version);
      } catch (e) {
        if (e instanceof UnmatchableVersionError) return e.message;
        throw e;
      }
      return { ecosystem, name: p.name, nameKind: "binary", version: v, scheme, versionFrom: v === p.version ? "module version" : "canonical Go version" };
    }
    case "node":
      return { ecosystem, name: "node", nameKind: "binary", version: p.version.replace(/^v/, ""), scheme, versionFrom: "node --version" };
    default:
      return { ecosystem, name: p.name, nameKind: "binary", version: p.version, scheme, versionFrom: "package version" };
  }
}

/** Lookup keys and compared versions for every package of the report, in package id order. */
export function packageKeys(report: IndexReport, opts: PackageKeysOptions = {}): PackageKeys[] {
  const out: PackageKeys[] = [];
  const ids = Object.keys(report.packages ?? {}).sort(compareIds);
  for (const id of ids) {
    const p = report.packages![id]!;
    const env = report.environments?.[id]?.[0];
    const { type, path } = packageType(env?.package_db ?? "");
    const k: PackageKeys = { package: ref(id, p, env, type), targets: [] };
    if (env?.introduced_in) k.introducedIn = env.introduced_in;
    if (type && !["dpkg", "apk", "rpm"].includes(type)) k.path = path;
    out.push(k);
    if (!type) {
      k.unmatchable = `unknown package database ${JSON.stringify(env?.package_db ?? "")}`;
      continue;
    }
    if (type === "dpkg" || type === "apk" || type === "rpm") {
      if (!opts.distribution) {
        k.unsupported = "the image's distribution has no advisory ecosystem";
        continue;
      }
      const t = osTargets(type, p, opts.distribution);
      if (typeof t === "string") k.unsupported = t;
      else k.targets = t;
    } else {
      const owner = ownerOf(opts.ownership, k.path);
      if (owner) {
        k.governedBy = owner;
        continue;
      }
      const unsupported = unsupportedEcosystem(type);
      if (unsupported) {
        k.unmatchable = unsupported.reason;
        k.unsupportedEcosystem = unsupported.ecosystem;
        continue;
      }
      const t = languageTarget(type, p);
      if (typeof t === "string") k.unmatchable = t;
      else k.targets = [t];
    }
    for (const t of k.targets) {
      const why = invalidVersion(t.scheme, t.version);
      if (why) {
        k.unmatchable = why;
        k.targets = [];
        break;
      }
    }
  }
  return out;
}

/** The distinct (ecosystem, name) keys to ask the store for. */
export function lookupKeys(keys: readonly PackageKeys[]): PackageKey[] {
  const seen = new Map<string, PackageKey>();
  for (const k of keys) for (const t of k.targets) seen.set(`${t.ecosystem}\0${t.name}`, { ecosystem: t.ecosystem, name: t.name });
  return [...seen.values()];
}

/** Numeric ids in numeric order, then the rest as strings. */
export function compareIds(a: string, b: string): number {
  const x = /^\d+$/.test(a) ? Number(a) : Number.NaN;
  const y = /^\d+$/.test(b) ? Number(b) : Number.NaN;
  if (!Number.isNaN(x) && !Number.isNaN(y)) return x - y;
  if (!Number.isNaN(x)) return -1;
  if (!Number.isNaN(y)) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
