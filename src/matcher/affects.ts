// Whether one installed version is affected according to one advisory row (an AffectedPackage), with the
// ecosystem's version scheme. OSV's evaluation (https://ossf.github.io/osv-schema/#evaluation) plus the
// fix states of the OS sources:
//
// - `not_affected` never matches.
// - `constraints` (Node.js core): affected iff satisfies(v, vulnerable) && !satisfies(v, patched).
// - `versions`: an installed version the list names is affected; one it does not name falls through to the
//   ranges (the list holds published versions: a local or foreign build is not in it, and the range decides).
// - ranges: ECOSYSTEM and SEMVER events sorted by version (`introduced: "0"` is no lower bound, never the
//   version 0); the version is affected when the last event at or below it is an `introduced` (a `fixed`
//   at or below it, or a `last_affected` below it, ends the interval). Several intervals per range, several
//   ranges per row: any. `limit` (other than `*`) bounds a range from above. GIT ranges never match (commit
//   hashes are not versions).
// - no version ranges at all: `fixed` → affected iff below one of `fixedVersions`; `not_fixed`, `wont_fix`,
//   `deferred`, `end_of_life`, `under_investigation` → affected; `affected` (language rows) → not affected
//   (under OSV's rules a row without ranges or a listed version affects nothing).
//
// The installed version must be valid (UnmatchableVersionError otherwise: the caller reports the package as
// unmatchable). A version of the row that the scheme cannot read skips the row, with the reason.
import type { AffectedPackage, RangeEvent } from "../model/advisory.js";
import { invalidVersion, satisfies, UnmatchableVersionError, type VersionScheme } from "../versions/index.js";
import type { AffectsVia } from "../model/match.js";

export type AffectsResult =
  | { affected: true; via: AffectsVia; fixedIn?: string }
  | { affected: false; reason: string }
  | { skipped: string };

type EventKind = "introduced" | "fixed" | "last_affected" | "limit";

/** An event's kind: the first of its fields that is set, in OSV's order. */
function kindOf(e: RangeEvent): EventKind {
  if (e.introduced !== undefined) return "introduced";
  if (e.fixed !== undefined) return "fixed";
  if (e.last_affected !== undefined) return "last_affected";
  return "limit";
}

/** An event's version; `introduced: "0"` and `limit: "*"` have none (no bound). */
function versionOf(e: RangeEvent): string | undefined {
  if (e.introduced !== undefined) return e.introduced === "0" ? undefined : e.introduced;
  if (e.fixed !== undefined) return e.fixed;
  if (e.last_affected !== undefined) return e.last_affected;
  return e.limit === undefined || e.limit === "*" ? undefined : e.limit;
}

/** At equal versions an `introduced` comes first, so [x, x) is empty and [x, x] holds x. */
const KIND_ORDER: Record<EventKind, number> = { introduced: 0, fixed: 1, last_affected: 2, limit: 3 };

function compareEvents(a: RangeEvent, b: RangeEvent, scheme: VersionScheme): number {
  const av = versionOf(a);
  const bv = versionOf(b);
  if (av === undefined || bv === undefined) {
    if (av === bv) return KIND_ORDER[kindOf(a)] - KIND_ORDER[kindOf(b)];
    return av === undefined ? -1 : 1;
  }
  return scheme.compare(av, bv) || KIND_ORDER[kindOf(a)] - KIND_ORDER[kindOf(b)];
}

// Matching evaluates every candidate row of every package of a report (12,765 hits for a dense 2,000-package
// one): the loops below allocate nothing in the common case (events already in order).
function inRange(v: string, events: readonly RangeEvent[], scheme: VersionScheme): boolean {
  let limited = false;
  let belowLimit = false;
  let ordered: readonly RangeEvent[] = events;
  let previous: RangeEvent | undefined;
  let sorted = true;
  let limits = 0;
  for (const e of events) {
    if (kindOf(e) === "limit") {
      limits++;
      const l = versionOf(e);
      if (l !== undefined) {
        limited = true;
        if (!belowLimit && scheme.compare(v, l) < 0) belowLimit = true;
      }
      continue;
    }
    if (previous !== undefined && compareEvents(previous, e, scheme) > 0) sorted = false;
    previous = e;
  }
  if (limited && !belowLimit) return false;
  if (limits > 0 || !sorted) ordered = events.filter((e) => kindOf(e) !== "limit").sort((a, b) => compareEvents(a, b, scheme));
  let affected = false;
  for (const e of ordered) {
    const kind = kindOf(e);
    const ev = versionOf(e);
    if (kind === "introduced") {
      if (ev === undefined || scheme.compare(v, ev) >= 0) affected = true;
    } else if (kind === "fixed") {
      if (scheme.compare(v, ev!) >= 0) affected = false;
    } else if (kind === "last_affected") {
      if (scheme.compare(v, ev!) > 0) affected = false;
    }
  }
  return affected;
}

