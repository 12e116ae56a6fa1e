// `portcullis db update`: for each source, download its upstream files with the fingerprints of its
// latest operation (ETag / Last-Modified: an unchanged file is a 304 and costs nothing), parse them, and
// record one operation, whole or not at all. A source that fails (HTTP 500, a bad file) is reported and
// leaves the store as it was; the others go on.
import { createHash } from "node:crypto";
import type { AdvisoryStore, Operation } from "../store/advisory-types.js";
import type { AdvisorySource, UpstreamFile } from "./source.js";
import type { RawFile } from "./types.js";
import { describeError } from "../errors.js";

export interface UpdateOptions {
  /** Mirror base URLs by source name. */
  mirrors?: Record<string, string>;
  /** Per-file deadline (default 10 minutes). */
  timeoutMs?: number;
  signal?: AbortSignal;
  userAgent?: string;
  log?: (msg: string) => void;
}

export interface UpdateResult {
  source: string;
  status: "updated" | "unchanged" | "failed";
  operation?: Operation;
  error?: string;
  /** Bytes downloaded (304s count 0). */
  downloaded: number;
  files: number;
  durationMs: number;
}

export class AdvisoryFetchError extends Error {
  override name = "AdvisoryFetchError";
  constructor(readonly code: "ADVISORY_HTTP_STATUS" | "ADVISORY_TOO_LARGE" | "ADVISORY_NETWORK", message: string, readonly status?: number) {
    super(message);
  }
}

interface Fingerprint {
  etag?: string;
  lastModified?: string;
}

type Fetched = { notModified: true } | { notModified: false; missing: true } | { notModified: false; missing: false; bytes: Buffer; fingerprint: Fingerprint };

/** Updates each source in turn; never throws for one source's failure (its result says why). */
export async function updateSources(store: AdvisoryStore, sources: readonly AdvisorySource[], o: UpdateOptions = {}): Promise<UpdateResult[]> {
  const out: UpdateResult[] = [];
  for (const s of sources) {
    o.signal?.throwIfAborted();
    out.push(await updateSource(store, s, o));
  }
  return out;
}

export async function updateSource(store: AdvisoryStore, source: AdvisorySource, o: UpdateOptions = {}): Promise<UpdateResult> {
  const t0 = Date.now();
  const result = (r: Omit<UpdateResult, "source" | "durationMs">): UpdateResult => ({ source: source.name, durationMs: Date.now() - t0, ...r });
  let downloaded = 0;
  try {
    const latest = await store.latestOperation(source.name);
    const previous = new Map<string, Fingerprint>(Object.entries(latest?.fingerprint ?? {}).map(([url, v]) => [url, parseFingerprint(v)]));
    const upstream = await source.upstream({ mirror: o.mirrors?.[source.name], list: (url) => fetchText(url, o) });
    const files: Array<RawFile & { url: string; sha256: string; retrievedAt: string }> = [];
    const fingerprint: Record<string, string> = {};
    let changed = !latest || latest.parserVersion !== source.parserVersion;
    for (const f of upstream) {
      const known = latest?.files.find((x) => x.path === f.path);
      const got = await fetchFile(f, known ? previous.get(f.url) : undefined, o);
      if (!got.notModified && got.missing) {
        o.log?.(`${source.name}: ${f.url} not found (optional), skipped`);
        continue;
      }
      let bytes: Buffer;
      if (got.notModified) {
        const kept = known ? await store.rawFile(known.sha256) : undefined;
        if (!kept) throw new AdvisoryFetchError("ADVISORY_HTTP_STATUS", `${f.url} answered 304 Not Modified but the store has no copy of ${f.path}`);
        bytes = kept;
        fingerprint[f.url] = JSON.stringify(previous.get(f.url) ?? {});
      } else {
        bytes = got.bytes;
        downloaded += bytes.length;
        fingerprint[f.url] = JSON.stringify(got.fingerprint);
      }
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      if (!known || known.sha256 !== sha256) changed = true;
      files.push({ path: f.path, bytes, url: f.url, sha256, retrievedAt: new Date().toISOString() });
    }
    if (latest && latest.files.length !== files.length) changed = true;
    if (!changed) {
      await store.markChecked(latest!.ref);
      return result({ status: "unchanged", operation: latest, downloaded, files: files.length });
    }
    const parsed = source.parse(files);
    const rec = await store.recordOperation({
      source: source.name, kind: source.kind, origin: "update", parserVersion: source.parserVersion, fingerprint,
      licence: source.licence, attribution: source.attribution,
      files: files.map((f) => ({ path: f.path, bytes: f.bytes, sha256: f.sha256, size: f.bytes.length, url: f.url, retrievedAt: f.retrievedAt })),
      advisories: parsed.advisories, enrichment: parsed.enrichment, skipped: parsed.skipped,
    });
    if (rec.unchanged) await store.markChecked(rec.operation.ref);
    return result({ status: rec.unchanged ? "unchanged" : "updated", operation: rec.operation, downloaded, files: files.length });
  } catch (e) {
    if (o.signal?.aborted) throw e;
    return result({ status: "failed", error: describeError(e), downloaded, files: 0 });
  }
}

function parseFingerprint(v: string): Fingerprint {
  try {
    const o = JSON.parse(v) as Fingerprint;
    return { etag: typeof o.etag === "string" ? o.etag : undefined, lastModified: typeof o.lastModified === "string" ? o.lastModified : undefined };
  } catch {
    return {};
  }
}

async function fetchFile(f: UpstreamFile, fp: Fingerprint | undefined, o: UpdateOptions): Promise<Fetched> {
  const headers: Record<string, string> = { "user-agent": o.userAgent ?? "portcullis" };
  if (fp?.etag) headers["if-none-match"] = fp.etag;
  if (fp?.lastModified) headers["if-modified-since"] = fp.lastModified;
  const res = await send(f.url, headers, o);
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
  return { notModified: false, missing: false, bytes, fingerprint: { etag: res.headers.get("etag") ?? undefined, lastModified: res.headers.get("last-modified") ?? undefined } };
}

async function fetchText(url: string, o: UpdateOptions): Promise<string> {
  const res = await send(url, { "user-agent": o.userAgent ?? "portcullis" }, o);
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new AdvisoryFetchError("ADVISORY_HTTP_STATUS", `GET ${url} answered ${res.status} ${res.statusText}`.trim(), res.status);
  }
  return (await readCapped(res, 4 << 20, url)).toString("utf8");
}

async function send(url: string, headers: Record<string, string>, o: UpdateOptions): Promise<Response> {
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

async function readCapped(res: Response, max: number, url: string): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    throw new AdvisoryFetchError("ADVISORY_TOO_LARGE", `${url} is ${declared} bytes, more than the ${max} accepted`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  if (!res.body) return Buffer.alloc(0);
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    n += c.length;
    if (n > max) throw new AdvisoryFetchError("ADVISORY_TOO_LARGE", `${url} is more than the ${max} bytes accepted`);
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}
