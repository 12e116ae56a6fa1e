// Helpers shared by the version schemes: the input guard every scheme applies first, exact comparison of
// decimal digit runs of any length (no Number(): 30-digit components must not collapse into the same
// float), and the VersionScheme object each scheme exports.
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

/** Longer version strings are refused: no packaging system produces them, and parsing stays cheap. */
export const MAX_VERSION_LENGTH = 256;

/**
 * Refuses what no scheme reads: non-strings, strings over MAX_VERSION_LENGTH, and characters outside
 * printable ASCII (C whitespace \t \n \v \f \r is let through; each scheme says what whitespace means).
 * The real tools accept some of these (dpkg compares UTF-8 bytes with a warning); a vulnerability match
 * on such a string would be a guess, so it is unmatchable here.
 */
export function guard(scheme: string, v: string): void {
  if (typeof v !== "string") throw new UnmatchableVersionError(scheme, String(v), "not a string");
  if (v.length > MAX_VERSION_LENGTH) throw new UnmatchableVersionError(scheme, `${v.slice(0, 40)}…`, `longer than ${MAX_VERSION_LENGTH} characters`);
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c > 0x7e || (c < 0x20 && (c < 0x09 || c > 0x0d))) {
      throw new UnmatchableVersionError(scheme, v, `character U+${c.toString(16).padStart(4, "0")} at ${i}`);
    }
  }
}

/** C isspace in the "C" locale: space, \t, \n, \v, \f, \r. */
export function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** `s` without leading and trailing C whitespace (String.prototype.trim also strips Unicode spaces). */
export function trimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isSpace(s.charCodeAt(start))) start++;
  while (end > start && isSpace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

export function isAlpha(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

/**
 * Compares the digit runs a[as..ae) and b[bs..be) as non-negative integers of any size: leading zeros
 * skipped, then the longer run is the larger number, then the first differing digit decides.
 * An empty run is 0.
 */
export function compareDigitRuns(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  while (as < ae && a.charCodeAt(as) === 0x30) as++;
  while (bs < be && b.charCodeAt(bs) === 0x30) bs++;
  const la = ae - as;
  const lb = be - bs;
  if (la !== lb) return la < lb ? -1 : 1;
  for (let i = 0; i < la; i++) {
    const d = a.charCodeAt(as + i) - b.charCodeAt(bs + i);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** compareDigitRuns over two whole strings of digits. */
export function compareNumeric(a: string, b: string): number {
  return compareDigitRuns(a, 0, a.length, b, 0, b.length);
}

/** Byte-wise (here: ASCII code unit) comparison, as C strcmp and Ruby/Go/Java string ordering do for ASCII. */
export function compareStrings(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/** Sign of n as -1, 0 or 1. */
export function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/**
 * A scheme from its comparator and its parser: `valid(v)` is whether `parse` reads `v` without throwing
 * (an UnmatchableVersionError or anything else).
 */
export function versionScheme(name: string, compare: (a: string, b: string) => number, parse: (v: string) => unknown): VersionScheme {
  // Matching asks both of the same few versions over and over: both answers are remembered.
  let known = new Map<string, boolean>();
  return {
    name,
    compare: memoised(compare),
    valid(v: string): boolean {
      const hit = known.get(v);
      if (hit !== undefined) return hit;
      let ok: boolean;
      try {
        parse(v);
        ok = true;
      } catch {
        ok = false;
      }
      if (known.size >= MEMO_PAIRS) known = new Map();
      known.set(v, ok);
      return ok;
    },
  };
}

/** Pairs (and validity answers) remembered per scheme; each memory is dropped whole when full (matching re-reads the same few versions). */
const MEMO_PAIRS = 50_000;

/**
 * A comparator that remembers its answers: matching compares one installed version with every bound of every
 * candidate row, and parsing (not comparing) is most of the cost (a 2,000-package report: 2x faster). Failures
 * are not remembered: they throw again.
 */
function memoised(compare: (a: string, b: string) => number): (a: string, b: string) => number {
  // Two levels (no key string built per call: that garbage was the cost).
  let memo = new Map<string, Map<string, number>>();
  let pairs = 0;
  return (a, b) => {
    let row = memo.get(a);
    const hit = row?.get(b);
    if (hit !== undefined) return hit;
    const r = compare(a, b);
    if (pairs >= MEMO_PAIRS) {
      memo = new Map();
      pairs = 0;
      row = undefined;
    }
    if (!row) memo.set(a, (row = new Map()));
    row.set(b, r);
    pairs++;
    return r;
  };
}
