// Maven versions, ordered as Maven 3.8's ComparableVersion (maven-artifact 3.8.x, the comparator of
// `mvn` 3.8 and of GHSA/OSV "Maven" ranges). The POM reference's "Version Order Specification" gives the
// idea; this module follows 3.8's exact behaviour, checked against maven-artifact 3.8.7 itself, where it
// differs from the text written for later releases (1-ga-1 > 1-1 and 2.0.a = 2.0.0.a in 3.8).
//
// Parsing (case-insensitive): the version becomes a list of items: numbers, qualifiers and sub-lists.
// - '.' ends an item in the current list; '-' ends one and opens a sub-list for what follows; an empty
//   item is the number 0 (1..2 = 1.0.2).
// - A switch between digits and other characters ends an item and opens a sub-list (1a1 = 1-a-1).
// - A qualifier that follows a '.' goes into a sub-list of its own when it ends the version or is
//   followed by digits (1.foo = 1-foo, 1.a1 = 1-alpha-1, but 1.x.2 stays as it is).
// - Qualifier spellings: a, b, m directly followed by a digit mean alpha, beta, milestone; cr = rc;
//   ga, final and release are the empty qualifier.
// - Each list then loses its trailing "null" items (0, the empty qualifier, an empty list), from the end
//   back to the first item that is neither null nor a list (1.0.0 = 1, 1-0 = 1).
// Comparing, item by item, a missing item counting as null:
// - numbers numerically (any size); a number is above a qualifier and above a sub-list;
// - qualifiers: alpha < beta < milestone < rc < snapshot < "" < sp < any other, the others by ASCII;
// - a sub-list is above a qualifier, below a number; sub-lists compare like the whole version;
// - against a missing item: a number is above unless 0, a qualifier is above when it sorts after "",
//   a sub-list compares its first item.
// Stricter than Maven on purpose: the empty string (Maven: equal to 0) and what common.ts's guard refuses
// are unmatchable. Maven reads every other string, so every other string is valid here too.
// ComparableVersion is not transitive (1-a1 < 1 < 1.x.2 but 1-a1 > 1.x.2 in Maven itself); neither is this.
// Written here rather than on mvncmp, which follows 3.8.6 (before MNG-7644), turns numbers into floats
// (30-digit numbers compare equal) and answers -1 both ways for 1-1 vs 1.sp.
import { compareDigitRuns, compareStrings, guard, isDigit, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "maven";

/** A number: its digits without leading zeros ("0" for zero). */
class Num {
  constructor(readonly digits: string) {}
}
/** A qualifier, held as its sort key: "0".."6" for the known ones, "7-<text>" for the others. */
class Qual {
  constructor(readonly key: string) {}
}
type Item = Num | Qual | Item[];

const KNOWN = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_KEY = String(KNOWN.indexOf(""));
const ALIASES: Readonly<Record<string, string>> = { ga: "", final: "", release: "", cr: "rc" };
const SHORTHANDS: Readonly<Record<string, string>> = { a: "alpha", b: "beta", m: "milestone" };
const ZERO = new Num("0");

function qualifier(text: string, followedByDigit: boolean): Qual {
  if (followedByDigit && text.length === 1) text = SHORTHANDS[text] ?? text;
  text = ALIASES[text] ?? text;
  const i = KNOWN.indexOf(text);
  return new Qual(i < 0 ? `${KNOWN.length}-${text}` : String(i));
}

function number(digits: string): Num {
  let z = 0;
  while (z < digits.length - 1 && digits.charCodeAt(z) === 0x30) z++;
  return new Num(z === 0 ? digits : digits.slice(z));
}

function isNull(item: Item): boolean {
  if (item instanceof Num) return item.digits === "0";
  if (item instanceof Qual) return item.key === RELEASE_KEY;
  return item.length === 0;
}

export function parseMaven(v: string): Item[] {
  guard(NAME, v);
  if (v.length === 0) throw new UnmatchableVersionError(NAME, v, "empty version");
  const s = v.toLowerCase();
  const root: Item[] = [];
  const lists: Item[][] = [root];
  let list = root;
  const open = () => {
    const sub: Item[] = [];
    list.push(sub);
    lists.push(sub);
    list = sub;
  };
  let inDigits = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e || c === 0x2d) {
      list.push(i === start ? ZERO : inDigits ? number(s.slice(start, i)) : qualifier(s.slice(start, i), false));
      start = i + 1;
      if (c === 0x2d) open();
    } else if (isDigit(c)) {
      if (!inDigits && i > start) {
        if (list.length > 0) open();
        list.push(qualifier(s.slice(start, i), true));
        start = i;
        open();
      }
      inDigits = true;
    } else {
      if (inDigits && i > start) {
        list.push(number(s.slice(start, i)));
        start = i;
        open();
      }
      inDigits = false;
    }
  }
  if (s.length > start) {
    if (!inDigits && list.length > 0) open();
    list.push(inDigits ? number(s.slice(start)) : qualifier(s.slice(start), false));
  }
  // Innermost lists first, so a list emptied here is null for its parent.
  for (let k = lists.length - 1; k >= 0; k--) {
    const l = lists[k]!;
    for (let i = l.length - 1; i >= 0; i--) {
      const item = l[i]!;
      if (isNull(item)) l.splice(i, 1);
      else if (!Array.isArray(item)) break;
    }
  }
  return root;
}

/** ComparableVersion's item order; `b` undefined is a missing item. */
function compareItem(a: Item, b: Item | undefined): number {
  if (a instanceof Num) {
    if (b === undefined) return a.digits === "0" ? 0 : 1;
    if (b instanceof Num) return compareDigitRuns(a.digits, 0, a.digits.length, b.digits, 0, b.digits.length);
    return 1;
  }
  if (a instanceof Qual) {
    if (b === undefined) return compareStrings(a.key, RELEASE_KEY);
    if (b instanceof Qual) return compareStrings(a.key, b.key);
    return -1;
  }
  if (b === undefined) return a.length === 0 ? 0 : compareItem(a[0]!, undefined);
  if (b instanceof Num) return -1;
  if (b instanceof Qual) return 1;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    const r = x === undefined ? -compareItem(y!, undefined) : compareItem(x, y);
    if (r !== 0) return r;
  }
  return 0;
}

export function compareMaven(a: string, b: string): number {
  return compareItem(parseMaven(a), parseMaven(b));
}

export const maven: VersionScheme = versionScheme(NAME, compareMaven, parseMaven);
