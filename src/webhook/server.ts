// The admission webhook: a verdict per AdmissionReview from memory only — informer caches of ImageScans
// (indexed by digest), policies and namespaces, and a bounded LRU of tag -> digest resolutions — within an
// internal budget of ~70% of the webhook's timeout, so the API server's timeout never decides. After a
// denial for a missing scan it creates the ImageScan (never on dryRun) in the controller's priority lane.
import { randomBytes } from "node:crypto";
import { TtlCache } from "../kube/ttl-cache.js";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { TLSSocket, type SecureContextOptions } from "node:tls";
import * as k8s from "@kubernetes/client-node";
import { parseReference, referenceString, type Reference } from "../image/reference.js";
import type { Informer, InformerEvent, KubeObject } from "../kube/informer.js";
import { SharedCache } from "../kube/cache.js";
import { NAMESPACES } from "../kube/kind.js";
import type { EventRecorder } from "../kube/events.js";
import { withLogContext, type LogLevel } from "../log/logger.js";
import { tenantRedactor } from "../log/redact.js";
import type { RegistryConnections } from "../registry/connections.js";
import type { CredentialProvider } from "../registry/auth/types.js";
import { RegistryClient } from "../registry/client.js";
import type { RegistryOptionsInput } from "../registry/options.js";
import { ClientLimiter } from "../registry/limits.js";
import type { ClientCa } from "./client-ca.js";
import type { Finding, StoredFindings } from "../model/findings.js";
import { decide, type AnswerDetail, type DecideInput, type Decision, type ImageToJudge, type ScanInfo } from "./decide.js";
import { imagesToJudge, parseReview, redactResponse, ReviewError, reviewResponse, type AdmissionRequest, type AdmissionResponse } from "./review.js";
import { dedupe, type OperatorSecrets, SecretCache, workloadKeyring } from "../registry/auth/workload.js";
import { ensureImageScan, recentKey, RecentScans } from "../kube/ensure-scan.js";
import { BREAK_GLASS_RESOURCE, BREAK_GLASS_VERB, CLUSTER_IMAGE_POLICIES, DEFAULT_EXCLUDED_NAMESPACES, digestLabel, existingScans, GROUP, IMAGE_POLICIES, type ImageScan, IMAGESCAN_INDEXERS, IMAGESCANS, parsePolicy, type Policy, referenceHash, WATCHED_BY_ANNOTATION } from "../kube/api/v1alpha1/index.js";
import { type NamespaceInfo, selectPolicy } from "../policy/select.js";

export type { AnswerDetail } from "./decide.js";


