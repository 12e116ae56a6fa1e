// Reading advisory files that come from outside, for every parser (OS distributions, OSV, Node.js, enrichment,
// CVSS): size caps, strict UTF-8, bounded gzip, JSON and YAML whose errors name the file (and the archive entry)
// with the line and column, and whose `__proto__` keys can never reach a prototype; sniffing a file's head; the
// small checks on ids, URLs and strings every parser needs. No user key is ever assigned onto a plain object:
// records are walked with Object.keys, counts kept in Maps.

import { gunzipSync } from "node:zlib";
import { Gunzip } from "fflate";
import { parseDocument } from "yaml";
import type { z } from "zod";
import type { Severity, SkippedRecord } from "../model/advisory.js";
import { PortcullisError } from "../errors.js";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/**
 * Size caps of the OS-distribution files. The Debian tracker JSON is tens of MiB; parsing it takes about 14 times
 * its size in memory (measured: a 72 MiB synthetic file, 1 GiB RSS, 6 s), so its cap of 256 MiB bounds a run to a
 * few GiB and stays far under V8's longest string (about 512 MiB), which the decoded text must fit in. The CVE list
 * is the tracker's biggest text file. Everything else (DSA/DLA lists, secdb files, one VEX document) is far smaller
 * than 64 MiB.
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

// --- how a family of parsers reads its files ------------------------------------------------------------------

/**
 * The two families of parsers read the same way but differ where their data and their callers differ. Each
 * difference is one field, so a parser states which it needs instead of carrying its own reader.
 */
export interface InputProfile {
  /**
   * How error messages name the place and word the problem: `path` puts the path first (`debian.json: 9 bytes is
   * over the 64 MiB cap…`, `invalid YAML at line 2 column 1: …`); `labelled` says what it is (`file x.json: 9 bytes,
   * over the limit of 8`, `archive a.zip, entry x.json: …`, `invalid YAML: … at line 2 column 1`).
   */
  naming: "path" | "labelled";
  /**
   * `__proto__` keys: `keep` them as ordinary own keys (JSON.parse does; YAML maps become null-prototype objects),
   * for parsers that walk records with `entriesOf`/`own` and report such a key as a skipped record; or `drop` them
   * while parsing, for parsers that hand records to schema validation.
   */
  protoKeys: "keep" | "drop";
  /**
   * YAML scalars: `strings` (the failsafe schema: `2.10`, `5.8-r0`, `null`, `true` are all strings) or `typed` (the
   * core schema without its int and float tags: `2.10`, `1e3`, `010`, `0x1F` stay strings while `null`, `~` and
   * booleans keep their meaning).
   */
  yamlScalars: "strings" | "typed";
  /** How many aliases a YAML document may expand (bounds billion-laughs expansion); 0 refuses every alias. */
  yamlAliases: number;
}

/** Debian, Alpine and Red Hat: records walked key by key, YAML all strings. */
export const DISTRO_INPUT: InputProfile = { naming: "path", protoKeys: "keep", yamlScalars: "strings", yamlAliases: 100 };

/** OSV, Node.js and the enrichment feeds: records validated by schema, OSV's YAML (PyPA) with null and booleans. */
export const FEED_INPUT: InputProfile = { naming: "labelled", protoKeys: "drop", yamlScalars: "typed", yamlAliases: 0 };

// --- errors ---------------------------------------------------------------------------------------------------

export type AdvisoryInputErrorCode =
  | "FILE_TOO_LARGE"
  | "BAD_ENCODING"
  | "BAD_JSON"
  | "BAD_YAML"
  | "BAD_CSV"
  | "BAD_GZIP"
  | "BAD_ZIP"
  | "ZIP_LIMIT"
  | "ZIP_PATH"
  | "BAD_SHAPE"
  | "UNRECOGNISED";

/** Where in the input a problem is: the file, the entry within an archive, the line and column (1-based). */
export interface InputPlace {
  file: string;
  entry?: string;
  line?: number;
  column?: number;
}

