// Which tags of a watched repository get scanned: a filter (a regular expression and/or a semver range), then
// the newest `maxTags`, by semver order when every candidate is a version, else by the image's creation time
// (from its config). Pure: the controller (repositories.ts) gives it the listing and what the store knows.
import semver from "semver";

export interface TagFilter {
  /** A regular expression a tag must match (anywhere; anchor it with ^ and $). */
  pattern?: string;
  /** A semver range (`>=1.2.0 <2`, `^3`); tags that are not versions never match it. */
  semverRange?: string;
}

export type TagOrder = "semver" | "created";

/** A tag as a version: `1.2.3` or `v1.2.3` (prereleases and build metadata included), else undefined. */
export function tagVersion(tag: string): semver.SemVer | undefined {
  const v = semver.parse(tag.startsWith("v") ? tag.slice(1) : tag);
  return v ?? undefined;
}

/** Longest pattern accepted. */
export const MAX_PATTERN_LENGTH = 256;

/**
 * Why a filter is unusable, or undefined. Patterns are compiled without flags and are bounded: at most 256
 * characters, and no quantified group that itself holds a quantifier (`(a+)+`), the shape that makes a
 * backtracking engine take exponential time on a hostile tag.
 */
export function tagFilterError(f: TagFilter): string | undefined {
  if (f.pattern !== undefined) {
    if (f.pattern.length > MAX_PATTERN_LENGTH) return `tagFilter.pattern is longer than ${MAX_PATTERN_LENGTH} characters`;
    if (/\((?:[^()\\]|\\.)*(?:[+*]|\{\d+,?\d*\})(?:[^()\\]|\\.)*\)(?:[+*?]|\{\d+,?\d*\})/.test(f.pattern)) {
      return `tagFilter.pattern ${JSON.stringify(f.pattern)} repeats a group that repeats (nested quantifiers take exponential time): write it without`;
    }
    try {
      new RegExp(f.pattern);
    } catch (e) {
      return `tagFilter.pattern is not a regular expression: ${(e as Error).message}`;
    }
  }
  if (f.semverRange !== undefined && semver.validRange(f.semverRange) === null) return `tagFilter.semverRange ${JSON.stringify(f.semverRange)} is not a semver range`;
  return undefined;
}

/** The tags the filter lets through, in listing order (call tagFilterError first). */
export function filterTags(tags: readonly string[], f: TagFilter): string[] {
  const re = f.pattern !== undefined ? new RegExp(f.pattern) : undefined;
  return tags.filter((t) => {
    if (re && !re.test(t)) return false;
    if (f.semverRange === undefined) return true;
    const v = tagVersion(t);
    return v !== undefined && semver.satisfies(v, f.semverRange);
  });
}

/** semver when every candidate is a version (or there are none), else created. */
export function tagOrder(candidates: readonly string[]): TagOrder {
  return candidates.every((t) => tagVersion(t) !== undefined) ? "semver" : "created";
}

/**
 * The newest `max` of `candidates`. By semver: highest version first (`v1.2.0` and `1.2.0` by name). By
 * creation time: newest first, tags whose time is not known last (by name, so the choice is stable).
 */
export function newestTags(candidates: readonly string[], order: TagOrder, max: number, created: (tag: string) => string | undefined = () => undefined): string[] {
  const sorted = [...candidates];
  if (order === "semver") {
    sorted.sort((a, b) => semver.rcompare(tagVersion(a)!, tagVersion(b)!) || (a < b ? -1 : a > b ? 1 : 0));
  } else {
    const at = (t: string) => {
      const c = created(t);
      const ms = c ? Date.parse(c) : NaN;
      return Number.isNaN(ms) ? -Infinity : ms;
    };
    sorted.sort((a, b) => at(b) - at(a) || (a < b ? -1 : a > b ? 1 : 0));
  }
  return sorted.slice(0, max);
}
