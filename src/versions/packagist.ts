// Packagist (PHP Composer) versions, ordered as OSV's Packagist ecosystem does: PHP's version_compare()
// after a leading `v` is removed (Composer writes tags as `v1.8.1`).
//
// version_compare, as php-src ext/standard/versioning.c defines it:
// - canonical form: `-`, `_`, `+` and any other non-alphanumeric character become `.`, a `.` is inserted
//   where a digit meets a non-digit (`1.0rc1` → `1.0.rc.1`), and separators never double;
// - parts compare left to right: two numbers as numbers (exactly here, at any length); two words by their
//   special form, the first that prefixes the word: dev < alpha = a < beta = b < RC = rc < (a number) <
//   pl = p, and any other word below dev; a number against a word as `#` (the number's rank) against it;
// - when one side runs out, a further number on the other side makes it greater, a further word is
//   ranked against a number (`1.0` > `1.0rc1`, `1.0` < `1.0pl1`).
// Unmatchable: the empty string, branch names (`dev-main`: no order among releases), characters outside
// [0-9A-Za-z.+_-], and versions without a digit.
import { compareNumeric, guard, isAlpha, isDigit, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "packagist";
const ALLOWED = /^[0-9A-Za-z.+_-]+$/;
const SPECIAL: ReadonlyArray<readonly [string, number]> = [
  ["dev", 0], ["alpha", 1], ["a", 1], ["beta", 2], ["b", 2], ["RC", 3], ["rc", 3], ["#", 4], ["pl", 5], ["p", 5],
]; // prettier-ignore

/** Whether the first character of `s` is a digit (false for ""). */
const digitFirst = (s: string) => isDigit(s.charCodeAt(0));

export function parsePackagist(v: string): string[] {
  guard(NAME, v);
  let s = v.trim();
  if (s.startsWith("v") || s.startsWith("V")) s = s.slice(1);
  if (!s || !ALLOWED.test(s)) throw new UnmatchableVersionError(NAME, v, "not a Composer version (digits, letters and . + _ - only)");
  if (/^dev-/i.test(s)) throw new UnmatchableVersionError(NAME, v, "a development branch, not a release");
  if (!/[0-9]/.test(s)) throw new UnmatchableVersionError(NAME, v, "no number in it");
  return canonical(s).split(".");
}

/** php_canonicalize_version. */
function canonical(s: string): string {
  let out = s[0]!;
  for (let i = 1; i < s.length; i++) {
    const c = s[i]!;
    const lp = s[i - 1]!;
    const last = out[out.length - 1];
    if (c === "-" || c === "_" || c === "+" || !(digitFirst(c) || isAlpha(c.charCodeAt(0)))) {
      if (last !== ".") out += ".";
    } else if ((digitFirst(lp) !== digitFirst(c)) && lp !== "." && !(lp === "-" || lp === "_" || lp === "+")) {
      if (last !== ".") out += ".";
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

function special(form: string): number {
  for (const [name, order] of SPECIAL) if (form.startsWith(name)) return order;
  return -1;
}

function comparePart(a: string, b: string): number {
  const ad = digitFirst(a);
  const bd = digitFirst(b);
  if (ad && bd) return compareNumeric(a, b);
  return Math.sign(special(ad ? "#" : a) - special(bd ? "#" : b));
}

function compareParts(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = comparePart(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  if (a.length > n) return digitFirst(a[n]!) ? 1 : compareParts(a.slice(n), ["#"]);
  if (b.length > n) return digitFirst(b[n]!) ? -1 : compareParts(["#"], b.slice(n));
  return 0;
}

export function comparePackagist(a: string, b: string): number {
  return compareParts(parsePackagist(a), parsePackagist(b));
}

export const packagist: VersionScheme = versionScheme(NAME, comparePackagist, parsePackagist);