/** A file (or archive entry) that cannot be read at all. The message names it; the fields say where, for callers. */
export class AdvisoryInputError extends PortcullisError {
  readonly domain = "advisory";
  override name = "AdvisoryInputError";
  readonly file: string;
  readonly entry?: string;
  readonly line?: number;
  readonly column?: number;
  constructor(
    readonly code: AdvisoryInputErrorCode,
    place: string | InputPlace,
    why: string,
    options?: { cause?: unknown; naming?: InputProfile["naming"] },
  ) {
    const p = typeof place === "string" ? { file: place } : place;
    const naming = options?.naming ?? "labelled";
    const where =
      naming === "path" ? p.file : p.entry === undefined ? `file ${p.file}` : `archive ${p.file}, entry ${p.entry}`;
    super(`${where}: ${why}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.file = p.file;
    if (p.entry !== undefined) this.entry = p.entry;
    if (p.line !== undefined) this.line = p.line;
    if (p.column !== undefined) this.column = p.column;
  }
}

/** Bytes to read and what to call them: a RawFile, or an entry of an archive (`entry` names it). */
export interface InputFile {
  path: string;
  bytes: Uint8Array;
  entry?: string;
}

function placeOf(file: InputFile, at?: { line: number; column: number }): InputPlace {
  return { file: file.path, ...(file.entry === undefined ? {} : { entry: file.entry }), ...at };
}

// --- bytes and text -------------------------------------------------------------------------------------------

/** Refuses bytes over `max` before anything reads them. */
export function checkSize(file: InputFile, max: number, profile: InputProfile = DISTRO_INPUT): void {
  const n = file.bytes.length;
  if (n <= max) return;
  const why =
    profile.naming === "path"
      ? `${n} bytes is over the ${Math.round(max / MiB)} MiB cap for this kind of file`
      : `${n} bytes, over the limit of ${max}`;
  throw new AdvisoryInputError("FILE_TOO_LARGE", placeOf(file), why, { naming: profile.naming });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The bytes as text: strict UTF-8, a leading BOM dropped, CRLF kept (callers split lines). No size check. */
function decode(file: InputFile, profile: InputProfile): string {
  let text: string;
  try {
    text = utf8.decode(file.bytes);
  } catch (e) {
    throw new AdvisoryInputError("BAD_ENCODING", placeOf(file), "not valid UTF-8", { cause: e, naming: profile.naming });
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** The file as text: size-checked, strict UTF-8, a leading BOM dropped, CRLF kept (callers split lines). */
export function decodeText(file: InputFile, max: number, profile: InputProfile = DISTRO_INPUT): string {
  checkSize(file, max, profile);
  return decode(file, profile);
}

/** Strict UTF-8 text of bytes already bounded (an archive entry, a gunzipped file), labelled. */
export function decodeUtf8(path: string, bytes: Uint8Array, entry?: string): string {
  return decode({ path, bytes, ...(entry === undefined ? {} : { entry }) }, FEED_INPUT);
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Whole gunzip with the output bounded (zlib stops once it passes the limit). */
export function gunzipBounded(file: string, bytes: Uint8Array, maxOut: number): Buffer {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxOut });
  } catch (e) {
    const tooLarge = (e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError;
    throw new AdvisoryInputError(
      tooLarge ? "FILE_TOO_LARGE" : "BAD_GZIP",
      file,
      tooLarge ? `decompresses to more than ${maxOut} bytes` : `invalid gzip: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** The file's bytes, gunzipped when they are gzip (`.csv.gz`, `.json.gz`), bounded either way. Labelled. */
export function contentBytes(file: InputFile, maxBytes: number): Uint8Array {
  if (isGzip(file.bytes)) return gunzipBounded(file.path, file.bytes, maxBytes);
  checkSize(file, maxBytes, FEED_INPUT);
  return file.bytes;
}

/** `contentBytes` as strict UTF-8 text, a leading BOM dropped. */
export function contentText(file: InputFile, maxBytes: number): string {
  return decode({ path: file.path, bytes: contentBytes(file, maxBytes) }, FEED_INPUT);
}

/** The first `n` decompressed bytes of a gzip stream (fewer if it is shorter or broken), for content sniffing. */
export function gunzipHead(bytes: Uint8Array, n: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  let have = 0;
  const gz = new Gunzip((chunk) => {
    if (have < n) {
      chunks.push(chunk);
      have += chunk.length;
    }
  });
  try {
    for (let off = 0; off < bytes.length && have < n; off += 4 * KiB) {
      const end = Math.min(bytes.length, off + 4 * KiB);
      gz.push(bytes.subarray(off, end), end === bytes.length);
    }
  } catch {
    // a broken stream: sniff what came out before the break
  }
  const out = new Uint8Array(Math.min(n, have));
  let at = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, out.length - at);
    out.set(c.subarray(0, take), at);
    at += take;
    if (at >= out.length) break;
  }
  return out;
}

/**
 * The first `n` bytes as text, for `detect`: invalid UTF-8 becomes U+FFFD, a leading BOM is dropped, nothing is
 * parsed, nothing throws. With `gunzip`, a gzip stream's head is decompressed first (for parsers that read gzip).
 */
export function sniff(bytes: Uint8Array, n = 4 * KiB, options?: { gunzip?: boolean }): string {
  const head = options?.gunzip === true && isGzip(bytes) ? gunzipHead(bytes, n) : bytes.subarray(0, n);
  const text = new TextDecoder("utf-8").decode(head);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** The head of a file as text, gunzipped when it is gzip. Never throws. */
export function sniffText(bytes: Uint8Array, n = 4 * KiB): string {
  return sniff(bytes, n, { gunzip: true });
}

// --- JSON and YAML --------------------------------------------------------------------------------------------

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

/** Keys that would reach an object's prototype when copied by assignment. */
function isPollutingKey(key: string): boolean {
  return key === "__proto__";
}

/** JSON.parse of decoded text; a syntax error names the file, the line and column, and the offset. */
function jsonOf(file: InputFile, text: string, profile: InputProfile): unknown {
  try {
    // The reviver halves JSON.parse's speed: only pay for it when the text could hold such a key, written plainly
    // or with \u escapes. Without a reviver JSON.parse keeps `__proto__` as an own key, never a prototype.
    if (profile.protoKeys === "keep" || (!text.includes("__proto__") && !text.includes("\\u"))) return JSON.parse(text);
    return JSON.parse(text, (key, value: unknown) => (isPollutingKey(key) ? undefined : value));
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const at = /at position (\d+)/.exec(message);
    const offset = at?.[1] !== undefined ? Number(at[1]) : text.length;
    const { line, column } = lineColumn(text, offset);
    throw new AdvisoryInputError(
      "BAD_JSON",
      placeOf(file, { line, column }),
      `invalid JSON at line ${line} column ${column} (offset ${offset}): ${message}`,
      { cause: e, naming: profile.naming },
    );
  }
}

/** JSON with the size checked first; errors name the file and the position; `__proto__` as the profile says. */
export function parseJson(file: InputFile, max: number, profile: InputProfile = DISTRO_INPUT): unknown {
  return jsonOf(file, decodeText(file, max, profile), profile);
}

/** `parseJson` of an OSV/feed file or archive entry, by path (labelled, `__proto__` dropped). */
export function parseJsonBytes(path: string, bytes: Uint8Array, max: number, entry?: string): unknown {
  return parseJson({ path, bytes, ...(entry === undefined ? {} : { entry }) }, max, FEED_INPUT);
}

/** `parseJson` of text already decoded and bounded (a gunzipped feed, an archive entry), labelled. */
export function parseJsonText(path: string, text: string, entry?: string): unknown {
  return jsonOf({ path, bytes: new Uint8Array(), ...(entry === undefined ? {} : { entry }) }, text, FEED_INPUT);
}

const MAX_DEPTH = 64;

/**
 * YAML as the profile reads it (see `InputProfile.yamlScalars`): one document only, unique keys, aliases bounded,
 * nesting at most 64 levels, `__proto__` kept as an ordinary key (in null-prototype objects) or dropped. Errors
 * name the file, the line and the column.
 */
export function parseYaml(file: InputFile, max: number, profile: InputProfile = DISTRO_INPUT): unknown {
  const text = decodeText(file, max, profile);
  const doc = parseDocument(
    text,
    profile.yamlScalars === "strings"
      ? { schema: "failsafe", uniqueKeys: true, prettyErrors: true }
      : {
          schema: "core",
          customTags: (tags) =>
            tags.filter((t) => typeof t === "string" || (t.tag !== "tag:yaml.org,2002:int" && t.tag !== "tag:yaml.org,2002:float")),
          uniqueKeys: true,
          prettyErrors: true,
        },
  );
  const fail = (why: string, at?: { line: number; column: number }, cause?: unknown): never => {
    throw new AdvisoryInputError("BAD_YAML", placeOf(file, at), why, { cause, naming: profile.naming });
  };
  const error = doc.errors[0];
  if (error) {
    const pos = error.linePos?.[0];
    const at = pos ? { line: pos.line, column: pos.col } : undefined;
    const what = (error.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
    const where = at ? `line ${at.line} column ${at.column}` : `offset ${error.pos[0]}`;
    fail(profile.naming === "path" ? `invalid YAML at ${where}: ${what}` : `invalid YAML: ${what} at ${where}`, at, error);
  }
  let out: unknown;
  try {
    out = doc.toJS({ mapAsMap: true, maxAliasCount: profile.yamlAliases });
  } catch (e) {
    fail(`invalid YAML: ${e instanceof Error ? e.message : String(e)}`, undefined, e);
  }
  const tooDeep = profile.naming === "path" ? `nested deeper than ${MAX_DEPTH} levels` : `nested more than ${MAX_DEPTH} levels deep`;
  const records = (value: unknown, depth: number): unknown => {
    if (depth > MAX_DEPTH) fail(tooDeep);
    if (value instanceof Map) {
      const record = (profile.protoKeys === "keep" ? Object.create(null) : {}) as Record<string, unknown>;
      for (const [k, v] of value) {
        const key = String(k);
        if (profile.protoKeys === "drop" && isPollutingKey(key)) continue;
        Object.defineProperty(record, key, { value: records(v, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return record;
    }
    if (Array.isArray(value)) return value.map((v) => records(v, depth + 1));
    return value;
  };
  return records(out, 0);
}

/** `parseYaml` of an OSV file or archive entry, by path (labelled, typed scalars, no aliases, `__proto__` dropped). */
export function parseYamlBytes(path: string, bytes: Uint8Array, max: number, entry?: string): unknown {
  return parseYaml({ path, bytes, ...(entry === undefined ? {} : { entry }) }, max, FEED_INPUT);
}

// --- walking parsed records -----------------------------------------------------------------------------------

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

/**
 * The top level of a distribution file, which must be an object: `expected` says what it should hold. Parses JSON,
 * or YAML when `yaml` is set, with the distribution profile.
 */
export function readTopRecord(
  file: InputFile,
  max: number,
  expected: string,
  options?: { yaml?: boolean },
): Record<string, unknown> {
  const doc = options?.yaml === true ? parseYaml(file, max) : parseJson(file, max);
  if (!isRecord(doc)) {
    throw new AdvisoryInputError("BAD_SHAPE", placeOf(file), `top level is ${kindOf(doc)}, expected ${expected}`, { naming: "path" });
  }
  return doc;
}

/** `a.b[2].c` from a zod issue path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || "(record)";
}

/** The first issue of a failed zod parse, with its path: `affected[0].ranges: Required`. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${formatPath(issue.path)}: ${issue.message}` : "invalid";
}

/** The first few issues of a failed zod parse, as one short reason. */
export function zodReason(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");
}

/** Counts by key without an object that a key like `__proto__` could reach into. */
export function countInto(counts: Map<string, number>, key: string, by = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
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

// --- ids, URLs, strings ---------------------------------------------------------------------------------------

/** Longest identifier accepted (advisory ids, aliases, CVE ids); real ones are under 64 characters. */
export const MAX_ID_LENGTH = LIMITS.id;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:+-]*$/;

/** An advisory identifier: `GHSA-…`, `CVE-…`, `UBUNTU-CVE-…`, `openSUSE-SU-2024:1234-1`; bounded, no spaces or slashes. */
export function isAdvisoryId(s: unknown): s is string {
  return typeof s === "string" && s.length > 0 && s.length <= MAX_ID_LENGTH && ID_RE.test(s);
}

export const CVE_RE = /^CVE-\d{4}-\d{4,19}$/;

export function isCveId(s: unknown): s is string {
  return typeof s === "string" && CVE_RE.test(s);
}

/** Any C0/C1 control character or DEL. */
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

export function hasControlChars(s: string): boolean {
  return CONTROL_RE.test(s);
}

export const MAX_URL_LENGTH = 4096;

/** An http(s) URL of bounded length: the only links kept (no `javascript:` or `file:` in a report). */
export function httpUrl(s: unknown): string | undefined {
  if (typeof s !== "string" || s.length > MAX_URL_LENGTH || hasControlChars(s)) return undefined;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return undefined;
  }
  return u.protocol === "https:" || u.protocol === "http:" ? s : undefined;
}

// --- ordering -------------------------------------------------------------------------------------------------

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
