// The tracker's advisory lists, `data/DSA/list` and `data/DLA/list` (same format):
//
//   [31 Jul 2025] DSA-5970-1 sope - security update
//           {CVE-2025-53603}
//           [bookworm] - sope 5.8.0-1+deb12u1
//   [07 Jun 2015] DSA-3281-1 Debian Security Team PGP/GPG key change notice
//
// A header at column 0, then indented lines: `{...}` cross-references, `[release] - package version`
// fix lines, `NOTE:` lines. Notices have no fix lines. A header we cannot read is skipped with its lines.

import type { SkippedRecord } from "../../../model/advisory.js";
import { LIMITS, SkipLog, clip } from "../../input.js";
import { validSourceName } from "./releases.js";
import { addBraceIds, readTrackerList } from "./text-list.js";

export interface DebianListFix {
  release: string;
  package: string;
  version: string;
}

export interface DebianListEntry {
  /** `DSA-5970-1`, `DLA-2711-1`, old `DSA-141`. */
  id: string;
  /** The header's date as `YYYY-MM-DD` (UTC day), when it could be read. */
  date?: string;
  /** The header after the id: `sope - security update`, or a notice's text. */
  title: string;
  /** The package named in the header (`sope` in `sope - security update`); absent for notices. */
  package?: string;
  /** Ids in the `{...}` cross-references (CVEs, and sometimes other ids). */
  cves: string[];
  fixes: DebianListFix[];
  notes: string[];
  /** 1-based line of the header. */
  line: number;
}

const MONTHS = new Map(
  ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"].map((m, i) => [m, i + 1]),
);

const HEADER = /^\[(\d{1,2}) ([A-Za-z]{3}) (\d{4})\] ((?:DSA|DLA|DTSA)-\d+(?:-\d+)?)(?:\s+(.*))?$/;
const FIX = /^\[([a-z]+)\]\s+-\s+(\S+)\s+(\S+)(?:\s+(.*))?$/;

function isoDate(day: string, month: string, year: string): string | undefined {
  const m = MONTHS.get(month.toLowerCase());
  const d = Number(day);
  if (m === undefined || d < 1 || d > 31) return undefined;
  const date = new Date(Date.UTC(Number(year), m - 1, d));
  if (date.getUTCDate() !== d) return undefined; // 31 Feb
  return date.toISOString().slice(0, 10);
}

/** Parses a DSA or DLA list. Unreadable headers and lines are skipped records (with their line number). */
export function parseDebianAdvisoryList(
  text: string,
  file: string,
): { entries: DebianListEntry[]; skipped: SkippedRecord[] } {
  const skips = new SkipLog();
  const header = (line: string, n: number): DebianListEntry | undefined => {
    const h = HEADER.exec(line);
    if (!h) return undefined;
    const [, day = "", month = "", year = "", id = "", rest = ""] = h;
    const title = clip(rest.trim(), LIMITS.note);
    const entry: DebianListEntry = { id, title, cves: [], fixes: [], notes: [], line: n };
    const date = isoDate(day, month, year);
    if (date !== undefined) entry.date = date;
    else skips.add(file, `${id} (line ${n})`, `unreadable date in ${JSON.stringify(clip(line, 120))}; entry kept without a date`);
    const dash = title.indexOf(" - ");
    const pkg = dash > 0 ? title.slice(0, dash).trim() : undefined;
    if (pkg !== undefined && validSourceName(pkg)) entry.package = pkg;
    return entry;
  };
  const line = (current: DebianListEntry, body: string): string | undefined => {
    if (body.startsWith("{")) {
      addBraceIds(body, current.cves);
      return undefined;
    }
    if (body.startsWith("NOTE:")) {
      current.notes.push(clip(body.slice(5).trim(), LIMITS.note));
      return undefined;
    }
    const f = FIX.exec(body);
    if (!f) return `unrecognised line ${JSON.stringify(clip(body, 120))}`;
    const [, release = "", pkg = "", version = ""] = f;
    if (version.startsWith("<")) return undefined; // `<not-affected>` and friends: no fixed version to record
    if (!validSourceName(pkg) || version.length > LIMITS.version) return `unusable fix line ${JSON.stringify(clip(body, 120))}`;
    current.fixes.push({ release, package: pkg, version });
    return undefined;
  };
  const entries = readTrackerList(text, file, skips, header, line);
  return { entries, skipped: skips.records };
}
