// The report API: Clair v4's indexer and matcher endpoints (wire format of ../shared/clair-api-v1), served
// by `portcullis serve` on its health server beside /healthz, /readyz and /metrics.
//
//   GET    /indexer/api/v1/index_report/{digest}   the stored IndexReport
//   POST   /indexer/api/v1/index_report            indexes a Clair Manifest whose layers are fetched by URI
//   DELETE /indexer/api/v1/index_report/{digest}   deletes the manifest from the store (204)
//   DELETE /indexer/api/v1/index_report            bulk delete, body ["sha256:…", …] (200, the digests deleted)
//   GET    /indexer/api/v1/index_state             {"state": scanner set hash}, with an ETag
//   POST   /indexer/api/v1/internal/affected_manifest  which stored manifests given vulnerabilities affect
//   GET    /matcher/api/v1/vulnerability_report/{digest}  the stored IndexReport matched against the advisories now
//   GET    /indexer/api/v1/sbom/{digest}?format=cyclonedx|spdx-json  an SBOM of the indexed image (not Clair's)
//
// Every request needs `Authorization: Bearer TOKEN`, checked with a TokenReview (401 when missing or
// invalid). A report (index or vulnerability) is shown only to a caller who may `get` an ImageScan whose
// status.digest or status.resolvedDigest is that digest, in some namespace (SubjectAccessReview; 403
// otherwise); a digest no ImageScan has is 404 (unless the caller may get ImageScans in every namespace and
// the store has it). Deleting needs `delete` on ImageScans in every namespace; affected_manifest, whose
// answer names images of every namespace, needs `create` on ImageScans in every namespace (as POST
// index_report). TokenReview and SubjectAccessReview answers are cached for a minute. Errors are Clair's
// error object: {"code": "...", "message": "..."}.
//
// GET vulnerability_report matches with the same matchWithStore as `portcullis scan` (../findings/match.ts)
// and answers Clair's VulnerabilityReport (../matcher/vulnerability-report.ts) plus a coverage enrichment
// (PORTCULLIS_COVERAGE_ENRICHMENT: each ecosystem's coverage state, each advisory source's last update, the
// time of the match). A store with no advisory data at all is 503 no-advisory-data with Retry-After, never
// a report with no vulnerabilities. Work per request is bounded: at most `maxMatchPackages` packages
// (422 beyond), `matchConcurrency` reports matched at once with `matchQueue` waiting (503 busy beyond), and
// concurrent GETs of one digest share one match. affected_manifest: at most 8 MiB and 1,000
// vulnerabilities per body (Clair's notifier sends 1,000 at most), and at most `maxAffectedRows` stored
// package rows looked at (413 beyond, never a partial answer).
//
// GET sbom answers the image's SBOM (../sbom/: CycloneDX 1.5 JSON by default, `format=spdx-json` for SPDX
// 2.3), under the same authorization as its index report, made from the stored layer results of a manifest
// the current scanner set finished indexing (404 not-found otherwise, 409 stale-index when an older scanner
// set indexed it: a new ImageScan or POST index_report re-indexes it). The document names the image by its
// digest only: the references ImageScans give it belong to their namespaces, which the caller may not see.
// Work per request: at most `maxMatchPackages` packages (422 beyond), `matchConcurrency` at once.
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
import { TtlCache } from "../kube/ttl-cache.js";
import { scrubString } from "../log/redact.js";
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as k8s from "@kubernetes/client-node";
import { z } from "zod";
import { matchWithStore } from "../findings/match.js";
import { InventoryError, type Indexer, type IndexResult } from "../indexer/indexer.js";
import { documentStamp, isSbomFormat, SBOM_MEDIA_TYPES, writeSbom } from "../sbom/index.js";
import { checkLayerUri, LayerFetchError, UriLayerFetcher, type UriManifest } from "../indexer/sources/uri.js";
import type { EgressGuard } from "../net/egress.js";
import type { Informer } from "../kube/informer.js";
import { SharedCache } from "../kube/cache.js";
import { affectedManifests, lookupNames, type VulnerabilityQuery } from "../matcher/affected-manifests.js";
import { PORTCULLIS_COVERAGE_ENRICHMENT, vulnerabilityReport, type CoverageEnrichment, type VulnerabilityReport } from "../matcher/vulnerability-report.js";
import { ClientLimiter, Semaphore } from "../registry/limits.js";
import type { RegistryOptionsInput } from "../registry/options.js";
import type { Store } from "../store/types.js";
import { GROUP, type ImageScan, IMAGESCANS } from "../kube/api/v1alpha1/index.js";
import { PortcullisError } from "../errors.js";

