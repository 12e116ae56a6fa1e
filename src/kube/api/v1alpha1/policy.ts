// The ImagePolicy (namespaced) and ClusterImagePolicy (cluster-scoped) kinds: the zod model of crds/ and
// parsePolicy, which reads a raw object into a Policy or the list of what is wrong with it.
//
// The CRD schemas are what the API server enforces (on Kubernetes 1.20 there is no CEL, so only OpenAPI types,
// enums, patterns, lengths and date-time formats). This model mirrors them and adds what a schema cannot say:
// glob syntax, label selector operators versus values, blank reasons. An exception whose expiry has passed is
// not an error: parsePolicy reports it separately so the operator can say so in status while the rest of the
// policy stays in force. The precedence that picks the deciding policy is in src/policy/.
import { z } from "zod";
import { imageGlobError } from "../../../policy/glob.js";
import { parseDuration } from "../../duration.js";
import { API_VERSION } from "./group.js";

/** The Pod annotation whose value (the mandatory reason) lets a Pod through unless the policy forbids it. */
export const BREAK_GLASS_ANNOTATION = "portcullis.dev/break-glass";
/**
 * Who may use break-glass: users allowed this verb on this resource (group GROUP) in the namespace, as a
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
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("ImagePolicy"),
  metadata: MetadataSchema,
  spec: ImagePolicySpecSchema.prefault({}),
  status: PolicyStatusSchema.optional(),
});

export const ClusterImagePolicySchema = z.object({
  apiVersion: z.literal(API_VERSION),
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
