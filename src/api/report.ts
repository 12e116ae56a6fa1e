// The report API: Clair v4's indexer endpoints (wire format of ../shared/clair-api-v1), served by
// `portcullis serve` on its health server beside /healthz, /readyz and /metrics.
//
//   GET    /indexer/api/v1/index_report/{digest}   the stored IndexReport
//   POST   /indexer/api/v1/index_report            indexes a Clair Manifest whose layers are fetched by URI
//   DELETE /indexer/api/v1/index_report/{digest}   deletes the manifest from the store (204)
//   DELETE /indexer/api/v1/index_report            bulk delete, body ["sha256:…", …] (200, the digests deleted)
//   GET    /indexer/api/v1/index_state             {"state": scanner set hash}, with an ETag
//   POST   /indexer/api/v1/internal/affected_manifest  501
//
// Every request needs `Authorization: Bearer TOKEN`, checked with a TokenReview (401 when missing or
// invalid). A report is shown only to a caller who may `get` an ImageScan whose status.digest or
// status.resolvedDigest is that digest, in some namespace (SubjectAccessReview; 403 otherwise); a digest no
// ImageScan has is 404 (unless the caller may get ImageScans in every namespace and the store has it).
// Deleting needs `delete` on ImageScans in every namespace. TokenReview and SubjectAccessReview answers are
// cached for a minute. Errors are Clair's error object: {"code": "...", "message": "..."}.
//
// POST index_report takes Clair's Manifest: {"hash": "sha256:…", "layers": [{"hash": "sha256:…", "uri":
// "https://…", "headers": {"Authorization": ["Bearer …"]}, "media_type": "…"}]} (application/json or
// application/vnd.clair.manifest.v1+json, at most 1 MiB; anything else is a 400 naming the field). The layers
// are fetched with the caller's headers by the "layers by URI" source (../indexer/sources/uri.ts) and indexed
// by the same Indexer as ImageScans: each layer's digest and size are checked while it streams, nothing of a
// layer is stored before it checked, layers already in the store are not fetched again, and a manifest
// already indexed by the current scanner set is answered from the store. The answer is what Clair answers:
// 201 with the IndexReport, `ETag: "<index state>"`, `Location` and `Link` to the stored report, 201 also
// when nothing had to be done (Clair's indexer answers 201 either way; clairctl and Quay accept any 2xx).
// `If-None-Match: "<index state>"` gets 412 when the manifest is already indexed at that state. A layer that
// is not what its hash says (digest-mismatch, size-mismatch), is no layer (bad-layer), is too large
// (layer-too-large) or cannot be fetched (layer-fetch-failed: 400 when its server answered 4xx or the URI or a
// redirect was refused, 502 when the server or the network failed) is an error naming the layer, 400 unless
// said otherwise; the manifest's stored report then says IndexError, as Clair's does. Identical POSTs in
// flight at once share one index (and the Indexer's manifest lock makes any other POST of the same manifest
// wait and reuse it); at most `indexConcurrency` manifests are indexed through POST at once.
//
// Who may POST: a caller who may `create` ImageScans in every namespace (SubjectAccessReview, namespace "").
// Indexing by URI makes the operator's pod fetch URLs of the caller's choosing with its network position:
// it can reach the cluster's internal services and the cloud's metadata service, which the caller may not,
// and what it stores under a manifest hash is served to everyone who may read reports of that digest (the
// hash is the caller's word, as in Clair: it is not checked against the layers). Both are powers of an
// administrator of Portcullis, not of someone who may scan images in one namespace (they get ImageScans).
// The source also refuses URIs whose host is loopback, link-local, unspecified or a metadata service
// (169.254.169.254, fd00:ec2::254, metadata.google.internal, ...), as written, after redirects and as
// resolved at connect time, unless `allowPrivateLayerHosts` is set (tests; `portcullis serve` never sets it).
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as k8s from "@kubernetes/client-node";
import { z } from "zod";
import { GROUP, VERSION, type ImageScan } from "../controller/imagescan.js";
import type { Indexer, IndexResult } from "../indexer/indexer.js";
import { checkLayerUri, LayerFetchError, UriLayerFetcher, type UriManifest } from "../indexer/sources/uri.js";
import { Informer } from "../kube/informer.js";
import { Semaphore } from "../registry/limits.js";
import type { RegistryOptionsInput } from "../registry/options.js";
import type { Store } from "../store/types.js";

