// The Pod controller: every image a pod runs gets an ImageScan in the pod's namespace, one per digest.
// The digest comes from what the kubelet reports having pulled (`status.*ContainerStatuses[].imageID`),
// else from the reference itself when it is pinned, else from a HEAD through the registry client with
// the pod's credentials (its pull secrets, its ServiceAccount's, the operator's, the cloud helpers).
// Scans it creates are labelled as managed and garbage collected once no pod in the namespace has used
// their digest for `gcAfterMs`; scans users create are never deleted.
import * as k8s from "@kubernetes/client-node";
import { isTransient } from "../errors.js";
import { parseReference, referenceString, type Reference } from "../image/reference.js";
import type { RegistryConnections } from "../registry/connections.js";
import type { CredentialProvider } from "../registry/auth/types.js";
import { RegistryClient } from "../registry/client.js";
import type { RegistryOptionsInput } from "../registry/options.js";
import type { RegistryMetrics } from "../registry/transport.js";
import type { EventRecorder } from "../kube/events.js";
import { objectKey, type Informer, type InformerEvent } from "../kube/informer.js";
import { SharedCache } from "../kube/cache.js";
import { apiErrorDetail } from "../kube/api-error.js";
import { podImages } from "../kube/podimages.js";
import { WorkQueue } from "../kube/workqueue.js";
import { runWorker } from "../kube/reconcile.js";
import type { LogFn } from "../log/logger.js";
import { dedupe, type OperatorSecrets, SecretCache, workloadKeyring } from "../registry/auth/workload.js";
import { ensureImageScan, recentKey, RecentScans } from "../kube/ensure-scan.js";
import { DEFAULT_EXCLUDED_NAMESPACES, DIGEST_LABEL, digestLabel, GROUP, IMAGESCAN_INDEXERS, IMAGESCANS, isManaged, REFERENCE_LABEL, referenceHash, UNUSED_SINCE_ANNOTATION, VERSION, type ImageScan } from "../kube/api/v1alpha1/index.js";
import { PODS } from "../kube/kind.js";

export interface PodControllerOptions {
  kc: k8s.KubeConfig;
  /** Where the Pod and ImageScan informers come from (shared with the other consumers in the process); default its own. */
  cache?: SharedCache;
  /** Pull secrets, read through (default its own). */
  secrets?: SecretCache;
  registry?: RegistryOptionsInput;
  /** Registry connections shared with the process's other clients (serve's); by default each client opens its own. */
  registryConnections?: RegistryConnections;
  /** The registry requests of tag resolutions (serve's registry metrics). */
  registryMetrics?: RegistryMetrics;
  providers?: CredentialProvider[];
  operatorSecrets?: OperatorSecrets;
  /** Namespaces whose pods are ignored (default kube-system, kube-public, kube-node-lease). */
  excludeNamespaces?: string[];
  /**
   * Only these namespaces' pods (and managed scans, for garbage collection) are handled; default all. For
   * several operators sharing one API server, each with its own namespaces (the tests do this).
   */
  namespaces?: string[];
  /** Managed scans unused this long are deleted (default 24 h). */
  gcAfterMs?: number;
  /** How often the collector runs (default a tenth of gcAfterMs, between 1 s and 5 min). */
  gcIntervalMs?: number;
  /** How long a tag -> digest resolution is reused (default 60 s). */
  resolveTtlMs?: number;
  /**
   * Scans other controllers keep in use (watched repositories): `ns/d/<digest label>` keys, and namespaces
   * where nothing may be collected yet; undefined collects nothing.
   */
  alsoInUse?(): { used: Set<string>; unsettled: Set<string> } | undefined;
  /** Pods reconciled at once (tag resolutions are network bound). */
  concurrency?: number;
  events?: EventRecorder;
  /** Log lines (level info when absent); lines about a pod carry `pod`, about a scan `scan` (namespace/name). */
  log?: LogFn;
}

/** What a pod needs scanned: digests (resolved) and references no digest could be found for. */
interface PodUse {
  digests: Set<string>;
  references: Set<string>;
}

export class PodController {
  readonly queue = new WorkQueue({ baseDelayMs: 2000, maxDelayMs: 5 * 60_000 });
  readonly informer: Informer<k8s.V1Pod>;
  private readonly scans: Informer<ImageScan>;
  private readonly cache: SharedCache;
  private removeHandler: (() => void) | undefined;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly secrets: SecretCache;
  private readonly core: k8s.CoreV1Api;
  private readonly uses = new Map<string, PodUse>();
  private readonly recent = new RecentScans();
  private readonly resolved = new Map<string, { digest: string; expires: number }>();
  private readonly resolving = new Map<string, Promise<string>>();
  private readonly excluded: Set<string>;
  private readonly only: Set<string> | undefined;
  private workers: Promise<void>[] = [];
  private gcTimer: NodeJS.Timeout | undefined;
  private gcRunning: Promise<void> | undefined;

