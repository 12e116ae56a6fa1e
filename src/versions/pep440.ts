// Python package versions (PyPI), ordered as PEP 440 ("Version scheme", "Summary of permitted suffixes
// and relative ordering") and Python's `packaging.version.Version` (23.x) order them:
//
//   [v][N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]
//
// with the spellings PEP 440's normalisation accepts (case-insensitive; `-`, `_` or `.` separators;
// alpha/beta/c/pre/preview for a/b/rc; rev/r for post; `1.0-1` = 1.0.post1; a missing number = 0;
// surrounding whitespace ignored). Order, most significant first:
// - epoch (missing = 0), then the release segment numerically with trailing zeros ignored (1.0 = 1.0.0);
// - dev < a < b < rc < (final) for the same release: a version that is only a .devN sorts before every
//   pre-release of its release; a missing pre-release sorts after any;
// - then post (none < any post), then dev (any dev < none);
// - then the local label: none < any; dot-separated parts compare pairwise, numbers numerically and above
//   words, words by ASCII (lower-cased), a shorter label first when it is a prefix of the other.
// Numbers of any length compare exactly. Strings PEP 440 does not describe (legacy versions such as
// `0.1-bulbasaur`) are unmatchable, as packaging 22+ refuses them.
// Written here rather than on @renovatebot/pep440, which turns every number into a float (30-digit
// releases compare equal) and reads local labels such as +0x1 as numbers.
import { compareDigitRuns, compareStrings, guard, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "pep440";

// PEP 440 Appendix B's pattern (the one packaging uses), with surrounding whitespace allowed.
const PATTERN = new RegExp(
  "^\\s*v?" +
    "(?:(?<epoch>[0-9]+)!)?" +
    "(?<release>[0-9]+(?:\\.[0-9]+)*)" +
    "(?<pre>[-_.]?(?<pre_l>alpha|beta|preview|pre|a|b|c|rc)[-_.]?(?<pre_n>[0-9]+)?)?" +
    "(?<post>-(?<post_n1>[0-9]+)|[-_.]?(?<post_l>post|rev|r)[-_.]?(?<post_n2>[0-9]+)?)?" +
    "(?<dev>[-_.]?(?<dev_l>dev)[-_.]?(?<dev_n>[0-9]+)?)?" +
    "(?:\\+(?<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?" +
    "\\s*$",
  "i",
);
const LOCAL_SEPARATOR = /[-_.]/;
const DIGITS = /^[0-9]+$/;

/** Pre-release kinds in order; RELEASE stands for "no pre-release", DEV_ONLY for a bare .devN. */
const DEV_ONLY = -1;
const PRE: Readonly<Record<string, number>> = { a: 0, alpha: 0, b: 1, beta: 1, c: 2, rc: 2, pre: 2, preview: 2 };
const RELEASE = 3;

interface Parsed {
  epoch: string;
  /** Release numbers without trailing zeros. */
  release: string[];
  pre: number;
  preN: string;
  /** undefined when there is no post-release. */
  post: string | undefined;
  dev: string | undefined;
  local: string[] | undefined;
}

function isZero(digits: string): boolean {
  return compareDigitRuns(digits, 0, digits.length, "", 0, 0) === 0;
}

export function parsePep440(v: string): Parsed {
  guard(NAME, v);
  const g = PATTERN.exec(v)?.groups;
  if (!g) throw new UnmatchableVersionError(NAME, v, "not a PEP 440 version");
  const release = g.release!.split(".");
  while (release.length > 1 && isZero(release[release.length - 1]!)) release.pop();
  const post = g.post === undefined ? undefined : (g.post_n1 ?? g.post_n2 ?? "0");
  const dev = g.dev === undefined ? undefined : (g.dev_n ?? "0");
  let pre = RELEASE;
  if (g.pre_l !== undefined) pre = PRE[g.pre_l.toLowerCase()]!;
  else if (post === undefined && dev !== undefined) pre = DEV_ONLY;
  return {
    epoch: g.epoch ?? "0",
    release,
    pre,
    preN: g.pre_n ?? "0",
    post,
    dev,
    local: g.local === undefined ? undefined : g.local.toLowerCase().split(LOCAL_SEPARATOR),
  };
}

function num(a: string, b: string): number {
  return compareDigitRuns(a, 0, a.length, b, 0, b.length);
}

function compareRelease(x: string[], y: string[]): number {
  const n = Math.min(x.length, y.length);
  for (let k = 0; k < n; k++) {
    const r = num(x[k]!, y[k]!);
    if (r !== 0) return r;
  }
  // Trailing zeros are gone, so a longer release has a non-zero part beyond the shorter one.
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

/** Missing sorts below (`low`) or above any present value. */
function optional(a: string | undefined, b: string | undefined, missingIsLow: boolean): number {
  if (a === undefined || b === undefined) return a === b ? 0 : (a === undefined) === missingIsLow ? -1 : 1;
  return num(a, b);
}

function compareLocal(x: string[] | undefined, y: string[] | undefined): number {
  if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? -1 : 1;
  const n = Math.min(x.length, y.length);
  for (let k = 0; k < n; k++) {
    const a = x[k]!;
    const b = y[k]!;
    const an = DIGITS.test(a);
    const bn = DIGITS.test(b);
    const r = an && bn ? num(a, b) : an !== bn ? (an ? 1 : -1) : compareStrings(a, b);
    if (r !== 0) return r;
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

function compareParsed(x: Parsed, y: Parsed): number {
  return (
    num(x.epoch, y.epoch) ||
    compareRelease(x.release, y.release) ||
    Math.sign(x.pre - y.pre) ||
    (x.pre !== RELEASE && x.pre !== DEV_ONLY ? num(x.preN, y.preN) : 0) ||
    optional(x.post, y.post, true) ||
    optional(x.dev, y.dev, false) ||
    compareLocal(x.local, y.local)
  );
}

export function comparePep440(a: string, b: string): number {
  return compareParsed(parsePep440(a), parsePep440(b));
}

export const pep440: VersionScheme = versionScheme(NAME, comparePep440, parsePep440);
