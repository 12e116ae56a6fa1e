// Image policies: the zod model of the ImagePolicy (namespaced) and ClusterImagePolicy (cluster-scoped) custom
// resources of crds/, the image glob language they use, and the precedence that picks the policy deciding for
// an image. docs/policy.md is the user-facing account of the same rules.
//
// The CRD schemas are what the API server enforces (on Kubernetes 1.20 there is no CEL, so only OpenAPI types,
// enums, patterns, lengths and date-time formats). This model mirrors them and adds what a schema cannot say:
// glob syntax, label selector operators versus values, blank reasons. An exception whose expiry has passed is
// not an error: parsePolicy reports it separately so the operator can say so in status while the rest of the
// policy stays in force.
import { z } from "zod";
import { isDigest } from "../image/digest.js";
import { DOCKER_HUB, DOCKER_HUB_API, isValidRegistryHost, parseReference, type Reference } from "../image/reference.js";
import { parseDuration } from "../kube/duration.js";

export const POLICY_GROUP = "portcullis.dev";
export const POLICY_VERSION = "v1alpha1";
export const POLICY_API_VERSION = `${POLICY_GROUP}/${POLICY_VERSION}`;
export const IMAGE_POLICY_PLURAL = "imagepolicies";
export const CLUSTER_IMAGE_POLICY_PLURAL = "clusterimagepolicies";
/** The Pod annotation whose value (the mandatory reason) lets a Pod through unless the policy forbids it. */
export const BREAK_GLASS_ANNOTATION = "portcullis.dev/break-glass";
/**
 * Who may use break-glass: users allowed this verb on this resource (group POLICY_GROUP) in the namespace, as a
 * SubjectAccessReview of the admission request's userInfo answers. No built-in role grants it.
 */
export const BREAK_GLASS_VERB = "break-glass";
export const BREAK_GLASS_RESOURCE = "imagepolicies";