function firstInvalid(scheme: VersionScheme, versions: Iterable<string>): string | undefined {
  for (const x of versions) {
    const bad = invalidVersion(scheme, x);
    if (bad !== undefined) return bad;
  }
  return undefined;
}

/** The lowest of `fixes` above `v`, by the scheme; invalid ones are ignored. */
export function lowestFixAbove(v: string, fixes: Iterable<string>, scheme: VersionScheme): string | undefined {
  let best: string | undefined;
  for (const f of fixes) best = lowerFixAbove(v, f, best, scheme);
  return best;
}

/** `f` when it is a valid version above `v` and below `best` (or there is no best yet), else `best`. */
function lowerFixAbove(v: string, f: string, best: string | undefined, scheme: VersionScheme): string | undefined {
  if (!scheme.valid(f)) return best;
  if (scheme.compare(f, v) <= 0) return best;
  return best === undefined || scheme.compare(f, best) < 0 ? f : best;
}

/** The lowest fix above `version` the row names: its ranges' `fixed` events, then its fixed versions. */
function rowFixAbove(version: string, row: AffectedPackage, scheme: VersionScheme): string | undefined {
  let best: string | undefined;
  for (const r of row.ranges) {
    if (r.type === "GIT") continue;
    for (const e of r.events) if (kindOf(e) === "fixed") best = lowerFixAbove(version, e.fixed!, best, scheme);
  }
  for (const f of row.fixedVersions) best = lowerFixAbove(version, f, best, scheme);
  return best;
}

/** Affected, with the lowest fix above `version` the row names (a function, not a closure per call: matching calls affects() for every candidate row). */
function withFix(version: string, row: AffectedPackage, scheme: VersionScheme, via: AffectsVia): AffectsResult {
  const fixedIn = rowFixAbove(version, row, scheme);
  return fixedIn === undefined ? { affected: true, via } : { affected: true, via, fixedIn };
}

/** Whether `version` is affected by the row. Throws UnmatchableVersionError when `version` is not one of the scheme's. */
export function affects(version: string, row: AffectedPackage, scheme: VersionScheme): AffectsResult {
  scheme.compare(version, version); // throws for an unreadable installed version
  if (row.fixState === "not_affected") return { affected: false, reason: "the source says not affected" };

  if (row.constraints) {
    const { vulnerable, patched } = row.constraints;
    try {
      if (!satisfies(version, vulnerable)) return { affected: false, reason: `not in the vulnerable range ${vulnerable}` };
      if (patched !== undefined && patched.trim() !== "" && satisfies(version, patched)) return { affected: false, reason: `in the patched range ${patched}` };
    } catch (e) {
      if (e instanceof UnmatchableVersionError) return { skipped: `constraint: ${e.message}` };
      throw e;
    }
    const fixedIn = lowestFixAbove(version, row.fixedVersions, scheme);
    return fixedIn === undefined ? { affected: true, via: "constraints" } : { affected: true, via: "constraints", fixedIn };
  }

  // Every range version must be readable before any is compared (the first unreadable one skips the row).
  let versionRanges = 0;
  for (const r of row.ranges) {
    if (r.type === "GIT") continue;
    versionRanges++;
    for (const e of r.events) {
      const ev = versionOf(e);
      const bad = ev === undefined ? undefined : invalidVersion(scheme, ev);
      if (bad !== undefined) return { skipped: `range event: ${bad}` };
    }
  }
  if (row.versions?.length) {
    for (const listed of row.versions) {
      if (listed === version || (scheme.valid(listed) && scheme.compare(listed, version) === 0)) return withFix(version, row, scheme, "versions");
    }
  }

  if (versionRanges) {
    for (const r of row.ranges) if (r.type !== "GIT" && inRange(version, r.events, scheme)) return withFix(version, row, scheme, "range");
    return { affected: false, reason: "outside every range" };
  }

  if (row.ranges.length) return { affected: false, reason: row.versions?.length ? "not a listed version; GIT ranges never match" : "GIT ranges never match" };
  if (row.versions !== undefined) return { affected: false, reason: "not a listed version" };

  switch (row.fixState) {
    case "fixed": {
      const bad2 = firstInvalid(scheme, row.fixedVersions);
      if (bad2) return { skipped: `fixed version: ${bad2}` };
      if (row.fixedVersions.length === 0) return { skipped: "fixed, but no fixed version" };
      if (row.fixedVersions.some((f) => scheme.compare(version, f) < 0)) return withFix(version, row, scheme, "fixed_versions");
      return { affected: false, reason: "at or above the fix" };
    }
    case "affected":
      return { affected: false, reason: "no ranges and no versions" };
    default:
      return { affected: true, via: "state" };
  }
}
