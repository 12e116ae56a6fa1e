// Debian security tracker → advisories. Inputs (the updater's names for the upstream files):
//   debian.json  ← https://security-tracker.debian.org/tracker/data/json   (primary)
//   CVE/list     ← salsa security-tracker data/CVE/list                    (fallback when there is no JSON)
//   DSA/list, DLA/list                                                     (advisory ids and fix dates)
// and aquasecurity/vuln-list-debian per-CVE files (`CVE/CVE-2023-5981.json`, a CVE list entry split into
// annotations), read as CVE list text. docs/advisories.md ("Debian") has the mapping.

import type { RawFile, ParseResult } from "../../../model/advisory.js";
import {
  AdvisoryInputError,
  KiB,
  LIMITS,
  SIZE_CAPS,
  SkipLog,
  byString,
  decodeText,
  isRecord,
  kindOf,
  own,
  parseJson,
  sniff,
} from "../../input.js";
import { DebianBuilder } from "./builder.js";
import { addCveListEntries, parseDebianCveList } from "./cve-list.js";
import { parseDebianAdvisoryList } from "./lists.js";
import { readTrackerJson } from "./tracker-json.js";

export { parseDebianAdvisoryList } from "./lists.js";
export type { DebianListEntry, DebianListFix } from "./lists.js";
export { parseDebianCveList, cveListAdvisoryId } from "./cve-list.js";
export type { CveListEntry, CveListPackage, CveListKind } from "./cve-list.js";
export { debianEcosystem, urgencySeverity } from "./releases.js";

type Kind = "json" | "cve-list" | "vuln-list" | "dsa" | "dla";

function kindFromPath(path: string): Kind | undefined {
  if (/(^|\/)debian\.json$/.test(path) || /(^|\/)json$/.test(path)) return "json";
  if (/(^|\/)CVE\/list$/.test(path)) return "cve-list";
  if (/(^|\/)DSA\/list$/.test(path)) return "dsa";
  if (/(^|\/)DLA\/list$/.test(path)) return "dla";
  if (/(^|\/)(CVE-\d{4}-[^/]+|TEMP-[^/]+)\.json$/.test(path)) return "vuln-list";
  return undefined;
}

function kindFromContent(file: RawFile): Kind | undefined {
  const head = sniff(file.bytes, 64 * KiB);
  if (/^\s*\{\s*"[a-z0-9][a-z0-9+.-]*"\s*:\s*\{\s*"(?:CVE|TEMP)-/.test(head)) return "json";
  if (/^\s*\{/.test(head) && /"Header"\s*:/.test(head) && /"Annotations"\s*:/.test(head)) return "vuln-list";
  const first = /^\s*(\S[^\n]*)/.exec(head)?.[1] ?? "";
  const list = /^\[\d{1,2} [A-Za-z]{3} \d{4}\] (DSA|DLA|DTSA)-\d/.exec(first);
  if (list) return list[1] === "DLA" ? "dla" : "dsa";
  if (/^(?:CVE-\d{4}-(?:\d{4,}|X{4})|TEMP-\d{7}-[0-9A-F]{6})(?:\s|$)/.test(first)) return "cve-list";
  return undefined;
}

/** Whether the file is one of the tracker's formats, from its first 64 KiB (nothing is parsed). */
export function detect(file: RawFile): boolean {
  return kindFromContent(file) !== undefined;
}

/**
 * Parses whatever subset of the tracker files is given. The JSON (or, without it, the CVE list or
 * vuln-list-debian entries) gives the rows; the DSA/DLA lists only add advisory ids and fix dates to them.
 * Throws AdvisoryInputError when a file is too big or not JSON/UTF-8, or when neither the JSON nor a CVE
 * list is among the files.
 */
export function parse(files: RawFile[]): ParseResult {
  const skips = new SkipLog();
  const builder = new DebianBuilder();
  const groups = new Map<Kind, RawFile[]>();
  for (const file of [...files].sort((a, b) => byString(a.path, b.path))) {
    const kind = kindFromPath(file.path) ?? kindFromContent(file);
    if (kind === undefined) {
      skips.add(file.path, "*", "not a Debian tracker file (debian.json, CVE/list, DSA/list, DLA/list)");
      continue;
    }
    groups.set(kind, [...(groups.get(kind) ?? []), file]);
  }
  const json = groups.get("json") ?? [];
  const textLists = [...(groups.get("cve-list") ?? []), ...(groups.get("vuln-list") ?? [])];
  if (json.length > 0) {
    for (const file of json) readTrackerJson(file, builder, skips);
    for (const file of textLists) {
      skips.add(file.path, "*", "not read: the tracker JSON is present and is the source of the rows");
    }
  } else if (textLists.length > 0) {
    for (const file of groups.get("cve-list") ?? []) {
      const parsed = parseDebianCveList(decodeText(file, SIZE_CAPS.debianCveList), file.path);
      skips.records.push(...parsed.skipped);
      addCveListEntries(parsed.entries, file.path, builder, skips);
    }
    for (const file of groups.get("vuln-list") ?? []) {
      const text = vulnListText(file, skips);
      if (text === undefined) continue;
      const parsed = parseDebianCveList(text, file.path);
      skips.records.push(...parsed.skipped);
      addCveListEntries(parsed.entries, file.path, builder, skips);
    }
  } else {
    const names = files.map((f) => f.path).join(", ") || "(no files)";
    throw new AdvisoryInputError("UNRECOGNISED", names, "neither the tracker JSON (debian.json) nor a CVE list (CVE/list) is among the files", {
      naming: "path",
    });
  }
  for (const file of [...(groups.get("dsa") ?? []), ...(groups.get("dla") ?? [])]) {
    const parsed = parseDebianAdvisoryList(decodeText(file, SIZE_CAPS.other), file.path);
    skips.records.push(...parsed.skipped);
    for (const entry of parsed.entries) builder.applyListEntry(entry);
  }
  return { advisories: builder.finish(), skipped: skips.records };
}

const MAX_ANNOTATIONS = 10_000;

/**
 * A vuln-list-debian per-CVE file (`{Header: {Original}, Annotations: [{Original}]}`) back into the CVE
 * list text it was split from: the header line, then each annotation's original line indented.
 */
function vulnListText(file: RawFile, skips: SkipLog): string | undefined {
  const doc = parseJson(file, SIZE_CAPS.other);
  const header = isRecord(doc) ? own(doc, "Header") : undefined;
  const original = isRecord(header) ? own(header, "Original") : undefined;
  const annotations = isRecord(doc) ? own(doc, "Annotations") : undefined;
  if (typeof original !== "string" || original.includes("\n") || original.length > LIMITS.text) {
    skips.add(file.path, "Header", `Header.Original is ${kindOf(original)}, expected one line of text`);
    return undefined;
  }
  if (annotations !== undefined && annotations !== null && !Array.isArray(annotations)) {
    skips.add(file.path, "Annotations", `Annotations is ${kindOf(annotations)}, expected a list`);
    return undefined;
  }
  const lines = [original];
  for (const [i, a] of (annotations ?? []).slice(0, MAX_ANNOTATIONS).entries()) {
    const line = isRecord(a) ? own(a, "Original") : undefined;
    if (typeof line !== "string" || line.includes("\n") || line.length > LIMITS.text) {
      skips.add(file.path, `Annotations[${i}]`, `Original is ${kindOf(line)}, expected one line of text`);
      continue;
    }
    lines.push(`\t${line.trim()}`);
  }
  return lines.join("\n");
}
