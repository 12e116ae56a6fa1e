// Alpine (and Wolfi/Chainguard) package versions, after the format apk documents in apk-package(5):
//
//   number{.number}...{letter}{_suffix{number}}...{~hash}{-r#}
//
// numbers are digit runs; letter is one of a-z; suffixes are alpha, beta, pre, rc, cvs, svn, git, hg, p,
// each with an optional number; hash is lower-case hex (the commit a package was built from); -r# is
// the package build number. Older packages put digits after the letter (openssh 5.1p1-r0, in real
// secdb data), so the letter may carry a number too. Anything else is unmatchable, including the empty
// string, a leading or doubled '.', `-r` without a number and upper-case letters. apk-package(5) says the format follows the
// Gentoo version specification, so the order is Gentoo's (Package Manager Specification, "Version
// comparison") with Alpine's suffix set:
//
// 1. The first numbers compare as integers. Later numbers compare as integers too, unless either has
//    a leading zero: then both, with trailing zeros removed, compare as strings (1.01 < 1.1, 1.010 = 1.01).
//    When all shared numbers are equal, the version with more numbers is newer (1.0 < 1.0.0).
// 2. Letter: none < a < ... < z; then the letter's number: none < any number (5.1p < 5.1p0 < 5.1p1).
// 3. Suffixes pairwise: _alpha < _beta < _pre < _rc < _cvs < _svn < _git < _hg < _p, then their numbers
//    (missing = 0). When one version has more suffixes, its next one decides: a pre-release suffix
//    (alpha, beta, pre, rc) makes it older than no suffix, any other makes it newer.
// 4. ~hash: ignored by the order: it names the commit of a build, not a newer one.
// 5. -r#: as integers, missing = -r0.
// Numbers of any length compare exactly.
import { compareDigitRuns, guard, isDigit, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "apk";

/** Suffix names and their rank; rank < NO_SUFFIX means a pre-release. */
const SUFFIXES: ReadonlyMap<string, number> = new Map([
  ["alpha", 0],
  ["beta", 1],
  ["pre", 2],
  ["rc", 3],
  ["cvs", 5],
  ["svn", 6],
  ["git", 7],
  ["hg", 8],
  ["p", 9],
]);
const NO_SUFFIX = 4;

/** Offsets into `s`: numbers as [start, end) pairs; suffixes as [rank, start, end) triples. */
interface Parsed {
  s: string;
  numbers: number[];
  letter: number;
  /** The letter's number: s[ls, le); ls = -1 when there is none. */
  ls: number;
  le: number;
  suffixes: number[];
  /** The -r number: s[rs, re); empty when absent. */
  rs: number;
  re: number;
}

function fail(v: string, why: string): never {
  throw new UnmatchableVersionError(NAME, v, why);
}

function isLower(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66);
}

export function parseApk(v: string): Parsed {
  guard(NAME, v);
  const s = v;
  const n = s.length;
  let i = 0;
  const numbers: number[] = [];
  for (;;) {
    const start = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    if (i === start) fail(v, numbers.length === 0 ? "does not start with a number" : `no number after '.' at ${start}`);
    numbers.push(start, i);
    if (i < n && s.charCodeAt(i) === 0x2e) i++;
    else break;
  }
  let letter = 0;
  let ls = -1;
  let le = -1;
  if (i < n && isLower(s.charCodeAt(i))) {
    letter = s.charCodeAt(i++);
    if (i < n && isDigit(s.charCodeAt(i))) {
      ls = i;
      while (i < n && isDigit(s.charCodeAt(i))) i++;
      le = i;
    }
  }
  const suffixes: number[] = [];
  while (i < n && s.charCodeAt(i) === 0x5f) {
    const ns = ++i;
    while (i < n && isLower(s.charCodeAt(i))) i++;
    const rank = SUFFIXES.get(s.slice(ns, i));
    if (rank === undefined) fail(v, `unknown suffix "_${s.slice(ns, i)}"`);
    const ds = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    suffixes.push(rank, ds, i);
  }
  if (i < n && s.charCodeAt(i) === 0x7e) {
    const hs = ++i;
    while (i < n && isHex(s.charCodeAt(i))) i++;
    if (i === hs) fail(v, "empty ~hash");
  }
  let rs = n;
  let re = n;
  if (i < n && s.charCodeAt(i) === 0x2d) {
    if (s.charCodeAt(i + 1) !== 0x72) fail(v, `expected "-r" at ${i}`);
    rs = i + 2;
    i = rs;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    if (i === rs) fail(v, "no number after -r");
    re = i;
  }
  if (i !== n) fail(v, `unexpected "${s[i]}" at ${i}`);
  return { s, numbers, letter, ls, le, suffixes, rs, re };
}

/** Gentoo's rule for a number after the first: as strings without trailing zeros if either has a leading zero. */
function compareLaterNumber(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  if (a.charCodeAt(as) !== 0x30 && b.charCodeAt(bs) !== 0x30) return compareDigitRuns(a, as, ae, b, bs, be);
  while (ae > as && a.charCodeAt(ae - 1) === 0x30) ae--;
  while (be > bs && b.charCodeAt(be - 1) === 0x30) be--;
  const n = Math.min(ae - as, be - bs);
  for (let k = 0; k < n; k++) {
    const d = a.charCodeAt(as + k) - b.charCodeAt(bs + k);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return Math.sign(ae - as - (be - bs));
}

function compareParsed(x: Parsed, y: Parsed): number {
  const a = x.s;
  const b = y.s;
  const xn = x.numbers;
  const yn = y.numbers;
  let r = compareDigitRuns(a, xn[0]!, xn[1]!, b, yn[0]!, yn[1]!);
  if (r !== 0) return r;
  const common = Math.min(xn.length, yn.length);
  for (let k = 2; k < common; k += 2) {
    r = compareLaterNumber(a, xn[k]!, xn[k + 1]!, b, yn[k]!, yn[k + 1]!);
    if (r !== 0) return r;
  }
  if (xn.length !== yn.length) return xn.length < yn.length ? -1 : 1;
  if (x.letter !== y.letter) return x.letter < y.letter ? -1 : 1;
  if ((x.ls < 0) !== (y.ls < 0)) return x.ls < 0 ? -1 : 1;
  if (x.ls >= 0) {
    r = compareDigitRuns(a, x.ls, x.le, b, y.ls, y.le);
    if (r !== 0) return r;
  }
  const xs = x.suffixes;
  const ys = y.suffixes;
  const shared = Math.min(xs.length, ys.length);
  for (let k = 0; k < shared; k += 3) {
    if (xs[k] !== ys[k]) return xs[k]! < ys[k]! ? -1 : 1;
    r = compareDigitRuns(a, xs[k + 1]!, xs[k + 2]!, b, ys[k + 1]!, ys[k + 2]!);
    if (r !== 0) return r;
  }
  if (xs.length > shared) return xs[shared]! < NO_SUFFIX ? -1 : 1;
  if (ys.length > shared) return ys[shared]! < NO_SUFFIX ? 1 : -1;
  return compareDigitRuns(a, x.rs, x.re, b, y.rs, y.re);
}

export function compareApk(a: string, b: string): number {
  return compareParsed(parseApk(a), parseApk(b));
}

export const apk: VersionScheme = versionScheme(NAME, compareApk, parseApk);
