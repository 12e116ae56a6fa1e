// Making sure an ImageScan exists for an image in a namespace: one per (namespace, digest), or per
// reference when no digest could be found (the scan then says why). Shared by the Pod controller and the
// admission webhook (which asks for the priority lane: someone is waiting on the answer).
import * as k8s from "@kubernetes/client-node";
import { referenceString, type Reference } from "../image/reference.js";
import type { EventRecorder } from "./events.js";
import type { Informer } from "./informer.js";
import type { LogFn } from "../log/logger.js";
import {
  asksFor, digestLabel, DIGEST_LABEL, existingScans, GROUP, IMAGE_ANNOTATION, isManaged, MANAGED_BY, MANAGED_BY_LABEL, PRIORITY_ANNOTATION, REFERENCE_LABEL,
  REPOSITORY_LABEL, repositoryLabel, scanName, VERSION, type ImageScan,
} from "./api/v1alpha1/index.js";

export interface EnsureRequest {
  /** Who asks, for the Event: `pod ns/name`, `admission of Deployment ns/name`. */
  requester: string;
  namespace: string;
  ref: Reference;
  digest?: string;
  secretNames: string[];
  /** Needed when there is no digest: referenceHash(ref). */
  refKey?: string;
  /** Put the scan in the controller's priority lane. */
  priority?: boolean;
  /** Annotations a scan this request creates carries (e.g. the ImageRepository that asked). */
  annotations?: Record<string, string>;
}

export interface EnsureResult {
  name: string;
  created: boolean;
}

/**
 * Scans this process created (or is creating) recently, by (namespace, digest or reference): pods of one
 * image reconciled at once, before the informer shows the first scan, would otherwise each try a create
 * and get a 409. Entries live a minute, long enough for the watch to deliver the scan.
 */
export class RecentScans {
  private readonly m = new Map<string, { result: Promise<EnsureResult>; at: number }>();
  constructor(private readonly ttlMs = 60_000) {}
  get(key: string): Promise<EnsureResult> | undefined {
    const e = this.m.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at > this.ttlMs) {
      this.m.delete(key);
      return undefined;
    }
    return e.result;
  }
  delete(key: string): void {
    this.m.delete(key);
  }
  set(key: string, result: Promise<EnsureResult>): void {
    if (this.m.size > 10_000) for (const [k, v] of this.m) if (Date.now() - v.at > this.ttlMs) this.m.delete(k);
    this.m.set(key, { result, at: Date.now() });
    result.catch(() => this.m.delete(key));
  }
}

/** The RecentScans key of a scan: namespace and its digest label (or reference label) value. */
export function recentKey(namespace: string, labelValue: string): string {
  return `${namespace}|${labelValue}`;
}

export async function ensureImageScan(
  custom: k8s.CustomObjectsApi,
  scans: Informer<ImageScan>,
  req: EnsureRequest,
  o: { events?: EventRecorder; log?: LogFn; recent?: RecentScans } = {},
): Promise<EnsureResult> {
  const { namespace: ns, digest, refKey } = req;
  const existing = existingScans(scans, ns, req.ref, digest, refKey);
  const memoKey = recentKey(ns, digest ? digestLabel(digest) : refKey!);
  if (!existing.length && o.recent) {
    const pending = o.recent.get(memoKey);
    if (pending) return { ...(await pending), created: false };
    const result = createScan(custom, req, o);
    o.recent.set(memoKey, result);
    return result;
  }
  if (existing.length) {
    const scan = existing.find(isManaged) ?? existing[0]!;
    if (isManaged(scan)) await mergeSecrets(custom, scan, req.secretNames, req.priority ?? false);
    return { name: scan.metadata!.name!, created: false };
  }
  return createScan(custom, req, o);
}

async function createScan(
  custom: k8s.CustomObjectsApi,
  req: EnsureRequest,
  o: { events?: EventRecorder; log?: LogFn },
): Promise<EnsureResult> {
  const { namespace: ns, ref, digest, refKey } = req;
  const image = digest ? `${ref.registry}/${ref.repository}@${digest}` : referenceString(ref);
  const base = scanName(ref, digest ?? `sha256:${refKey}`);
  // First the readable name; when a scan of another image holds it (someone's own, or a squatter who guessed
  // it), a name the API server makes unique (generateName), which nobody can take in advance.
  for (const generate of [false, true]) {
    const body: ImageScan = {
      apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan",
      metadata: {
        ...(generate ? { generateName: `${base}-` } : { name: base }), namespace: ns,
        labels: {
          [MANAGED_BY_LABEL]: MANAGED_BY, [REPOSITORY_LABEL]: repositoryLabel(ref),
          ...(digest ? { [DIGEST_LABEL]: digestLabel(digest) } : { [REFERENCE_LABEL]: refKey! }),
        },
        annotations: { ...req.annotations, [IMAGE_ANNOTATION]: referenceString(ref), ...(req.priority ? { [PRIORITY_ANNOTATION]: "true" } : {}) },
      },
      spec: { image, ...(req.secretNames.length ? { imagePullSecrets: req.secretNames.map((n) => ({ name: n })) } : {}) },
    };
    try {
      const created = (await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body })) as ImageScan;
      const name = created.metadata?.name ?? base;
      o.log?.(`created ImageScan ${ns}/${name} for ${image}`, { scan: `${ns}/${name}`, requester: req.requester });
      o.events?.record({ ...created, apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan" }, "Normal", "Requested", `${req.requester} runs ${referenceString(ref)}${digest ? ` (${digest})` : " (no digest found: see the status)"}`);
      return { name, created: true };
    } catch (e) {
      if (generate || (e as { code?: number }).code !== 409) throw e;
      // Same name: ours from an earlier pass or another replica (fine, when it asks for this very image or its
      // status says it was resolved to this digest), or a scan of something else whatever its labels say.
      const other = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name: base })) as ImageScan;
      const same = digest
        ? other.status?.digest === digest || other.status?.resolvedDigest === digest || (!other.status?.digest && asksFor(other, ref, digest))
        : other.spec?.image === image && !other.spec.platform;
      if (same) return { name: base, created: false };
      o.log?.(`ImageScan ${ns}/${base} is taken by a scan of ${String(other.spec?.image).slice(0, 300)}: creating one with a generated name`, { scan: `${ns}/${base}` }, "warn");
    }
  }
  throw new Error(`ImageScan names for ${image} in ${ns} are taken by other scans`);
}

/** A second workload with other pull secrets: the scan gets them too (kubelet order kept, new ones last). */
async function mergeSecrets(custom: k8s.CustomObjectsApi, scan: ImageScan, names: string[], priority: boolean): Promise<void> {
  const have = (scan.spec.imagePullSecrets ?? []).map((s) => s.name);
  const add = names.filter((n) => !have.includes(n));
  const prioritize = priority && scan.status?.phase !== "Indexed" && scan.metadata?.annotations?.[PRIORITY_ANNOTATION] !== "true";
  if (!add.length && !prioritize) return;
  const body: Record<string, unknown> = {};
  if (add.length) body.spec = { imagePullSecrets: [...have, ...add].map((n) => ({ name: n })) };
  if (prioritize) body.metadata = { annotations: { [PRIORITY_ANNOTATION]: "true" } };
  await custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace: scan.metadata!.namespace!, plural: "imagescans", name: scan.metadata!.name!, body },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
}
