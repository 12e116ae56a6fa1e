// The validating webhook's verdict, as a pure function: the images of one Pod (or pod template), the valid
// policies, and lookups that read only memory (the ImageScan informer cache by digest) in; whether to admit,
// the message users read in `kubectl apply` output, warnings, audit annotations and the scans to request out.
// No I/O, no clock unless `now` is left out, and linear in the number of images.
//
// Per image (docs/policy.md, "How one image is decided"):
//   1. the deciding policy: selectPolicy (exceptions first, then precedence), or the built-in default;
//   2. an active exception admits the image;
//   3. the rules of RULES, in order: deniedImages, allowedImages, requireDigest, the scan (later: vulnerability
//      thresholds). Every rule that fails is reported; the image's action is the strictest (deny > warn > allow);
//   4. the policy's mode softens: Warn turns a denial into a warning, Audit admits and records;
//   5. break-glass (the annotation with a non-blank reason, where the deciding policy allows it and the user may:
//      `breakGlassPermitted`, a SubjectAccessReview the server makes) admits an image that would still be
//      denied, and only then is it recorded (an Event, a metric, an audit annotation).
// The object is denied when any image is denied.
import type { Finding, FindingsSummary } from "../model/findings.js";
import { parseDuration } from "../kube/duration.js";
import { parseReference, type Reference } from "../image/reference.js";
import { BREAK_GLASS_ANNOTATION, BREAK_GLASS_RESOURCE, BREAK_GLASS_VERB, GROUP, type MissingScanAction, type Mode, type Policy, referenceHash, scanName, type VulnerabilityRules } from "../kube/api/v1alpha1/index.js";
import { comparePrecedence, type NamespaceInfo, policyAppliesToNamespace, selectPolicy } from "../policy/select.js";
import { compileImageGlob, type ImageGlob, matchImageGlob } from "../policy/glob.js";

// ------------------------------------------------------------------------------------------------ API

export interface ImageToJudge {
  /** Field path, e.g. `spec.template.spec.containers[0].image`. */
  field: string;
  /** The image as written in the object. */
  image: string;
  /** The manifest digest: from the reference itself, or a tag resolution. */
  digest?: string;
  /** Why there is no digest: "timeout" (or a message saying the registry did not answer in time), or an error. */
  unresolved?: string;
}

/** What the webhook does when no ImagePolicy or ClusterImagePolicy selects an image. */
export interface DefaultPolicy {
  mode: Mode;
  onMissingScan: MissingScanAction;
  requireDigest: boolean;
  /** Whether break-glass works for images only the default decides (default false, as in a policy). */
  breakGlassAllowed?: boolean;
}

/** An ImageScan for a digest, as the informer cache has it. */
export interface ScanInfo {
  name: string;
  namespace: string;
  /** status.phase: Pending | Resolving | Indexing | Indexed | Failed (absent before the controller's first write). */
  phase?: string;
  /** The reason of a False condition (AuthFailed, ManifestUnknown, …). */
  reason?: string;
  /** status.message. */
  message?: string;
  /** The ImageRepository (`namespace/name`) that asked for the scan, and when the scan was created. */
  watchedBy?: { repository: string; since?: string };
  /** status.vulnerabilities: absent until the image is matched against advisory data. */
  vulnerabilities?: FindingsSummary;
  /**
   * The findings the store keeps for the digest, loaded into memory before deciding (the server does it when a
   * policy with vulnerability rules applies); absent when they could not be loaded in time.
   */
  findings?: readonly Finding[];
}

export interface DecideInput {
  namespace: NamespaceInfo;
  images: readonly ImageToJudge[];
  /** The Pod's (or pod template's) annotations, for break-glass. */
  annotations?: Record<string, string>;
  /** Valid policies only. */
  policies: readonly Policy[];
  defaultPolicy: DefaultPolicy;
  /** The ImageScan for this digest in the request's namespace, if any. Must not do I/O. */
  scanFor(digest: string): ScanInfo | undefined;
  now?: Date;
  /** What is judged, for messages: `Pod ns/name`, `Deployment apps/v1 ns/name`. */
  kindLabel: string;
  /** A dry run creates no ImageScan; messages say so instead of promising one. */
  dryRun?: boolean;
  /**
   * Whether the requesting user may use break-glass (the server's SubjectAccessReview for BREAK_GLASS_VERB):
   * true, false, or undefined when not asked yet (treated as false: the server asks only when a verdict says
   * `breakGlassRefused: "not-permitted"`, then decides again).
   */
  breakGlassPermitted?: boolean;
  /** Who asked, for the refusal's text (the review's userInfo.username). */
  user?: string;
  /**
   * How much the texts may say (default "full"). "generic": nothing computed with the namespace's credentials —
   * no resolved digest, registry error, ImageScan name, phase message, coverage or finding — only the image as
   * written, the field, the policy and the rule in its words; the ImageScans of the namespace have the rest.
   */
  detail?: AnswerDetail;
}

