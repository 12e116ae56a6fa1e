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
import type { AffectedPackage, AffectedRange, RangeEvent } from "../advisories/types.js";
import { satisfies, UnmatchableVersionError, type VersionScheme } from "../versions/index.js";
import type { AffectsVia } from "./types.js";

export type AffectsResult =
  | { affected: true; via: AffectsVia; fixedIn?: string }
  | { affected: false; reason: string }
  | { skipped: string };

/** A range event's kind and version; `introduced: "0"` has none (no lower bound). */
interface Ev {
  kind: "introduced" | "fixed" | "last_affected" | "limit";
  version?: string;
}

function events(r: AffectedRange): Ev[] {
  return r.events.map((e: RangeEvent): Ev => {
    if (e.introduced !== undefined) return e.introduced === "0" ? { kind: "introduced" } : { kind: "introduced", version: e.introduced };
    if (e.fixed !== undefined) return { kind: "fixed", version: e.fixed };
    if (e.last_affected !== undefined) return { kind: "last_affected", version: e.last_affected };
    return e.limit === undefined || e.limit === "*" ? { kind: "limit" } : { kind: "limit", version: e.limit };
  });
}

/** At equal versions an `introduced` comes first, so [x, x) is empty and [x, x] holds x. */
const KIND_ORDER: Record<Ev["kind"], number> = { introduced: 0, fixed: 1, last_affected: 2, limit: 3 };

function inRange(v: string, evs: readonly Ev[], scheme: VersionScheme): boolean {
  const limits = evs.filter((e) => e.kind === "limit" && e.version !== undefined);
  if (limits.length && !limits.some((l) => scheme.compare(v, l.version!) < 0)) return false;
  const sorted = evs
    .filter((e) => e.kind !== "limit")
    .sort((a, b) => {
      if (a.version === undefined || b.version === undefined) {
        if (a.version === b.version) return KIND_ORDER[a.kind] - KIND_ORDER[b.kind];
        return a.version === undefined ? -1 : 1;
      }
      return scheme.compare(a.version, b.version) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind];
    });
  let affected = false;
  for (const e of sorted) {
    if (e.kind === "introduced") {
      if (e.version === undefined || scheme.compare(v, e.version) >= 0) affected = true;
    } else if (e.kind === "fixed") {
      if (scheme.compare(v, e.version!) >= 0) affected = false;
    } else if (e.kind === "last_affected") {
      if (scheme.compare(v, e.version!) > 0) affected = false;
    }
  }
  return affected;
}

function firstInvalid(scheme: VersionScheme, versions: Iterable<string>): string | undefined {
  for (const x of versions) {
    try {
      scheme.compare(x, x);
    } catch (e) {
      if (e instanceof UnmatchableVersionError) return e.message;
      throw e;
    }
  }
  return undefined;
}

/** The lowest of `fixes` above `v`, by the scheme; invalid ones are ignored. */
export function lowestFixAbove(v: string, fixes: Iterable<string>, scheme: VersionScheme): string | undefined {
  let best: string | undefined;
  for (const f of fixes) {
    if (!scheme.valid(f)) continue;
    if (scheme.compare(f, v) <= 0) continue;
    if (best === undefined || scheme.compare(f, best) < 0) best = f;
  }
  return best;
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

  const versionRanges = row.ranges.filter((r) => r.type !== "GIT");
  const evs = versionRanges.map(events);
  const rangeVersions = evs.flatMap((e) => e.filter((x) => x.version !== undefined).map((x) => x.version!));
  const bad = firstInvalid(scheme, rangeVersions);
  if (bad) return { skipped: `range event: ${bad}` };
  const fixedEvents = evs.flatMap((e) => e.filter((x) => x.kind === "fixed").map((x) => x.version!));
  const withFix = (via: AffectsVia): AffectsResult => {
    const fixedIn = lowestFixAbove(version, [...fixedEvents, ...row.fixedVersions], scheme);
    return fixedIn === undefined ? { affected: true, via } : { affected: true, via, fixedIn };
  };

  if (row.versions?.length) {
    for (const listed of row.versions) {
      if (listed === version || (scheme.valid(listed) && scheme.compare(listed, version) === 0)) return withFix("versions");
    }
  }

  if (versionRanges.length) {
    for (const e of evs) if (inRange(version, e, scheme)) return withFix("range");
    return { affected: false, reason: "outside every range" };
  }

  if (row.ranges.length) return { affected: false, reason: row.versions?.length ? "not a listed version; GIT ranges never match" : "GIT ranges never match" };
  if (row.versions !== undefined) return { affected: false, reason: "not a listed version" };

  switch (row.fixState) {
    case "fixed": {
      const bad2 = firstInvalid(scheme, row.fixedVersions);
      if (bad2) return { skipped: `fixed version: ${bad2}` };
      if (row.fixedVersions.length === 0) return { skipped: "fixed, but no fixed version" };
      if (row.fixedVersions.some((f) => scheme.compare(version, f) < 0)) return withFix("fixed_versions");
      return { affected: false, reason: "at or above the fix" };
    }
    case "affected":
      return { affected: false, reason: "no ranges and no versions" };
    default:
      return { affected: true, via: "state" };
  }
}