export interface WebhookOptions {
  kc: k8s.KubeConfig;
  /** Where the ImageScan, policy and Namespace informers come from (shared in the process); default its own. */
  cache?: SharedCache;
  /** Pull secrets, read through (default its own). */
  secrets?: SecretCache;
  /** Portcullis's own namespace: always allowed (its pods must start when it is down). */
  namespace: string;
  excludeNamespaces?: string[];
  /** The webhook configurations' timeoutSeconds; the verdict budget is 70% of it. */
  timeoutSeconds?: number;
  defaultPolicy?: DecideInput["defaultPolicy"];
  registry?: RegistryOptionsInput;
  /** Registry connections shared with the process's other clients (serve's); by default each client opens its own. */
  registryConnections?: RegistryConnections;
  providers?: CredentialProvider[];
  operatorSecrets?: OperatorSecrets;
  /** Tag -> digest answers are reused this long (default 45 s) and at most this many kept (default 10,000). */
  resolveTtlMs?: number;
  resolveCacheSize?: number;
  events?: EventRecorder;
  /** Log lines; those written during a review (and by the ImageScans it requests) run in a log context with its `uid`. */
  log?(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  /** Called with each decision (metrics). */
  onDecision?(d: { decision: Decision; request: AdmissionRequest; durationMs: number }): void;
  /**
   * Reads a digest's stored findings (the store's findings.get), for policies with vulnerability rules. Loaded
   * when an ImageScan's status says it was matched, so reviews find them in memory; without it such rules
   * decide from the status counts alone where they can.
   */
  findings?(digest: string): Promise<StoredFindings | undefined>;
  /** At most this many findings are kept in memory, over all digests (default 500,000, about 100 MB). */
  findingsCacheSize?: number;
  /**
   * New ImageScans reviews may ask for, per namespace: a token bucket of `burst` refilled at `perSecond` (default
   * 1 per second, burst 20). A scan that exists or was asked for within the last minute costs nothing; one the
   * bucket refuses is dropped (the Pod controller still makes the scan once a pod runs).
   */
  scanRequests?: { perSecond: number; burst: number };
  /** Called for every scan request a review's denial leads to: made (created or already there), or refused by the bucket. */
  onScanRequest?(result: "requested" | "rate-limited"): void;
}

interface CacheEntry {
  digest?: string;
  error?: string;
  expires: number;
}

/** A digest's findings as of one match (status.vulnerabilities.matchedAt). */
interface FindingsEntry {
  matchedAt: string;
  findings?: readonly Finding[];
  loading?: Promise<readonly Finding[] | undefined>;
}

export class AdmissionWebhook {
  readonly scans: Informer<ImageScan>;
  /** Raw objects: each is parsed (and an invalid one ignored) when a review reads the policies. */
  readonly imagePolicies: Informer<KubeObject>;
  readonly clusterPolicies: Informer<KubeObject>;
  readonly namespaces: Informer<k8s.V1Namespace>;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly cache: SharedCache;
  private removeHandler: (() => void) | undefined;
  private readonly secrets: SecretCache;
  private readonly resolved = new Map<string, CacheEntry>();
  private readonly resolving = new Map<string, Promise<CacheEntry>>();
  private readonly excluded: Set<string>;
  private readonly budgetMs: number;
  private readonly parsed = new Map<string, { policy?: Policy }>();
  private readonly recent = new RecentScans();
  private readonly authz: k8s.AuthorizationV1Api;
  /** Break-glass SubjectAccessReview answers by (namespace, user, uid, groups, extra). */
  private readonly permits = new TtlCache<boolean>(10_000, 10_000);
  /** Background work after answers (scan creation), awaited on stop. */
  private readonly after = new Set<Promise<void>>();
  /** Scan requests per namespace. */
  private readonly scanBuckets: ClientLimiter;
  /** Findings by digest, LRU by insertion, bounded by the number of findings held. */
  private readonly findings = new Map<string, FindingsEntry>();
  private findingsHeld = 0;

  /** What an answer may say (the requester is a tenant): scrubbed, operator pull secrets by kind only. */
  private readonly redact: (s: string) => string;

  constructor(private readonly options: WebhookOptions) {
    this.redact = tenantRedactor(options.operatorSecrets);
    this.custom = options.kc.makeApiClient(k8s.CustomObjectsApi);
    this.authz = options.kc.makeApiClient(k8s.AuthorizationV1Api);
    this.secrets = options.secrets ?? new SecretCache(options.kc.makeApiClient(k8s.CoreV1Api));
    this.excluded = new Set([...(options.excludeNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES), options.namespace]);
    this.budgetMs = Math.round((options.timeoutSeconds ?? 5) * 1000 * 0.7);
    this.scanBuckets = new ClientLimiter(options.scanRequests?.perSecond ?? 1, options.scanRequests?.burst ?? 20);
    this.cache = options.cache ?? new SharedCache(options.kc, { log: (m) => options.log?.("warn", m) });
    this.scans = this.cache.informer(IMAGESCANS, IMAGESCAN_INDEXERS);
    this.imagePolicies = this.cache.informer(IMAGE_POLICIES);
    this.clusterPolicies = this.cache.informer(CLUSTER_IMAGE_POLICIES);
    this.namespaces = this.cache.informer(NAMESPACES);
  }

  /** A new match: load its findings now, so the next review of the digest reads them from memory. */
  private readonly onScan = (type: InformerEvent, s: ImageScan): void => {
    if (type !== "delete" && s.status?.vulnerabilities?.total && this.vulnerabilityRulesInUse()) void this.findingsFor(s.status.digest!, s.status.vulnerabilities.matchedAt);
  };

  /** Starts the caches; resolves when all have listed once. */
  async start(): Promise<void> {
    this.removeHandler = this.scans.addEventHandler(this.onScan);
    await Promise.all([this.scans.start(), this.imagePolicies.start(), this.clusterPolicies.start(), this.namespaces.start()]);
  }

  async stop(): Promise<void> {
    this.removeHandler?.();
    if (!this.options.cache) this.cache.stop();
    await Promise.allSettled([...this.after]);
  }

