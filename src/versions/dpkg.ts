// Debian and Ubuntu package versions, as dpkg compares them (Debian Policy 5.6.12, "Version"):
//
//   [epoch:]upstream_version[-debian_revision]
//
// - epoch: a decimal number before the first ':', compared numerically; absent = 0.
// - debian_revision: everything after the LAST '-'; absent equals "0" (1.0 = 1.0-0).
// - upstream and revision are compared with the same algorithm, alternating two steps until both are
//   used up: the longest non-digit prefixes, character by character, with '~' before everything, even
//   the end of the prefix, then the end, then letters (in ASCII order), then all other characters (in
//   ASCII order); then the longest digit prefixes, numerically (any length; an empty run is 0).
//
// Input handling follows `dpkg --compare-versions` (dpkg 1.21): leading and trailing whitespace is
// ignored; these are errors, so unmatchable: embedded whitespace, an empty epoch or one that is not a
// number, negative or above 2^31-1, nothing after the colon, an empty upstream version, an empty
// revision after a '-'. dpkg only warns about an upstream version that does not start with a digit or
// characters outside [A-Za-z0-9.+~-:], and compares such versions anyway; so does this module.
// Stricter than dpkg on purpose: the empty string (dpkg: lower than everything; here: no version) and
// what common.ts's guard refuses (non-ASCII, over 256 characters).
import { compareDigitRuns, guard, isAlpha, isDigit, isSpace, trimSpace, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "dpkg";
const INT_MAX = 2147483647;

/** A parsed version: the trimmed string and where its parts are (no substrings are made). */
interface Parsed {
  s: string;
  epoch: number;
  /** upstream = s[us, ue), revision = s[rs, s.length) (empty when there is no '-'). */
  us: number;
  ue: number;
  rs: number;
}

function fail(v: string, why: string): never {
  throw new UnmatchableVersionError(NAME, v, why);
}

export function parseDpkg(v: string): Parsed {
  guard(NAME, v);
  const s = trimSpace(v);
  if (s.length === 0) fail(v, "empty version");
  let colon = -1;
  let dash = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) fail(v, "embedded whitespace");
    if (c === 0x3a && colon < 0) colon = i;
    else if (c === 0x2d) dash = i;
  }
  let epoch = 0;
  let us = 0;
  if (colon >= 0) {
    // strtol(3) as dpkg calls it: optional sign, then digits, then the colon must follow.
    let i = 0;
    let negative = false;
    const c0 = s.charCodeAt(0);
    if (c0 === 0x2b || c0 === 0x2d) {
      negative = c0 === 0x2d;
      i = 1;
    }
    const digits = i;
    let value = 0;
    while (i < colon && isDigit(s.charCodeAt(i))) {
      if (value <= INT_MAX) value = value * 10 + (s.charCodeAt(i) - 0x30);
      i++;
    }
    if (i === digits) fail(v, "epoch is empty");
    if (i !== colon) fail(v, "epoch is not a number");
    if (value > INT_MAX) fail(v, "epoch is too big");
    if (negative && value !== 0) fail(v, "epoch is negative");
    epoch = value;
    us = colon + 1;
    if (us === s.length) fail(v, "nothing after the colon");
  }
  // The revision starts after the last '-' of the part after the epoch.
  let ue = s.length;
  let rs = s.length;
  if (dash >= us) {
    ue = dash;
    rs = dash + 1;
    if (rs === s.length) fail(v, "revision is empty");
  }
  if (ue === us) fail(v, "upstream version is empty");
  return { s, epoch, us, ue, rs };
}

/** dpkg's character weight inside a non-digit run: '~' < end of run < letters < everything else. */
function order(c: number): number {
  if (c === 0x7e) return -1;
  if (isAlpha(c)) return c;
  return c + 256;
}

/** Policy's comparison of one part (upstream or revision): a[ai, ae) against b[bi, be). */
function comparePart(a: string, ai: number, ae: number, b: string, bi: number, be: number): number {
  while (ai < ae || bi < be) {
    // Non-digit prefixes, character by character; a digit or the end weighs 0.
    while ((ai < ae && !isDigit(a.charCodeAt(ai))) || (bi < be && !isDigit(b.charCodeAt(bi)))) {
      const ca = ai < ae && !isDigit(a.charCodeAt(ai)) ? order(a.charCodeAt(ai)) : 0;
      const cb = bi < be && !isDigit(b.charCodeAt(bi)) ? order(b.charCodeAt(bi)) : 0;
      if (ca !== cb) return ca < cb ? -1 : 1;
      ai++;
      bi++;
    }
    // Digit prefixes, numerically.
    let ad = ai;
    let bd = bi;
    while (ad < ae && isDigit(a.charCodeAt(ad))) ad++;
    while (bd < be && isDigit(b.charCodeAt(bd))) bd++;
    const r = compareDigitRuns(a, ai, ad, b, bi, bd);
    if (r !== 0) return r;
    ai = ad;
    bi = bd;
  }
  return 0;
}

function compareParsed(x: Parsed, y: Parsed): number {
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  const r = comparePart(x.s, x.us, x.ue, y.s, y.us, y.ue);
  if (r !== 0) return r;
  return comparePart(x.s, x.rs, x.s.length, y.s, y.rs, y.s.length);
}

export function compareDpkg(a: string, b: string): number {
  return compareParsed(parseDpkg(a), parseDpkg(b));
}

export const dpkg: VersionScheme = versionScheme(NAME, compareDpkg, parseDpkg);