export const MODES = ["Enforce", "Warn", "Audit"] as const;
export type Mode = (typeof MODES)[number];
export const MISSING_SCAN_ACTIONS = ["deny", "warn", "allow"] as const;
export type MissingScanAction = (typeof MISSING_SCAN_ACTIONS)[number];
/** `spec.vulnerabilities.maxSeverity`: the highest severity an image may have; None allows no known vulnerability. */
export const SEVERITIES = ["None", "Negligible", "Low", "Medium", "High", "Critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

// ------------------------------------------------------------------------------------------------ image globs
//
//   glob     := name [":" tag] ["@" digest]
//   name     := "**" | registry ("/" segment)+        (the registry is explicit: docker.io/library/nginx)
//   segment  := "**" | [a-z0-9._*-]+                   ("**" only as a whole segment)
//   registry := "**" | host[:port] with "*" allowed    (Docker Hub's names all become docker.io)
//
// `*` matches any characters within one segment (never `/`); `**` matches one or more whole segments;
// everything else matches exactly. Globs match the normalised `registry/repository` of a reference, with
// docker.io for Docker Hub and `library/` for its official images (so `docker.io/nginx` means
// `docker.io/library/nginx`, as docker understands it). A glob without a tag matches every tag and digest;
// with a tag it needs a reference with a matching tag (`*` in a tag matches any characters); a digest is
// compared exactly.

/** How specific a glob is; see compareSpecificity. */
export interface GlobSpecificity {
  /** No wildcard at all. */
  exact: boolean;
  /** Characters that are not wildcards. */
  literals: number;
  doubleStars: number;
  stars: number;
}

export interface ImageGlob {
  /** As written. */
  pattern: string;
  /** After normalisation (registry lowercased, Docker Hub aliases folded, `library/` added). */
  normalized: string;
  name: RegExp;
  tag?: RegExp;
  digest?: string;
  specificity: GlobSpecificity;
}

export class ImageGlobError extends Error {
  constructor(
    readonly pattern: string,
    why: string,
  ) {
    super(`invalid image glob ${JSON.stringify(pattern)}: ${why}`);
    this.name = "ImageGlobError";
  }
}

const HUB_ALIASES = new Set([DOCKER_HUB, "index.docker.io", DOCKER_HUB_API]);
const REGISTRY_GLOB_CHARS = /^[A-Za-z0-9.:*[\]-]+$/;
const SEGMENT_CHARS = /^[a-z0-9._*-]+$/;
const TAG_GLOB = /^[\w*][\w.*-]{0,127}$/;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const starsToRegExp = (s: string, star: string) => s.split("*").map(escapeRegExp).join(star);

function specificityOf(normalized: string): GlobSpecificity {
  const doubleStars = normalized.match(/\*\*/g)?.length ?? 0;
  const allStars = normalized.match(/\*/g)?.length ?? 0;
  return { exact: allStars === 0, literals: normalized.length - allStars, doubleStars, stars: allStars - 2 * doubleStars };
}

/** The specificity of a policy whose `images` is empty: the same as `**`. */
export const MATCH_ALL_SPECIFICITY: GlobSpecificity = specificityOf("**");

/** Parses and compiles a glob; throws ImageGlobError naming what is wrong. */
export function compileImageGlob(pattern: string): ImageGlob {
  const bad = (why: string) => new ImageGlobError(pattern, why);
  if (!pattern) throw bad("empty");
  if (/\s/.test(pattern)) throw bad("contains whitespace");

  let rest = pattern;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad("a digest must be written in full (sha256:<64 lowercase hex digits>); wildcards are not allowed in it");
  }
  let tag: string | undefined;
  const colon = rest.indexOf(":", rest.lastIndexOf("/") + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_GLOB.test(tag)) throw bad(`tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-*], not starting with . or -`);
  }
  if (!rest) throw bad("no registry/repository before the tag or digest");

  const segments = rest.split("/");
  if (segments.length === 1 && segments[0] !== "**") {
    const hostLike = /[.:]/.test(pattern) || rest === "localhost";
    throw bad(`name the registry and the repository: ${hostLike ? `${pattern}/** for everything on a registry` : `docker.io/library/${pattern} for a Docker Hub official image`}`);
  }
  for (const seg of segments) {
    if (!seg) throw bad("empty path segment");
    if (seg.includes("**") && seg !== "**") throw bad(`"**" must be a whole path segment (write .../${seg.replace(/\*+/g, "")}/** or use a single *)`);
  }
  const [first, ...repo] = segments as [string, ...string[]];
  let registry = first;
  if (first !== "**") {
    if (!REGISTRY_GLOB_CHARS.test(first)) throw bad(`registry ${JSON.stringify(first)} may only contain letters, digits, ".", "-", ":", "[", "]" and "*"`);
    if (!first.includes("*")) {
      const hostLike = first === "localhost" || first.includes(".") || first.includes(":");
      if (!hostLike || !isValidRegistryHost(first)) {
        throw bad(`${JSON.stringify(first)} is not a registry host; globs start with the registry (docker.io/${rest} for Docker Hub)`);
      }
    }
    registry = first.toLowerCase();
    if (HUB_ALIASES.has(registry)) registry = DOCKER_HUB;
  }
  for (const seg of repo) {
    if (seg !== "**" && !SEGMENT_CHARS.test(seg)) throw bad(`repository segment ${JSON.stringify(seg)} may only contain lowercase letters, digits, ".", "_", "-" and "*"`);
  }
  // docker.io/nginx is docker.io/library/nginx, as distribution/reference normalises it.
  if (registry === DOCKER_HUB && repo.length === 1 && repo[0] !== "**") repo.unshift("library");

  const nameSegments = [registry, ...repo];
  const nameSource = nameSegments.map((s) => (s === "**" ? "[^/]+(?:/[^/]+)*" : starsToRegExp(s, "[^/]*"))).join("/");
  const normalized = `${nameSegments.join("/")}${tag !== undefined ? `:${tag}` : ""}${digest !== undefined ? `@${digest}` : ""}`;
  const glob: ImageGlob = { pattern, normalized, name: new RegExp(`^${nameSource}$`), specificity: specificityOf(normalized) };
  if (tag !== undefined) glob.tag = new RegExp(`^${starsToRegExp(tag, ".*")}$`);
  if (digest !== undefined) glob.digest = digest;
  return glob;
}

/** Why a glob is invalid, or undefined when it is valid. */
export function imageGlobError(pattern: string): string | undefined {
  try {
    compileImageGlob(pattern);
    return undefined;
  } catch (e) {
    if (e instanceof ImageGlobError) return e.message.replace(/^invalid image glob "(?:[^"\\]|\\.)*": /, "");
    throw e;
  }
}

const globCache = new Map<string, ImageGlob>();
const GLOB_CACHE_MAX = 4096;

function cachedGlob(pattern: string): ImageGlob {
  let g = globCache.get(pattern);
  if (!g) {
    g = compileImageGlob(pattern);
    if (globCache.size >= GLOB_CACHE_MAX) globCache.clear();
    globCache.set(pattern, g);
  }
  return g;
}

/** `registry/repository` as globs see it: docker.io for Docker Hub, the registry lowercased. */
export function imageName(ref: Reference): string {
  const registry = ref.registry.toLowerCase();
  return `${HUB_ALIASES.has(registry) ? DOCKER_HUB : registry}/${ref.repository}`;
}

/**
 * Whether an image reference matches a glob (see the grammar above): `*` matches within one path segment,
 * `**` one or more whole segments, anything else exactly, against the normalised `registry/repository`, and
 * the tag and digest when the glob has them. `ref` may be a string (parsed with parseReference, so `nginx`
 * is `docker.io/library/nginx:latest`) or a parsed Reference. Throws ImageGlobError for an invalid glob and
 * ReferenceError for an unparsable reference.
 */
export function matchImageGlob(pattern: string | ImageGlob, ref: string | Reference): boolean {
  const glob = typeof pattern === "string" ? cachedGlob(pattern) : pattern;
  const r = typeof ref === "string" ? parseReference(ref) : ref;
  if (!glob.name.test(imageName(r))) return false;
  if (glob.tag && (r.tag === undefined || !glob.tag.test(r.tag))) return false;
  if (glob.digest !== undefined && r.digest !== glob.digest) return false;
  return true;
}

/**
 * Orders globs by specificity: positive when `a` is more specific than `b`. A glob without wildcards beats any
 * glob with one; then more literal characters win; then fewer `**`; then fewer `*`.
 */
export function compareSpecificity(a: GlobSpecificity, b: GlobSpecificity): number {
  if (a.exact !== b.exact) return a.exact ? 1 : -1;
  if (a.literals !== b.literals) return a.literals - b.literals;
  if (a.doubleStars !== b.doubleStars) return b.doubleStars - a.doubleStars;
  return b.stars - a.stars;
}

/** The most specific glob of `patterns` that matches `ref`, or undefined when none does. */
export function bestMatchingGlob(patterns: readonly string[], ref: string | Reference): ImageGlob | undefined {
  const r = typeof ref === "string" ? parseReference(ref) : ref;
  let best: ImageGlob | undefined;
  for (const p of patterns) {
    const g = cachedGlob(p);
    if (matchImageGlob(g, r) && (!best || compareSpecificity(g.specificity, best.specificity) > 0)) best = g;
  }
  return best;
}

// ------------------------------------------------------------------------------------------------ zod model

const imageGlob = z
  .string()
  .min(1)
  .max(512)
  .superRefine((s, ctx) => {
    const why = imageGlobError(s);
    if (why) ctx.addIssue({ code: "custom", message: `invalid image glob ${JSON.stringify(s)}: ${why}` });
  });
const globList = (max: number) => z.array(imageGlob).max(max);

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** RFC 3339 date-time, as the API server's `format: date-time` checks it (calendar dates, no leap seconds). */
export function isRfc3339DateTime(s: string): boolean {
  const m = RFC3339.exec(s);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return false;
  if (hour > 23 || minute > 59 || second > 59) return false;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return false;
  return true;
}

const dateTime = z.string().refine(isRfc3339DateTime, { message: "must be an RFC 3339 date-time such as 2026-12-31T23:59:59Z" });
const reason = z.string().max(1024).refine((s) => /\S/.test(s), { message: "must not be empty or blank: say why the exception exists (a ticket, a CVE assessment)" });
const namespaceName = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { message: "must be a namespace name (lowercase letters, digits and -)" });