  /** The valid policies (an invalid one is never used; the operator reports it in its status). */
  policies(): Policy[] {
    const out: Policy[] = [];
    const seen = new Set<string>();
    for (const p of [...this.imagePolicies.list(), ...this.clusterPolicies.list()]) {
      // Parsed once per resourceVersion, not per review.
      const key = `${p.kind}/${p.metadata?.namespace ?? ""}/${p.metadata?.name}@${p.metadata?.resourceVersion}`;
      seen.add(key);
      let parsed = this.parsed.get(key);
      if (!parsed) {
        const r = parsePolicy(p);
        parsed = { policy: r.ok ? r.policy : undefined };
        this.parsed.set(key, parsed);
      }
      if (parsed.policy) out.push(parsed.policy);
    }
    if (this.parsed.size > seen.size * 2 + 16) for (const k of this.parsed.keys()) if (!seen.has(k)) this.parsed.delete(k);
    return out;
  }

  /** Whether any valid policy has vulnerability rules (only then are findings loaded). */
  private vulnerabilityRulesInUse(): boolean {
    return this.policies().some((p) => p.spec.vulnerabilities !== undefined);
  }

  /** A digest's findings as of `matchedAt`: from memory, else loaded (once, shared by concurrent reviews). */
  private findingsFor(digest: string, matchedAt: string): Promise<readonly Finding[] | undefined> {
    const load = this.options.findings;
    if (!load) return Promise.resolve(undefined);
    const hit = this.findings.get(digest);
    if (hit && hit.matchedAt === matchedAt) {
      if (hit.findings) {
        this.findings.delete(digest);
        this.findings.set(digest, hit);
        return Promise.resolve(hit.findings);
      }
      if (hit.loading) return hit.loading;
    }
    if (hit?.findings) this.findingsHeld -= hit.findings.length;
    const entry: FindingsEntry = { matchedAt };
    entry.loading = load(digest).then((stored) => {
      entry.loading = undefined;
      // A newer match may have replaced the entry meanwhile, or the store may hold a newer one than asked for.
      if (this.findings.get(digest) !== entry || !stored) return stored?.findings;
      if (stored.summary.matchedAt !== matchedAt) entry.matchedAt = stored.summary.matchedAt;
      entry.findings = stored.findings;
      this.findingsHeld += stored.findings.length;
      const max = this.options.findingsCacheSize ?? 500_000;
      for (const [d, e] of this.findings) {
        if (this.findingsHeld <= max || d === digest) break;
        this.findings.delete(d);
        this.findingsHeld -= e.findings?.length ?? 0;
      }
      return stored.findings;
    }, (e: unknown) => {
      entry.loading = undefined;
      if (this.findings.get(digest) === entry) this.findings.delete(digest);
      this.options.log?.("warn", `loading the findings of ${digest} failed: ${(e as Error).message}`);
      return undefined;
    });
    this.findings.delete(digest);
    this.findings.set(digest, entry);
    return entry.loading;
  }

  /** Handles one AdmissionReview body: the JSON to answer with, or throws ReviewError (HTTP 400). */
  async review(body: string, mode: "validate" | "mutate", detail: AnswerDetail = "generic"): Promise<ReturnType<typeof reviewResponse>> {
    const t0 = performance.now();
    let uid: string | undefined;
    try {
      const req = parseReview(body).request;
      uid = req.uid;
      return await withLogContext({ uid: req.uid }, () => this.judge(req, mode, t0, detail));
    } catch (e) {
      if (!(e instanceof ReviewError)) this.options.log?.("error", `admission review failed: ${(e as Error).stack ?? String(e)}`, uid ? { uid } : undefined);
      throw e;
    }
  }

