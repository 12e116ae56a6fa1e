// Layers by URI: the layer source of a Clair Manifest (`{hash, layers: [{hash, uri, headers}]}`), as the
// report API's POST /indexer/api/v1/index_report receives it. Each layer is a GET of its URI with the
// caller's headers; the layer walk checks the digest (the layer's `hash`) and the size while the bytes
// stream by, exactly as for registry and OCI-layout layers, so nothing of a layer is stored before it
// checked. Layers the store already has are never fetched (the indexer decides that before open()).
//
// The URIs are the caller's choice and the operator's pod can reach what the caller cannot (cloud metadata
// services, the API server, cluster-internal services), so:
//   - URIs must be absolute http:// or https:// URLs without credentials in them;
//   - unless `allowPrivateHosts` (tests, development) is set, hosts that are loopback, link-local,
//     unspecified, reserved or a cloud metadata service (169.254.169.254, fd00:ec2::254, 100.100.100.200,
//     metadata.google.internal ...), in any IPv4 or IPv6 spelling, are refused (src/net/egress.ts): as
//     written in the URI, again for every redirect, and at connect time for the address a name resolves
//     to and the socket actually reaches. Private (RFC 1918, ULA) addresses stay allowed: in-cluster
//     registries live there.
//   - redirects are followed (at most 5, never from https to http) and credentials (Authorization,
//     Cookie, Proxy-Authorization) never follow one to another host;
//   - messages name the layer and the URI's scheme, host and path, never its query (presigned URLs carry
//     their signature there) nor a header value.
// Limits come from the registry client's options: connect/headers/body timeouts, requests at once per host,
// attempts and backoff for 5xx, 429 and connection errors, Range resumes of a dropped body, private CAs per
// host, the User-Agent. The layer walk's limits (decompressed size, expansion ratio) apply as everywhere.
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { request, type Agent, type Dispatcher } from "undici";
import { LayerError } from "../../layers/errors.js";
import { ANYWHERE, defaultEgressGuard, egressPolicy, egressRefusal, refuseHost, type EgressGuard } from "../../net/egress.js";
import { dropFirst } from "../../registry/blob.js";
import { registryErrorBody } from "../../registry/errors.js";
import { backoffDelay, parseRetryAfter, Semaphore } from "../../registry/limits.js";
import { RegistryOptionsSchema, type RegistryOptions, type RegistryOptionsInput } from "../../registry/options.js";
import { readCapped } from "../../registry/transport.js";
import type { LayerSource } from "../scan-layer.js";
import type { LayerDescriptor, ManifestToIndex } from "../../model/image.js";

/** One layer of a Clair Manifest, as validated by the report API. */
export interface UriLayer {
  hash: string;
  uri: string;
  /** Header name -> values (Go's http.Header), sent with every request for the layer. */
  headers?: Record<string, string[]>;
  media_type?: string;
}

export interface UriManifest {
  hash: string;
  layers: UriLayer[];
}

export interface UriFetcherOptions {
  /** The registry client's options: timeouts, concurrency per host, retries, resumes, CAs, User-Agent. */
  registry?: RegistryOptionsInput;
  /** Allow loopback, link-local and metadata hosts (tests and development only). Default false. */
  allowPrivateHosts?: boolean;
  /** Called with the bytes of every chunk received (metrics). */
  onBytes?(host: string, n: number): void;
  /** The guard every connection goes through (default: the process's, with the system resolver). */
  egress?: EgressGuard;
}

/**
 * Where a layer URI may go: public and private addresses (in-cluster registries live on RFC 1918 and ULA
 * addresses); never loopback, link-local, a cloud metadata service or a reserved address.
 */
export const LAYER_URI_POLICY = egressPolicy("a layer URI", ["public", "private"]);

/** Why a host (a name or an IP literal, as in a URL) may not be fetched from as written, or undefined. */
export function blockedHost(hostname: string): string | undefined {
  return refuseHost(hostname.replace(/\.+$/, ""), LAYER_URI_POLICY)?.message;
}

