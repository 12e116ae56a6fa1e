// npm, crates.io and Node.js runtime versions: Semantic Versioning 2.0 precedence, as npm's own `semver`
// package (7.x) computes it with `compare` in its strict mode:
//
//   [v]MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]    (surrounding whitespace ignored)
//
// - a version with a prerelease sorts before the same version without one; prerelease identifiers
//   compare pairwise, numeric ones as numbers, alphanumeric ones by ASCII, numeric before alphanumeric,
//   a shorter list first when it is a prefix of the other; build metadata is ignored.
// - Ordering uses compare, never satisfies: satisfies("7.5.2-rc.1", ">=7.0.0 <7.5.2") is false although
//   7.0.0 <= 7.5.2-rc.1 < 7.5.2, so OSV ranges must be evaluated with compare.
// Unmatchable: what npm's semver refuses (no shorthands like 1.2, four components, leading zeros,
// numbers above 2^53-1, over 256 characters), and numeric prerelease identifiers above 2^53-1, which npm
// keeps as strings and then compares through floating point (inexact).
// satisfies() below is for constraint strings such as Node.js' own advisories ("^20.20.2 || ^22.22.2").
import { Range, SemVer } from "semver";
import { guard, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "semver";
const DIGITS = /^[0-9]+$/;

export function parseSemver(v: string): SemVer {
  guard(NAME, v);
  let parsed: SemVer;
  try {
    parsed = new SemVer(v);
  } catch (e) {
    throw new UnmatchableVersionError(NAME, v, (e as Error).message);
  }
  for (const id of parsed.prerelease) {
    if (typeof id === "string" && DIGITS.test(id)) {
      throw new UnmatchableVersionError(NAME, v, `numeric prerelease identifier ${id} is above 2^53-1`);
    }
  }
  return parsed;
}

export function compareSemver(a: string, b: string): number {
  return parseSemver(a).compare(parseSemver(b));
}

/**
 * Whether `version` is in the npm range `range` (`^20.20.2 || ^22.22.2`, `>=1.0.0 <1.2.3`), with npm's
 * rule that a prerelease only matches comparators naming a prerelease of the same MAJOR.MINOR.PATCH.
 * Throws UnmatchableVersionError for an unreadable version or range, and for an empty range (npm: "*").
 */
export function satisfies(version: string, range: string): boolean {
  const v = parseSemver(version);
  guard(NAME, range);
  // npm reads "" as "*" (everything); in advisory data an empty constraint is missing data, not "all".
  if (range.trim() === "") throw new UnmatchableVersionError(NAME, range, "empty range");
  let r: Range;
  try {
    r = new Range(range);
  } catch (e) {
    throw new UnmatchableVersionError(NAME, range, `not a range: ${(e as Error).message}`);
  }
  return r.test(v);
}

export const semver: VersionScheme = versionScheme(NAME, compareSemver, parseSemver);