/** See DecideInput.detail and docs/trust.md ("The two webhook modes"). */
export type AnswerDetail = "full" | "generic";

export type Action = MissingScanAction;

export type RuleName =
  | "exception"
  | "breakGlass"
  | "invalid-reference"
  | "denied-list"
  | "not-allowed"
  | "digest-required"
  | "scanned"
  | "scan-missing"
  | "scan-pending"
  | "scan-failed"
  | "unresolved"
  | "vulnerabilities"
  | "vulnerabilities-unknown"
  | "database-stale";

/** What one rule says about one image. `allow` results are not failures (`scanned`, or a missing scan that onMissingScan allows). */
export interface RuleResult {
  rule: RuleName;
  action: Action;
  /** One clause for messages: `matches deniedImages "docker.io/**:latest"`. */
  text: string;
  /** The clause for generic answers when `text` carries what the namespace's credentials revealed. */
  generic?: string;
}

/** The policy that decides for one image, flattened (a Policy, or the built-in default). */
export interface EffectivePolicy {
  /** `ClusterImagePolicy/name`, `ImagePolicy/ns/name` or `built-in default policy`. */
  label: string;
  policy?: Policy;
  mode: Mode;
  onMissingScan: MissingScanAction;
  requireDigest: boolean;
  allowedImages?: readonly string[];
  deniedImages?: readonly string[];
  breakGlassAllowed: boolean;
  vulnerabilities?: VulnerabilityRules;
}

export interface RuleContext {
  item: ImageToJudge;
  /** The parsed reference, with the resolved digest added when the reference has none (globs with a digest match it). */
  ref: Reference;
  /** Whether the reference as written (after any pinning) carries a digest. */
  pinned: boolean;
  /** ref.digest, when known. */
  digest?: string;
  policy: EffectivePolicy;
  /** The ImageScan for the digest (looked up once per image). */
  scan?: ScanInfo;
  now: Date;
}

/** A rule: undefined when it has nothing to say (passes, or does not apply). */
export type Rule = (ctx: RuleContext) => RuleResult | undefined;

export type Outcome = "allowed" | "denied" | "warned" | "audited";

export interface ImageVerdict {
  field: string;
  image: string;
  digest?: string;
  /** After break-glass and the mode. `audited`: admitted, recorded in auditAnnotations. */
  outcome: Outcome;
  /** The strictest rule's action, before break-glass and the mode. */
  action: Action;
  /** The rule that decided: the strictest result (the first one among equals), or exception / breakGlass. */
  rule: RuleName;
  /** Every rule result (failures and passes), in rule order. */
  results: RuleResult[];
  /** `ClusterImagePolicy/name` or `ImagePolicy/ns/name`; undefined for the built-in default. */
  policy?: string;
  mode: Mode;
  /** One line, without the field and image: what happened and why. */
  message: string;
  /** No Indexed ImageScan exists for this image (and a scan could make a difference). */
  needsScan?: boolean;
  /** The ImageScan to watch: an existing one, or the one the server will create (predicted name). */
  scan?: { name: string; namespace: string; exists: boolean };
  /** Denied although break-glass was asked for: its policy disables it, or the user may not use it. */
  breakGlassRefused?: "disabled" | "not-permitted";
}

export interface Decision {
  allowed: boolean;
  /** For a denial: one line per denied image and what to do. */
  message?: string;
  /** Admission warnings (each at most 255 characters, at most ~4 KiB in all, single lines). */
  warnings: string[];
  /** Keys are qualified-name parts without a prefix: the API server prefixes them with the webhook's name. */
  auditAnnotations: Record<string, string>;
  verdicts: ImageVerdict[];
  /** Set when break-glass admitted at least one image of an admitted object: the server records an Event and a metric. */
  breakGlass?: { reason: string; fields: string[] };
  /** Images without an Indexed ImageScan, one per digest (or image when unresolved): created after answering. */
  scansWanted: Array<{ image: string; digest?: string }>;
}

// ------------------------------------------------------------------------------------------------ rules

