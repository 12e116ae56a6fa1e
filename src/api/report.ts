// The report API: Clair v4's indexer endpoints (wire format of ../shared/clair-api-v1), served by
// `portcullis serve` on its health server beside /healthz, /readyz and /metrics.
//
//   GET    /indexer/api/v1/index_report/{digest}   the stored IndexReport
//   DELETE /indexer/api/v1/index_report/{digest}   deletes the manifest from the store (204)
//   DELETE /indexer/api/v1/index_report            bulk delete, body ["sha256:…", …] (200, the digests deleted)
//   GET    /indexer/api/v1/index_state             {"state": scanner set hash}, with an ETag
//   POST   /indexer/api/v1/index_report            501: Portcullis indexes images through ImageScans
//   POST   /indexer/api/v1/internal/affected_manifest  501
//
// Every request needs `Authorization: Bearer TOKEN`, checked with a TokenReview (401 when missing or
// invalid). A report is shown only to a caller who may `get` an ImageScan whose status.digest or
// status.resolvedDigest is that digest, in some namespace (SubjectAccessReview; 403 otherwise); a digest no
// ImageScan has is 404 (unless the caller may get ImageScans in every namespace and the store has it).
// Deleting needs `delete` on ImageScans in every namespace. TokenReview and SubjectAccessReview answers are
// cached for a minute. Errors are Clair's error object: {"code": "...", "message": "..."}.
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as k8s from "@kubernetes/client-node";
import { GROUP, VERSION, type ImageScan } from "../controller/imagescan.js";
import { Informer } from "../kube/informer.js";
import type { Store } from "../store/types.js";

export const API_PREFIX = "/indexer/api/v1";
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_BODY = 1024 * 1024;
const MAX_CACHE = 10_000;

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

  constructor(private readonly o: ReportApiOptions) {
    this.authority = o.authority ?? kubeAuthority(o.kc);
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

  stop(): void {
    this.informer?.stop();
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
      if (method === "POST") handler = async () => {
        throw new HttpError(501, "not-supported", "not supported: Portcullis indexes images through ImageScans (kubectl create an ImageScan, or run `portcullis scan`)");
      };
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