/**
 * Checks a layer URI (or a redirect's target): an absolute http(s) URL without credentials, whose host is
 * allowed. Returns the URL, or why not.
 */
export function checkLayerUri(raw: string | URL, allowPrivateHosts: boolean): URL | string {
  let u: URL;
  try {
    u = typeof raw === "string" ? new URL(raw) : raw;
  } catch {
    return "is not an absolute URL";
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return `must be an http:// or https:// URL, not ${u.protocol}`;
  if (!u.hostname) return "has no host";
  if (u.username || u.password) return "must not carry credentials (user:password@); send them in headers";
  if (!allowPrivateHosts) {
    const why = blockedHost(u.hostname);
    if (why) return `is refused: ${why} (the operator does not fetch from its own or the cloud's internal addresses)`;
  }
  return u;
}

/** scheme://host/path of a URL: never the query (presigned signatures) nor credentials. */
export function describeUri(u: URL | string): string {
  try {
    const x = typeof u === "string" ? new URL(u) : u;
    return `${x.protocol}//${x.host}${x.pathname}`;
  } catch {
    return "(not a URL)";
  }
}

/**
 * A layer that could not be fetched. `callerFault`: the manifest must change (the server answered 4xx, the
 * URI or a redirect was refused); otherwise the server or the network failed (5xx, 429, timeouts, TLS).
 */
export class LayerFetchError extends LayerError {
  constructor(layer: string, message: string, readonly callerFault: boolean, readonly upstreamStatus?: number, options?: { cause?: unknown }) {
    super("FETCH_FAILED", layer, message, options);
  }
}

/** TLS failures that trying again does not mend (an unknown CA, a wrong name, an expired certificate). */
function certificateError(e: unknown): boolean {
  for (let c = e as { code?: unknown; cause?: unknown } | undefined, i = 0; c && i < 5; c = c.cause as typeof c, i++) {
    if (typeof c.code === "string" && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(c.code)) return true;
  }
  return false;
}

const CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);
/** Headers Portcullis sets itself, or that would change the transfer: the caller's are dropped. */
const OWN_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "expect", "range", "if-range", "accept-encoding", "proxy-connection"]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

type Headers = Record<string, string | string[]>;

/**
 * Fetches layers by URI. One per process (it holds the connection pools); `open()` makes the
 * ManifestToIndex and LayerSource of one Clair Manifest for Indexer.index().
 */
export class UriLayerFetcher {
  readonly options: RegistryOptions;
  private readonly allowPrivate: boolean;
  private readonly agents = new Map<string, Agent>();
  private readonly hosts = new Map<string, Semaphore>();

  constructor(private readonly config: UriFetcherOptions = {}) {
    this.options = RegistryOptionsSchema.parse(config.registry ?? {});
    this.allowPrivate = config.allowPrivateHosts ?? false;
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.allSettled(agents.map((a) => a.close()));
  }

  /** The manifest to index and its source. Layer descriptors learn their size from the response. */
  open(m: UriManifest): { manifest: ManifestToIndex; source: LayerSource } {
    const byDigest = new Map<string, UriLayer>();
    for (const l of m.layers) if (!byDigest.has(l.hash)) byDigest.set(l.hash, l);
    const sizes = new Map<string, number>();
    const layers: LayerDescriptor[] = m.layers.map((l) => new UriLayerDescriptor(l.hash, l.media_type ?? "", sizes));
    const source: LayerSource = {
      // The layer walk hashes the bytes and compares them with the layer's `hash`.
      verifiesDigests: false,
      open: async (layer, signal) => {
        const l = byDigest.get(layer.digest);
        if (!l) throw new LayerFetchError(layer.digest, "not in the manifest", true);
        return this.stream(l, sizes, signal);
      },
    };
    return { manifest: { digest: m.hash, layers }, source };
  }