/** Kubernetes truncates warnings over 256 characters and drops them past 4 KiB in all. */
export const WARNING_MAX = 255;
export const WARNINGS_TOTAL_MAX = 4000;
const AUDIT_VALUE_MAX = 4096;
const SCAN_NOTE_MAX = 300;

export const AUDIT_ANNOTATION = "audit";
export const BREAK_GLASS_AUDIT_ANNOTATION = "break-glass";
export const EXCEPTION_AUDIT_ANNOTATION = "exception";

const firstMatch = (globs: readonly string[] | undefined, ref: Reference) => globs?.find((g) => matchImageGlob(g, ref));

const deniedList: Rule = ({ ref, policy }) => {
  const hit = firstMatch(policy.deniedImages, ref);
  return hit === undefined ? undefined : { rule: "denied-list", action: "deny", text: `matches deniedImages ${JSON.stringify(hit)}` };
};

const allowedList: Rule = ({ ref, policy }) => {
  const allowed = policy.allowedImages;
  // Absent or empty: no restriction (as an empty `images` selects every image).
  if (!allowed?.length || firstMatch(allowed, ref) !== undefined) return undefined;
  const shown = allowed.slice(0, 3).map((g) => JSON.stringify(g)).join(", ");
  return { rule: "not-allowed", action: "deny", text: `is not in allowedImages (${shown}${allowed.length > 3 ? `, +${allowed.length - 3} more` : ""})` };
};

const requireDigest: Rule = ({ pinned, policy }) =>
  !policy.requireDigest || pinned ? undefined : { rule: "digest-required", action: "deny", text: "is not referenced by digest and requireDigest is set: write it as name[:tag]@sha256:…" };

const TIMEOUT = /^timeout$|time(?:d)?[ -]?out|did not answer within|deadline|budget/i;

const scanRule: Rule = ({ item, digest, scan, policy, now }) => {
  const action = policy.onMissingScan;
  if (!digest) {
    const why = item.unresolved ?? "no digest";
    const text = TIMEOUT.test(why)
      ? `could not be resolved to a digest in time${why === "timeout" ? "" : ` (${clip(oneLine(why), SCAN_NOTE_MAX)})`}, so its scan cannot be checked`
      : `could not be resolved to a digest (${clip(oneLine(why), SCAN_NOTE_MAX)}), so its scan cannot be checked`;
    return { rule: "unresolved", action, text, generic: "could not be resolved to a digest, so its scan cannot be checked" };
  }
  if (!scan) return { rule: "scan-missing", action, text: "is not scanned yet" };
  switch (scan.phase) {
    case "Indexed":
      return { rule: "scanned", action: "allow", text: `is scanned (ImageScan ${scan.name} is Indexed)`, generic: "is scanned" };
    case "Failed": {
      const cause = [scan.reason, scan.message].filter(Boolean).join(": ");
      return { rule: "scan-failed", action, text: `could not be scanned (ImageScan ${scan.name} Failed${cause ? `: ${clip(oneLine(cause), SCAN_NOTE_MAX)}` : ""})`, generic: "could not be scanned" };
    }
    default: {
      const watched = scan.watchedBy ? `; scan in progress, started ${ago(scan.watchedBy.since, now)}by ImageRepository ${clip(oneLine(scan.watchedBy.repository), 254)}` : "";
      return { rule: "scan-pending", action, text: `is not scanned yet (ImageScan ${scan.name} is ${scan.phase ?? "Pending"}${watched})`, generic: "is not scanned yet" };
    }
  }
};

/** `2 min ago ` (with its space), `just now `, or nothing when the time is unknown. */
function ago(since: string | undefined, now: Date): string {
  const t = since ? Date.parse(since) : NaN;
  if (Number.isNaN(t)) return "";
  const s = Math.max(0, Math.round((now.getTime() - t) / 1000));
  if (s < 60) return s < 5 ? "just now " : `${s} s ago `;
  if (s < 3600) return `${Math.round(s / 60)} min ago `;
  return `${Math.round(s / 3600)} h ago `;
}

/** Findings named in a denial before "and N more". */
const FINDINGS_SHOWN = 3;
const POLICY_RANK: Record<string, number> = { None: 0, Negligible: 1, Low: 2, Medium: 3, High: 4, Critical: 5 };
/** A finding's severity on the policy scale: Unknown sits just above None (it fails only `maxSeverity: None`). */
const FINDING_RANK: Record<string, number> = { Unknown: 0.5, Negligible: 1, Low: 2, Medium: 3, High: 4, Critical: 5 };