  private async judge(req: AdmissionRequest, mode: "validate" | "mutate", t0: number, detail: AnswerDetail): Promise<ReturnType<typeof reviewResponse>> {
    const answer = (r: Omit<AdmissionResponse, "uid">) => reviewResponse(req.uid, redactResponse(r, this.redact));
    const ns = req.namespace ?? "";
    if (req.operation !== "CREATE" && req.operation !== "UPDATE") return answer({ allowed: true });
    if (this.excluded.has(ns)) return answer({ allowed: true });
    const found = imagesToJudge(req);
    if (!found) {
      this.options.log?.("info", `allowed ${req.kind.group}/${req.kind.kind}: not a kind Portcullis judges`, { uid: req.uid });
      return answer({ allowed: true });
    }
    if (found.images.length === 0) return answer({ allowed: true });
    // A pin is a digest resolved with the namespace's credentials: it goes only to the API server, proven by its
    // client certificate. Without one the mutating webhook pins nothing (and asks no registry).
    if (mode === "mutate" && detail === "generic") {
      this.options.log?.("debug", "not pinning: the review came without a client certificate (--webhook-client-ca)", { uid: req.uid });
      return answer({ allowed: true });
    }
    const deadline = Date.now() + this.budgetMs;
    const secretNames = dedupe([...(found.at.spec?.imagePullSecrets ?? []).map((s) => s.name ?? "")]);
    const sa = found.at.spec?.serviceAccountName || "default";
    const judged: Array<ImageToJudge & { ref?: Reference }> = await Promise.all(found.images.map(async (img) => {
      let ref: Reference;
      try {
        ref = parseReference(img.image);
      } catch (e) {
        return { field: img.field, image: img.image, unresolved: (e as Error).message };
      }
      if (ref.digest) return { field: img.field, image: img.image, digest: ref.digest, ref };
      const r = await this.resolve(ns, ref, secretNames, sa, deadline);
      return { field: img.field, image: img.image, ref, ...(r.digest ? { digest: r.digest } : { unresolved: r.error ?? "unknown" }) };
    }));
    const nsObj = this.namespaces.get(ns);
    const namespace: NamespaceInfo = { name: ns, labels: nsObj?.metadata?.labels ?? {} };
    const policies = this.policies();
    const kindLabel = `${req.kind.kind}${req.kind.group ? ` ${req.kind.group}/${req.kind.version}` : ""} ${ns}/${req.name ?? (req.object as { metadata?: { name?: string; generateName?: string } } | undefined)?.metadata?.name ?? "(generated name)"}`;
    if (mode === "mutate") return answer(this.pin(judged, policies, namespace, found.at.prefix));
    const scans = new Map<string, ScanInfo>();
    const vulnRules = policies.some((p) => p.spec.vulnerabilities !== undefined);
    const loads: Array<Promise<void>> = [];
    for (const j of judged) {
      if (!j.digest || scans.has(j.digest)) continue;
      const s = scanOf(existingScans(this.scans, ns, j.ref, j.digest, undefined), j.digest);
      if (!s) continue;
      const v = s.status?.vulnerabilities;
      const info: ScanInfo = {
        name: s.metadata!.name!, namespace: ns, phase: s.status?.phase, reason: s.status?.conditions?.find((c) => c.status === "False")?.reason, message: s.status?.message,
        ...(v ? { vulnerabilities: v } : {}), ...(v && v.total === 0 ? { findings: [] } : {}),
        ...watchedBy(s),
      };
      scans.set(j.digest, info);
      // Findings in memory already, or loaded within what is left of the budget (the verdict itself never waits).
      if (vulnRules && v && v.total > 0 && s.status?.digest) {
        loads.push(this.findingsFor(s.status.digest, v.matchedAt).then((f) => void (f && (info.findings = f))));
      }
    }
    if (loads.length) await beforeDeadline(Promise.all(loads), deadline, undefined);
    const input: DecideInput = {
      namespace, images: judged, annotations: found.at.annotations, policies, kindLabel, dryRun: req.dryRun ?? false,
      defaultPolicy: this.options.defaultPolicy ?? { mode: "Enforce", onMissingScan: "deny", requireDigest: false },
      scanFor: (digest) => scans.get(digest), ...(req.userInfo?.username !== undefined ? { user: req.userInfo.username } : {}), detail,
    };
    let decision = decide(input);
    // Break-glass a policy allows, asked for by a user who may not be allowed it: ask the API server, then decide again.
    if (decision.verdicts.some((v) => v.breakGlassRefused === "not-permitted") && await this.breakGlassPermitted(req, ns, deadline)) {
      decision = decide({ ...input, breakGlassPermitted: true });
    }
    this.options.onDecision?.({ decision, request: req, durationMs: performance.now() - t0 });
    this.options.log?.("debug", `${decision.allowed ? "allowed" : "denied"} ${kindLabel}`, { operation: req.operation, images: judged.length, dryRun: req.dryRun ?? false, durationMs: Math.round(performance.now() - t0) });
    if (!req.dryRun && decision.scansWanted.length) this.requestScans(req, ns, judged, decision, secretNames, sa);
    if (decision.breakGlass && !req.dryRun) {
      const who = req.userInfo?.username ?? "unknown";
      this.options.log?.("warn", `break-glass: ${kindLabel} admitted by ${who}${detail === "full" ? "" : " (as the review says: it came without a client certificate)"}: ${decision.breakGlass.reason}`, { uid: req.uid, fields: decision.breakGlass.fields });
      // An Event on the object (it may not exist yet: `kubectl get events` still lists it by name). It names the
      // user only when the review is known to come from the API server: anyone could have written another's name.
      const name = req.name ?? (req.object as { metadata?: { name?: string } } | undefined)?.metadata?.name ?? "unnamed";
      const by = detail === "full" ? who : "a user the review names (not authenticated: the webhook has no --webhook-client-ca; the API server's audit log has who)";
      this.options.events?.record({ apiVersion: `${req.kind.group ? `${req.kind.group}/` : ""}${req.kind.version}`, kind: req.kind.kind, metadata: { name, namespace: ns } }, "Warning", "BreakGlass",
        `${by} admitted ${decision.breakGlass.fields.join(", ")} without the checks Portcullis enforces: ${decision.breakGlass.reason}`);
    }
    return answer({
      allowed: decision.allowed,
      ...(decision.allowed ? {} : { status: { code: 403, reason: "Forbidden", message: decision.message ?? "denied by Portcullis" } }),
      ...(decision.warnings.length ? { warnings: decision.warnings } : {}),
      ...(Object.keys(decision.auditAnnotations).length ? { auditAnnotations: decision.auditAnnotations } : {}),
    });
  }

