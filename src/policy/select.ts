// The precedence that picks the policy deciding for an image in a namespace (docs/policy.md), and the
// exception that lets it through.
import { parseReference, type Reference } from "../image/reference.js";
import type { LabelSelector, Policy, PolicyException } from "../kube/api/v1alpha1/index.js";
import { bestMatchingGlob, cachedGlob, compareSpecificity, matchImageGlob, type ImageGlob } from "./glob.js";

export interface NamespaceInfo {
  name: string;
  labels?: Record<string, string>;
}

/** Standard label selector semantics: every matchLabels entry and every expression must hold; {} selects all. */
export function labelSelectorMatches(selector: LabelSelector | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, req.key);
    const value = labels[req.key];
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        if (!has || !values.includes(value as string)) return false;
        break;
      case "NotIn":
        if (has && values.includes(value as string)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

/** An ImagePolicy applies to its own namespace; a ClusterImagePolicy to the namespaces its selector matches. */
export function policyAppliesToNamespace(policy: Policy, ns: NamespaceInfo): boolean {
  return policy.kind === "ImagePolicy" ? policy.metadata.namespace === ns.name : labelSelectorMatches(policy.spec.namespaceSelector, ns.labels);
}

/** The glob of `spec.images` that selects `ref` (the most specific one), `**` for an empty list, or undefined. */
export function policySelects(policy: Policy, ref: string | Reference): ImageGlob | undefined {
  const images = policy.spec.images ?? [];
  return images.length === 0 ? cachedGlob("**") : bestMatchingGlob(images, ref);
}

/** The first exception of `policy` that admits `ref` in `ns` at `now` (unexpired, images and namespaces matching). */
export function activeException(policy: Policy, ref: string | Reference, ns: NamespaceInfo, now: Date = new Date()): { index: number; exception: PolicyException } | undefined {
  const r = typeof ref === "string" ? parseReference(ref) : ref;
  for (const [index, exception] of (policy.spec.exceptions ?? []).entries()) {
    if (Date.parse(exception.expires) <= now.getTime()) continue;
    if (exception.namespaces && !exception.namespaces.includes(ns.name)) continue;
    if (exception.images.some((p) => matchImageGlob(p, r))) return { index, exception };
  }
  return undefined;
}

export type PolicyDecision =
  | { via: "exception"; policy: Policy; index: number; exception: PolicyException }
  | { via: "rules"; policy: Policy; glob: ImageGlob };

/**
 * Orders two applicable policies for one image: negative when `a` takes precedence. An ImagePolicy comes before
 * any ClusterImagePolicy; then the more specific selecting glob; then the name (byte order).
 */
export function comparePrecedence(a: { policy: Policy; glob: ImageGlob }, b: { policy: Policy; glob: ImageGlob }): number {
  if (a.policy.kind !== b.policy.kind) return a.policy.kind === "ImagePolicy" ? -1 : 1;
  const s = compareSpecificity(b.glob.specificity, a.glob.specificity);
  if (s !== 0) return s;
  const [an, bn] = [a.policy.metadata.name, b.policy.metadata.name];
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/**
 * What decides for one image of a pod in `ns` (docs/policy.md, "Precedence"). The candidates are the policies
 * that apply to the namespace and select the image. Exceptions come first: the first unexpired matching
 * exception of the candidates, taken in precedence order, admits the image. Otherwise the candidate with the
 * highest precedence decides with its rules. Undefined when no policy applies (the webhook's built-in default).
 * Pass only valid policies: an invalid one is never used.
 */
export function selectPolicy(policies: readonly Policy[], ref: string | Reference, ns: NamespaceInfo, now: Date = new Date()): PolicyDecision | undefined {
  const r = typeof ref === "string" ? parseReference(ref) : ref;
  const candidates: Array<{ policy: Policy; glob: ImageGlob }> = [];
  for (const policy of policies) {
    if (!policyAppliesToNamespace(policy, ns)) continue;
    const glob = policySelects(policy, r);
    if (glob) candidates.push({ policy, glob });
  }
  if (candidates.length === 0) return undefined;
  candidates.sort(comparePrecedence);
  for (const c of candidates) {
    const hit = activeException(c.policy, r, ns, now);
    if (hit) return { via: "exception", policy: c.policy, ...hit };
  }
  const top = candidates[0] as { policy: Policy; glob: ImageGlob };
  return { via: "rules", policy: top.policy, glob: top.glob };
}