/** Whether an allowedIds entry covers a finding for this image now. */
function allows(rules: VulnerabilityRules, f: Finding, ref: Reference, now: Date): boolean {
  return (rules.allowedIds ?? []).some((a) =>
    Date.parse(a.expires) > now.getTime() && (a.id === f.id || (f.aliases?.includes(a.id) ?? false)) && (!a.images?.length || a.images.some((g) => matchImageGlob(g, ref))));
}

function findingText(f: Finding): string {
  return `${f.id} (${f.severity}, ${f.package} ${f.version}${f.fixedIn !== undefined ? `, fixed in ${f.fixedIn}` : ", no fix"})`;
}

/**
 * The vulnerability rules: only once the scan is Indexed (before that the scan rule decides). Reads the
 * status summary and the findings in memory; never the store.
 */
const vulnerabilityRule: Rule = ({ scan, policy, ref, now, digest }) => {
  const rules = policy.vulnerabilities;
  if (!rules || scan?.phase !== "Indexed") return undefined;
  const summary = scan.vulnerabilities;
  const results: RuleResult[] = [];
  if (!summary) {
    return { rule: "vulnerabilities-unknown", action: rules.onUnsupportedDistribution, text: `has not been matched against advisory data (ImageScan ${scan.name} has no vulnerabilities yet: the store has none, or matching failed)`, generic: "has not been matched against advisory data" };
  }
  if (summary.coverage === "unsupported" || summary.coverage === "no_data" || summary.coverage === "end_of_life") {
    results.push({ rule: "vulnerabilities-unknown", action: rules.onUnsupportedDistribution, text: `is not covered by the advisory data (${clip(oneLine(summary.coverageMessage), SCAN_NOTE_MAX)})`, generic: "is not covered by the advisory data" });
  }
  if (rules.maxDatabaseAge !== undefined && summary.databaseUpdatedAt) {
    const age = now.getTime() - Date.parse(summary.databaseUpdatedAt);
    const max = parseDuration(rules.maxDatabaseAge)!;
    if (age > max) results.push({ rule: "database-stale", action: rules.onStaleDatabase, text: `was matched against advisory data last updated ${summary.databaseUpdatedAt}, older than maxDatabaseAge ${rules.maxDatabaseAge}`, generic: `was matched against advisory data older than maxDatabaseAge ${rules.maxDatabaseAge}` });
  }
  const denied = new Set(rules.deniedIds ?? []);
  const threshold = rules.maxSeverity !== undefined ? POLICY_RANK[rules.maxSeverity]! : Infinity;
  if (!denied.size && threshold === Infinity) return pickStrictest(results);
  const findings = scan.findings;
  if (!findings) {
    // The counts alone can still decide a plain threshold with nothing to overlook.
    const counted = !denied.size && !rules.fixableOnly && !rules.allowedIds?.length ? countAbove(summary, threshold) : undefined;
    if (counted === 0) return pickStrictest(results);
    results.push({
      rule: "vulnerabilities", action: counted === undefined ? policy.onMissingScan : "deny",
      generic: counted === undefined ? "has vulnerabilities whose list could not be read in time, so the policy's vulnerability rules cannot be checked" : `has vulnerabilities above maxSeverity ${rules.maxSeverity}`,
      text: counted === undefined
        ? `has vulnerabilities whose list could not be read in time (ImageScan ${scan.name}: ${summary.critical} critical, ${summary.high} high), so the policy's vulnerability rules cannot be checked`
        : `has ${counted} vulnerabilit${counted === 1 ? "y" : "ies"} above maxSeverity ${rules.maxSeverity} (ImageScan ${scan.name}: ${summary.critical} critical, ${summary.high} high)`,
    });
    return pickStrictest(results);
  }
  const failing: Finding[] = [];
  const seen = new Set<string>();
  for (const f of findings) {
    const named = denied.has(f.id) || (f.aliases?.some((a) => denied.has(a)) ?? false);
    const above = FINDING_RANK[f.severity]! > threshold && (!rules.fixableOnly || f.fixedIn !== undefined);
    if (!named && !above) continue;
    if (!named && allows(rules, f, ref, now)) continue;
    const key = `${f.id}\0${f.package}`;
    if (seen.has(key)) continue;
    seen.add(key);
    failing.push(f);
  }
  if (failing.length) {
    const ids = new Set(failing.map((f) => f.id));
    const what = [
      rules.maxSeverity !== undefined ? `above maxSeverity ${rules.maxSeverity}${rules.fixableOnly ? " with a fix" : ""}` : "",
      denied.size ? "in deniedIds" : "",
    ].filter(Boolean).join(" or ");
    const shown = failing.slice(0, FINDINGS_SHOWN).map(findingText).join(", ");
    const more = failing.length > FINDINGS_SHOWN ? ` and ${failing.length - FINDINGS_SHOWN} more: kubectl get scan -n ${scan.namespace} ${scan.name}; portcullis report ${digest ?? "DIGEST"} --vulns` : "";
    results.push({ rule: "vulnerabilities", action: "deny", text: `has ${ids.size} vulnerabilit${ids.size === 1 ? "y" : "ies"} ${what}: ${shown}${more}`, generic: `has vulnerabilities ${what}` });
  }
  return pickStrictest(results);
};

