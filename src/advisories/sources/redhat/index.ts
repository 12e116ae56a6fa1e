// Red Hat CSAF 2.0 VEX documents (https://security.access.redhat.com/data/csaf/v2/vex/, one per CVE;
// CC BY 4.0) → advisories: one per document (id = the CVE). Many documents at once: each file is one
// document. docs/advisories.md ("Red Hat") has the mapping.

import type { Advisory, ParseResult, RawFile } from "../../../model/advisory.js";
import { KiB, SkipLog, byString, sniff } from "../../input.js";
import { readVexDocument } from "./csaf.js";

export { impactSeverity } from "./csaf.js";
export { ecosystemFromCpe, parseCpe, parseNevra, parsePurl } from "./identifiers.js";

/** Whether the file is a CSAF VEX document, from its first 64 KiB (Red Hat writes `document` first). */
export function detect(file: RawFile): boolean {
  const head = sniff(file.bytes, 64 * KiB);
  return /^\s*\{/.test(head) && /"csaf_version"\s*:/.test(head) && /"category"\s*:\s*"csaf_vex"/.test(head);
}

/**
 * Parses VEX documents. The same CVE in two documents (two snapshots of one file) keeps the one with the
 * later `tracking.current_release_date` and records the other as skipped. Throws AdvisoryInputError for a
 * file that is too big or not JSON.
 */
export function parse(files: RawFile[]): ParseResult {
  const skips = new SkipLog();
  const byId = new Map<string, { advisory: Advisory; modified: string }>();
  for (const file of [...files].sort((a, b) => byString(a.path, b.path))) {
    const { advisories, modified = "" } = readVexDocument(file, skips);
    for (const advisory of advisories) {
      const prev = byId.get(advisory.id);
      if (!prev) {
        byId.set(advisory.id, { advisory, modified });
        continue;
      }
      const [keep, drop] = modified > prev.modified ? [{ advisory, modified }, prev] : [prev, { advisory, modified }];
      byId.set(advisory.id, keep);
      skips.add(
        drop.advisory.origin.file,
        advisory.id,
        `duplicate of ${advisory.id} in ${keep.advisory.origin.file}, which is newer or read first`,
      );
    }
  }
  const advisories = [...byId.values()].map((x) => x.advisory).sort((a, b) => byString(a.id, b.id));
  return { advisories, skipped: skips.records };
}
