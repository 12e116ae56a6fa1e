// Collects the tracker's rows into Advisories: one per tracker id (CVE or TEMP id), one AffectedPackage per
// (source package, release). The DSA/DLA lists then add advisory ids and fix dates to matching rows.

import type { Advisory, AdvisoryReference, AffectedPackage, Severity } from "../../../model/advisory.js";
import { byString, higherSeverity } from "../../input.js";
import type { DebianListEntry } from "./lists.js";
import { debianEcosystem, releaseOrder, urgencySeverity, urgencySeverityWord } from "./releases.js";

const TRACKER = "https://security-tracker.debian.org/tracker/";

interface Entry {
  id: string;
  file: string;
  summary?: string;
  /** (source, ecosystem) → row. */
  rows: Map<string, AffectedPackage>;
  advisoryIds: Set<string>;
  bugs: Set<number>;
  references: string[];
}

const rowKey = (source: string, ecosystem: string): string => `${source}\u0000${ecosystem}`;

export class DebianBuilder {
  private readonly entries = new Map<string, Entry>();

  private entry(id: string, file: string): Entry {
    let e = this.entries.get(id);
    if (!e) {
      e = { id, file, rows: new Map(), advisoryIds: new Set(), bugs: new Set(), references: [] };
      this.entries.set(id, e);
    }
    return e;
  }

  /** Description of the id; the first non-empty one wins (the tracker repeats it under every package). */
  summary(id: string, file: string, text: string | undefined): void {
    const e = this.entry(id, file);
    if (e.summary === undefined && text !== undefined && text.trim() !== "") e.summary = text.trim();
  }

  bug(id: string, file: string, bug: number): void {
    this.entry(id, file).bugs.add(bug);
  }

  reference(id: string, file: string, url: string): void {
    const e = this.entry(id, file);
    if (!e.references.includes(url)) e.references.push(url);
  }

  advisoryId(id: string, file: string, advisory: string): void {
    this.entry(id, file).advisoryIds.add(advisory);
  }

  /** Adds a row; a second row for the same (id, source, release) replaces the first. */
  row(id: string, file: string, row: AffectedPackage): void {
    this.entry(id, file).rows.set(rowKey(row.name, row.ecosystem), row);
  }

  /**
   * A DSA/DLA list entry: for each `[release] - package version` line and each CVE of the entry, the row
   * (CVE, package, release) gets the advisory id (in the Advisory's advisoryIds and the row's
   * detail.advisories). When the row is fixed at exactly that version, the entry's date becomes the row's
   * fixAvailableAt (the earliest such date wins). Rows are never created from the lists.
   */
  applyListEntry(list: DebianListEntry): number {
    let matched = 0;
    for (const fix of list.fixes) {
      const ecosystem = debianEcosystem(fix.release);
      if (ecosystem === undefined) continue;
      for (const cve of list.cves) {
        const e = this.entries.get(cve);
        const row = e?.rows.get(rowKey(fix.package, ecosystem));
        if (!e || !row) continue;
        matched++;
        e.advisoryIds.add(list.id);
        const detail = (row.detail ??= {});
        const ids = Array.isArray(detail.advisories) ? (detail.advisories as string[]) : [];
        if (!ids.includes(list.id)) detail.advisories = [...ids, list.id].sort(byString);
        if (
          list.date !== undefined &&
          row.fixState === "fixed" &&
          row.fixedVersions.includes(fix.version) &&
          (row.fixAvailableAt === undefined || list.date < row.fixAvailableAt)
        ) {
          row.fixAvailableAt = list.date;
        }
      }
    }
    return matched;
  }

  /**
   * The Advisories, sorted by id, rows sorted by (package, release). Ids without any row (a `releases`
   * that held nothing usable) give no Advisory. Severity: the highest normalised urgency over the rows
   * (Unknown ranks lowest), vendorSeverity the urgency as written on the first row with that severity
   * (`end-of-life` is a release's support state, not a severity, so it never becomes the advisory's word).
   */
  finish(): Advisory[] {
    const out: Advisory[] = [];
    for (const e of [...this.entries.values()].sort((a, b) => byString(a.id, b.id))) {
      if (e.rows.size === 0) continue;
      const affected = [...e.rows.values()].sort(
        (a, b) =>
          byString(a.name, b.name) ||
          releaseOrder(String(a.detail?.release)) - releaseOrder(String(b.detail?.release)) ||
          byString(a.ecosystem, b.ecosystem),
      );
      let severity: Severity = "Unknown";
      let vendorSeverity: string | undefined;
      for (const row of affected) {
        const s = urgencySeverity(row.vendorSeverity);
        // `end-of-life` says the release is out of support, not how bad the issue is: never the advisory's word.
        const word = urgencySeverityWord(row.vendorSeverity) === "end-of-life" ? undefined : row.vendorSeverity;
        if (higherSeverity(s, severity)) {
          severity = s;
          vendorSeverity = word;
        } else if (s === severity && vendorSeverity === undefined) {
          vendorSeverity = word;
        }
      }
      // A placeholder id of our own (CVE-2023-XXXX-3F09A1) has no tracker page.
      const references: AdvisoryReference[] = /X{4}/.test(e.id)
        ? []
        : [{ type: "ADVISORY", url: `${TRACKER}${encodeURIComponent(e.id)}` }];
      for (const bug of [...e.bugs].sort((a, b) => a - b)) {
        references.push({ type: "REPORT", url: `https://bugs.debian.org/${bug}` });
      }
      for (const url of e.references) references.push({ type: "WEB", url });
      const advisoryIds = [...e.advisoryIds].sort(byString);
      for (const id of advisoryIds) references.push({ type: "ADVISORY", url: `${TRACKER}${id}` });
      const advisory: Advisory = {
        id: e.id,
        aliases: [],
        advisoryIds,
        severity,
        cvss: [],
        references,
        affected,
        origin: { file: e.file, record: e.id },
      };
      if (e.summary !== undefined) advisory.summary = e.summary;
      if (vendorSeverity !== undefined) advisory.vendorSeverity = vendorSeverity;
      out.push(advisory);
    }
    return out;
  }
}