function countAbove(s: FindingsSummary, threshold: number): number {
  const bySeverity: Array<[number, number]> = [[5, s.critical], [4, s.high], [3, s.medium], [2, s.low], [1, s.negligible], [0.5, s.unknown]];
  return bySeverity.filter(([rank]) => rank > threshold).reduce((n, [, c]) => n + c, 0);
}

/** Several vulnerability results become one: the strictest action, every clause. */
function pickStrictest(results: RuleResult[]): RuleResult | undefined {
  if (!results.length) return undefined;
  let top = results[0]!;
  for (const r of results) if (SEVERITY[r.action] > SEVERITY[top.action]) top = r;
  const generic = results.some((r) => r.generic !== undefined) ? { generic: results.map((r) => r.generic ?? r.text).join("; ") } : {};
  return { rule: top.rule, action: top.action, text: results.map((r) => r.text).join("; "), ...generic };
}

/**
 * The per-image rules of the deciding policy, in the order docs/policy.md gives; vulnerability rules last.
 */
export const RULES: readonly Rule[] = [deniedList, allowedList, requireDigest, scanRule, vulnerabilityRule];

const SEVERITY: Record<Action, number> = { allow: 0, warn: 1, deny: 2 };
/** Results that mean the image is refused whatever a scan says: scanning it would change nothing. */
const LIST_RULES = new Set<RuleName>(["denied-list", "not-allowed"]);
/** Results that waiting (for a scan or a resolution) can fix. */
const WAITING_RULES = new Set<RuleName>(["scan-missing", "scan-pending", "unresolved"]);
/** Results of the scan rule that are not a pass. */
const SCAN_RULES = new Set<RuleName>([...WAITING_RULES, "scan-failed"]);

// ------------------------------------------------------------------------------------------------ decide

/** `ClusterImagePolicy/name` or `ImagePolicy/ns/name`, as messages name policies. */
export function policyLabel(policy: Policy): string {
  return policy.kind === "ImagePolicy" ? `ImagePolicy/${policy.metadata.namespace ?? ""}/${policy.metadata.name}` : `ClusterImagePolicy/${policy.metadata.name}`;
}

const DEFAULT_LABEL = "built-in default policy";

function effective(policy: Policy): EffectivePolicy {
  const s = policy.spec;
  return {
    label: policyLabel(policy), policy, mode: s.mode, onMissingScan: s.onMissingScan, requireDigest: s.requireDigest,
    allowedImages: s.allowedImages, deniedImages: s.deniedImages, breakGlassAllowed: s.breakGlass.allowed,
    ...(s.vulnerabilities ? { vulnerabilities: s.vulnerabilities } : {}),
  };
}

function effectiveDefault(d: DefaultPolicy): EffectivePolicy {
  return { label: DEFAULT_LABEL, mode: d.mode, onMissingScan: d.onMissingScan, requireDigest: d.requireDigest, breakGlassAllowed: d.breakGlassAllowed ?? false };
}

