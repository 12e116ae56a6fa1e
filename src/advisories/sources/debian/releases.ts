// Debian release codenames, urgencies, and the one mapping from the tracker's per-release state to a fix
// state. The tracker JSON and the CVE list both end here, so both produce the same model.

import type { AffectedPackage, AffectedRange, FixState, Severity } from "../../../model/advisory.js";
import { LIMITS, clip } from "../../input.js";

/**
 * Codename → the version the ecosystem key uses (`Debian:<version>`). From etch on that is the major
 * version (os-release VERSION_ID); before etch Debian's numbers had a minor part that named the release
 * (woody 3.0, sarge 3.1), so those keep it. sid is `Debian:unstable`.
 */
const RELEASES: ReadonlyMap<string, string> = new Map([
  ["buzz", "1.1"],
  ["rex", "1.2"],
  ["bo", "1.3"],
  ["hamm", "2.0"],
  ["slink", "2.1"],
  ["potato", "2.2"],
  ["woody", "3.0"],
  ["sarge", "3.1"],
  ["etch", "4"],
  ["lenny", "5"],
  ["squeeze", "6"],
  ["wheezy", "7"],
  ["jessie", "8"],
  ["stretch", "9"],
  ["buster", "10"],
  ["bullseye", "11"],
  ["bookworm", "12"],
  ["trixie", "13"],
  ["forky", "14"],
  ["duke", "15"],
  ["sid", "unstable"],
]);

/** `Debian:12` for bookworm, `Debian:unstable` for sid, undefined for a codename we do not know. */
export function debianEcosystem(codename: string): string | undefined {
  const v = RELEASES.get(codename);
  return v === undefined ? undefined : `Debian:${v}`;
}

/** Release order for sorting output rows (sid last). */
export function releaseOrder(codename: string): number {
  const v = RELEASES.get(codename);
  if (v === undefined) return Number.MAX_SAFE_INTEGER;
  return v === "unstable" ? 1e6 : Number(v) * 100;
}

/**
 * Tracker urgency → normalised severity. The trailing `**` (urgency not yet reviewed by the security team)
 * is dropped for the mapping only. Kept level for level (claircore shifts every level up; we do not):
 * unimportant → Negligible, low → Low, medium → Medium, high → High; `not yet assigned`, `end-of-life`,
 * missing or anything else → Unknown.
 */
export function urgencySeverity(urgency: string | undefined): Severity {
  if (urgency === undefined) return "Unknown";
  const u = urgency.replace(/\*+$/, "").trim().toLowerCase();
  switch (u) {
    case "unimportant":
      return "Negligible";
    case "low":
      return "Low";
    case "medium":
      return "Medium";
    case "high":
      return "High";
    default:
      return "Unknown";
  }
}

/** One release of one (source package, CVE) as the tracker JSON states it; the CVE list is turned into this too. */
export interface TrackerRelease {
  status: string;
  fixed_version?: string;
  urgency?: string;
  nodsa?: string;
  nodsa_reason?: string;
}

export type ReleaseOutcome = { row: AffectedPackage } | { skip: string };

/**
 * The tracker's state → one AffectedPackage:
 * - `resolved` + fixed_version `0` → not_affected; `resolved` + a version → fixed at it (range [0, v));
 *   `resolved` without a version → skipped (nothing to compare against).
 * - `open` → end_of_life when the urgency is `end-of-life`; else wont_fix when nodsa_reason is `ignored`,
 *   deferred when `postponed`; else not_fixed (a no-dsa "minor issue" keeps its text in detail.nodsa).
 * - `undetermined` → under_investigation (end_of_life when the urgency says so).
 * A `resolved` row keeps its fix even when the release is end-of-life: the fixed version exists.
 */
export function releaseRow(
  source: string,
  codename: string,
  ecosystem: string,
  rel: TrackerRelease,
  extra: Record<string, unknown> = {},
): ReleaseOutcome {
  const detail: Record<string, unknown> = { release: codename, ...extra };
  const eol = urgencySeverityWord(rel.urgency) === "end-of-life";
  let fixState: FixState;
  let fixedVersions: string[] = [];
  let ranges: AffectedRange[] = [];
  const open: AffectedRange[] = [{ type: "ECOSYSTEM", events: [{ introduced: "0" }] }];
  switch (rel.status) {
    case "resolved": {
      const v = rel.fixed_version;
      if (v === undefined || v === "") return { skip: "status resolved without a fixed_version" };
      if (v.length > LIMITS.version) return { skip: `fixed_version longer than ${LIMITS.version} characters` };
      if (v === "0") {
        fixState = "not_affected";
      } else {
        fixState = "fixed";
        fixedVersions = [v];
        ranges = [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: v }] }];
      }
      break;
    }
    case "open": {
      const reason = rel.nodsa_reason?.trim().toLowerCase();
      if (eol) fixState = "end_of_life";
      else if (reason === "ignored") fixState = "wont_fix";
      else if (reason === "postponed") fixState = "deferred";
      else fixState = "not_fixed";
      ranges = open;
      break;
    }
    case "undetermined":
      fixState = eol ? "end_of_life" : "under_investigation";
      ranges = eol ? open : [];
      break;
    default:
      return { skip: `unknown status ${JSON.stringify(clip(rel.status, 40))}` };
  }
  if (rel.nodsa !== undefined) detail.nodsa = clip(rel.nodsa, LIMITS.note);
  if (rel.nodsa_reason !== undefined && rel.nodsa_reason !== "") detail.nodsaReason = clip(rel.nodsa_reason, 64);
  const row: AffectedPackage = {
    ecosystem,
    name: source,
    nameKind: "source",
    fixState,
    fixedVersions,
    ranges,
    detail,
  };
  if (rel.urgency !== undefined && rel.urgency !== "") row.vendorSeverity = clip(rel.urgency, 64);
  return { row };
}

/** The urgency without its `**` marker, lower case. */
export function urgencySeverityWord(urgency: string | undefined): string | undefined {
  return urgency?.replace(/\*+$/, "").trim().toLowerCase();
}

/** Source package names as Debian allows them (Policy 5.6.1), bounded. */
export function validSourceName(name: string): boolean {
  return name.length <= LIMITS.name && /^[a-z0-9][a-z0-9+.-]*$/.test(name);
}

/** Tracker ids: CVE-YYYY-N…, TEMP-NNNNNNN-XXXXXX, and other uppercase-prefixed ids, bounded. */
export function validBugId(id: string): boolean {
  return id.length <= LIMITS.id && /^[A-Z][A-Z0-9]*-[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(id);
}
