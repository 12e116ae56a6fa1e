// Making sure an ImageScan exists for an image in a namespace: one per (namespace, digest), or per
// reference when no digest could be found (the scan then says why). Shared by the Pod controller and the
// admission webhook (which asks for the priority lane: someone is waiting on the answer).
import { createHash } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { parseReference, referenceString, type Reference } from "../image/reference.js";
import type { EventRecorder } from "../kube/events.js";
import type { Informer } from "../kube/informer.js";
import type { LogFn } from "../log/logger.js";
import {
  digestLabel, DIGEST_LABEL, GROUP, MANAGED_BY, MANAGED_BY_LABEL, PRIORITY_ANNOTATION, REFERENCE_LABEL, REPOSITORY_LABEL, VERSION, type ImageScan,
} from "./imagescan.js";

export const IMAGE_ANNOTATION = "portcullis.dev/image";

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
 * The ImageScans that stand for an image in a namespace: those whose status says the controller resolved or
 * indexed `digest` (status is written by the controller only), then those on their way (not yet resolved)
 * whose spec asks for exactly this image: `registry/repository@digest` (or the reference, without a digest),
 * no other platform. Labels only find candidates: a scan labelled with the digest but asking for another
 * image is a decoy and is left out, so it neither speaks for the image nor stops its real scan.
 */
export function existingScans(scans: Pick<Informer<ImageScan>, "byIndex">, namespace: string, ref: Reference | undefined, digest: string | undefined, refKey: string | undefined): ImageScan[] {
  if (!digest) {
    const want = ref ? referenceString(ref) : undefined;
    return scans.byIndex("reference", `${namespace}/${refKey}`).filter((s) => want !== undefined && s.spec?.image === want && !s.spec.platform);
  }
  const indexed = scans.byIndex("digest", `${namespace}/${digest}`);
  const pending = scans.byIndex("digestLabel", `${namespace}/${digestLabel(digest)}`)
    .filter((s) => !indexed.includes(s) && !s.status?.digest && asksFor(s, ref, digest));
  return [...indexed, ...pending];
}

/** Whether a scan's spec asks for `digest` (in `ref`'s repository when given) on the default platform. */
export function asksFor(s: ImageScan, ref: Reference | undefined, digest: string): boolean {
  if (s.spec?.platform || typeof s.spec?.image !== "string") return false;
  let asked: Reference;
  try {
    asked = parseReference(s.spec.image);
  } catch {
    return false;
  }
  return asked.digest === digest && (!ref || (asked.registry === ref.registry && asked.repository === ref.repository));
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
  o: { events?: EventRecorder; log?: LogFn; counts?: { creates: number; patches: number }; recent?: RecentScans } = {},
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
    if (isManaged(scan)) await mergeSecrets(custom, scan, req.secretNames, req.priority ?? false, o.counts);
    return { name: scan.metadata!.name!, created: false };
  }
  return createScan(custom, req, o);
}

async function createScan(
  custom: k8s.CustomObjectsApi,
  req: EnsureRequest,
  o: { events?: EventRecorder; log?: LogFn; counts?: { creates: number; patches: number } },
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
      if (o.counts) o.counts.creates++;
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
async function mergeSecrets(custom: k8s.CustomObjectsApi, scan: ImageScan, names: string[], priority: boolean, counts?: { patches: number }): Promise<void> {
  const have = (scan.spec.imagePullSecrets ?? []).map((s) => s.name);
  const add = names.filter((n) => !have.includes(n));
  const prioritize = priority && scan.status?.phase !== "Indexed" && scan.metadata?.annotations?.[PRIORITY_ANNOTATION] !== "true";
  if (!add.length && !prioritize) return;
  if (counts) counts.patches++;
  const body: Record<string, unknown> = {};
  if (add.length) body.spec = { imagePullSecrets: [...have, ...add].map((n) => ({ name: n })) };
  if (prioritize) body.metadata = { annotations: { [PRIORITY_ANNOTATION]: "true" } };
  await custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace: scan.metadata!.namespace!, plural: "imagescans", name: scan.metadata!.name!, body },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
}

export function isManaged(scan: ImageScan): boolean {
  return scan.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
}

/** A short hash of a reference, for scans of references that could not be resolved. */
export function referenceHash(ref: Reference): string {
  return createHash("sha256").update(referenceString(ref)).digest("hex").slice(0, 40);
}

/**
 * A readable, deterministic name: the repository's last component (and the one before it when short), then
 * the first 12 hex digits of the digest, e.g. `debian-3f2a9c1b7e4d` or `team-app-3f2a9c1b7e4d`.
 */
export function scanName(ref: Reference, digest: string): string {
  const parts = ref.repository.split("/");
  let base = parts[parts.length - 1]!;
  if (parts.length > 1 && parts[parts.length - 2] !== "library" && base.length < 20) base = `${parts[parts.length - 2]}-${base}`;
  base = base.replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 48).replace(/-+$/, "") || "image";
  return `${base}-${digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13)}`;
}

/** The repository as a label value (63 characters of [A-Za-z0-9._-], ends alphanumeric): `/` becomes `.`. */
export function repositoryLabel(ref: Reference): string {
  const v = `${ref.registry.replace(/:/g, "_")}.${ref.repository.replace(/\//g, ".")}`;
  const cut = v.length > 63 ? v.slice(v.length - 63) : v;
  return cut.replace(/^[^a-z0-9A-Z]+|[^a-z0-9A-Z]+$/g, "");
}