export function decide(input: DecideInput): Decision {
  const now = input.now ?? new Date();
  const ns = input.namespace;
  const rawBreakGlass = input.annotations?.[BREAK_GLASS_ANNOTATION];
  const breakGlassReason = rawBreakGlass !== undefined && /\S/.test(rawBreakGlass) ? clip(oneLine(rawBreakGlass.trim()), 512) : undefined;
  const defaultPolicy = effectiveDefault(input.defaultPolicy);
  const glass = breakGlassReason === undefined ? undefined : { reason: breakGlassReason, permitted: input.breakGlassPermitted === true };
  const detail = input.detail ?? "full";
  let catchAll: EffectivePolicy | undefined;

  const verdicts: ImageVerdict[] = [];
  for (const item of input.images) {
    let parsed: Reference;
    try {
      parsed = parseReference(item.image);
    } catch (e) {
      // No glob can select what cannot be parsed: the policy that selects every image decides (the kubelet would refuse it too).
      catchAll ??= catchAllPolicy(input.policies, ns) ?? defaultPolicy;
      verdicts.push(judged(item, undefined, catchAll, [{ rule: "invalid-reference", action: "deny", text: `is not a valid image reference: ${clip(oneLine((e as Error).message), SCAN_NOTE_MAX)}` }], glass, detail));
      continue;
    }
    const digest = parsed.digest ?? item.digest;
    const ref: Reference = digest && !parsed.digest ? { ...parsed, digest } : parsed;
    const scan = digest ? input.scanFor(digest) : undefined;
    const chosen = selectPolicy(input.policies, ref, ns, now);

    if (chosen?.via === "exception") {
      const label = policyLabel(chosen.policy);
      const ex = chosen.exception;
      verdicts.push({
        field: item.field, image: item.image, ...(digest ? { digest } : {}), outcome: "allowed", action: "allow", rule: "exception", results: [],
        policy: label, mode: chosen.policy.spec.mode,
        message: `admitted by ${label} spec.exceptions[${chosen.index}] until ${ex.expires}: ${oneLine(ex.reason)}`,
        ...scanToWatch(scan?.phase === "Indexed" ? undefined : { parsed, digest, scan, ns: ns.name }),
      });
      continue;
    }

    const policy = chosen ? effective(chosen.policy) : defaultPolicy;
    const ctx: RuleContext = { item, ref, pinned: parsed.digest !== undefined, policy, now, ...(digest ? { digest } : {}), ...(scan ? { scan } : {}) };
    const results: RuleResult[] = [];
    for (const rule of RULES) {
      const r = rule(ctx);
      if (r) results.push(r);
    }
    const v = judged(item, digest, policy, results, glass, detail);
    const listDenied = results.some((r) => LIST_RULES.has(r.rule));
    if (scan?.phase !== "Indexed" && !listDenied) Object.assign(v, scanToWatch({ parsed, digest, scan, ns: ns.name }));
    verdicts.push(v);
  }

  return assemble(input, verdicts, breakGlassReason, rawBreakGlass !== undefined);
}

/** The valid policies that apply to the namespace and select every image (`images` absent, empty or with `**`), best first. */
function catchAllPolicy(policies: readonly Policy[], ns: NamespaceInfo): EffectivePolicy | undefined {
  const all: ImageGlob = compileImageGlob("**");
  const candidates = policies
    .filter((p) => policyAppliesToNamespace(p, ns) && (!p.spec.images?.length || p.spec.images.includes("**")))
    .map((policy) => ({ policy, glob: all }))
    .sort(comparePrecedence);
  return candidates[0] ? effective(candidates[0].policy) : undefined;
}

function scanToWatch(o: { parsed: Reference; digest: string | undefined; scan: ScanInfo | undefined; ns: string } | undefined): Pick<ImageVerdict, "needsScan" | "scan"> {
  if (!o) return {};
  if (o.scan) return { needsScan: true, scan: { name: o.scan.name, namespace: o.scan.namespace, exists: true } };
  // The name ensureImageScan will give it (when someone else's scan holds that name, a generated one: rare).
  const name = scanName(o.parsed, o.digest ?? `sha256:${referenceHash(o.parsed)}`);
  return { needsScan: true, scan: { name, namespace: o.ns, exists: false } };
}