const exceptionFields = {
  images: globList(64).min(1, { message: "an exception needs at least one image glob" }),
  reason,
  expires: dateTime,
};

/** CVE-2024-3094, GHSA-xxxx-xxxx-xxxx, DSA-5555-1, RHSA-2024:1234, GO-2024-2687, PYSEC-2023-1. */
const VULNERABILITY_ID = /^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]{1,120}$/;
const vulnerabilityId = z.string().regex(VULNERABILITY_ID, { message: "must be a vulnerability or advisory id such as CVE-2024-3094 or GHSA-xxxx-xxxx-xxxx" });
const duration = z.string().refine((s) => (parseDuration(s) ?? 0) > 0, { message: "must be a duration such as 24h or 90m" });

export const VulnerabilityAllowSchema = z.strictObject({
  id: vulnerabilityId,
  reason,
  expires: dateTime,
  /** Only for these images; absent: every image the policy decides for. */
  images: globList(64).optional(),
});

export const VulnerabilityRulesSchema = z.strictObject({
  maxSeverity: z.enum(SEVERITIES).optional(),
  fixableOnly: z.boolean().default(false),
  deniedIds: z.array(vulnerabilityId).max(256).optional(),
  allowedIds: z.array(VulnerabilityAllowSchema).max(256).optional(),
  maxDatabaseAge: duration.optional(),
  onStaleDatabase: z.enum(MISSING_SCAN_ACTIONS).default("warn"),
  onUnsupportedDistribution: z.enum(MISSING_SCAN_ACTIONS).default("warn"),
});