export const API_PREFIX = "/indexer/api/v1";
export const MATCHER_PREFIX = "/matcher/api/v1";
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_BODY = 1024 * 1024;
const MANIFEST_TYPES = /^application\/(json|vnd\.clair\.manifest\.v1\+json)\s*(;.*)?$/i;
const INDEX_REPORT_TYPE = "application/vnd.clair.index_report.v1+json";
const VULNERABILITY_REPORT_TYPE = "application/vnd.clair.vulnerability_report.v1+json";
const AFFECTED_MANIFESTS_TYPE = "application/vnd.clair.affected_manifests.v1+json";
const AFFECTED_TYPES = /^application\/(json|vnd\.clair\.vulnerability_summaries\.v1\+json|vnd\.clair\.affected_manifests\.v1\+json)\s*(;.*)?$/i;
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

const MAX_AFFECTED_BODY = 8 * 1024 * 1024;
/** Clair's notifier asks in chunks of 1,000 vulnerabilities (notifier/processor.go). */
const MAX_AFFECTED_VULNERABILITIES = 1000;
const SEVERITIES = ["Unknown", "Negligible", "Low", "Medium", "High", "Critical"] as const;
const text = (max: number) => z.string().max(max, `is longer than ${max} characters`);
/**
 * One vulnerability of an AffectedManifests request: Clair's Vulnerability as its Go client sends it, or a
 * VulnerabilitySummary. Fields Clair's client adds beyond the schema (Self, Aliases, package.normalized_version,
 * ...) are ignored, not refused; what is read is bounded.
 */
