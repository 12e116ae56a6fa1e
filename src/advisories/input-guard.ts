// Reading advisory files that come from outside: size caps, JSON and YAML that cannot pollute prototypes, bounded
// gzip, and the small string checks every parser needs. Errors name the file (and the archive entry) they are about.

import { gunzipSync } from "node:zlib";
import { Gunzip } from "fflate";
import { parse as parseYaml } from "yaml";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

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

/** A file (or archive entry) that cannot be read at all: the message names it. */
export class AdvisoryInputError extends Error {
  override name = "AdvisoryInputError";
  constructor(
    readonly code: AdvisoryInputErrorCode,
    readonly file: string,
    message: string,
    readonly entry?: string,
    options?: { cause?: unknown },
  ) {
    super(`${entry === undefined ? `file ${file}` : `archive ${file}, entry ${entry}`}: ${message}`, options);
  }
}

export function checkSize(file: string, bytes: Uint8Array, max: number, entry?: string): void {
  if (bytes.byteLength > max) {
    throw new AdvisoryInputError("FILE_TOO_LARGE", file, `${bytes.byteLength} bytes, over the limit of ${max}`, entry);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 text (a leading BOM dropped); invalid UTF-8 is an error naming the file. */
export function decodeUtf8(file: string, bytes: Uint8Array, entry?: string): string {
  try {
    return utf8.decode(bytes);
  } catch (e) {
    throw new AdvisoryInputError("BAD_ENCODING", file, "not valid UTF-8", entry, { cause: e });
  }
}

/** Keys that would reach an object's prototype when copied by assignment; dropped from every parsed document. */
function isPollutingKey(key: string): boolean {
  return key === "__proto__";
}

/** JSON.parse with `__proto__` keys dropped; a syntax error (or nesting too deep to revive) names the file. */
export function parseJsonText(file: string, text: string, entry?: string): unknown {
  try {
    // The reviver halves JSON.parse's speed: only pay for it when the text could hold such a key, written plainly
    // or with \u escapes.
    if (!text.includes("__proto__") && !text.includes("\\u")) return JSON.parse(text);
    return JSON.parse(text, (key, value: unknown) => (isPollutingKey(key) ? undefined : value));
  } catch (e) {
    throw new AdvisoryInputError("BAD_JSON", file, `invalid JSON: ${(e as Error).message}`, entry, { cause: e });
  }
}

export function parseJsonBytes(file: string, bytes: Uint8Array, max: number, entry?: string): unknown {
  checkSize(file, bytes, max, entry);
  return parseJsonText(file, decodeUtf8(file, bytes, entry), entry);
}

/**
 * YAML as OSV data needs it: the core schema without its int and float tags, so `2.10` stays the string "2.10"
 * (and `1e3`, `010`, `0x1F` stay strings) while `null`, `~` and booleans keep their meaning. One document only,
 * unique keys, no aliases (no billion-laughs expansion), `__proto__` keys dropped.
 */
export function parseYamlBytes(file: string, bytes: Uint8Array, max: number, entry?: string): unknown {
  checkSize(file, bytes, max, entry);
  const text = decodeUtf8(file, bytes, entry);
  let value: unknown;
  try {
    value = parseYaml(text, {
      schema: "core",
      customTags: (tags) =>
        tags.filter((t) => typeof t === "string" || (t.tag !== "tag:yaml.org,2002:int" && t.tag !== "tag:yaml.org,2002:float")),
      maxAliasCount: 0,
      uniqueKeys: true,
      logLevel: "error",
      prettyErrors: false,
    });
  } catch (e) {
    throw new AdvisoryInputError("BAD_YAML", file, `invalid YAML: ${(e as Error).message.split("\n")[0]}`, entry, { cause: e });
  }
  return dropPollutingKeys(file, value, entry);
}

/** Copies plain data with `__proto__` keys dropped (the yaml library keeps them as own keys). Depth is bounded. */
function dropPollutingKeys(file: string, value: unknown, entry: string | undefined, depth = 0): unknown {
  if (depth > 64) throw new AdvisoryInputError("BAD_YAML", file, "nested more than 64 levels deep", entry);
  if (Array.isArray(value)) return value.map((v) => dropPollutingKeys(file, v, entry, depth + 1));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (isPollutingKey(k)) continue;
      Object.defineProperty(out, k, { value: dropPollutingKeys(file, v, entry, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
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
      undefined,
      { cause: e },
    );
  }
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

/** The head of a file as text for sniffing, gunzipped when it is gzip. Never throws. */
export function sniffText(bytes: Uint8Array, n = 4 * KiB): string {
  const head = isGzip(bytes) ? gunzipHead(bytes, n) : bytes.subarray(0, n);
  return new TextDecoder("utf-8").decode(head).replace(/^\uFEFF/, "");
}

/** Longest identifier accepted (advisory ids, aliases, CVE ids); real ones are under 64 characters. */
export const MAX_ID_LENGTH = 128;
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

/** `a.b[2].c` from a zod issue path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || "(record)";
}

/** Counts by key without an object that a key like `__proto__` could reach into. */
export function countInto(counts: Map<string, number>, key: string, by = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
}
