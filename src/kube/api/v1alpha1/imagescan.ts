// The ImageScan kind: its spec and status, the zod model of the spec (what crds/imagescans.portcullis.dev.yaml
// enforces, for objects that did not come through the API server's validation), the informer indexes every
// holder of an ImageScan cache uses, and the names and labels of the scans Portcullis creates.
import { createHash } from "node:crypto";
import { z } from "zod";
import { parseReference, referenceString, type Reference } from "../../../image/reference.js";
import type { FindingsSummary } from "../../../model/findings.js";
import type { KubeObject } from "../../informer.js";
import { DIGEST_LABEL, MANAGED_BY, MANAGED_BY_LABEL, REFERENCE_LABEL } from "./group.js";

export const ImageScanSpecSchema = z.object({
  image: z.string().min(1).max(1024),
  platform: z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/).optional(),
  imagePullSecrets: z.array(z.object({ name: z.string().min(1) })).optional(),
  rescanAfter: z.string().regex(/^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/).optional(),
});

export type ImageScanSpec = z.output<typeof ImageScanSpecSchema>;

export interface ImageScan extends KubeObject {
  spec: ImageScanSpec;
  status?: ImageScanStatus;
}

export interface Condition {
  type: "Resolved" | "Indexed" | "Matched";
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface ImageScanStatus {
  phase?: "Pending" | "Resolving" | "Indexing" | "Indexed" | "Failed";
  digest?: string;
  shortDigest?: string;
  resolvedDigest?: string;
  platform?: string;
  distribution?: { id: string; versionId: string; prettyName: string };
  packages?: { total: number; byKind: Record<string, number> };
  /** What matching against the advisory data found: counts only (the list is in the store and the report API). */
  vulnerabilities?: FindingsSummary;
  layers?: { total: number; reused: number };
  indexedAt?: string;
  scannerSet?: string;
  credentialSource?: string;
  reportRef?: { manifestDigest: string; path: string };
  message?: string;
  /** Attempts of this generation that ended at an indexer worker's limit (bounded by --scan-attempts). */
  limitFailures?: number;
  observedGeneration?: number;
  conditions?: Condition[];
  lastAttempt?: string;
}

/**
 * The ImageScan informer's indexes (one set, registered on the one ImageScan informer of a process).
 * - `digest`: (namespace, digest) from status.digest and status.resolvedDigest only. Status is a subresource
 *   only the controller writes, so this index is evidence: the controller resolved and indexed that digest.
 * - `digestLabel`: (namespace, digest label value) from the `portcullis.dev/digest` label. Anyone who may create
 *   ImageScans can set it: it only finds candidates (a scan on its way, not yet resolved), which callers check
 *   against the spec (existingScans below) and never take as a verdict.
 * - `reference`: (namespace, reference hash) for scans of references no digest could be found for.
 */
export const IMAGESCAN_INDEXERS: Record<string, (s: ImageScan) => string[]> = {
  digest: (s) => {
    const ns = s.metadata?.namespace ?? "";
    return [...new Set([s.status?.digest, s.status?.resolvedDigest].filter((d): d is string => !!d).map((d) => `${ns}/${d}`))];
  },
  digestLabel: (s) => {
    const label = s.metadata?.labels?.[DIGEST_LABEL];
    return label ? [`${s.metadata?.namespace ?? ""}/${label}`] : [];
  },
  reference: (s) => (s.metadata?.labels?.[REFERENCE_LABEL] ? [`${s.metadata?.namespace}/${s.metadata.labels[REFERENCE_LABEL]}`] : []),
};

/** What existingScans needs of a cache: lookups by the indexes above. */
export interface ImageScanIndex {
  byIndex(index: string, value: string): ImageScan[];
}

/** The digest label's value: the digest's hex, cut to the 63 characters a label value allows. */
export function digestLabel(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 64);
}

/**
 * The ImageScans that stand for an image in a namespace: those whose status says the controller resolved or
 * indexed `digest` (status is written by the controller only), then those on their way (not yet resolved)
 * whose spec asks for exactly this image: `registry/repository@digest` (or the reference, without a digest),
 * no other platform. Labels only find candidates: a scan labelled with the digest but asking for another
 * image is a decoy and is left out, so it neither speaks for the image nor stops its real scan.
 */
export function existingScans(scans: ImageScanIndex, namespace: string, ref: Reference | undefined, digest: string | undefined, refKey: string | undefined): ImageScan[] {
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

/** Whether Portcullis made this scan (and so may change its spec or delete it). */
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