/** The verdict of one image from its rule results: strictest action, then break-glass, then the mode. */
function judged(item: ImageToJudge, digest: string | undefined, policy: EffectivePolicy, results: RuleResult[], glass: { reason: string; permitted: boolean } | undefined, detail: AnswerDetail): ImageVerdict {
  let top: RuleResult | undefined;
  for (const r of results) if (!top || SEVERITY[r.action] > SEVERITY[top.action]) top = r;
  const action = top?.action ?? "allow";
  // After a list refusal the scan is neither requested nor able to help: leave it out of the text (not of `results`).
  const listed = results.some((r) => r.action !== "allow" && LIST_RULES.has(r.rule));
  const failures = results.filter((r) => r.action !== "allow" && !(listed && SCAN_RULES.has(r.rule)));
  const base = {
    field: item.field, image: item.image, ...(digest ? { digest } : {}), action, results,
    ...(policy.policy ? { policy: policy.label } : {}), mode: policy.mode,
  };
  const why = (failures.length ? failures : results).map((r) => (detail === "generic" ? r.generic ?? r.text : r.text)).join("; ");
  if (action === "allow") return { ...base, outcome: "allowed", rule: top?.rule ?? "scanned", message: why };
  const outcome: Outcome = policy.mode === "Audit" ? "audited" : action === "deny" && policy.mode === "Enforce" ? "denied" : "warned";
  // Break-glass only counts where it changes something: an image the policy would keep out.
  if (outcome === "denied" && glass) {
    if (policy.breakGlassAllowed && glass.permitted) return { ...base, outcome: "allowed", rule: "breakGlass", message: `admitted by break-glass (${glass.reason}); it ${why}` };
    return { ...base, outcome, rule: top!.rule, message: why, breakGlassRefused: policy.breakGlassAllowed ? "not-permitted" : "disabled" };
  }
  return { ...base, outcome, rule: top!.rule, message: why };
}

// ------------------------------------------------------------------------------------------------ messages

function assemble(input: DecideInput, verdicts: ImageVerdict[], breakGlassReason: string | undefined, breakGlassPresent: boolean): Decision {
  const denied = verdicts.filter((v) => v.outcome === "denied");
  const allowed = denied.length === 0;
  const decision: Decision = { allowed, warnings: [], auditAnnotations: {}, verdicts, scansWanted: [] };
  const detail = input.detail ?? "full";

  const wanted = new Set<string>();
  for (const v of verdicts) {
    if (!v.needsScan) continue;
    const key = v.digest ?? v.image;
    if (wanted.has(key)) continue;
    wanted.add(key);
    decision.scansWanted.push({ image: v.image, ...(v.digest ? { digest: v.digest } : {}) });
  }

  if (!allowed) decision.message = denialMessage(input, verdicts, denied, breakGlassReason, breakGlassPresent);

  const glass = allowed ? verdicts.filter((v) => v.rule === "breakGlass") : [];
  if (glass.length && breakGlassReason !== undefined) {
    decision.breakGlass = { reason: breakGlassReason, fields: glass.map((v) => v.field) };
    decision.auditAnnotations[BREAK_GLASS_AUDIT_ANNOTATION] = clip(`${breakGlassReason} (admitted: ${glass.map((v) => `${v.field} ${shown(v, detail)}`).join(", ")})`, AUDIT_VALUE_MAX);
  }
  const audited = verdicts.filter((v) => v.outcome === "audited");
  if (audited.length) {
    decision.auditAnnotations[AUDIT_ANNOTATION] = clip(audited.map((v) => `${v.field} ${shown(v, detail)}: ${v.message} (${v.policy ?? DEFAULT_LABEL}, Audit: would ${v.action === "deny" ? "deny" : "warn"})`).join("; "), AUDIT_VALUE_MAX);
  }
  const excepted = verdicts.filter((v) => v.rule === "exception");
  if (excepted.length) decision.auditAnnotations[EXCEPTION_AUDIT_ANNOTATION] = clip(excepted.map((v) => `${v.field} ${shown(v, detail)}: ${v.message}`).join("; "), AUDIT_VALUE_MAX);

  decision.warnings = warningsFor(input, verdicts, decision.breakGlass);
  return decision;
}

/** The deciding policy, and the onMissingScan action when the scan rule decided. */
function policyNote(v: ImageVerdict, long: boolean): string {
  const name = v.policy ?? (long ? `${DEFAULT_LABEL}: no ImagePolicy or ClusterImagePolicy selects it` : DEFAULT_LABEL);
  return SCAN_RULES.has(v.rule) ? `${name}, onMissingScan: ${v.action}` : name;
}

/** The image as written, with the digest appended when the reference does not carry it (a resolved one: full answers only). */
function shown(v: { image: string; digest?: string }, detail: AnswerDetail): string {
  return v.digest && !v.image.includes("@") && detail === "full" ? `${v.image}@${v.digest}` : v.image;
}

function scanHint(v: ImageVerdict, dryRun: boolean, detail: AnswerDetail): string {
  if (!v.scan || !SCAN_RULES.has(v.rule)) return "";
  // The scan's name is made of the digest: a generic answer points at the namespace's scans instead.
  if (detail === "generic") return dryRun ? " (dry run: no ImageScan is created)" : ` Its ImageScan, status and Events: kubectl get imagescans -n ${v.scan.namespace}`;
  const cmd = `kubectl get scan -n ${v.scan.namespace} ${v.scan.name}`;
  if (v.scan.exists) return ` Watch it: ${cmd}`;
  if (dryRun) return " (dry run: no ImageScan is created)";
  return ` Portcullis is creating ImageScan ${v.scan.name}; watch it: ${cmd}`;
}

