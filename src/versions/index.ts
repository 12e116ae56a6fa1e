// The version schemes, and which one an OSV ecosystem string (https://ossf.github.io/osv-schema/,
// "affected[].package.ecosystem") is compared with. Ecosystem names are case-sensitive, as in OSV.
import { apk } from "./apk.js";
import { dpkg } from "./dpkg.js";
import { golang } from "./golang.js";
import { maven } from "./maven.js";
import { nuget } from "./nuget.js";
import { packagist } from "./packagist.js";
import { pep440 } from "./pep440.js";
import { rpm } from "./rpm.js";
import { rubygems } from "./rubygems.js";
import { semver } from "./semver.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

export { UnmatchableVersionError, type VersionScheme } from "./types.js";
export { apk, dpkg, golang, maven, nuget, packagist, pep440, rpm, rubygems, semver };
export { parseEvr, rpmvercmp, type Evr } from "./rpm.js";
export { canonicalGoVersion } from "./golang.js";
export { satisfies } from "./semver.js";

/** Whole names. */
const EXACT: ReadonlyMap<string, VersionScheme> = new Map([
  ["Debian", dpkg],
  ["Alpine", apk],
  ["Wolfi", apk],
  ["Chainguard", apk],
  ["npm", semver],
  ["crates.io", semver],
  ["Node.js", semver],
  ["PyPI", pep440],
  ["Go", golang],
  ["Maven", maven],
  ["RubyGems", rubygems],
  ["NuGet", nuget],
  ["Packagist", packagist],
]);

/** Name prefixes: `Debian:12`, `Ubuntu:22.04:LTS`, `Red Hat:enterprise_linux:9`, `openSUSE:Leap 15.5`... */
const PREFIXES: ReadonlyArray<readonly [string, VersionScheme]> = [
  ["Debian:", dpkg],
  ["Ubuntu:", dpkg],
  ["Alpine:", apk],
  ["RHEL:", rpm],
  ["Red Hat", rpm],
  ["Rocky Linux", rpm],
  ["AlmaLinux", rpm],
  ["openSUSE", rpm],
  ["SUSE", rpm],
];

/** The scheme for an OSV ecosystem, or undefined when Portcullis has none (the record is skipped). */
export function schemeFor(ecosystem: string): VersionScheme | undefined {
  const exact = EXACT.get(ecosystem);
  if (exact) return exact;
  for (const [prefix, scheme] of PREFIXES) if (ecosystem.startsWith(prefix)) return scheme;
  return undefined;
}

/** Why `v` is not a version of `scheme` (the UnmatchableVersionError's message), or undefined when it is one. */
export function invalidVersion(scheme: VersionScheme, v: string): string | undefined {
  try {
    scheme.compare(v, v);
    return undefined;
  } catch (e) {
    if (e instanceof UnmatchableVersionError) return e.message;
    throw e;
  }
}