export const ImagePolicyExceptionSchema = z.strictObject({
  ...exceptionFields,
  namespaces: z.undefined({ error: "an ImagePolicy applies to its own namespace only; limit an exception to namespaces in a ClusterImagePolicy" }).optional(),
});

export const ClusterImagePolicyExceptionSchema = z.strictObject({
  ...exceptionFields,
  namespaces: z.array(namespaceName).max(256).optional(),
});

export const LabelSelectorRequirementSchema = z
  .strictObject({
    key: z.string().min(1),
    operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
    values: z.array(z.string()).optional(),
  })
  .superRefine((req, ctx) => {
    const n = req.values?.length ?? 0;
    if ((req.operator === "In" || req.operator === "NotIn") && n === 0) {
      ctx.addIssue({ code: "custom", path: ["values"], message: `operator ${req.operator} needs at least one value` });
    }
    if ((req.operator === "Exists" || req.operator === "DoesNotExist") && n > 0) {
      ctx.addIssue({ code: "custom", path: ["values"], message: `operator ${req.operator} takes no values` });
    }
  });

export const LabelSelectorSchema = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z.array(LabelSelectorRequirementSchema).optional(),
});

const commonSpec = {
  images: globList(100).optional(),
  mode: z.enum(MODES).default("Enforce"),
  onMissingScan: z.enum(MISSING_SCAN_ACTIONS).default("deny"),
  allowedImages: globList(256).optional(),
  deniedImages: globList(256).optional(),
  requireDigest: z.boolean().default(false),
  pinDigests: z.boolean().default(true),
  breakGlass: z.strictObject({ allowed: z.boolean().default(false) }).prefault({}),
  vulnerabilities: VulnerabilityRulesSchema.optional(),
};

export const ImagePolicySpecSchema = z.strictObject({
  ...commonSpec,
  namespaceSelector: z.undefined({ error: "an ImagePolicy applies to its own namespace; use a ClusterImagePolicy to select namespaces" }).optional(),
  exceptions: z.array(ImagePolicyExceptionSchema).max(256).optional(),
});

export const ClusterImagePolicySpecSchema = z.strictObject({
  ...commonSpec,
  namespaceSelector: LabelSelectorSchema.optional(),
  exceptions: z.array(ClusterImagePolicyExceptionSchema).max(256).optional(),
});

export const PolicyConditionSchema = z.looseObject({
  type: z.string(),
  status: z.enum(["True", "False", "Unknown"]),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: z.string().optional(),
  observedGeneration: z.number().int().optional(),
});

export const PolicyStatusSchema = z.looseObject({
  observedGeneration: z.number().int().optional(),
  conditions: z.array(PolicyConditionSchema).optional(),
});

const MetadataSchema = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().optional(),
  generation: z.number().int().optional(),
  resourceVersion: z.string().optional(),
  uid: z.string().optional(),
});

export const ImagePolicySchema = z.object({
  apiVersion: z.literal(POLICY_API_VERSION),
  kind: z.literal("ImagePolicy"),
  metadata: MetadataSchema,
  spec: ImagePolicySpecSchema.prefault({}),
  status: PolicyStatusSchema.optional(),
});

export const ClusterImagePolicySchema = z.object({
  apiVersion: z.literal(POLICY_API_VERSION),
  kind: z.literal("ClusterImagePolicy"),
  metadata: MetadataSchema,
  spec: ClusterImagePolicySpecSchema.prefault({}),
  status: PolicyStatusSchema.optional(),
});

export type ImagePolicyException = z.output<typeof ImagePolicyExceptionSchema>;
export type VulnerabilityRules = z.output<typeof VulnerabilityRulesSchema>;
export type VulnerabilityAllow = z.output<typeof VulnerabilityAllowSchema>;
export type ClusterImagePolicyException = z.output<typeof ClusterImagePolicyExceptionSchema>;
export type PolicyException = ImagePolicyException | ClusterImagePolicyException;
export type LabelSelector = z.output<typeof LabelSelectorSchema>;
export type ImagePolicySpec = z.output<typeof ImagePolicySpecSchema>;
export type ImagePolicySpecInput = z.input<typeof ImagePolicySpecSchema>;
export type ClusterImagePolicySpec = z.output<typeof ClusterImagePolicySpecSchema>;
export type ClusterImagePolicySpecInput = z.input<typeof ClusterImagePolicySpecSchema>;
export type PolicyCondition = z.output<typeof PolicyConditionSchema>;
export type PolicyStatus = z.output<typeof PolicyStatusSchema>;
export type ImagePolicy = z.output<typeof ImagePolicySchema>;
export type ClusterImagePolicy = z.output<typeof ClusterImagePolicySchema>;
export type Policy = ImagePolicy | ClusterImagePolicy;
export type PolicyKind = Policy["kind"];