export const API_PREFIX = "/indexer/api/v1";
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_BODY = 1024 * 1024;
const MAX_CACHE = 10_000;
const MANIFEST_TYPES = /^application\/(json|vnd\.clair\.manifest\.v1\+json)\s*(;.*)?$/i;
const INDEX_REPORT_TYPE = "application/vnd.clair.index_report.v1+json";
const LINK_REL = "https://projectquay.io/clair/v1/index_report";

/** Clair's Manifest (manifest.schema.json, layer.schema.json), with bounds. */
const DigestSchema = z.string().regex(DIGEST, "must be sha256:<64 hex> or sha512:<128 hex>");
const ManifestSchema = z
  .object({
    hash: DigestSchema,
    layers: z
      .array(
        z
          .object({
            hash: DigestSchema,
            uri: z.string().max(16 * 1024, "is longer than 16 KiB").superRefine((v, ctx) => {
              const u = checkLayerUri(v, true);
              if (typeof u === "string") ctx.addIssue({ code: "custom", message: u });
            }),
            headers: z
              .record(
                z.string().regex(/^[A-Za-z0-9_-]+$/).max(256),
                z.array(z.string().max(16 * 1024, "is longer than 16 KiB").regex(/^[\t\x20-\x7e]*$/, "must be printable ASCII (no CR, LF, NUL or other control characters)")).max(16, "at most 16 values"),
              )
              .refine((h) => Object.keys(h).length <= 64, "at most 64 headers")
              .optional(),
            media_type: z
              .string()
              .regex(/^application\/vnd\.(oci\.image\.layer\.v1\.tar(\+(gzip|zstd))?|docker\.image\.rootfs\.diff\.tar(\.gzip)?)$/, "must be an OCI layer type (application/vnd.oci.image.layer.v1.tar, +gzip, +zstd) or Docker's")
              .optional(),
          })
          .strict(),
      )
      .min(1, "must list at least one layer")
      .max(1000, "at most 1000 layers"),
  })
  .strict();

/** `layers[0].headers["X Y"]` from a zod path. */
function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const k of path) {
    if (typeof k === "number") out += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out || "the body";
}