  private dispatcher(u: URL): Agent {
    const ca = this.options.caCertificates[u.host] ?? this.options.caCertificates[u.hostname];
    const key = ca ? u.host : "";
    let a = this.agents.get(key);
    if (!a) {
      const o = this.options;
      a = (this.config.egress ?? defaultEgressGuard).agent(this.allowPrivate ? ANYWHERE : LAYER_URI_POLICY, {
        connectTimeoutMs: o.connectTimeoutMs, ...(ca ? { ca } : {}), headersTimeoutMs: o.headersTimeoutMs, bodyTimeoutMs: o.bodyTimeoutMs,
      });
      this.agents.set(key, a);
    }
    return a;
  }

  private semaphore(host: string): Semaphore {
    let s = this.hosts.get(host);
    if (!s) this.hosts.set(host, (s = new Semaphore(this.options.maxConcurrentPerRegistry)));
    return s;
  }

  /** Opens the layer (the first response is in when this resolves) and streams its body, resuming drops. */
  private async stream(l: UriLayer, sizes: Map<string, number>, signal?: AbortSignal): Promise<Readable> {
    const checked = checkLayerUri(l.uri, this.allowPrivate);
    if (typeof checked === "string") throw new LayerFetchError(l.hash, `${describeUri(l.uri)} ${checked}`, true);
    const url: URL = checked;
    const headers: Headers = { "user-agent": this.options.userAgent, "accept-encoding": "identity" };
    for (const [k, v] of Object.entries(l.headers ?? {})) if (!OWN_HEADERS.has(k.toLowerCase()) && v.length) headers[k.toLowerCase()] = v.length === 1 ? v[0]! : v;
    const release = await this.semaphore(url.host).acquire(signal);
    let first: Dispatcher.ResponseData;
    try {
      first = await this.get(l.hash, url, headers, signal);
      if (first.statusCode !== 200) throw await this.statusError(l.hash, url, first);
    } catch (e) {
      release();
      throw e;
    }
    const length = Number(first.headers["content-length"]);
    if (Number.isSafeInteger(length) && length >= 0) sizes.set(l.hash, length);
    const maxResumes = this.options.maxBlobResumes;
    const get = (h: Headers) => this.get(l.hash, url, h, signal);
    const statusError = (r: Dispatcher.ResponseData) => this.statusError(l.hash, url, r);
    const onBytes = this.config.onBytes;
    let res = first;
    async function* body(): AsyncGenerator<Buffer> {
      let received = 0;
      let skip = 0;
      let resumes = 0;
      try {
        for (;;) {
          try {
            for await (const c of dropFirst(res.body as AsyncIterable<Buffer>, skip)) {
              received += c.length;
              onBytes?.(url.host, c.length);
              yield c;
            }
            return;
          } catch (e) {
            if (signal?.aborted || e instanceof LayerError) throw e;
            if (resumes >= maxResumes) throw new LayerFetchError(l.hash, `${describeUri(url)}: connection dropped after ${received} bytes and ${resumes} resumes: ${(e as Error).message}`, false, undefined, { cause: e });
            resumes++;
            res = await get({ ...headers, range: `bytes=${received}-` });
            const start = /^bytes (\d+)-/.exec(String(res.headers["content-range"] ?? ""))?.[1];
            if (res.statusCode === 206 && Number(start) === received) skip = 0;
            else if (res.statusCode === 200 || res.statusCode === 206) {
              // Not the range we asked for: start over, skipping what the walk already has.
              if (res.statusCode === 206) {
                await res.body.dump();
                res = await get(headers);
                if (res.statusCode !== 200) throw await statusError(res);
              }
              skip = received;
            } else throw await statusError(res);
          }
        }
      } finally {
        release();
      }
    }
    const out = Readable.from(body(), { objectMode: false, highWaterMark: 1 << 20 });
    // Also when the stream is destroyed before it was read (the generator's finally never runs then).
    out.once("close", () => {
      release();
      if (!res.body.destroyed) res.body.destroy();
    });
    return out;
  }

