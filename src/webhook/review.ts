// AdmissionReview (admission.k8s.io/v1) in and out, and where the images are in each kind the webhook
// judges: Pods (and their ephemeralcontainers subresource) and the pod templates of workloads, so that
// `kubectl apply` of a Deployment is refused with the reason instead of a ReplicaSet event later.
import type * as k8s from "@kubernetes/client-node";
import { z } from "zod";
import { podSpecImages, type PodImage } from "../kube/podimages.js";
import { PortcullisError } from "../errors.js";

const GVK = z.object({ group: z.string(), version: z.string(), kind: z.string() });
const GVR = z.object({ group: z.string(), version: z.string(), resource: z.string() });

export const AdmissionReviewSchema = z.object({
  apiVersion: z.literal("admission.k8s.io/v1", { error: "apiVersion must be admission.k8s.io/v1" }),
  kind: z.literal("AdmissionReview", { error: "kind must be AdmissionReview" }),
  request: z.object({
    uid: z.string().min(1, "request.uid is required"),
    kind: GVK,
    resource: GVR,
    subResource: z.string().optional(),
    name: z.string().optional(),
    namespace: z.string().optional(),
    operation: z.enum(["CREATE", "UPDATE", "DELETE", "CONNECT"]),
    userInfo: z.object({
      username: z.string().max(1024).optional(),
      uid: z.string().max(1024).optional(),
      groups: z.array(z.string().max(1024)).max(1000).optional(),
      extra: z.record(z.string().max(1024), z.array(z.string().max(4096)).max(100)).optional(),
    }).loose().optional(),
    object: z.record(z.string(), z.unknown()).nullable().optional(),
    oldObject: z.record(z.string(), z.unknown()).nullable().optional(),
    dryRun: z.boolean().optional(),
  }).loose(),
});

export type AdmissionReview = z.output<typeof AdmissionReviewSchema>;
export type AdmissionRequest = AdmissionReview["request"];

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string };
  warnings?: string[];
  patchType?: "JSONPatch";
  patch?: string;
  auditAnnotations?: Record<string, string>;
}

export class ReviewError extends PortcullisError {
  readonly domain = "webhook";
  readonly code = "INVALID_ADMISSION_REVIEW";
}

/** Parses a request body; a ReviewError names what is wrong (the server answers 400 with it). */
export function parseReview(body: string): AdmissionReview {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    throw new ReviewError(`the body is not JSON: ${(e as Error).message}`);
  }
  const r = AdmissionReviewSchema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ReviewError(`not an admission.k8s.io/v1 AdmissionReview: ${first}`);
  }
  return r.data;
}

/** An answer with every text in it (status message, warnings, audit annotations) passed through `redact`. */
export function redactResponse<R extends Omit<AdmissionResponse, "uid">>(r: R, redact: (s: string) => string): R {
  return {
    ...r,
    ...(r.status ? { status: { ...r.status, message: redact(r.status.message) } } : {}),
    ...(r.warnings ? { warnings: r.warnings.map(redact) } : {}),
    ...(r.auditAnnotations ? { auditAnnotations: Object.fromEntries(Object.entries(r.auditAnnotations).map(([k, v]) => [k, redact(v)])) } : {}),
  };
}

export function reviewResponse(uid: string, response: Omit<AdmissionResponse, "uid">): { apiVersion: string; kind: string; response: AdmissionResponse } {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, ...response } };
}

/** The pod spec(s) of an object and the path prefix of each, by kind. */
export interface PodTemplateAt {
  /** e.g. `spec.template.spec` */
  prefix: string;
  spec: k8s.V1PodSpec | undefined;
  /** The pod's or template's annotations (break-glass) and labels. */
  annotations: Record<string, string>;
}

interface Obj {
  metadata?: { annotations?: Record<string, string> };
  spec?: {
    template?: { metadata?: { annotations?: Record<string, string> }; spec?: k8s.V1PodSpec };
    jobTemplate?: { spec?: { template?: { metadata?: { annotations?: Record<string, string> }; spec?: k8s.V1PodSpec } } };
  } & k8s.V1PodSpec;
}

/** Kinds the webhook judges, by group/kind. */
export const JUDGED_KINDS: Record<string, "pod" | "template" | "cronjob"> = {
  "/Pod": "pod",
  "apps/Deployment": "template",
  "apps/StatefulSet": "template",
  "apps/DaemonSet": "template",
  "apps/ReplicaSet": "template",
  "/ReplicationController": "template",
  "batch/Job": "template",
  "batch/CronJob": "cronjob",
};

/** Where the pod spec of `obj` is, or undefined for a kind the webhook does not judge. */
export function podTemplate(kind: { group: string; kind: string }, obj: unknown): PodTemplateAt | undefined {
  const how = JUDGED_KINDS[`${kind.group}/${kind.kind}`];
  const o = (obj ?? {}) as Obj;
  switch (how) {
    case "pod":
      return { prefix: "spec", spec: o.spec, annotations: o.metadata?.annotations ?? {} };
    case "template":
      return { prefix: "spec.template.spec", spec: o.spec?.template?.spec, annotations: { ...(o.metadata?.annotations ?? {}), ...(o.spec?.template?.metadata?.annotations ?? {}) } };
    case "cronjob": {
      const t = o.spec?.jobTemplate?.spec?.template;
      return { prefix: "spec.jobTemplate.spec.template.spec", spec: t?.spec, annotations: { ...(o.metadata?.annotations ?? {}), ...(t?.metadata?.annotations ?? {}) } };
    }
    default:
      return undefined;
  }
}

/**
 * The images to judge: all of them on CREATE; on UPDATE only those that are new or changed (an update that
 * touches no image — a label, a replica count — is not judged again).
 */
export function imagesToJudge(req: AdmissionRequest): { at: PodTemplateAt; images: PodImage[] } | undefined {
  const at = podTemplate(req.kind, req.object);
  if (!at) return undefined;
  const images = podSpecImages(at.spec, at.prefix);
  if (req.operation !== "UPDATE") return { at, images };
  const old = podTemplate(req.kind, req.oldObject);
  const before = new Set(podSpecImages(old?.spec, old?.prefix ?? at.prefix).map((i) => `${i.field}=${i.image}`));
  return { at, images: images.filter((i) => !before.has(`${i.field}=${i.image}`)) };
}
