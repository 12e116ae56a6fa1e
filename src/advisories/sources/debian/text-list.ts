// The reading loop the tracker's text lists share (CVE/list, DSA/list, DLA/list): a header at column 0 starts an
// entry, indented lines belong to it. An unreadable header is skipped with all its lines; an indented line before
// any header is skipped; blank lines and a CR before the newline are ignored. What a header and a body line mean is
// each list's own business (./cve-list.ts, ./lists.ts).

import { clip, type SkipLog } from "../../input.js";
import { validBugId } from "./releases.js";

/**
 * Reads the list into entries. `header` turns a header line into a new entry (undefined: unreadable, skipped with
 * its lines); `body` reads one trimmed indented line into the current entry and returns a reason when the line
 * cannot be used, which is recorded as `<id> (line <n>)`. Line numbers are 1-based.
 */
export function readTrackerList<E extends { id: string }>(
  text: string,
  file: string,
  skips: SkipLog,
  header: (line: string, n: number) => E | undefined,
  body: (entry: E, body: string, n: number) => string | undefined,
): E[] {
  const entries: E[] = [];
  let current: E | undefined;
  let skipping = false;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").replace(/\r$/, "");
    const n = i + 1;
    if (line.trim() === "") continue;
    if (!/^\s/.test(line)) {
      current = header(line, n);
      skipping = current === undefined;
      if (current === undefined) skips.add(file, `line ${n}`, `unreadable header ${JSON.stringify(clip(line, 120))}`);
      else entries.push(current);
      continue;
    }
    if (skipping) continue;
    if (!current) {
      skips.add(file, `line ${n}`, "indented line before any header");
      continue;
    }
    const problem = body(current, line.trim(), n);
    if (problem !== undefined) skips.add(file, `${current.id} (line ${n})`, problem);
  }
  return entries;
}

/** The tracker ids of a `{CVE-… DSA-… bug}` cross-reference line added to `into`, each once. */
export function addBraceIds(body: string, into: string[]): void {
  for (const token of body.replace(/^\{/, "").replace(/\}$/, "").split(/\s+/)) {
    if (token !== "" && validBugId(token) && !into.includes(token)) into.push(token);
  }
}
