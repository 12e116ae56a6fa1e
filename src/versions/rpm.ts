// RPM versions (Red Hat, Rocky, Alma, SUSE, Amazon Linux...), ordered as rpm 4.18's `rpm.vercmp` orders
// [EPOCH:]VERSION[-RELEASE] labels (rpm-version(7), "Comparing"; Fedora's "rpmvercmp" description).
//
// Parsing: EPOCH is the run of digits before a ':' that follows it directly (else there is no epoch and
// the ':' is part of the version; an empty epoch is 0); RELEASE is everything after the LAST '-' of the
// rest. Only the empty string is refused (rpm: "invalid version"), besides common.ts's guard.
//
// Ordering: epochs numerically (missing = 0), then versions with rpmvercmp, then releases with
// rpmvercmp when both labels have one; a label with a release (even an empty one, `1-`) is newer than
// the same label without. (rpm's dependency ranges treat a missing release as "any"; that is a range
// rule, not an ordering, and belongs to the matcher.)
//
// rpmvercmp, on two strings:
// - characters other than ASCII letters, digits, '~' and '^' only separate segments;
// - '~' sorts before everything, even the end of the string (1.0~rc1 < 1.0);
// - '^' sorts after the end of the string but before anything else (1.0 < 1.0^git1 < 1.0.1);
// - segments are maximal runs of digits or of letters; a numeric segment is newer than an alphabetic
//   one; numeric segments compare as integers of any size, alphabetic ones by ASCII (case-sensitive);
// - when one string runs out, the one with segments left is newer; only separators left = equal.
import { compareDigitRuns, guard, isAlpha, isDigit, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "rpm";
const TILDE = 0x7e;
const CARET = 0x5e;

export interface Evr {
  /** Decimal digits; "0" when the label has no epoch or an empty one. */
  epoch: string;
  version: string;
  /** undefined when the label has no '-'. */
  release: string | undefined;
}

/** Where the parts of a label are: epoch s[0, ee), version s[vs, ve), release s[ve + 1, length) if hasRelease. */
interface Bounds {
  ee: number;
  vs: number;
  ve: number;
  hasRelease: boolean;
}

function bounds(s: string): Bounds {
  guard(NAME, s);
  if (s.length === 0) throw new UnmatchableVersionError(NAME, s, "empty version");
  let i = 0;
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  let ee = 0;
  let vs = 0;
  if (i < s.length && s.charCodeAt(i) === 0x3a) {
    ee = i;
    vs = i + 1;
  }
  const dash = s.lastIndexOf("-");
  return dash >= vs ? { ee, vs, ve: dash, hasRelease: true } : { ee, vs, ve: s.length, hasRelease: false };
}

/** Splits an [EPOCH:]VERSION[-RELEASE] label as rpm does. Throws UnmatchableVersionError for "". */
export function parseEvr(label: string): Evr {
  const b = bounds(label);
  return {
    epoch: b.ee === 0 ? "0" : label.slice(0, b.ee),
    version: label.slice(b.vs, b.ve),
    release: b.hasRelease ? label.slice(b.ve + 1) : undefined,
  };
}

function isSeparator(c: number): boolean {
  return !isDigit(c) && !isAlpha(c) && c !== TILDE && c !== CARET;
}

/** rpmvercmp over a[ai, ae) and b[bi, be). */
function vercmp(a: string, ai: number, ae: number, b: string, bi: number, be: number): number {
  for (;;) {
    while (ai < ae && isSeparator(a.charCodeAt(ai))) ai++;
    while (bi < be && isSeparator(b.charCodeAt(bi))) bi++;
    const ca = ai < ae ? a.charCodeAt(ai) : -1;
    const cb = bi < be ? b.charCodeAt(bi) : -1;
    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1;
      if (cb !== TILDE) return -1;
      ai++;
      bi++;
      continue;
    }
    if (ca === CARET || cb === CARET) {
      if (ca === -1) return -1;
      if (cb === -1) return 1;
      if (ca !== CARET) return 1;
      if (cb !== CARET) return -1;
      ai++;
      bi++;
      continue;
    }
    if (ca === -1 || cb === -1) return ca === cb ? 0 : ca === -1 ? -1 : 1;
    const numeric = isDigit(ca);
    const is = numeric ? isDigit : isAlpha;
    let aj = ai;
    let bj = bi;
    while (aj < ae && is(a.charCodeAt(aj))) aj++;
    while (bj < be && is(b.charCodeAt(bj))) bj++;
    // b's segment is of the other kind: a numeric segment is newer than an alphabetic one.
    if (bj === bi) return numeric ? 1 : -1;
    let r: number;
    if (numeric) {
      r = compareDigitRuns(a, ai, aj, b, bi, bj);
    } else {
      r = 0;
      const n = Math.min(aj - ai, bj - bi);
      for (let k = 0; k < n && r === 0; k++) r = a.charCodeAt(ai + k) - b.charCodeAt(bi + k);
      if (r === 0) r = aj - ai - (bj - bi);
    }
    if (r !== 0) return r < 0 ? -1 : 1;
    ai = aj;
    bi = bj;
  }
}

/** rpmvercmp on two version (or release) strings, without EVR parsing. */
export function rpmvercmp(a: string, b: string): number {
  return vercmp(a, 0, a.length, b, 0, b.length);
}

export function compareRpm(a: string, b: string): number {
  const x = bounds(a);
  const y = bounds(b);
  const e = compareDigitRuns(a, 0, x.ee, b, 0, y.ee);
  if (e !== 0) return e;
  const v = vercmp(a, x.vs, x.ve, b, y.vs, y.ve);
  if (v !== 0) return v;
  if (x.hasRelease && y.hasRelease) return vercmp(a, x.ve + 1, a.length, b, y.ve + 1, b.length);
  return x.hasRelease === y.hasRelease ? 0 : x.hasRelease ? 1 : -1;
}

export const rpm: VersionScheme = versionScheme(NAME, compareRpm, bounds);