/** The manifest, or a 400 that names every field that is wrong (the first ten). */
export function parseClairManifest(body: unknown): UriManifest {
  const r = ManifestSchema.safeParse(body);
  if (r.success) return r.data;
  const problems = r.error.issues.slice(0, 10).map((i) => {
    let message = i.message;
    if (i.code === "invalid_type" && /received undefined/.test(message)) message = "is required";
    else if (i.code === "invalid_type") message = `must be ${i.expected === "object" ? "an object" : i.expected === "array" ? "an array" : `a ${i.expected}`}`;
    else if (i.code === "invalid_key") message = "is not a header name (letters, digits, - and _)";
    else if (i.code === "unrecognized_keys") message = `has unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    return `${fieldPath(i.path)} ${message}`;
  });
  const more = r.error.issues.length > 10 ? ` (and ${r.error.issues.length - 10} more)` : "";
  throw new HttpError(400, "bad-request", `invalid manifest: ${problems.join("; ")}${more}`);
}

export interface Caller {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** Who may do what: TokenReview and SubjectAccessReview, replaceable in unit tests. */
export interface Authority {
  /** The token's user, or undefined when the token is not valid. */
  authenticate(token: string): Promise<Caller | undefined>;
  /** May `caller` `verb` ImageScans (named `name`) in `namespace` ("" for every namespace)? */
  authorize(caller: Caller, attrs: { verb: string; namespace: string; name?: string }): Promise<boolean>;
}

export interface ReportApiOptions {
  kc: k8s.KubeConfig;
  store: Pick<Store, "indexReport" | "deleteManifests">;
  /** The Indexer's scanner set hash, for index_state. */
  scannerSet: string;
  /** The ImageScans to look digests up in (an informer's cache); without it the API runs its own informer. */
  scans?: { list(): ImageScan[] };
  /** Default: TokenReview + SubjectAccessReview against the API server of `kc`. */
  authority?: Authority;
  /** How long TokenReview and SubjectAccessReview answers are kept. Default 60 s. */
  cacheTtlMs?: number;
  /** The indexer for POST index_report (its scanner set must be `scannerSet`); without it POST is 501. */
  indexer?: Pick<Indexer, "index">;
  /**
   * Let POSTed layer URIs reach loopback, link-local and cloud metadata addresses. Default false: only for
   * tests and development; `portcullis serve` never sets it.
   */
  allowPrivateLayerHosts?: boolean;
  /** Timeouts, concurrency per host, retries, resumes, CAs per host and User-Agent for layer URIs (the registry client's options). */
  layerFetch?: RegistryOptionsInput;
  /** Manifests indexed at once through POST (each fetches up to the indexer's layer concurrency). Default 4. */
  indexConcurrency?: number;
  log?(level: string, msg: string, fields?: Record<string, unknown>): void;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** A TTL cache with a bound on its size (expired entries go first, then everything). */
class TtlCache<V> {
  private readonly m = new Map<string, { v: V; until: number }>();
  constructor(private readonly ttlMs: number) {}
  get(k: string): V | undefined {
    const e = this.m.get(k);
    if (!e) return undefined;
    if (e.until < Date.now()) {
      this.m.delete(k);
      return undefined;
    }
    return e.v;
  }
  set(k: string, v: V): void {
    if (this.m.size >= MAX_CACHE) {
      const now = Date.now();
      for (const [key, e] of this.m) if (e.until < now) this.m.delete(key);
      if (this.m.size >= MAX_CACHE) this.m.clear();
    }
    this.m.set(k, { v, until: Date.now() + this.ttlMs });
  }
}

/** TokenReview and SubjectAccessReview through the API server. */
export function kubeAuthority(kc: k8s.KubeConfig): Authority {
  const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  return {
    async authenticate(token) {
      const r = await authn.createTokenReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } } });
      const u = r.status?.user;
      if (!r.status?.authenticated || !u?.username) return undefined;
      return { username: u.username, ...(u.uid ? { uid: u.uid } : {}), ...(u.groups ? { groups: u.groups } : {}), ...(u.extra ? { extra: u.extra } : {}) };
    },
    async authorize(caller, attrs) {
      const r = await authz.createSubjectAccessReview({
        body: {
          apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview",
          spec: {
            user: caller.username, uid: caller.uid, groups: caller.groups, extra: caller.extra,
            resourceAttributes: { group: GROUP, resource: "imagescans", verb: attrs.verb, namespace: attrs.namespace, ...(attrs.name ? { name: attrs.name } : {}) },
          },
        },
      });
      return r.status?.allowed === true;
    },
  };
}

export class ReportApi {
  private readonly authority: Authority;
  private readonly tokens: TtlCache<Caller | null>;
  private readonly decisions: TtlCache<boolean>;
  private readonly informer: Informer<ImageScan> | undefined;
  private readonly scans: { list(): ImageScan[] };
  private readonly fetcher: UriLayerFetcher | undefined;
  /** POSTs in flight by the hash of their manifest (hash, URIs, headers): identical ones share one index. */
  private readonly inflight = new Map<string, Promise<IndexResult>>();
  private readonly indexSlots: Semaphore;
  private readonly stopping = new AbortController();

  constructor(private readonly o: ReportApiOptions) {
    this.authority = o.authority ?? kubeAuthority(o.kc);
    this.indexSlots = new Semaphore(Math.max(1, o.indexConcurrency ?? 4));
    if (o.indexer) this.fetcher = new UriLayerFetcher({ registry: o.layerFetch, allowPrivateHosts: o.allowPrivateLayerHosts ?? false });
    this.tokens = new TtlCache(o.cacheTtlMs ?? 60_000);
    this.decisions = new TtlCache(o.cacheTtlMs ?? 60_000);
    if (o.scans) this.scans = o.scans;
    else {
      const custom = o.kc.makeApiClient(k8s.CustomObjectsApi);
      this.informer = new Informer<ImageScan>(o.kc, {
        watchPath: `/apis/${GROUP}/${VERSION}/imagescans`,
        list: async () => {
          const res = (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: "imagescans" })) as { items: ImageScan[]; metadata: { resourceVersion: string } };
          return { items: res.items, resourceVersion: res.metadata.resourceVersion };
        },
        log: (m) => o.log?.("info", `report API: ${m}`),
      });
      this.scans = this.informer;
    }
  }

  /** Starts the API's own ImageScan informer (when it was given none); resolves once it has listed. */
  async start(): Promise<void> {
    await this.informer?.start();
  }

  /** Stops the informer, aborts the POSTs in flight (they answer 503) and closes the layer connections. */
  stop(): void {
    this.informer?.stop();
    this.stopping.abort(new Error("the report API is stopping"));
    void this.fetcher?.close();
  }

  /** Whether the request is for this API. */
  matches(url: string | undefined): boolean {
    return !!url && (url === API_PREFIX || url.startsWith(`${API_PREFIX}/`));
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
    } catch (e) {
      if (e instanceof HttpError) this.error(res, e.status, e.code, e.message);
      else {
        this.o.log?.("error", `report API: ${req.method} ${new URL(req.url ?? "/", "http://x").pathname}: ${(e as Error).message}`);
        this.error(res, 500, "internal-error", "internal error; see the operator's log");
      }
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const method = req.method ?? "GET";
    const rest = path.slice(API_PREFIX.length);
    const report = /^\/index_report\/([^/]+)$/.exec(rest);
    const allow = (methods: string) => {
      res.setHeader("Allow", methods);
      throw new HttpError(405, "method-not-allowed", `${method} is not allowed here; use ${methods}`);
    };
    // Which route, before authentication, so that an unknown path is 404 for everyone.
    let handler: (caller: Caller) => Promise<void>;
    if (report) {
      const digest = decodeURIComponent(report[1]!);
      if (method === "GET" || method === "HEAD") handler = (c) => this.getReport(c, digest, req, res);
      else if (method === "DELETE") handler = (c) => this.deleteOne(c, digest, res);
      else return allow("GET, DELETE");
    } else if (rest === "/index_report") {
      if (method === "POST") handler = (c) => this.indexManifest(c, req, res);
      else if (method === "DELETE") handler = (c) => this.deleteMany(c, req, res);
      else return allow("POST, DELETE");
    } else if (rest === "/index_state") {
      if (method === "GET" || method === "HEAD") handler = async () => this.indexState(req, res);
      else return allow("GET");
    } else if (rest === "/internal/affected_manifest") {
      if (method === "POST") handler = async () => {
        throw new HttpError(501, "not-supported", "not supported yet: affected manifests need vulnerability matching, which Portcullis does not do");
      };
      else return allow("POST");
    } else throw new HttpError(404, "not-found", `no such endpoint: ${path}`);
    await handler(await this.caller(req));
  }

  private async caller(req: IncomingMessage): Promise<Caller> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    if (!m) throw new HttpError(401, "unauthorized", "a bearer token is required (Authorization: Bearer TOKEN, a Kubernetes token)");
    const token = m[1]!;
    const key = createHash("sha256").update(token).digest("hex");
    let caller = this.tokens.get(key);
    if (caller === undefined) {
      try {
        caller = (await this.authority.authenticate(token)) ?? null;
      } catch (e) {
        this.o.log?.("warn", `report API: TokenReview failed: ${(e as Error).message}`);
        throw new HttpError(503, "unavailable", "cannot check the token with the Kubernetes API server; try again");
      }
      this.tokens.set(key, caller);
    }
    if (!caller) throw new HttpError(401, "unauthorized", "the token is not valid");
    return caller;
  }

  private async may(caller: Caller, attrs: { verb: string; namespace: string; name?: string }): Promise<boolean> {
    const key = JSON.stringify([caller.username, caller.uid ?? "", caller.groups ?? [], caller.extra ?? {}, attrs.verb, attrs.namespace, attrs.name ?? ""]);
    let allowed = this.decisions.get(key);
    if (allowed === undefined) {
      try {
        allowed = await this.authority.authorize(caller, attrs);
      } catch (e) {
        this.o.log?.("warn", `report API: SubjectAccessReview failed: ${(e as Error).message}`);
        throw new HttpError(503, "unavailable", "cannot check access with the Kubernetes API server; try again");
      }
      this.decisions.set(key, allowed);
    }
    return allowed;
  }

  /** The ImageScans of a digest, one per namespace and name. */
  scansFor(digest: string): Array<{ namespace: string; name: string }> {
    const out: Array<{ namespace: string; name: string }> = [];
    for (const s of this.scans.list()) {
      if ((s.status?.digest === digest || s.status?.resolvedDigest === digest) && s.metadata?.namespace && s.metadata.name) out.push({ namespace: s.metadata.namespace, name: s.metadata.name });
    }
    return out;
  }

  private checkDigest(digest: string): void {
    if (!DIGEST.test(digest)) throw new HttpError(400, "bad-request", `not a digest: ${JSON.stringify(digest.slice(0, 200))} (expected sha256:<64 hex> or sha512:<128 hex>)`);
  }

  private async getReport(caller: Caller, digest: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.checkDigest(digest);
    const scans = this.scansFor(digest);
    let allowed = false;
    if (scans.length === 0) {
      // No ImageScan says it: only a caller who may see every ImageScan may ask the store directly.
      if (!(await this.may(caller, { verb: "get", namespace: "" }))) throw new HttpError(404, "not-found", `no ImageScan has indexed ${digest}`);
      allowed = true;
    }
    for (const s of scans) {
      if (allowed) break;
      allowed = await this.may(caller, { verb: "get", namespace: s.namespace, name: s.name });
    }
    if (!allowed) throw new HttpError(403, "forbidden", `${caller.username} may not get an ImageScan of ${digest} in any namespace`);
    const stored = await this.o.store.indexReport(digest);
    if (!stored) throw new HttpError(404, "not-found", `no index report for ${digest} (not indexed yet)`);
    this.json(req, res, 200, stored.report, "application/vnd.clair.index_report.v1+json");
  }

  private async deleteOne(caller: Caller, digest: string, res: ServerResponse): Promise<void> {
    this.checkDigest(digest);
    await this.mayDelete(caller);
    await this.o.store.deleteManifests([digest]);
    res.writeHead(204).end();
  }

  private async deleteMany(caller: Caller, req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.mayDelete(caller);
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req)).toString("utf8"));
    } catch (e) {
      throw e instanceof HttpError ? e : new HttpError(400, "bad-request", "the body must be a JSON array of digests");
    }
    if (!Array.isArray(body) || !body.every((d): d is string => typeof d === "string")) throw new HttpError(400, "bad-request", "the body must be a JSON array of digests");
    for (const d of body) this.checkDigest(d);
    const deleted = await this.o.store.deleteManifests(body);
    this.json(req, res, 200, deleted, "application/vnd.clair.bulk_delete.v1+json");
  }

  /** POST index_report: a Clair Manifest whose layers are fetched by URI, indexed by the Indexer. */
  private async indexManifest(caller: Caller, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const indexer = this.o.indexer;
    if (!indexer || !this.fetcher) {
      throw new HttpError(501, "not-supported", "not supported here: this report API has no indexer (Portcullis indexes images through ImageScans: kubectl create an ImageScan, or run `portcullis scan`)");
    }
    if (!(await this.may(caller, { verb: "create", namespace: "" }))) {
      throw new HttpError(403, "forbidden", `${caller.username} may not index manifests by URI: that needs create on imagescans.${GROUP} in every namespace, since it makes the operator fetch the URLs given (create an ImageScan in your namespace instead)`);
    }
    const type = req.headers["content-type"];
    if (type && !MANIFEST_TYPES.test(type)) throw new HttpError(415, "unsupported-media-type", `the body must be a Clair Manifest as application/json or application/vnd.clair.manifest.v1+json, not ${JSON.stringify(type.slice(0, 100))}`);
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req)).toString("utf8"));
    } catch (e) {
      throw e instanceof HttpError ? e : new HttpError(400, "bad-request", `the body is not JSON: ${(e as Error).message.slice(0, 200)}`);
    }
    const m = parseClairManifest(body);
    if (!this.o.allowPrivateLayerHosts) {
      for (const [i, l] of m.layers.entries()) {
        const u = checkLayerUri(l.uri, false);
        if (typeof u === "string") throw new HttpError(400, "blocked-uri", `layers[${i}].uri (layer ${l.hash}) ${u}`);
      }
    }
    const location = `${API_PREFIX}/index_report/${m.hash}`;
    const etag = `"${this.o.scannerSet}"`;
    res.setHeader("Link", `<${location}>; rel="${LINK_REL}"`);
    if (ifNoneMatch(req, etag)) {
      const stored = await this.o.store.indexReport(m.hash);
      if (stored?.scannerSet === this.o.scannerSet && stored.report.state === "IndexFinished") {
        res.setHeader("ETag", etag);
        res.writeHead(412).end();
        return;
      }
    }
    const result = await this.indexShared(indexer, m);
    const { stats } = result;
    const fields = {
      user: caller.username, manifest: m.hash, state: result.report.state, layers: stats.layers, layersFetched: stats.layersFetched,
      layersReused: stats.cached ? stats.layers : stats.layersReused, bytesFetched: stats.bytesFetched, cached: stats.cached, durationMs: Math.round(stats.durationMs),
      hosts: [...new Set(m.layers.map((l) => new URL(l.uri).host))],
    };
    if (result.report.state !== "IndexFinished") {
      const e = indexError(m.hash, result);
      this.o.log?.(e.status >= 500 ? "error" : "warn", `report API: indexing ${m.hash} by URI failed: ${result.report.err ?? "unknown error"}`, fields);
      throw e;
    }
    this.o.log?.("info", `report API: ${caller.username} indexed ${m.hash} by URI`, fields);
    res.setHeader("ETag", etag);
    res.setHeader("Location", location);
    this.json(req, res, 201, result.report, INDEX_REPORT_TYPE);
  }

  /** One index per identical manifest in flight; at most indexConcurrency at once. */
  private indexShared(indexer: Pick<Indexer, "index">, m: UriManifest): Promise<IndexResult> {
    const key = createHash("sha256").update(JSON.stringify(m)).digest("hex");
    let p = this.inflight.get(key);
    if (!p) {
      p = (async () => {
        const signal = this.stopping.signal;
        const release = await this.indexSlots.acquire(signal);
        try {
          const { manifest, source } = this.fetcher!.open(m);
          return await indexer.index(manifest, source, { signal });
        } catch (e) {
          if (signal.aborted) throw new HttpError(503, "unavailable", "the server is stopping; try again");
          throw e;
        } finally {
          release();
        }
      })().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async mayDelete(caller: Caller): Promise<void> {
    if (!(await this.may(caller, { verb: "delete", namespace: "" }))) {
      throw new HttpError(403, "forbidden", `${caller.username} may not delete index reports: that needs delete on imagescans.${GROUP} in every namespace`);
    }
  }

  private indexState(req: IncomingMessage, res: ServerResponse): void {
    const etag = `"${this.o.scannerSet}"`;
    res.setHeader("ETag", etag);
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304).end();
      return;
    }
    this.json(req, res, 200, { state: this.o.scannerSet }, "application/vnd.clair.index_state.v1+json");
  }

  private json(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, clairType: string): void {
    const type = (req.headers.accept ?? "").includes(clairType) ? clairType : "application/json";
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(text), "Cache-Control": "private, no-store" });
    res.end(req.method === "HEAD" ? undefined : text);
  }

  private error(res: ServerResponse, status: number, code: string, message: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify({ code, message });
    if (status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="portcullis"');
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) }).end(text);
  }
}

/** Whether If-None-Match names `etag` (or is `*`). */
function ifNoneMatch(req: IncomingMessage, etag: string): boolean {
  const v = req.headers["if-none-match"];
  if (!v) return false;
  return v.split(",").some((t) => {
    const tag = t.trim().replace(/^W\//, "");
    return tag === etag || tag === "*";
  });
}

/** The HTTP error for an index that ended in IndexError, by what went wrong. */
function indexError(manifest: string, result: IndexResult): HttpError {
  const e = result.error;
  const message = result.report.err ?? e?.message ?? "indexing failed";
  if (e instanceof LayerFetchError) return new HttpError(e.callerFault ? 400 : 502, "layer-fetch-failed", message);
  switch ((e as { code?: string } | undefined)?.code) {
    case "DIGEST_MISMATCH":
      return new HttpError(400, "digest-mismatch", message);
    case "SIZE_MISMATCH":
      return new HttpError(400, "size-mismatch", message);
    case "BAD_TAR":
    case "BAD_COMPRESSION":
    case "UNSUPPORTED_MEDIA_TYPE":
      return new HttpError(400, "bad-layer", message);
    case "DECOMPRESSED_TOO_LARGE":
    case "EXPANSION_RATIO":
    case "FILE_TOO_LARGE":
      return new HttpError(400, "layer-too-large", message);
    default:
      return new HttpError(500, "index-failed", `indexing ${manifest} failed; see the operator's log`);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, "too-large", `the body is over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