  /**
   * Whether the review's user may use break-glass in `ns`: a SubjectAccessReview of its userInfo (user, groups,
   * uid, extra) for BREAK_GLASS_VERB on imagepolicies.portcullis.dev. Answers are kept 10 s (at most 10,000);
   * an error or the deadline is a refusal. Only as trustworthy as the review: see docs/policy.md.
   */
  private async breakGlassPermitted(req: AdmissionRequest, ns: string, deadline: number): Promise<boolean> {
    const u = req.userInfo;
    if (!u?.username) return false;
    const key = JSON.stringify([ns, u.username, u.uid ?? "", [...(u.groups ?? [])].sort(), u.extra ?? {}]);
    const hit = this.permits.get(key);
    if (hit !== undefined) return hit;
    const ask = this.authz.createSubjectAccessReview({
      body: {
        apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview",
        spec: {
          user: u.username, ...(u.uid ? { uid: u.uid } : {}), ...(u.groups ? { groups: u.groups } : {}), ...(u.extra ? { extra: u.extra } : {}),
          resourceAttributes: { namespace: ns, verb: BREAK_GLASS_VERB, group: GROUP, resource: BREAK_GLASS_RESOURCE },
        },
      },
    }).then((r) => r.status?.allowed === true, (e: unknown) => {
      this.options.log?.("warn", `break-glass: the SubjectAccessReview for ${u.username} in ${ns} failed, refusing: ${(e as Error).message}`);
      return undefined;
    });
    const allowed = await beforeDeadline(ask, deadline, undefined);
    if (allowed === undefined) return false;
    this.permits.set(key, allowed);
    return allowed;
  }