  constructor(private readonly options: PodControllerOptions) {
    this.custom = options.kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = options.kc.makeApiClient(k8s.CoreV1Api);
    this.secrets = options.secrets ?? new SecretCache(this.core);
    this.excluded = new Set(options.excludeNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES);
    this.only = options.namespaces ? new Set(options.namespaces) : undefined;
    this.cache = options.cache ?? new SharedCache(options.kc, { log: (m, f, l) => options.log?.(m, f, l) });
    this.informer = this.cache.informer(PODS);
    this.scans = this.cache.informer(IMAGESCANS, IMAGESCAN_INDEXERS);
  }

  private readonly onEvent = (type: InformerEvent, pod: k8s.V1Pod, old?: k8s.V1Pod): void => {
    const key = objectKey(pod);
    if (!this.handles(pod.metadata?.namespace)) return;
    if (type === "delete") {
      this.uses.delete(key);
      return;
    }
    // Only what changes the images matters: the spec's images and the kubelet's imageIDs.
    if (type === "update" && old && imagesKey(old) === imagesKey(pod) && this.uses.has(key)) return;
    this.queue.add(key);
  };

  private handles(ns: string | undefined): boolean {
    return !this.excluded.has(ns ?? "") && (!this.only || this.only.has(ns ?? ""));
  }

