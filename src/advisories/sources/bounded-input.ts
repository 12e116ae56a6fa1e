// Reading advisory files that come from outside: size caps, strict UTF-8, JSON and YAML errors that name
// the file and the position, ids bounded in length, and no user key ever assigned onto a plain object
// (records are walked with Object.keys and kept in Maps). Shared by the OS-distribution parsers.

import { parseDocument } from "yaml";
import type { z } from "zod";
import type { RawFile, Severity, SkippedRecord } from "../types.js";

export const MiB = 1024 * 1024;

/**
 * Size caps. The Debian tracker JSON is tens of MiB; parsing it takes about 14 times its size in memory
 * (measured: a 72 MiB synthetic file, 1 GiB RSS, 6 s), so its cap of 256 MiB bounds a run to a few GiB
 * and stays far under V8's longest string (about 512 MiB), which the decoded text must fit in. The CVE
 * list is the tracker's biggest text file. Everything else (DSA/DLA lists, secdb files, one VEX document)
 * is far smaller than 64 MiB.
 */
export const SIZE_CAPS = {
  debianJson: 256 * MiB,
  debianCveList: 256 * MiB,
  other: 64 * MiB,
} as const;

/** Length bounds for strings that become ids, package names and versions. */
export const LIMITS = {
  id: 128,
  name: 256,
  version: 256,
  /** Summaries and details are clipped, not rejected. */
  text: 64 * 1024,
  /** Short free text kept in `detail` (reasons, workarounds). */
  note: 2048,
} as const;

/** A file that cannot be read at all (too big, not UTF-8, not JSON/YAML). Names the file. */
export class AdvisoryInputError extends Error {
  override name = "AdvisoryInputError";
  readonly code = "ADVISORY_INPUT";
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`${file}: ${why}`);
  }
}

export function assertSize(file: RawFile, cap: number): void {
  if (file.bytes.length > cap) {
    throw new AdvisoryInputError(
      file.path,
      `${file.bytes.length} bytes is over the ${Math.round(cap / MiB)} MiB cap for this kind of file`,
    );
  }
}

/** The file as text: size-checked, strict UTF-8, a leading BOM dropped, CRLF kept (callers split lines). */
export function decodeText(file: RawFile, cap: number): string {
  assertSize(file, cap);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(file.bytes);
  } catch {
    throw new AdvisoryInputError(file.path, "not valid UTF-8");
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Line and column (1-based) of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = text.indexOf("\n"); i !== -1 && i < end; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: end - lineStart + 1 };
}

/** JSON.parse with an error that names the file and the position. JSON.parse keeps `__proto__` as an own key. */
export function parseJson(file: RawFile, cap: number): unknown {
  const text = decodeText(file, cap);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const at = /at position (\d+)/.exec(message);
    const offset = at?.[1] !== undefined ? Number(at[1]) : text.length;
    const { line, column } = lineColumn(text, offset);
    throw new AdvisoryInputError(
      file.path,
      `invalid JSON at line ${line} column ${column} (offset ${offset}): ${message}`,
    );
  }
}

/**
 * YAML with the failsafe schema: every scalar is a string (`2.10` stays `2.10`, `5.8-r0` is not a date or
 * a float). Maps come back as null-prototype objects, so a `__proto__` key is an ordinary own key.
 */
export function parseYaml(file: RawFile, cap: number): unknown {
  const text = decodeText(file, cap);
  const doc = parseDocument(text, { schema: "failsafe", uniqueKeys: true, prettyErrors: true });
  const error = doc.errors[0];
  if (error) {
    const pos = error.linePos?.[0];
    const where = pos ? `line ${pos.line} column ${pos.col}` : `offset ${error.pos[0]}`;
    const what = (error.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
    throw new AdvisoryInputError(file.path, `invalid YAML at ${where}: ${what}`);
  }
  let out: unknown;
  try {
    out = doc.toJS({ mapAsMap: true, maxAliasCount: 100 });
  } catch (err) {
    throw new AdvisoryInputError(file.path, `invalid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  return mapsToRecords(out, 0, file.path);
}

const MAX_DEPTH = 64;

function mapsToRecords(value: unknown, depth: number, file: string): unknown {
  if (depth > MAX_DEPTH) throw new AdvisoryInputError(file, `nested deeper than ${MAX_DEPTH} levels`);
  if (value instanceof Map) {
    const out = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of value) out[String(k)] = mapsToRecords(v, depth + 1, file);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => mapsToRecords(v, depth + 1, file));
  return value;
}

/** A JSON/YAML object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The own enumerable entries of a record; never walks the prototype. */
export function entriesOf(record: Record<string, unknown>): Array<[string, unknown]> {
  return Object.keys(record).map((k) => [k, record[k]]);
}

/** An own property, never an inherited one (`toString`, `__proto__`). */
export function own(record: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/** What a value is, for skip reasons: `a list`, `a string`, `null`, `missing`. */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "missing";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** The first few issues of a failed zod parse, as one short reason. */
export function zodReason(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");
}

/** A string cut to `max` characters (summaries, details, notes). */
export function clip(text: string, max: number = LIMITS.text): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Skip records with a short record key; the key itself is clipped so a hostile key cannot bloat the report. */
export class SkipLog {
  readonly records: SkippedRecord[] = [];
  add(file: string, record: string, reason: string): void {
    this.records.push({ file, record: clip(record, 300), reason: clip(reason, 500) });
  }
}

/** The first `n` bytes as text, for `detect`: invalid UTF-8 becomes U+FFFD, nothing is parsed. */
export function sniff(file: RawFile, n = 64 * 1024): string {
  const head = file.bytes.subarray(0, n);
  const text = new TextDecoder("utf-8").decode(head);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Severity order used to pick "the highest": Critical first, Unknown last (a known Negligible outranks Unknown). */
const RANK: Record<Severity, number> = { Critical: 5, High: 4, Medium: 3, Low: 2, Negligible: 1, Unknown: 0 };

export function higherSeverity(a: Severity, b: Severity): boolean {
  return RANK[a] > RANK[b];
}

/** Codepoint order with digit runs compared as numbers (`RHEL:6` < `RHEL:10`), locale-free. */
export function byNatural(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) return Number(x) - Number(y) || byString(x, y);
    return byString(x, y);
  }
  return pa.length - pb.length;
}

/** Codepoint order, for output that does not depend on the input's key order or the locale. */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
