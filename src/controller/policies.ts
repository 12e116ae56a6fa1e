// The status of ImagePolicies and ClusterImagePolicies: what the webhook makes of each one. `Valid` says
// whether the policy is used (an invalid one never is, and the message names each bad field), with the
// exceptions that expired and the reserved fields that are not enforced; `Ready` says that the webhook decides
// with this generation. The webhook's replicas read policies straight from their informers, so a generation
// the operator has read is one they decide with. Runs on the leader, like the other controllers.
import * as k8s from "@kubernetes/client-node";
import { apiErrorDetail } from "../kube/api-error.js";
import { objectKey, type Informer, type InformerEvent, type KubeObject } from "../kube/informer.js";
import { SharedCache } from "../kube/cache.js";
import type { LogFn } from "../log/logger.js";
import { WorkQueue } from "../kube/workqueue.js";
import { runWorker, type Result } from "../kube/reconcile.js";
import { CLUSTER_IMAGE_POLICIES, CLUSTER_IMAGE_POLICY_PLURAL, GROUP, IMAGE_POLICIES, IMAGE_POLICY_PLURAL, parsePolicy, type PolicyCondition, type PolicyKind, type PolicyStatus, validCondition, VERSION } from "../kube/api/v1alpha1/index.js";

type PolicyObject = KubeObject & { kind?: string; spec?: { exceptions?: Array<{ expires?: string }> }; status?: PolicyStatus };

export interface PolicyStatusControllerOptions {
  kc: k8s.KubeConfig;
  /** Every status write (metrics). */
  onStatusWrite?(kind: PolicyKind): void;
  /** Where the two policy informers come from (shared with the webhook in the process); default its own. */
  cache?: SharedCache;
  /** Only ImagePolicies in these namespaces (ClusterImagePolicies always); default all. */
  namespaces?: string[];
  log?: LogFn;
  now?(): Date;
}

const PLURAL: Record<PolicyKind, string> = { ImagePolicy: IMAGE_POLICY_PLURAL, ClusterImagePolicy: CLUSTER_IMAGE_POLICY_PLURAL };
/** setTimeout's limit is about 24.8 days; an expiry further away is looked at again within a day. */
const MAX_WAKE_MS = 24 * 3_600_000;

export class PolicyStatusController {
  readonly queue = new WorkQueue({ baseDelayMs: 1000, maxDelayMs: 5 * 60_000 });
  readonly informers: Record<PolicyKind, Informer<PolicyObject>>;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly cache: SharedCache;
  private removeHandlers: Array<() => void> = [];
  private worker: Promise<void> | undefined;

  constructor(private readonly options: PolicyStatusControllerOptions) {
    this.custom = options.kc.makeApiClient(k8s.CustomObjectsApi);
    this.cache = options.cache ?? new SharedCache(options.kc, { log: (m, f, l) => options.log?.(m, f, l) });
    this.informers = {
      ImagePolicy: this.cache.informer(IMAGE_POLICIES) as Informer<PolicyObject>,
      ClusterImagePolicy: this.cache.informer(CLUSTER_IMAGE_POLICIES) as Informer<PolicyObject>,
    };
  }

  private handler(kind: PolicyKind) {
    return (type: InformerEvent, obj: PolicyObject, old?: PolicyObject): void => {
      const ns = obj.metadata?.namespace;
      if (ns && this.options.namespaces && !this.options.namespaces.includes(ns)) return;
      const key = `${kind}/${objectKey(obj)}`;
      if (type === "delete") return;
      // Its own status writes do not change the generation: nothing to do for them.
      if (type === "update" && old?.metadata?.generation === obj.metadata?.generation && obj.status?.observedGeneration === obj.metadata?.generation) return;
      this.queue.add(key);
    };
  }

  async start(): Promise<void> {
    this.removeHandlers = (["ImagePolicy", "ClusterImagePolicy"] as const).map((k) => this.informers[k].addEventHandler(this.handler(k)));
    await Promise.all([this.informers.ImagePolicy.start(), this.informers.ClusterImagePolicy.start()]);
    this.worker = this.work();
  }

  async stop(): Promise<void> {
    for (const remove of this.removeHandlers) remove();
    if (!this.options.cache) this.cache.stop();
    this.queue.shutDown();
    await this.worker;
  }

  private work(): Promise<void> {
    return runWorker(this.queue, (key) => this.reconcile(key), {
      onError: (key, e, delay) => this.options.log?.(`policy ${key}: ${(e as Error).message}${apiErrorDetail(e)}; retrying in ${delay} ms`, { policy: key }, "warn"),
    });
  }

  /** `key` is `Kind/namespace/name` or `Kind/name`. Comes back when the next exception expires. */
  async reconcile(key: string): Promise<Result> {
    const kind = key.slice(0, key.indexOf("/")) as PolicyKind;
    const obj = this.informers[kind]?.get(key.slice(kind.length + 1));
    if (!obj || obj.metadata?.deletionTimestamp) return;
    const now = this.options.now?.() ?? new Date();
    const generation = obj.metadata?.generation;
    const result = parsePolicy({ ...obj, kind }, { now });
    const valid = validCondition(result);
    const ready = result.ok
      ? { type: "Ready", status: "True" as const, reason: "Loaded", message: `the webhook decides with generation ${generation}` }
      : { type: "Ready", status: "False" as const, reason: "InvalidSpec", message: "the webhook does not use this policy until it is valid" };
    const previous = obj.status?.conditions ?? [];
    const conditions = [valid, ready].map((c): PolicyCondition => {
      const before = previous.find((p) => p.type === c.type);
      const same = before?.status === c.status && before.lastTransitionTime;
      return { ...c, observedGeneration: generation, lastTransitionTime: same ? before.lastTransitionTime : now.toISOString() };
    });
    const unchanged = obj.status?.observedGeneration === generation && conditions.every((c) => {
      const p = previous.find((x) => x.type === c.type);
      return p && p.status === c.status && p.reason === c.reason && p.message === c.message && p.observedGeneration === c.observedGeneration;
    });
    if (!unchanged) {
      this.options.onStatusWrite?.(kind);
      const ns = obj.metadata!.namespace;
      const target = { group: GROUP, version: VERSION, plural: PLURAL[kind], name: obj.metadata!.name!, body: { status: { observedGeneration: generation, conditions } } };
      const patch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
      try {
        if (ns) await this.custom.patchNamespacedCustomObjectStatus({ ...target, namespace: ns }, patch);
        else await this.custom.patchClusterCustomObjectStatus(target, patch);
      } catch (e) {
        if ((e as { code?: number }).code !== 404) throw e;
      }
    }
    // The next exception to expire changes the Valid condition then.
    const next = Math.min(...(obj.spec?.exceptions ?? []).map((x) => Date.parse(x.expires ?? "")).filter((t) => t > now.getTime()));
    return Number.isFinite(next) ? { requeueAfterMs: Math.min(next - now.getTime() + 1000, MAX_WAKE_MS) } : undefined;
  }
}
