// HTTP for the advisory updaters: GETs with a deadline, a size cap and conditional requests (ETag /
// Last-Modified), into memory for small files or onto disk for archives. Upstream URLs are the
// operator's (defaults and mirrors), never a tenant's, so there is no egress guard here.
import { readCapped as readBody } from "../registry/transport.js";
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { pipeline } from "node:stream/promises";
import type { UpstreamFile } from "./source.js";
import { PortcullisError } from "../errors.js";

export interface HttpOptions {
  /** Per-request deadline (default 10 minutes). */
  timeoutMs?: number;
  signal?: AbortSignal;
  userAgent?: string;
}

export class AdvisoryFetchError extends PortcullisError {
  readonly domain = "advisory";
  override name = "AdvisoryFetchError";
  constructor(readonly code: "ADVISORY_HTTP_STATUS" | "ADVISORY_TOO_LARGE" | "ADVISORY_NETWORK", message: string, readonly status?: number) {
    super(message);
  }
}

export interface Fingerprint {
  etag?: string;
  lastModified?: string;
}

export type Fetched = { notModified: true } | { notModified: false; missing: true } | { notModified: false; missing: false; bytes: Buffer; fingerprint: Fingerprint };

export function parseFingerprint(v: string | undefined): Fingerprint {
  if (!v) return {};
  try {
    const o = JSON.parse(v) as Fingerprint;
    return { etag: typeof o.etag === "string" ? o.etag : undefined, lastModified: typeof o.lastModified === "string" ? o.lastModified : undefined };
  } catch {
    return {};
  }
}

function conditional(fp: Fingerprint | undefined, o: HttpOptions): Record<string, string> {
  const headers: Record<string, string> = { "user-agent": o.userAgent ?? "portcullis" };
  if (fp?.etag) headers["if-none-match"] = fp.etag;
  if (fp?.lastModified) headers["if-modified-since"] = fp.lastModified;
  return headers;
}

function fingerprintOf(res: Response): Fingerprint {
  return { etag: res.headers.get("etag") ?? undefined, lastModified: res.headers.get("last-modified") ?? undefined };
}

/** GETs `f` into memory, conditionally when `fp` is given: 304 → notModified, an optional file's 404 → missing. */
export async function fetchFile(f: Pick<UpstreamFile, "url" | "maxBytes" | "optional">, fp: Fingerprint | undefined, o: HttpOptions): Promise<Fetched> {
  const res = await send(f.url, conditional(fp, o), o);
  if (res.status === 304) {
    await res.body?.cancel();
    return { notModified: true };
  }
  if (res.status === 404 && f.optional) {
    await res.body?.cancel();
    return { notModified: false, missing: true };
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new AdvisoryFetchError("ADVISORY_HTTP_STATUS", `GET ${f.url} answered ${res.status} ${res.statusText}`.trim(), res.status);
  }
  const bytes = await readCapped(res, f.maxBytes, f.url);
  return { notModified: false, missing: false, bytes, fingerprint: fingerprintOf(res) };
}

/**
 * GETs `url` onto disk at `path` (an archive too large for memory), conditionally when `fp` is given,
 * stopping past `maxBytes`. Returns the bytes written, or notModified.
 */
export async function downloadToFile(url: string, path: string, maxBytes: number, fp: Fingerprint | undefined, o: HttpOptions): Promise<{ notModified: true } | { notModified: false; bytes: number; fingerprint: Fingerprint }> {
  const res = await send(url, conditional(fp, o), o);
  if (res.status === 304) {
    await res.body?.cancel();
    return { notModified: true };
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new AdvisoryFetchError("ADVISORY_HTTP_STATUS", `GET ${url} answered ${res.status} ${res.statusText}`.trim(), res.status);
  }
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw new AdvisoryFetchError("ADVISORY_TOO_LARGE", `${url} is ${declared} bytes, more than the ${maxBytes} accepted`);
  }
  let n = 0;
  const body = res.body ? Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) : Readable.from([]);
  const counted = async function* (src: AsyncIterable<Buffer>) {
    for await (const c of src) {
      n += c.length;
      if (n > maxBytes) throw new AdvisoryFetchError("ADVISORY_TOO_LARGE", `${url} is more than the ${maxBytes} bytes accepted`);
      yield c;
    }
  };
  try {
    await pipeline(body, counted, createWriteStream(path));
  } catch (e) {
    if (e instanceof AdvisoryFetchError || o.signal?.aborted) throw e;
    throw new AdvisoryFetchError("ADVISORY_NETWORK", `GET ${url}: ${(e as Error).message}`);
  }
  if (Number.isFinite(declared) && n !== declared) throw new AdvisoryFetchError("ADVISORY_NETWORK", `GET ${url}: the body ended after ${n} of the ${declared} bytes announced`);
  return { notModified: false, bytes: n, fingerprint: fingerprintOf(res) };
}

/** GETs a small text document (an index page, a "latest" pointer), at most 4 MiB. */
export async function fetchText(url: string, o: HttpOptions): Promise<string> {
  const res = await send(url, { "user-agent": o.userAgent ?? "portcullis" }, o);
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new AdvisoryFetchError("ADVISORY_HTTP_STATUS", `GET ${url} answered ${res.status} ${res.statusText}`.trim(), res.status);
  }
  return (await readCapped(res, 4 << 20, url)).toString("utf8");
}

async function send(url: string, headers: Record<string, string>, o: HttpOptions): Promise<Response> {
  if (!/^https?:\/\//.test(url)) throw new AdvisoryFetchError("ADVISORY_NETWORK", `not an http(s) URL: ${url}`);
  const deadline = AbortSignal.timeout(o.timeoutMs ?? 600_000);
  try {
    return await fetch(url, { headers, redirect: "follow", signal: o.signal ? AbortSignal.any([o.signal, deadline]) : deadline });
  } catch (e) {
    if (o.signal?.aborted) throw e;
    const cause = (e as { cause?: Error }).cause;
    throw new AdvisoryFetchError("ADVISORY_NETWORK", `GET ${url}: ${cause?.message ?? (e as Error).message}`);
  }
}

/** A response's body, refused by its Content-Length or while reading past `max` bytes. */
export async function readCapped(res: Response, max: number, url: string): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    throw new AdvisoryFetchError("ADVISORY_TOO_LARGE", `${url} is ${declared} bytes, more than the ${max} accepted`);
  }
  if (!res.body) return Buffer.alloc(0);
  return readBody(res.body as unknown as AsyncIterable<Uint8Array>, max, () => new AdvisoryFetchError("ADVISORY_TOO_LARGE", `${url} is more than the ${max} bytes accepted`));
}
