// RubyGems versions, ordered as Gem::Version#<=> orders them (RubyGems 3.3, the `Gem::Version` API
// documentation; the format is Gem::Version::VERSION_PATTERN):
//
//   N(.X)*(-Y(.Y)*)?     N: digits; X: [0-9A-Za-z]+; Y: [0-9A-Za-z-]+; surrounding whitespace ignored
//
// - '-' means ".pre." (1.0-1 is 1.0.pre.1);
// - segments are the runs of digits and of letters (1.0.a10 = 1, 0, a, 10; 1.0a is refused above, but
//   1.0.0a is read as 1, 0, 0, a);
// - trailing zeros are dropped from the numeric part before the first letter segment and from the rest
//   (1.0 = 1, 1.0.a = 1.a);
// - then segments compare pairwise, a missing one counting as 0: numbers numerically (any size), letter
//   runs by ASCII (case-sensitive: B < a), and a letter run is lower than any number, so any version
//   with letters is a prerelease of its numeric part (1.0.b1 < 1.0).
// Unmatchable: what Gem::Version refuses ("Malformed version number string": 1beta, 1.0-, 1..2), and the
// empty or blank string, which Gem::Version reads as 0 but which names no version.
// Written here rather than on @renovatebot/ruby-semver, which turns numbers into floats (30-digit
// segments compare equal) and orders letters with localeCompare (1.a < 1.B, where Ruby says 1.a > 1.B).
import { compareNumeric, compareStrings, guard, isDigit, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "rubygems";
// Gem::Version::ANCHORED_VERSION_PATTERN; Ruby's \s is [ \t\r\n\f\v].
const PATTERN = /^[ \t\r\n\f\v]*(?:[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?[ \t\r\n\f\v]*$/;
const SEGMENT = /[0-9]+|[a-z]+/gi;

/** Canonical segments: numbers without leading zeros (as digit strings), letter runs as they are. */
export function parseRubygems(v: string): string[] {
  guard(NAME, v);
  if (!PATTERN.test(v)) throw new UnmatchableVersionError(NAME, v, "malformed version number string");
  const segments = v.replaceAll("-", ".pre.").match(SEGMENT);
  if (!segments) throw new UnmatchableVersionError(NAME, v, "empty version");
  let firstString = segments.length;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (isDigit(s.charCodeAt(0))) {
      let z = 0;
      while (z < s.length - 1 && s.charCodeAt(z) === 0x30) z++;
      if (z > 0) segments[i] = s.slice(z);
    } else if (firstString === segments.length) {
      firstString = i;
    }
  }
  // Drop trailing zeros of the numeric part and of the rest, each on its own.
  const numeric = segments.slice(0, firstString);
  while (numeric.length > 0 && numeric[numeric.length - 1] === "0") numeric.pop();
  const rest = segments.slice(firstString);
  while (rest.length > 0 && rest[rest.length - 1] === "0") rest.pop();
  return numeric.concat(rest);
}

function compareSegments(x: string[], y: string[]): number {
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const a = x[i] ?? "0";
    const b = y[i] ?? "0";
    if (a === b) continue;
    const an = isDigit(a.charCodeAt(0));
    const bn = isDigit(b.charCodeAt(0));
    if (an !== bn) return an ? 1 : -1;
    return an ? compareNumeric(a, b) : compareStrings(a, b);
  }
  return 0;
}

export function compareRubygems(a: string, b: string): number {
  return compareSegments(parseRubygems(a), parseRubygems(b));
}

export const rubygems: VersionScheme = versionScheme(NAME, compareRubygems, parseRubygems);
