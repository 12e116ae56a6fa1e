// `portcullis db update`: for each source, download its upstream files with the fingerprints of its
// latest operation (ETag / Last-Modified: an unchanged file is a 304 and costs nothing), parse them, and
// record one operation, whole or not at all. A source that fails (HTTP 500, a bad file) is reported and
// leaves the store as it was; the others go on. A source too large for memory (Red Hat) brings its own
// update (`AdvisorySource.update`), which streams into one operation the same way.
import { createHash } from "node:crypto";
import type { AdvisoryStore, Operation } from "../store/advisory-types.js";
import type { AdvisorySource } from "./source.js";
import type { RawFile } from "../model/advisory.js";
import { describeError } from "../errors.js";
import { AdvisoryFetchError, fetchFile, fetchText, parseFingerprint, type Fingerprint } from "./http.js";

export { AdvisoryFetchError } from "./http.js";

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
    if (source.update) {
      const r = await source.update(store, { mirror: o.mirrors?.[source.name], timeoutMs: o.timeoutMs, signal: o.signal, userAgent: o.userAgent, log: o.log });
      return result(r);
    }
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