  /** The mutating webhook: `image:tag` -> `image:tag@sha256:…` where the deciding policy says pinDigests. */
  private pin(judged: Array<ImageToJudge & { ref?: Reference }>, policies: Policy[], ns: NamespaceInfo, _prefix: string): Omit<AdmissionResponse, "uid"> {
    const patch: Array<{ op: "replace"; path: string; value: string }> = [];
    for (const j of judged) {
      if (!j.ref || j.ref.digest || !j.digest) continue;
      const d = selectPolicy(policies, j.ref, ns);
      if (!d || d.policy.spec.pinDigests === false) continue;
      patch.push({ op: "replace", path: `/${j.field.replace(/\[(\d+)\]/g, "/$1").split(".").join("/")}`, value: `${j.image}@${j.digest}` });
    }
    if (!patch.length) return { allowed: true };
    return { allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") };
  }

  /** After answering: the ImageScans that were missing, in the priority lane. Errors are logged, never thrown. */
  private requestScans(req: AdmissionRequest, ns: string, judged: Array<ImageToJudge & { ref?: Reference }>, decision: Decision, podSecrets: string[], sa: string): void {
    const wanted = new Set(decision.scansWanted.map((w) => w.image));
    const work = (async () => {
      // The kubelet's order: the pod's pull secrets, then its ServiceAccount's.
      const secretNames = dedupe([...podSecrets, ...(await this.secrets.serviceAccountPullSecrets(ns, sa))]);
      for (const j of judged) {
        if (!j.ref || !wanted.has(j.image)) continue;
        wanted.delete(j.image);
        // Only a new ImageScan takes a token of the namespace's bucket: a scan that exists (ensureImageScan at most
        // adds the review's pull secret names of that namespace to it) or a request made within the last minute
        // (answered from memory) costs nothing.
        const refKey = j.digest ? undefined : referenceHash(j.ref);
        const known = existingScans(this.scans, ns, j.ref, j.digest, refKey).length > 0 || this.recent.get(recentKey(ns, j.digest ? digestLabel(j.digest) : refKey!)) !== undefined;
        if (!known && !this.scanBuckets.take(ns)) {
          this.options.onScanRequest?.("rate-limited");
          // debug: a flood of forged reviews must not become a flood of log lines (the metric counts them).
          this.options.log?.("debug", `not asking for a scan of ${j.image} in ${ns}: more scan requests from reviews in that namespace than --webhook-scan-rate allows`);
          continue;
        }
        this.options.onScanRequest?.("requested");
        await ensureImageScan(this.custom, this.scans, {
          requester: `admission of ${req.kind.kind} ${ns}/${req.name ?? "(new)"}`, namespace: ns, ref: j.ref, digest: j.digest,
          refKey, secretNames, priority: true,
        }, { events: this.options.events, log: (m, f, l) => this.options.log?.(l ?? "info", m, f), recent: this.recent });
      }
    })().catch((e: unknown) => this.options.log?.("error", `creating ImageScans after admission of ${req.uid}: ${(e as Error).message}`));
    this.after.add(work);
    void work.finally(() => this.after.delete(work));
  }

  /** Tag -> digest within the deadline; coalesced, cached (LRU by insertion, TTL). */
  private async resolve(ns: string, ref: Reference, secretNames: string[], sa: string, deadline: number): Promise<CacheEntry> {
    const key = `${ns}|${sa}|${secretNames.join(",")}|${referenceString(ref)}`;
    const hit = this.resolved.get(key);
    if (hit && hit.expires > Date.now()) {
      this.resolved.delete(key);
      this.resolved.set(key, hit);
      return hit;
    }
    let running = this.resolving.get(key);
    if (!running) {
      running = this.lookup(ns, ref, secretNames, sa).then((entry) => {
        this.resolved.set(key, entry);
        const max = this.options.resolveCacheSize ?? 10_000;
        while (this.resolved.size > max) this.resolved.delete(this.resolved.keys().next().value!);
        return entry;
      }).finally(() => this.resolving.delete(key));
      this.resolving.set(key, running);
    }
    return beforeDeadline(running, deadline, { error: `the registry did not answer within the webhook's ${this.budgetMs} ms budget`, expires: 0 });
  }

  private async lookup(ns: string, ref: Reference, secretNames: string[], sa: string): Promise<CacheEntry> {
    const ttl = this.options.resolveTtlMs ?? 45_000;
    try {
      const saSecrets = await this.secrets.serviceAccountPullSecrets(ns, sa);
      const { keyring } = await workloadKeyring(this.secrets, ns, dedupe([...secretNames, ...saSecrets]), { operator: this.options.operatorSecrets, providers: this.options.providers });
      const client = new RegistryClient({ connections: this.options.registryConnections, options: { maxAttempts: 1, ...this.options.registry }, keyring });
      try {
        // The verdict rests on this digest: hashed from the manifest itself, not the registry's HEAD header.
        return { digest: await client.verifiedDigest(ref), expires: Date.now() + ttl };
      } finally {
        await client.close();
      }
    } catch (e) {
      // Failures are kept briefly (a registry that is down is not asked for every pod of a rollout).
      return { error: (e as Error).message, expires: Date.now() + Math.min(ttl, 5000) };
    }
  }

  /** The request handler: POST /validate, POST /mutate; 400 for a malformed review. */
  handler(): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const mode = req.url?.startsWith("/validate") ? "validate" : req.url?.startsWith("/mutate") ? "mutate" : undefined;
      if (!mode || req.method !== "POST") {
        res.writeHead(req.method === "POST" ? 404 : 405, { "content-type": "application/json" }).end(JSON.stringify({ error: "POST /validate or /mutate with an AdmissionReview" }));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > 8 * 1024 * 1024) {
          res.writeHead(413, { "content-type": "application/json" }).end(JSON.stringify({ error: "AdmissionReview larger than 8 MiB" }));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on("end", () => {
        if (res.headersSent) return;
        this.review(Buffer.concat(chunks).toString("utf8"), mode, answerDetail(req)).then(
          (out) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(out)),
          (e: unknown) => {
            // (review() logged an unexpected failure, with the uid.)
            const bad = e instanceof ReviewError;
            res.writeHead(bad ? 400 : 500, { "content-type": "application/json" }).end(JSON.stringify({ error: this.redact((e as Error).message) }));
          },
        );
      });
    };
  }