// ------------------------------------------------------------------------------------------------ parsePolicy

export interface PolicyIssue {
  /** The field, as kubectl and the API server write it: `spec.exceptions[0].reason`. */
  path: string;
  message: string;
}

export interface ExpiredException {
  path: string;
  index: number;
  expires: string;
  reason: string;
}

export type PolicyParseResult =
  | {
      ok: true;
      policy: Policy;
      /** Exceptions whose expiry has passed: ignored by decisions, reported in status. */
      expired: ExpiredException[];
      /** Accepted but worth telling the user (reserved fields that are not enforced). */
      warnings: PolicyIssue[];
    }
  | { ok: false; errors: PolicyIssue[] };

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === "invalid_type" && iss.input === undefined) return "required";
  if (iss.code === "invalid_value") return `must be one of ${iss.values.map(String).join(", ")}, not ${JSON.stringify(iss.input)}`;
  return undefined;
};

/**
 * Checks an ImagePolicy or ClusterImagePolicy object (from the API server, a file or a test) against the model:
 * the typed policy with defaults applied, or every problem with the path of its field. Expired exceptions
 * (`expires` at or before `now`) are not errors; they come back in `expired`.
 */
export function parsePolicy(obj: unknown, opts: { now?: Date } = {}): PolicyParseResult {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return { ok: false, errors: [{ path: "", message: "expected a Kubernetes object" }] };
  const kind = (obj as { kind?: unknown }).kind;
  const schema = kind === "ImagePolicy" ? ImagePolicySchema : kind === "ClusterImagePolicy" ? ClusterImagePolicySchema : undefined;
  if (!schema) return { ok: false, errors: [{ path: "kind", message: `expected ImagePolicy or ClusterImagePolicy, got ${JSON.stringify(kind)}` }] };

  const parsed = schema.safeParse(obj, { error: errorMap });
  if (!parsed.success) {
    const errors = parsed.error.issues.flatMap((iss): PolicyIssue[] =>
      iss.code === "unrecognized_keys"
        ? iss.keys.map((k) => ({ path: formatPath([...iss.path, k]), message: "unknown field" }))
        : [{ path: formatPath(iss.path), message: iss.message }],
    );
    return { ok: false, errors };
  }
  const policy = parsed.data;
  const now = (opts.now ?? new Date()).getTime();
  const expired: ExpiredException[] = [];
  for (const [index, ex] of (policy.spec.exceptions ?? []).entries()) {
    if (Date.parse(ex.expires) <= now) expired.push({ path: `spec.exceptions[${index}]`, index, expires: ex.expires, reason: ex.reason });
  }
  for (const [index, a] of (policy.spec.vulnerabilities?.allowedIds ?? []).entries()) {
    if (Date.parse(a.expires) <= now) expired.push({ path: `spec.vulnerabilities.allowedIds[${index}]`, index, expires: a.expires, reason: `${a.id}: ${a.reason}` });
  }
  const warnings: PolicyIssue[] = [];
  return { ok: true, policy, expired, warnings };
}

export type ValidReason = "Valid" | "InvalidSpec" | "ExceptionsExpired" | "NotEnforced";

/** The `Valid` condition the operator writes for a parse result (status, reason and message). */
export function validCondition(result: PolicyParseResult): { type: "Valid"; status: "True" | "False"; reason: ValidReason; message: string } {
  const line = (i: PolicyIssue) => (i.path ? `${i.path}: ${i.message}` : i.message);
  if (!result.ok) return { type: "Valid", status: "False", reason: "InvalidSpec", message: `the policy is not used: ${result.errors.map(line).join("; ")}` };
  const notes: string[] = [];
  if (result.expired.length) notes.push(`expired exceptions are ignored: ${result.expired.map((e) => `${e.path} (expired ${e.expires}: ${e.reason})`).join("; ")}`);
  if (result.warnings.length) notes.push(result.warnings.map(line).join("; "));
  const reason: ValidReason = result.expired.length ? "ExceptionsExpired" : result.warnings.length ? "NotEnforced" : "Valid";
  return { type: "Valid", status: "True", reason, message: notes.length ? notes.join(". ") : "the policy is valid" };
}

// ------------------------------------------------------------------------------------------------ precedence

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