  /** One GET: retries 5xx, 429 and connection errors with backoff; follows redirects with the URI checks. */
  private async get(layer: string, url: URL, headers: Headers, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const o = this.options;
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= o.maxAttempts;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.follow(layer, url, headers, signal);
      } catch (e) {
        if (signal?.aborted || e instanceof LayerError) throw e;
        const refused = egressRefusal(e);
        if (refused) throw new LayerFetchError(layer, `${describeUri(url)}: refused: ${refused.message}`, true, undefined, { cause: e });
        if (last || certificateError(e)) throw new LayerFetchError(layer, `${describeUri(url)}: ${networkMessage(e)}`, false, undefined, { cause: e });
        await sleep(backoffDelay(attempt, o.backoffBaseMs), undefined, { signal });
        continue;
      }
      if ((res.statusCode >= 500 || res.statusCode === 429) && !last) {
        const retryAfter = parseRetryAfter(res.headers["retry-after"]);
        await res.body.dump().catch(() => undefined);
        if (res.statusCode === 429 && retryAfter !== undefined && retryAfter > o.maxRetryAfterMs) {
          throw new LayerFetchError(layer, `${describeUri(url)}: rate limited; the server asks to wait ${Math.ceil(retryAfter / 1000)} s`, false, 429);
        }
        await sleep(retryAfter ?? backoffDelay(attempt, o.backoffBaseMs), undefined, { signal });
        continue;
      }
      return res;
    }
  }

  private async follow(layer: string, start: URL, headers: Headers, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    let url = start;
    let h = headers;
    for (let hop = 0; hop <= 5; hop++) {
      const res = await request(url, { method: "GET", headers: h, dispatcher: this.dispatcher(url), signal });
      if (!REDIRECTS.has(res.statusCode) || !res.headers.location) return res;
      await res.body.dump().catch(() => undefined);
      let next: URL | string;
      try {
        next = checkLayerUri(new URL(String(res.headers.location), url), this.allowPrivate);
      } catch {
        next = "is not a URL";
      }
      if (typeof next !== "string" && url.protocol === "https:" && next.protocol === "http:") next = "is plain http, from https";
      if (typeof next === "string") throw new LayerFetchError(layer, `${describeUri(url)} redirected to a URL that ${next}`, true);
      if (next.host !== url.host) h = Object.fromEntries(Object.entries(h).filter(([k]) => !CREDENTIAL_HEADERS.has(k)));
      url = next;
    }
    throw new LayerFetchError(layer, `${describeUri(start)}: more than 5 redirects`, true);
  }

  private async statusError(layer: string, url: URL, res: Dispatcher.ResponseData): Promise<LayerFetchError> {
    const text = (await readCapped(res.body, 16 * 1024, () => new Error("too large")).catch(() => Buffer.alloc(0))).toString("utf8");
    const err = registryErrorBody(text);
    const detail = err.message ? ` (${err.code ? `${err.code}: ` : ""}${err.message.slice(0, 200)})` : "";
    const s = res.statusCode;
    const what = s === 401 ? "not authorized: check the layer's headers" : s === 403 ? "access denied" : s === 404 ? "not found" : s === 429 ? "rate limited" : s >= 500 ? "server error" : "unexpected status";
    return new LayerFetchError(layer, `GET ${describeUri(url)}: HTTP ${s}, ${what}${detail}`, s >= 400 && s < 500 && s !== 429, s);
  }
}

/**
 * A layer descriptor whose size is not in the Clair Manifest: it is the response's Content-Length once
 * open() has the response (the indexer reads `size` after open(), and the walk then holds the stream to
 * it). Before that, or without a Content-Length, it is undefined, which the walk takes as "unknown".
 */
class UriLayerDescriptor implements LayerDescriptor {
  constructor(readonly digest: string, readonly mediaType: string, private readonly sizes: ReadonlyMap<string, number>) {}
  get size(): number {
    return this.sizes.get(this.digest) as number;
  }
}

function networkMessage(e: unknown): string {
  const cause = (e as { cause?: { message?: string } }).cause?.message;
  const msg = (e as Error).message;
  return cause && cause !== msg ? `${msg}: ${cause}` : msg;
}