  /**
   * An HTTPS server for the handler: with fixed TLS material, or `https: true` for a server created without
   * a certificate that the certificate manager attaches to (setSecureContext); neither is plain HTTP.
   */
  listen(opts: { host: string; port: number; tls?: SecureContextOptions; https?: boolean; clientCa?: Pick<ClientCa, "pem" | "onChange"> }): Promise<Server | HttpsServer> {
    // With a client CA the handshake itself refuses a caller without a certificate that CA signed: nothing of
    // the request is read. (A server created without a certificate gets the CA again with each certificate:
    // WebhookCertificates.attach(server, { clientCa }).)
    const clientAuth = opts.clientCa ? { requestCert: true, rejectUnauthorized: true, ca: opts.clientCa.pem() } : {};
    if (opts.clientCa && !opts.tls && !opts.https) throw new Error("a client CA needs TLS: give tls or https");
    const server = opts.tls || opts.https ? createHttpsServer({ ...(opts.tls ?? {}), ...clientAuth }, this.handler()) : createHttpServer(this.handler());
    if (opts.clientCa && opts.tls) {
      const fixed = opts.tls;
      opts.clientCa.onChange((ca) => {
        (server as HttpsServer).setSecureContext({ ...fixed, ca });
        // Session tickets issued under the old CA would resume without a certificate check: new keys void them.
        (server as HttpsServer).setTicketKeys(randomBytes(48));
        // Idle keep-alive connections were accepted under the old CA: closed, their clients connect anew.
        server.closeIdleConnections();
      });
    }
    server.keepAliveTimeout = 65_000;
    return new Promise((resolve, reject) => server.once("error", reject).listen(opts.port, opts.host, () => resolve(server)));
  }
}

/**
 * "full" only for a request on a TLS connection whose client certificate was verified (the server requires one
 * when it has a client CA); everything else may be anyone's.
 */
export function answerDetail(req: IncomingMessage): AnswerDetail {
  const s = req.socket;
  return s instanceof TLSSocket && s.authorized && s.getPeerCertificate().raw !== undefined ? "full" : "generic";
}

/** `p`'s value, or `late` when the deadline (epoch ms) passes first: the review's budget, for every wait in it. */
async function beforeDeadline<T, L>(p: Promise<T>, deadline: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<L>((r) => (timer = setTimeout(() => r(late), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The ImageScan that speaks for `digest`: an Indexed one only if the controller indexed that very digest
 * (status.digest), or resolved it as an image index (status.resolvedDigest) for the default platform: a scan
 * whose spec names a platform, or whose status is not of its current spec, judged another platform's image.
 * Labels prove nothing (anyone who may create ImageScans sets them); a scan not Indexed yet still says one is
 * on its way (existingScans lists only those that ask for this image).
 */
/** The ImageRepository that asked for a scan (its annotation), for the denial's "scan in progress" note. */
function watchedBy(s: ImageScan): Pick<ScanInfo, "watchedBy"> {
  const repository = s.metadata?.annotations?.[WATCHED_BY_ANNOTATION];
  if (!repository || s.status?.phase === "Indexed") return {};
  const created = s.metadata?.creationTimestamp;
  return { watchedBy: { repository, ...(created ? { since: new Date(created).toISOString() } : {}) } };
}

export function scanOf(candidates: readonly ImageScan[], digest: string): ImageScan | undefined {
  const speaksFor = (s: ImageScan) => s.status?.phase === "Indexed" && (s.status.digest === digest
    || (s.status.resolvedDigest === digest && !s.spec?.platform && s.status.observedGeneration === s.metadata?.generation));
  return candidates.find(speaksFor) ?? candidates.find((s) => s.status?.phase !== "Indexed");
}
