// Alpine secdb → advisories. One Advisory per id (CVE-…, ALPINE-…, GHSA-…), merged over every given file:
// one AffectedPackage per (branch, origin package) that lists it. An id can appear for several packages
// and branches, so "one Advisory per (package, id, branch)" would give the same id many times; keyed by
// the id alone, Advisory.id is unique within the source. docs/advisories.md ("Alpine") has the mapping.

import type { Advisory, AffectedPackage, ParseResult, RawFile } from "../../../model/advisory.js";
import { KiB, SkipLog, byString, sniff } from "../../input.js";
import { readSecdbFile } from "./secdb.js";

export { secfixIds } from "./secdb.js";
export type { SecfixEntry } from "./secdb.js";

/** Whether the file is a secdb file (JSON or YAML) or a vuln-list per-package file, from its first 64 KiB. */
export function detect(file: RawFile): boolean {
  const head = sniff(file.bytes, 64 * KiB);
  if (/^\s*\{/.test(head)) {
    return /"secfixes"\s*:/.test(head) || (/"distroversion"\s*:/.test(head) && /"reponame"\s*:/.test(head));
  }
  return /^(?:distroversion|reponame|packages):/m.test(head) && /^\s*(?:secfixes|distroversion):/m.test(head);
}

interface Row {
  ecosystem: string;
  branch: string;
  pkg: string;
  fixes: Set<string>;
  zero: boolean;
  repositories: Set<string>;
  raw: Set<string>;
}

interface Entry {
  file: string;
  rows: Map<string, Row>;
}

/** `v3.9` < `v3.10` < `edge`. */
function branchOrder(branch: string): number {
  const m = /^v(\d+)\.(\d+)$/.exec(branch);
  return m ? Number(m[1]) * 1000 + Number(m[2]) : Number.MAX_SAFE_INTEGER;
}

/**
 * Parses secdb files of any branch and repository together. Key `0` → not_affected; a fix key → fixed at
 * that version (range [0, fix)); several keys for one id in one (branch, package) → one fixed version and
 * one range each, so a version below the last listed fix stays affected. Severity is Unknown (secdb has
 * none). Throws AdvisoryInputError for a file that is too big or not JSON/YAML.
 */
export function parse(files: RawFile[]): ParseResult {
  const skips = new SkipLog();
  const entries = new Map<string, Entry>();
  for (const file of [...files].sort((a, b) => byString(a.path, b.path))) {
    for (const e of readSecdbFile(file, skips)) {
      const ecosystem = `Alpine:${e.branch}`;
      for (const id of e.ids) {
        let entry = entries.get(id);
        if (!entry) {
          entry = { file: file.path, rows: new Map() };
          entries.set(id, entry);
        }
        const key = `${ecosystem}\u0000${e.pkg}`;
        let row = entry.rows.get(key);
        if (!row) {
          row = { ecosystem, branch: e.branch, pkg: e.pkg, fixes: new Set(), zero: false, repositories: new Set(), raw: new Set() };
          entry.rows.set(key, row);
        }
        if (e.fixKey === "0") row.zero = true;
        else row.fixes.add(e.fixKey);
        if (e.repository !== undefined) row.repositories.add(e.repository);
        if (e.raw !== undefined) row.raw.add(e.raw);
      }
    }
  }
  const advisories: Advisory[] = [];
  for (const [id, entry] of [...entries].sort((a, b) => byString(a[0], b[0]))) {
    const affected = [...entry.rows.values()]
      .sort((a, b) => byString(a.pkg, b.pkg) || branchOrder(a.branch) - branchOrder(b.branch))
      .map(toAffected);
    advisories.push({
      id,
      aliases: [],
      advisoryIds: [],
      severity: "Unknown",
      cvss: [],
      references: id.startsWith("CVE-") ? [{ type: "ADVISORY", url: `https://security.alpinelinux.org/vuln/${id}` }] : [],
      affected,
      origin: { file: entry.file, record: id },
    });
  }
  return { advisories, skipped: skips.records };
}

function toAffected(row: Row): AffectedPackage {
  const fixes = [...row.fixes].sort(byString);
  const detail: Record<string, unknown> = {};
  if (row.repositories.size > 0) detail.repositories = [...row.repositories].sort(byString);
  if (row.raw.size > 0) detail.secfixes = [...row.raw].sort(byString);
  if (fixes.length > 0 && row.zero) detail.alsoListedUnder0 = true;
  const out: AffectedPackage = {
    ecosystem: row.ecosystem,
    name: row.pkg,
    nameKind: "source",
    fixState: fixes.length > 0 ? "fixed" : "not_affected",
    fixedVersions: fixes,
    ranges: fixes.map((v) => ({ type: "ECOSYSTEM" as const, events: [{ introduced: "0" }, { fixed: v }] })),
  };
  if (Object.keys(detail).length > 0) out.detail = detail;
  return out;
}