function denialMessage(input: DecideInput, verdicts: ImageVerdict[], denied: ImageVerdict[], breakGlassReason: string | undefined, breakGlassPresent: boolean): string {
  const dryRun = input.dryRun ?? false;
  const detail = input.detail ?? "full";
  const lines = [`${input.kindLabel}: Portcullis refused ${denied.length} of ${verdicts.length} image${verdicts.length === 1 ? "" : "s"}:`];
  for (const v of denied) {
    const glassOff = v.breakGlassRefused === "disabled" ? "; break-glass is disabled for it"
      : v.breakGlassRefused === "not-permitted" ? `; break-glass needs permission: ${input.user ? `user ${JSON.stringify(clip(oneLine(input.user), 100))}` : "the user"} may not ${BREAK_GLASS_VERB} ${BREAK_GLASS_RESOURCE}.${GROUP} in namespace ${input.namespace.name}`
        : "";
    lines.push(`- ${v.field}: ${shown(v, detail)} ${v.message} [${policyNote(v, true)}${glassOff}].${scanHint(v, dryRun, detail)}`);
  }
  const waiting = denied.filter((v) => WAITING_RULES.has(v.rule)).length;
  if (waiting) {
    const lead = waiting === denied.length ? "Nothing else to do" : "For the images waiting on a scan, nothing else to do";
    lines.push(`${lead}: controllers retry on their own, so a Deployment (StatefulSet, Job, …) becomes Ready once its scans are Indexed; a bare Pod must be created again then.`);
  }
  if (breakGlassPresent && breakGlassReason === undefined) {
    lines.push(`The ${BREAK_GLASS_ANNOTATION} annotation is empty and does not count: it needs a reason, e.g. ${BREAK_GLASS_ANNOTATION}: "INC-123: hotfix".`);
  }
  return lines.join("\n");
}

function warningsFor(input: DecideInput, verdicts: ImageVerdict[], breakGlass: Decision["breakGlass"]): string[] {
  const detail = input.detail ?? "full";
  const items: string[] = [];
  if (breakGlass) items.push(warning(`admitted by break-glass (${breakGlass.reason}), recorded: ${breakGlass.fields.join(", ")}`));
  for (const v of verdicts) {
    if (v.outcome !== "warned") continue;
    const soft = v.action === "deny" ? "; Warn mode: would be denied" : "";
    const hint = v.scan && !v.scan.exists && !input.dryRun && WAITING_RULES.has(v.rule) ? (detail === "generic" ? "; requested its ImageScan" : `; requested ImageScan ${v.scan.name}`) : "";
    items.push(warning(`${v.field}: ${abbreviated(v, detail)} ${v.message} [${policyNote(v, false)}${soft}]${hint}`));
  }
  // Kubernetes keeps about 4 KiB of warnings per response: say how many did not fit instead of losing them silently.
  const out: string[] = [];
  let total = 0;
  for (const [i, w] of items.entries()) {
    const rest = items.length - i - 1;
    const reserve = rest > 0 ? 80 : 0;
    if (total + runes(w) + reserve > WARNINGS_TOTAL_MAX) {
      out.push(warning(`${items.length - i} more image warning${items.length - i === 1 ? "" : "s"} not shown (Kubernetes limits warnings to 4 KiB)`));
      break;
    }
    out.push(w);
    total += runes(w);
  }
  return out;
}

/** The image with its digest cut to 12 hex digits (warnings are short). */
function abbreviated(v: { image: string; digest?: string }, detail: AnswerDetail): string {
  if (detail === "generic") return v.image;
  const at = v.image.indexOf("@");
  const name = at >= 0 ? v.image.slice(0, at) : v.image;
  return v.digest ? `${name}@${v.digest.slice(0, v.digest.indexOf(":") + 13)}…` : v.image;
}

function warning(text: string): string {
  return clip(`Portcullis: ${oneLine(text)}`, WARNING_MAX);
}

/** Control characters (newlines included) make the API server drop a warning. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]+/g, " ");
}

function runes(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** At most `max` code points, ending in "..." when cut. */
function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const cps = Array.from(s);
  return cps.length <= max ? s : `${cps.slice(0, max - 3).join("")}...`;
}
