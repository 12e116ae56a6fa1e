// Go module versions, ordered as golang.org/x/mod/semver orders them (the Go command's own rules; Go
// Modules Reference, "Versions"; SemVer 2.0 precedence):
//
//   vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]
//
// - numbers are 0 or start with 1-9; `v1` and `v1.2` are shorthands for v1.0.0 and v1.2.0 (and then
//   take no prerelease or build);
// - PRERELEASE: dot-separated identifiers of [0-9A-Za-z-], numeric ones without leading zeros; a version
//   with a prerelease sorts before the same version without one; identifiers compare pairwise, numeric
//   ones as numbers (any size), alphanumeric ones by ASCII, numeric before alphanumeric, and a shorter
//   list first when it is a prefix of the other;
// - BUILD is ignored (`+incompatible` marks a v2+ module without go.mod; it does not order);
// - pseudo-versions (v0.0.0-20220722155237-a158d28d115b) are prereleases: below v0.0.0 itself.
//
// Also read, and turned into that form first (canonicalGoVersion):
// - versions without the `v`, as OSV's Go records write them (1.19.9, 1.20.0-0);
// - Go release tags for the standard library: go1.19.8 -> v1.19.8, go1.20 -> v1.20.0,
//   go1.21rc2 -> v1.21.0-rc.2, go1.21beta1 -> v1.21.0-beta.1 (the vulndb convention).
// Invalid versions are unmatchable (x/mod/semver would sort them below every valid one).
import { compareDigitRuns, compareStrings, guard, isAlpha, isDigit, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "go";
const GO_TAG = /^go(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(beta|rc)(\d+))?$/;

interface Parsed {
  major: string;
  minor: string;
  patch: string;
  /** Prerelease identifiers; empty for a release. */
  pre: string[];
}

function fail(v: string, why: string): never {
  throw new UnmatchableVersionError(NAME, v, why);
}

/** A run of digits at s[i...) that is 0 or has no leading zero; returns its end, or -1. */
function number(s: string, i: number): number {
  const start = i;
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  if (i === start || (i - start > 1 && s.charCodeAt(start) === 0x30)) return -1;
  return i;
}

function isIdentChar(c: number): boolean {
  return isDigit(c) || isAlpha(c) || c === 0x2d;
}

/** Dot-separated identifiers at s[i...) up to '+' or the end; returns them and where they end. */
function identifiers(v: string, s: string, i: number, numericRule: boolean): [string[], number] {
  const out: string[] = [];
  for (;;) {
    const start = i;
    let allDigits = true;
    while (i < s.length && isIdentChar(s.charCodeAt(i))) {
      if (!isDigit(s.charCodeAt(i))) allDigits = false;
      i++;
    }
    if (i === start) fail(v, `empty identifier at ${start}`);
    if (numericRule && allDigits && i - start > 1 && s.charCodeAt(start) === 0x30) fail(v, `numeric identifier with a leading zero at ${start}`);
    out.push(s.slice(start, i));
    if (i < s.length && s.charCodeAt(i) === 0x2e) i++;
    else return [out, i];
  }
}

/** Reads v as x/mod/semver does, after canonicalGoVersion's conversions of its input. */
function parse(input: string): Parsed {
  guard(NAME, input);
  const s = toSemver(input);
  let i = 1;
  let e = number(s, i);
  if (e < 0) fail(input, "no major version");
  const major = s.slice(i, e);
  let minor = "0";
  let patch = "0";
  let pre: string[] = [];
  if (e === s.length) return { major, minor, patch, pre };
  if (s.charCodeAt(e) !== 0x2e) fail(input, `expected "." at ${e}`);
  i = e + 1;
  e = number(s, i);
  if (e < 0) fail(input, "bad minor version");
  minor = s.slice(i, e);
  if (e === s.length) return { major, minor, patch, pre };
  if (s.charCodeAt(e) !== 0x2e) fail(input, `expected "." at ${e}`);
  i = e + 1;
  e = number(s, i);
  if (e < 0) fail(input, "bad patch version");
  patch = s.slice(i, e);
  i = e;
  if (i < s.length && s.charCodeAt(i) === 0x2d) [pre, i] = identifiers(input, s, i + 1, true);
  if (i < s.length && s.charCodeAt(i) === 0x2b) [, i] = identifiers(input, s, i + 1, false);
  if (i !== s.length) fail(input, `unexpected "${s[i]}" at ${i}`);
  return { major, minor, patch, pre };
}

/** `v` added to a bare version, Go release tags converted; anything else returned as is. */
function toSemver(s: string): string {
  if (s.startsWith("v")) return s;
  if (s.startsWith("go")) {
    const m = GO_TAG.exec(s);
    if (!m) fail(s, "not a Go release tag (go1.21.3, go1.21rc2)");
    return `v${m[1]}.${m[2] ?? "0"}.${m[3] ?? "0"}${m[4] ? `-${m[4]}.${m[5]}` : ""}`;
  }
  return `v${s}`;
}

/**
 * The canonical x/mod/semver form: `v`, all three numbers, the prerelease, no build metadata
 * (go1.21rc2 -> v1.21.0-rc.2, 1.20 -> v1.20.0, v2.0.0+incompatible -> v2.0.0). Two versions compare
 * equal exactly when their canonical forms are the same string. Throws UnmatchableVersionError.
 */
export function canonicalGoVersion(v: string): string {
  const p = parse(v);
  return `v${p.major}.${p.minor}.${p.patch}${p.pre.length ? `-${p.pre.join(".")}` : ""}`;
}

function allDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

/** SemVer 2.0 prerelease precedence; an empty list (a release) is the highest. */
export function comparePrerelease(x: readonly string[], y: readonly string[]): number {
  if (x.length === 0 || y.length === 0) return x.length === y.length ? 0 : x.length === 0 ? 1 : -1;
  const n = Math.min(x.length, y.length);
  for (let k = 0; k < n; k++) {
    const a = x[k]!;
    const b = y[k]!;
    if (a === b) continue;
    const an = allDigits(a);
    const bn = allDigits(b);
    if (an && bn) return compareDigitRuns(a, 0, a.length, b, 0, b.length);
    if (an !== bn) return an ? -1 : 1;
    return compareStrings(a, b);
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

export function compareGo(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  return (
    compareDigitRuns(x.major, 0, x.major.length, y.major, 0, y.major.length) ||
    compareDigitRuns(x.minor, 0, x.minor.length, y.minor, 0, y.minor.length) ||
    compareDigitRuns(x.patch, 0, x.patch.length, y.patch, 0, y.patch.length) ||
    comparePrerelease(x.pre, y.pre)
  );
}

export const golang: VersionScheme = versionScheme(NAME, compareGo, parse);