  async start(): Promise<void> {
    this.removeHandler = this.informer.addEventHandler(this.onEvent);
    await Promise.all([this.informer.start(), this.scans.start()]);
    this.workers = Array.from({ length: this.options.concurrency ?? 8 }, () => this.work());
    const gcAfter = this.options.gcAfterMs ?? 24 * 3_600_000;
    const every = this.options.gcIntervalMs ?? Math.min(5 * 60_000, Math.max(1000, gcAfter / 10));
    this.gcTimer = setInterval(() => void this.collect(), every);
    this.gcTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.gcTimer) clearInterval(this.gcTimer);
    this.removeHandler?.();
    if (!this.options.cache) this.cache.stop();
    this.queue.shutDown();
    await Promise.all(this.workers);
    await this.gcRunning;
  }

  private work(): Promise<void> {
    return runWorker(this.queue, (key) => this.reconcile(key), {
      onError: (key, e, delay) => this.options.log?.(`pod ${key}: ${(e as Error).message}${apiErrorDetail(e)}; retrying in ${delay} ms`, { pod: key }, "warn"),
    });
  }

  async reconcile(key: string): Promise<void> {
    const pod = this.informer.get(key);
    if (!pod || !this.handles(pod.metadata?.namespace)) {
      this.uses.delete(key);
      return;
    }
    const ns = pod.metadata!.namespace!;
    const own = (pod.spec?.imagePullSecrets ?? []).map((s) => s.name).filter((n): n is string => !!n);
    const sa = await this.secrets.serviceAccountPullSecrets(ns, pod.spec?.serviceAccountName || "default");
    const secretNames = dedupe([...own, ...sa]);
    const use: PodUse = { digests: new Set(), references: new Set() };
    let retry: Error | undefined;
    for (const img of podImages(pod)) {
      let ref: Reference;
      try {
        ref = parseReference(img.image);
      } catch (e) {
        // The API server takes any string; the kubelet will fail to pull it. The webhook refuses these.
        this.options.log?.(`pod ${key} ${img.field}: ${(e as Error).message}`, { pod: key }, "warn");
        continue;
      }
      let digest = ref.digest ?? img.pulledDigest;
      if (!digest) {
        try {
          digest = await this.resolveTag(ns, ref, secretNames);
        } catch (e) {
          // Make the failure visible as an ImageScan of the reference: the scan says why (AuthFailed, ...).
          if (isTransient(e)) retry = e as Error;
          const refKey = referenceHash(ref);
          use.references.add(refKey);
          await this.ensureScan(`pod ${key}`, ns, ref, undefined, secretNames, refKey);
          continue;
        }
      }
      use.digests.add(digestLabel(digest));
      await this.ensureScan(`pod ${key}`, ns, ref, digest, secretNames);
    }
    this.uses.set(key, use);
    if (retry) throw retry;
  }

  /** Tag -> digest by HEAD, with the pod's credentials; identical lookups in flight are shared, answers kept for a minute. */
  private async resolveTag(ns: string, ref: Reference, secretNames: string[]): Promise<string> {
    const key = `${ns}|${secretNames.join(",")}|${referenceString(ref)}`;
    const hit = this.resolved.get(key);
    if (hit && hit.expires > Date.now()) return hit.digest;
    const running = this.resolving.get(key);
    if (running) return running;
    const p = (async () => {
      const { keyring } = await workloadKeyring(this.secrets, ns, secretNames, { operator: this.options.operatorSecrets, providers: this.options.providers });
      const client = new RegistryClient({ connections: this.options.registryConnections, options: this.options.registry, keyring, metrics: this.options.registryMetrics });
      try {
        const digest = await client.resolveDigest(ref);
        this.resolved.set(key, { digest, expires: Date.now() + (this.options.resolveTtlMs ?? 60_000) });
        if (this.resolved.size > 10_000) for (const [k, v] of this.resolved) if (v.expires <= Date.now()) this.resolved.delete(k);
        return digest;
      } finally {
        await client.close();
      }
    })().finally(() => this.resolving.delete(key));
    this.resolving.set(key, p);
    return p;
  }

  private async ensureScan(requester: string, ns: string, ref: Reference, digest: string | undefined, secretNames: string[], refKey?: string): Promise<void> {
    await ensureImageScan(this.custom, this.scans, { requester, namespace: ns, ref, digest, secretNames, refKey }, { events: this.options.events, log: this.options.log, recent: this.recent });
  }

  /**
   * Garbage collection of managed scans. A scan no live pod in its namespace uses is marked with the
   * time (an annotation, so a restart does not reset the clock); marked longer than gcAfterMs, it is
   * deleted; used again, the mark goes. A namespace with a pod not yet reconciled is left alone.
   */
  collect(now = Date.now()): Promise<void> {
    if (this.gcRunning) return this.gcRunning;
    this.gcRunning = this.collectOnce(now)
      .catch((e: unknown) => this.options.log?.(`garbage collection: ${(e as Error).message}${apiErrorDetail(e)}`, undefined, "warn"))
      .finally(() => (this.gcRunning = undefined));
    return this.gcRunning;
  }

  private async collectOnce(now: number): Promise<void> {
    if (!this.informer.hasSynced || !this.scans.hasSynced) return;
    const others = this.options.alsoInUse ? this.options.alsoInUse() : { used: new Set<string>(), unsettled: new Set<string>() };
    if (!others) return;
    const inUse = new Set<string>(others.used);
    const unsettled = new Set<string>(others.unsettled);
    for (const pod of this.informer.list()) {
      const ns = pod.metadata?.namespace ?? "";
      if (!this.handles(ns) || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
      const use = this.uses.get(objectKey(pod));
      if (!use) {
        unsettled.add(ns);
        continue;
      }
      for (const d of use.digests) inUse.add(`${ns}/d/${d}`);
      for (const r of use.references) inUse.add(`${ns}/r/${r}`);
    }
    const gcAfter = this.options.gcAfterMs ?? 24 * 3_600_000;
    for (const scan of this.scans.list()) {
      if (!isManaged(scan) || scan.metadata?.deletionTimestamp) continue;
      const ns = scan.metadata!.namespace!;
      if (unsettled.has(ns) || (this.only && !this.only.has(ns))) continue;
      const labels = scan.metadata!.labels!;
      const used = (labels[DIGEST_LABEL] && inUse.has(`${ns}/d/${labels[DIGEST_LABEL]}`)) || (labels[REFERENCE_LABEL] && inUse.has(`${ns}/r/${labels[REFERENCE_LABEL]}`));
      const since = scan.metadata?.annotations?.[UNUSED_SINCE_ANNOTATION];
      const name = scan.metadata!.name!;
      const target = { group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name };
      if (used) {
        if (since) await this.annotate(target, null);
      } else if (!since || Number.isNaN(Date.parse(since))) {
        await this.annotate(target, new Date(now).toISOString());
      } else if (now - Date.parse(since) >= gcAfter) {
        try {
          // Precondition on the version we judged, so a scan that changed meanwhile is left for the next pass.
          await this.custom.deleteNamespacedCustomObject({ ...target, body: { preconditions: { resourceVersion: scan.metadata!.resourceVersion } } });
          this.recent.delete(recentKey(ns, labels[DIGEST_LABEL] ?? labels[REFERENCE_LABEL] ?? ""));
          this.options.log?.(`deleted ImageScan ${ns}/${name}: no pod in ${ns} (nor watched repository) has used ${scan.status?.digest ?? scan.spec.image} since ${since}`, { scan: `${ns}/${name}` });
        } catch (e) {
          const code = (e as { code?: number }).code;
          if (code !== 404 && code !== 409) throw e;
        }
      }
    }
  }

  private async annotate(target: { group: string; version: string; namespace: string; plural: string; name: string }, value: string | null): Promise<void> {
    try {
      await this.custom.patchNamespacedCustomObject(
        { ...target, body: { metadata: { annotations: { [UNUSED_SINCE_ANNOTATION]: value } } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
  }
}


/** What about a pod decides its scans: the images and the digests the kubelet reports. */
function imagesKey(pod: k8s.V1Pod): string {
  return JSON.stringify([podImages(pod).map((i) => [i.image, i.pulledDigest ?? ""]), pod.spec?.imagePullSecrets ?? []]);
}