const AffectedVulnerabilitySchema = z.object({
  id: text(256).optional(),
  updater: text(256).optional(),
  name: text(1024).optional(),
  description: text(64 * 1024).optional(),
  issued: text(64).optional(),
  links: text(64 * 1024).optional(),
  severity: text(256).optional(),
  normalized_severity: z.enum(SEVERITIES).optional(),
  fixed_in_version: text(4096).optional(),
  range: z.object({ "[": text(1024).optional(), ")": text(1024).optional() }).nullish(),
  arch_op: z.enum(["equals", "not equals", "pattern match"]).or(z.literal("")).optional(),
  package: z.object({ name: text(1024), version: text(1024).optional(), kind: z.enum(["BINARY", "SOURCE", "binary", "source"]).or(z.literal("")).optional(), module: text(1024).optional(), arch: text(256).optional() }).nullish(),
  distribution: z.object({ id: text(256).optional(), did: text(256).optional(), name: text(256).optional(), version: text(256).optional(), version_code_name: text(256).optional(), version_id: text(256).optional(), arch: text(256).optional(), pretty_name: text(256).optional() }).nullish(),
  repository: z.object({ id: text(256).optional(), name: text(1024).optional(), key: text(1024).optional(), uri: text(4096).optional() }).nullish(),
  Invert: z.boolean().optional(),
});
const AffectedRequestSchema = z.array(AffectedVulnerabilitySchema).max(MAX_AFFECTED_VULNERABILITIES, `at most ${MAX_AFFECTED_VULNERABILITIES} vulnerabilities per request (send more in several)`);
type AffectedVulnerability = z.infer<typeof AffectedVulnerabilitySchema>;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The vulnerabilities of an AffectedManifests body (`{"vulnerabilities": [...]}` as Clair's client sends, or the bare array of the OpenAPI document), or a 400 naming what is wrong. */
export function parseAffectedRequest(body: unknown): Array<AffectedVulnerability & { id: string }> {
  const list = Array.isArray(body) ? body : body !== null && typeof body === "object" && !Array.isArray(body) ? (body as { vulnerabilities?: unknown }).vulnerabilities : undefined;
  if (!Array.isArray(list)) throw new HttpError(400, "bad-request", "the body must be {\"vulnerabilities\": [Vulnerability, ...]} (as Clair's client sends) or an array of vulnerability summaries");
  const r = AffectedRequestSchema.safeParse(list);
  if (!r.success) {
    const problems = r.error.issues.slice(0, 10).map((i) => `${fieldPath(["vulnerabilities", ...i.path])} ${i.code === "invalid_type" && /received undefined/.test(i.message) ? "is required" : i.message}`);
    const status = r.error.issues.some((i) => i.code === "too_big" && i.path.length === 0) ? 413 : 400;
    throw new HttpError(status, status === 413 ? "too-large" : "bad-request", `invalid vulnerabilities: ${problems.join("; ")}${r.error.issues.length > 10 ? ` (and ${r.error.issues.length - 10} more)` : ""}`);
  }
  const seen = new Set<string>();
  return r.data.map((v, i) => {
    // A summary has no id: its place in the request is its id.
    const id = v.id || String(i);
    if (seen.has(id)) throw new HttpError(400, "bad-request", `vulnerabilities[${i}].id ${JSON.stringify(id)} is used twice`);
    seen.add(id);
    return { ...v, id };
  });
}

/** A requested vulnerability as the answer's `vulnerabilities` carry it: Clair's Vulnerability, schema-valid. */
function echoVulnerability(v: AffectedVulnerability & { id: string }): Record<string, unknown> {
  const out: Record<string, unknown> = { id: v.id, updater: v.updater ?? "", name: v.name ?? "", normalized_severity: v.normalized_severity ?? "Unknown" };
  if (v.description) out.description = v.description;
  if (v.issued && DATE_TIME.test(v.issued) && !v.issued.startsWith("0001-")) out.issued = v.issued;
  if (v.links) out.links = v.links;
  if (v.severity) out.severity = v.severity;
  if (v.fixed_in_version !== undefined) out.fixed_in_version = v.fixed_in_version;
  if (v.range && (v.range["["] || v.range[")"])) out.range = Object.fromEntries(Object.entries(v.range).filter(([, b]) => b));
  if (v.package) {
    const kind = v.package.kind?.toUpperCase();
    out.package = { name: v.package.name, version: v.package.version ?? "", ...(kind === "BINARY" || kind === "SOURCE" ? { kind } : {}), ...(v.package.module ? { module: v.package.module } : {}), ...(v.package.arch ? { arch: v.package.arch } : {}) };
    out.arch_op = v.arch_op || "equals";
  }
  if (v.distribution) out.distribution = Object.fromEntries(Object.entries({ ...v.distribution, id: v.distribution.id ?? "" }).filter(([k, x]) => k === "id" || x));
  if (v.repository) out.repository = Object.fromEntries(Object.entries({ ...v.repository, id: v.repository.id ?? "" }).filter(([k, x]) => k === "id" || x));
  // Clair's schema wants a package, a distribution or a repository.
  if (!out.package && !out.distribution && !out.repository) out.repository = { id: "" };
  return out;
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
  store: Pick<Store, "indexReport" | "deleteManifests" | "manifestPackages" | "advisories">;
  /** The Indexer's scanner set hash, for index_state. */
  scannerSet: string;
  /** The ImageScans to look digests up in; without it the API uses the ImageScan informer of `cache`. */
  scans?: { list(): ImageScan[] };
  /** The process's shared cache (default its own). */
  cache?: SharedCache;
  /** Default: TokenReview + SubjectAccessReview against the API server of `kc`. */
  authority?: Authority;
  /** How long TokenReview and SubjectAccessReview answers are kept. Default 60 s. */
  cacheTtlMs?: number;
  /** TokenReviews of tokens not in the cache, per client address: per second and burst. Default 5 and 20. */
  tokenChecks?: { perSecond: number; burst: number };
  /** The indexer for POST index_report (its scanner set must be `scannerSet`); without it POST is 501. */
  indexer?: Pick<Indexer, "index">;
  /** Where GET sbom reads a manifest's coalesced packages from (the Indexer); without it GET sbom is 501. */
  inventory?: Pick<Indexer, "inventory">;
  /** This build's version, named as the SBOMs' tool. */
  version?: string;
  /**
   * Let POSTed layer URIs reach loopback, link-local and cloud metadata addresses. Default false: only for
   * tests and development; `portcullis serve` never sets it.
   */
  allowPrivateLayerHosts?: boolean;
  /** Timeouts, concurrency per host, retries, resumes, CAs per host and User-Agent for layer URIs (the registry client's options). */
  layerFetch?: RegistryOptionsInput;
  /** The egress guard layer fetches go through (default: the process's; tests give one a resolver). */
  egress?: EgressGuard;
  /** Manifests indexed at once through POST (each fetches up to the indexer's layer concurrency). Default 4. */
  indexConcurrency?: number;
  /** Vulnerability reports computed at once (each matches a whole IndexReport on this process's CPU). Default 2. */
  matchConcurrency?: number;
  /** Requests that may wait for a match slot; beyond that, 503 with Retry-After. Default 32. */
  matchQueue?: number;
  /**
   * The most packages a report may have to be matched here (a bigger one is 422). Default 10,000: matching
   * runs on the event loop this process's webhook also answers on, and a 25,000-package report with many
   * findings took 1.2-1.6 s of it (2,000 packages: about 0.1 s warm, 0.5 s cold).
   */
  maxMatchPackages?: number;
  /** The most stored package rows one AffectedManifests request may look at (beyond: 413, send fewer). Default 200,000. */
  maxAffectedRows?: number;
  log?(level: string, msg: string, fields?: Record<string, unknown>): void;
}

/** A path segment, percent-decoded; a malformed escape is the caller's error (400), not ours. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "bad-request", `malformed percent-encoding in ${JSON.stringify(segment.slice(0, 200))}`);
  }
}

class HttpError extends PortcullisError {
  readonly domain = "api";
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** TokenReview and SubjectAccessReview through the API server. */
export function kubeAuthority(kc: k8s.KubeConfig, o: { audiences?: readonly string[] } = {}): Authority {
  const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  const audiences = o.audiences?.length ? [...o.audiences] : undefined;
  return {
    async authenticate(token) {
      // With audiences, only a token issued for one of them is accepted (`kubectl create token SA --audience
      // portcullis`): a token meant for the API server, sent here over the network, cannot be replayed to it.
      const r = await authn.createTokenReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, ...(audiences ? { audiences } : {}) } } });
      const u = r.status?.user;
      if (!r.status?.authenticated || !u?.username) return undefined;
      if (audiences && !(r.status.audiences ?? []).some((a) => audiences.includes(a))) return undefined;
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
  private readonly limiter: ClientLimiter;
  private readonly informer: Informer<ImageScan> | undefined;
  private readonly ownCache: SharedCache | undefined;
  private readonly scans: { list(): ImageScan[] };
  private readonly fetcher: UriLayerFetcher | undefined;
  /** POSTs in flight by the hash of their manifest (hash, URIs, headers): identical ones share one index. */
  private readonly inflight = new Map<string, Promise<IndexResult>>();
  private readonly indexSlots: Semaphore;
  private readonly matchSlots: Semaphore;
  private matchWaiting = 0;
  /** Vulnerability reports being computed, by digest: concurrent GETs of one digest share one match. */
  private readonly matching = new Map<string, Promise<VulnerabilityReport | undefined>>();
  private readonly stopping = new AbortController();

  constructor(private readonly options: ReportApiOptions) {
    this.authority = options.authority ?? kubeAuthority(options.kc);
    this.indexSlots = new Semaphore(Math.max(1, options.indexConcurrency ?? 4));
    this.matchSlots = new Semaphore(Math.max(1, options.matchConcurrency ?? 2));
    if (options.indexer) this.fetcher = new UriLayerFetcher({ registry: options.layerFetch, allowPrivateHosts: options.allowPrivateLayerHosts ?? false, egress: options.egress });
    this.tokens = new TtlCache(options.cacheTtlMs ?? 60_000);
    this.decisions = new TtlCache(options.cacheTtlMs ?? 60_000);
    this.limiter = new ClientLimiter(options.tokenChecks?.perSecond ?? 5, options.tokenChecks?.burst ?? 20);
    if (options.scans) this.scans = options.scans;
    else {
      this.ownCache = options.cache ? undefined : new SharedCache(options.kc, { log: (m) => options.log?.("info", `report API: ${m}`) });
      this.informer = (options.cache ?? this.ownCache!).informer(IMAGESCANS);
      this.scans = this.informer;
    }
  }

  /** Starts the ImageScan informer (unless given `scans`); resolves once it has listed. */
  async start(): Promise<void> {
    await this.informer?.start();
  }

  /** Stops its own informer, aborts the POSTs in flight (they answer 503) and closes the layer connections. */
  stop(): void {
    this.ownCache?.stop();
    this.stopping.abort(new Error("the report API is stopping"));
    void this.fetcher?.close();
  }

  /** Whether the request is for this API. */
  matches(url: string | undefined): boolean {
    return !!url && [API_PREFIX, MATCHER_PREFIX].some((p) => url === p || url.startsWith(`${p}/`) || url.startsWith(`${p}?`));
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
    } catch (e) {
      if (e instanceof HttpError) this.error(res, e.status, e.code, e.message);
      else {
        this.options.log?.("error", `report API: ${req.method} ${new URL(req.url ?? "/", "http://x").pathname}: ${(e as Error).message}`);
        this.error(res, 500, "internal-error", "internal error; see the operator's log");
      }
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const method = req.method ?? "GET";
    const matcher = path === MATCHER_PREFIX || path.startsWith(`${MATCHER_PREFIX}/`);
    const rest = matcher ? "" : path.slice(API_PREFIX.length);
    const report = /^\/index_report\/([^/]+)$/.exec(rest);
    const sbom = /^\/sbom\/([^/]+)$/.exec(rest);
    const vulnReport = matcher ? /^\/vulnerability_report\/([^/]+)$/.exec(path.slice(MATCHER_PREFIX.length)) : null;
    const allow = (methods: string) => {
      res.setHeader("Allow", methods);
      throw new HttpError(405, "method-not-allowed", `${method} is not allowed here; use ${methods}`);
    };
    // Which route, before authentication, so that an unknown path is 404 for everyone.
    let handler: (caller: Caller) => Promise<void>;
    if (matcher) {
      if (!vulnReport) throw new HttpError(404, "not-found", `no such endpoint: ${path}`);
      if (method !== "GET" && method !== "HEAD") return allow("GET");
      handler = (c) => this.getVulnerabilityReport(c, decoded(vulnReport[1]!), req, res);
    } else if (report) {
      // Decoded after authentication: an unauthenticated caller gets 401 whatever the path holds.
      if (method === "GET" || method === "HEAD") handler = (c) => this.getReport(c, decoded(report[1]!), req, res);
      else if (method === "DELETE") handler = (c) => this.deleteOne(c, decoded(report[1]!), res);
      else return allow("GET, DELETE");
    } else if (sbom) {
      if (method !== "GET" && method !== "HEAD") return allow("GET");
      handler = (c) => this.getSbom(c, decoded(sbom[1]!), req, res);
    } else if (rest === "/index_report") {
      if (method === "POST") handler = (c) => this.indexManifest(c, req, res);
      else if (method === "DELETE") handler = (c) => this.deleteMany(c, req, res);
      else return allow("POST, DELETE");
    } else if (rest === "/index_state") {
      if (method === "GET" || method === "HEAD") handler = async () => this.indexState(req, res);
      else return allow("GET");
    } else if (rest === "/internal/affected_manifest") {
      if (method === "POST") handler = (c) => this.affected(c, req, res);
      else return allow("POST");
    } else throw new HttpError(404, "not-found", `no such endpoint: ${path}`);
    await handler(await this.caller(req, res));
  }

  /** The client a request comes from, for the token-check limiter. */
  private static client(req: IncomingMessage): string {
    return req.socket.remoteAddress ?? "unknown";
  }

  private async caller(req: IncomingMessage, res: ServerResponse): Promise<Caller> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    if (!m) throw new HttpError(401, "unauthorized", "a bearer token is required (Authorization: Bearer TOKEN, a Kubernetes token)");
    const token = m[1]!;
    const key = createHash("sha256").update(token).digest("hex");
    let caller = this.tokens.get(key);
    if (caller === undefined) {
      if (!this.limiter.take(ReportApi.client(req))) {
        res.setHeader("Retry-After", "1");
        throw new HttpError(429, "too-many-requests", "too many unknown tokens from this client; try again in a second");
      }
      try {
        caller = (await this.authority.authenticate(token)) ?? null;
      } catch (e) {
        this.options.log?.("warn", `report API: TokenReview failed: ${(e as Error).message}`);
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
        this.options.log?.("warn", `report API: SubjectAccessReview failed: ${(e as Error).message}`);
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
    await this.authorizeRead(caller, digest);
    const stored = await this.options.store.indexReport(digest);
    if (!stored) throw new HttpError(404, "not-found", `no index report for ${digest} (not indexed yet)`);
    this.json(req, res, 200, stored.report, "application/vnd.clair.index_report.v1+json");
  }

  /**
   * A slot to compute a vulnerability report or an SBOM in: `matchConcurrency` at once, `matchQueue` waiting,
   * 503 busy beyond.
   */
  private async matchSlot(): Promise<() => void> {
    if (this.matchWaiting >= (this.options.matchQueue ?? 32)) {
      throw new HttpError(503, "busy", "too many vulnerability reports and SBOMs are being computed; try again");
    }
    this.matchWaiting++;
    try {
      return await this.matchSlots.acquire(this.stopping.signal);
    } catch {
      throw new HttpError(503, "unavailable", "the server is stopping; try again");
    } finally {
      this.matchWaiting--;
    }
  }

  /** GET sbom: the SBOM of an image this scanner set finished indexing, in the format asked for. */
  private async getSbom(caller: Caller, digest: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const format = new URL(req.url ?? "/", "http://x").searchParams.get("format") ?? "cyclonedx";
    if (!isSbomFormat(format)) throw new HttpError(400, "bad-request", `format must be cyclonedx or spdx-json, not ${JSON.stringify(format.slice(0, 100))}`);
    await this.authorizeRead(caller, digest);
    if (!this.options.inventory) throw new HttpError(501, "not-implemented", "this server has no indexer to read SBOMs from");
    const release = await this.matchSlot();
    let text: string;
    try {
      let inv;
      try {
        inv = await this.options.inventory.inventory(digest);
      } catch (e) {
        if (!(e instanceof InventoryError)) throw e;
        if (e.code === "STALE_INDEX") throw new HttpError(409, "stale-index", e.message);
        throw new HttpError(404, "not-found", e.message);
      }
      const max = this.options.maxMatchPackages ?? 10_000;
      if (inv.packages.length > max) throw new HttpError(422, "too-many-packages", `${digest} has ${inv.packages.length} packages, more than the ${max} this server writes per SBOM (maxMatchPackages); run \`portcullis scan\` on the image instead`);
      text = writeSbom(format, { image: { name: digest, manifest: digest, layers: inv.layers }, packages: inv.packages, distribution: inv.distribution, tool: { name: "portcullis", version: this.options.version ?? "unknown" }, ...documentStamp() });
    } finally {
      release();
    }
    res.writeHead(200, { "Content-Type": SBOM_MEDIA_TYPES[format], "Content-Length": Buffer.byteLength(text), "Cache-Control": "private, no-store" });
    res.end(req.method === "HEAD" ? undefined : text);
  }

  /**
   * Who may read the reports of a digest: a caller who may get an ImageScan of it in some namespace, or one
   * who may get ImageScans everywhere (then also digests no ImageScan has). 404 when no ImageScan has it
   * and the caller may not see everything, so that digests do not leak.
   */
  private async authorizeRead(caller: Caller, digest: string): Promise<void> {
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
  }

  /**
   * GET vulnerability_report: the stored IndexReport matched against the store's advisory data now (Clair's
   * matcher does the same on every GET). 503 no-advisory-data while the store has no advisory data at all
   * (Clair answers 202 with no body then; both are "try later" to clairctl and Quay, and neither can be read
   * as "no vulnerabilities" by a client that checks for 2xx). The coverage enrichment says what each
   * ecosystem of the image was checked against and how old the data is.
   */
  private async getVulnerabilityReport(caller: Caller, digest: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.authorizeRead(caller, digest);
    let p = this.matching.get(digest);
    if (!p) {
      p = this.computeVulnerabilityReport(digest).finally(() => this.matching.delete(digest));
      this.matching.set(digest, p);
    }
    const report = await p;
    if (!report) {
      res.setHeader("Retry-After", "300");
      throw new HttpError(503, "no-advisory-data", "vulnerabilities not checked: the store has no advisory data yet; the operator loads it with its advisory updates (serve --advisory-sources) or an administrator runs `portcullis db import` / `portcullis db pull` against the same database");
    }
    this.json(req, res, 200, report, VULNERABILITY_REPORT_TYPE);
  }

  private async computeVulnerabilityReport(digest: string): Promise<VulnerabilityReport | undefined> {
    const stored = await this.options.store.indexReport(digest);
    if (!stored) throw new HttpError(404, "not-found", `no index report for ${digest} (not indexed yet)`);
    const index = stored.report;
    if (index.state !== "IndexFinished") throw new HttpError(404, "not-found", `no finished index report for ${digest} (state ${index.state}${index.err ? `: ${index.err}` : ""})`);
    const packages = Object.keys(index.packages ?? {}).length;
    const max = this.options.maxMatchPackages ?? 10_000;
    if (packages > max) throw new HttpError(422, "too-many-packages", `${digest} has ${packages} packages, more than the ${max} this server matches per report (maxMatchPackages); run \`portcullis scan\` on the image instead`);
    const release = await this.matchSlot();
    try {
      const t0 = performance.now();
      const found = await matchWithStore(this.options.store.advisories, index);
      if (!found) return undefined;
      const sources = await this.options.store.advisories.status();
      // Under-investigation findings are left out, as scan leaves them out: Clair's clients could not tell them apart.
      const report = vulnerabilityReport(index, found.matches.filter((m) => !m.flagged));
      const coverage: CoverageEnrichment = {
        coverage: found.result.coverage,
        advisory_data: sources.filter((src) => src.kind !== "enrichment").map((src) => ({ source: src.source, updated_at: src.latest.createdAt })),
        enrichment_data: sources.filter((src) => src.kind === "enrichment").map((src) => ({ source: src.source, updated_at: src.latest.createdAt })),
        matched_at: new Date().toISOString(),
      };
      report.enrichments = { ...report.enrichments, [PORTCULLIS_COVERAGE_ENRICHMENT]: [coverage] };
      this.options.log?.("debug", `report API: matched ${digest}`, { packages, matches: found.matches.length, durationMs: Math.round(performance.now() - t0) });
      return report;
    } finally {
      release();
    }
  }

  /**
   * POST internal/affected_manifest: which stored manifests the given vulnerabilities affect (Clair's
   * AffectedManifests; ../matcher/affected-manifests.ts has the semantics). It tells what every namespace
   * runs, so it needs what POST index_report needs: create on ImageScans in every namespace.
   */
  private async affected(caller: Caller, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!(await this.may(caller, { verb: "create", namespace: "" }))) {
      throw new HttpError(403, "forbidden", `${caller.username} may not ask which manifests a vulnerability affects: that needs create on imagescans.${GROUP} in every namespace, since the answer names images of every namespace`);
    }
    const type = req.headers["content-type"];
    if (type && !AFFECTED_TYPES.test(type)) throw new HttpError(415, "unsupported-media-type", `the body must be JSON (application/json or application/vnd.clair.vulnerability_summaries.v1+json), not ${JSON.stringify(type.slice(0, 100))}`);
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, MAX_AFFECTED_BODY)).toString("utf8"));
    } catch (e) {
      throw e instanceof HttpError ? e : new HttpError(400, "bad-request", `the body is not JSON: ${(e as Error).message.slice(0, 200)}`);
    }
    const vulns = parseAffectedRequest(body);
    const queries: VulnerabilityQuery[] = vulns.map((v) => ({
      id: v.id,
      ...(v.name ? { name: v.name } : {}),
      ...(v.normalized_severity ? { normalized_severity: v.normalized_severity } : {}),
      ...(v.fixed_in_version !== undefined ? { fixed_in_version: v.fixed_in_version } : {}),
      ...(v.range ? { range: v.range } : {}),
      ...(v.package ? { package: { name: v.package.name, ...(v.package.kind ? { kind: v.package.kind } : {}) } } : {}),
      ...(v.distribution ? { distribution: v.distribution } : {}),
      ...(v.repository ? { repository: v.repository } : {}),
      ...(v.Invert ? { invert: true } : {}),
    }));
    const limit = this.options.maxAffectedRows ?? 200_000;
    const rows = await this.options.store.manifestPackages(lookupNames(queries), limit + 1);
    if (rows.length > limit) {
      throw new HttpError(413, "too-large", `the ${vulns.length} vulnerabilities name packages installed more than ${limit} times in the stored manifests (maxAffectedRows); send fewer vulnerabilities per request`);
    }
    const t0 = performance.now();
    const result = affectedManifests(queries, rows);
    const answer = { vulnerabilities: Object.fromEntries(vulns.map((v) => [v.id, echoVulnerability(v)])), vulnerable_manifests: result.vulnerableManifests };
    this.options.log?.("info", `report API: ${caller.username} asked which manifests ${vulns.length} vulnerabilities affect`, {
      user: caller.username, vulnerabilities: vulns.length, rows: rows.length, manifests: Object.keys(result.vulnerableManifests).length,
      notApplicable: Object.keys(result.notApplicable).length, skippedVersions: result.skipped, durationMs: Math.round(performance.now() - t0),
    });
    this.json(req, res, 200, answer, AFFECTED_MANIFESTS_TYPE);
  }

  private async deleteOne(caller: Caller, digest: string, res: ServerResponse): Promise<void> {
    this.checkDigest(digest);
    await this.mayDelete(caller);
    await this.options.store.deleteManifests([digest]);
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
    const deleted = await this.options.store.deleteManifests(body);
    this.json(req, res, 200, deleted, "application/vnd.clair.bulk_delete.v1+json");
  }

  /** POST index_report: a Clair Manifest whose layers are fetched by URI, indexed by the Indexer. */
  private async indexManifest(caller: Caller, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const indexer = this.options.indexer;
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
    if (!this.options.allowPrivateLayerHosts) {
      for (const [i, l] of m.layers.entries()) {
        const u = checkLayerUri(l.uri, false);
        if (typeof u === "string") throw new HttpError(400, "blocked-uri", `layers[${i}].uri (layer ${l.hash}) ${u}`);
      }
    }
    const location = `${API_PREFIX}/index_report/${m.hash}`;
    const etag = `"${this.options.scannerSet}"`;
    res.setHeader("Link", `<${location}>; rel="${LINK_REL}"`);
    if (ifNoneMatch(req, etag)) {
      const stored = await this.options.store.indexReport(m.hash);
      if (stored?.scannerSet === this.options.scannerSet && stored.report.state === "IndexFinished") {
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
      this.options.log?.(e.status >= 500 ? "error" : "warn", `report API: indexing ${m.hash} by URI failed: ${result.report.err ?? "unknown error"}`, fields);
      throw e;
    }
    this.options.log?.("info", `report API: ${caller.username} indexed ${m.hash} by URI`, fields);
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
    const etag = `"${this.options.scannerSet}"`;
    res.setHeader("ETag", etag);
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304).end();
      return;
    }
    this.json(req, res, 200, { state: this.options.scannerSet }, "application/vnd.clair.index_state.v1+json");
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
    // Error bodies leave the process like logs do: scrubbed (a layer URI or reference may carry credentials).
    const text = JSON.stringify({ code, message: scrubString(message) });
    if (status === 503 && !res.hasHeader("Retry-After")) res.setHeader("Retry-After", "5");
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
    case "CAPTURED_TOO_LARGE":
    case "ZSTD_WINDOW_TOO_LARGE":
    case "ZIP_BOMB":
    case "ZIP_LIMIT":
      return new HttpError(400, "layer-too-large", message);
    default:
      return new HttpError(500, "index-failed", `indexing ${manifest} failed; see the operator's log`);
  }
}

async function readBody(req: IncomingMessage, max = MAX_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new HttpError(413, "too-large", `the body is over ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
