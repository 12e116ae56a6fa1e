import { describe, expect, it } from "vitest";
import { parseReference } from "../image/reference.js";
import type { Finding, FindingsSummary } from "../model/findings.js";
import { decide, RULES, WARNING_MAX, type DecideInput, type ImageToJudge, type ScanInfo } from "./decide.js";
import { parsePolicy, type Policy, referenceHash, scanName } from "../kube/api/v1alpha1/index.js";

const NOW = new Date("2026-06-01T00:00:00Z");
const FUTURE = "2027-01-01T00:00:00Z";
const PAST = "2026-01-01T00:00:00Z";
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const DA = digest("a");
const DB = digest("b");
const DC = digest("c");
const NS = { name: "team", labels: { env: "prod" } };
const APP = "registry.example.com/team/app:1.0";

function policy(kind: "ImagePolicy" | "ClusterImagePolicy", name: string, spec: Record<string, unknown>, namespace = "team"): Policy {
  const r = parsePolicy({ apiVersion: "portcullis.dev/v1alpha1", kind, metadata: kind === "ImagePolicy" ? { name, namespace } : { name }, spec }, { now: NOW });
  if (!r.ok) throw new Error(`invalid test policy: ${JSON.stringify(r.errors)}`);
  return r.policy;
}
const cip = (name: string, spec: Record<string, unknown> = {}) => policy("ClusterImagePolicy", name, spec);
const ip = (name: string, spec: Record<string, unknown> = {}, namespace = "team") => policy("ImagePolicy", name, spec, namespace);

const scan = (phase: string | undefined, name = "app-aaaaaaaaaaaa", extra: Partial<ScanInfo> = {}): ScanInfo => ({ name, namespace: "team", ...(phase ? { phase } : {}), ...extra });

interface Setup extends Partial<Omit<DecideInput, "scanFor">> {
  scans?: Record<string, ScanInfo>;
}

function run(s: Setup = {}) {
  const calls: string[] = [];
  const input: DecideInput = {
    namespace: s.namespace ?? NS,
    images: s.images ?? [{ field: "spec.containers[0].image", image: APP, digest: DA }],
    policies: s.policies ?? [],
    defaultPolicy: s.defaultPolicy ?? { mode: "Enforce", onMissingScan: "deny", requireDigest: false },
    scanFor: (d) => {
      calls.push(d);
      return s.scans?.[d];
    },
    now: s.now ?? NOW,
    kindLabel: s.kindLabel ?? "Pod team/web",
    ...(s.annotations ? { annotations: s.annotations } : {}),
    ...(s.dryRun !== undefined ? { dryRun: s.dryRun } : {}),
    // The user's SubjectAccessReview for break-glass: granted unless a test says otherwise.
    breakGlassPermitted: "breakGlassPermitted" in s ? s.breakGlassPermitted : true,
    ...(s.user !== undefined ? { user: s.user } : {}),
    ...(s.detail !== undefined ? { detail: s.detail } : {}),
  };
  return { d: decide(input), calls };
}

const indexed = { [DA]: scan("Indexed") };
/** The built-in default with break-glass turned on (serve --break-glass=true). */
const GLASS_DEFAULT = { mode: "Enforce", onMissingScan: "deny", requireDigest: false, breakGlassAllowed: true } as const;
const img = (i: number, image: string, d?: string, extra: Partial<ImageToJudge> = {}): ImageToJudge => ({ field: `spec.containers[${i}].image`, image, ...(d ? { digest: d } : {}), ...extra });

describe("decide: no policy, the built-in default", () => {
  it("denies an unscanned image and says the default decided", () => {
    const { d } = run();
    expect(d.allowed).toBe(false);
    expect(d.verdicts[0]).toMatchObject({ outcome: "denied", rule: "scan-missing", action: "deny", mode: "Enforce", needsScan: true });
    expect(d.verdicts[0]!.policy).toBeUndefined();
    expect(d.message).toContain("built-in default policy: no ImagePolicy or ClusterImagePolicy selects it, onMissingScan: deny");
  });

  it.each([
    ["deny", false, 0],
    ["warn", true, 1],
    ["allow", true, 0],
  ] as const)("default onMissingScan %s: allowed=%s, %i warning(s)", (onMissingScan, allowed, warnings) => {
    const { d } = run({ defaultPolicy: { mode: "Enforce", onMissingScan, requireDigest: false } });
    expect(d.allowed).toBe(allowed);
    expect(d.warnings).toHaveLength(warnings);
    expect(d.scansWanted).toEqual([{ image: APP, digest: DA }]);
  });

  it("applies the default's requireDigest", () => {
    const { d } = run({ defaultPolicy: { mode: "Enforce", onMissingScan: "allow", requireDigest: true }, scans: indexed });
    expect(d.allowed).toBe(false);
    expect(d.verdicts[0]!.rule).toBe("digest-required");
  });

  it("lets the default forbid break-glass", () => {
    const { d } = run({ defaultPolicy: { mode: "Enforce", onMissingScan: "deny", requireDigest: false, breakGlassAllowed: false }, annotations: { "portcullis.dev/break-glass": "INC-1" } });
    expect(d.allowed).toBe(false);
    expect(d.message).toContain("break-glass is disabled for it");
  });
});

describe("decide: the scan rule", () => {
  it("admits an image with an Indexed ImageScan for its digest by the scanned rule", () => {
    const { d, calls } = run({ policies: [cip("default")], scans: indexed });
    expect(d).toMatchObject({ allowed: true, warnings: [], auditAnnotations: {}, scansWanted: [] });
    expect(d.message).toBeUndefined();
    expect(d.verdicts[0]).toMatchObject({ outcome: "allowed", rule: "scanned", policy: "ClusterImagePolicy/default" });
    expect(d.verdicts[0]!.needsScan).toBeUndefined();
    expect(calls).toEqual([DA]);
  });

  it.each([
    ["deny", "denied", false, 0],
    ["warn", "warned", true, 1],
    ["allow", "allowed", true, 0],
  ] as const)("missing scan with onMissingScan %s -> %s", (onMissingScan, outcome, allowed, warnings) => {
    const { d } = run({ policies: [cip("default", { onMissingScan })] });
    expect(d.allowed).toBe(allowed);
    expect(d.verdicts[0]).toMatchObject({ outcome, rule: "scan-missing", action: onMissingScan, needsScan: true });
    expect(d.warnings).toHaveLength(warnings);
    // A scan is queued whatever the action.
    expect(d.scansWanted).toEqual([{ image: APP, digest: DA }]);
  });

  it("names the scan it creates (the name ensureImageScan gives it) and says controllers retry", () => {
    const { d } = run({ policies: [cip("default")] });
    const name = scanName(parseReference(APP), DA);
    expect(d.verdicts[0]!.scan).toEqual({ name, namespace: "team", exists: false });
    expect(d.message).toContain(`Portcullis is creating ImageScan ${name}; watch it: kubectl get scan -n team ${name}`);
    expect(d.message).toMatch(/\nNothing else to do: controllers retry on their own, so a Deployment .* becomes Ready once its scans are Indexed/);
    expect(d.message).toContain(`${APP}@${DA}`);
    expect(d.message).toContain("spec.containers[0].image");
    expect(d.message).toContain("ClusterImagePolicy/default, onMissingScan: deny");
  });

  it("says a watched repository's scan is in progress, who started it and when", () => {
    const watchedBy = { repository: "team/api", since: new Date(NOW.getTime() - 2 * 60_000).toISOString() };
    const { d } = run({ scans: { [DA]: scan("Indexing", "api-aaaaaaaaaaaa", { watchedBy }) } });
    expect(d.allowed).toBe(false);
    expect(d.message).toContain("is not scanned yet (ImageScan api-aaaaaaaaaaaa is Indexing; scan in progress, started 2 min ago by ImageRepository team/api)");
    const fresh = run({ scans: { [DA]: scan(undefined, "api-aaaaaaaaaaaa", { watchedBy: { repository: "team/api", since: NOW.toISOString() } }) } }).d;
    expect(fresh.message).toContain("scan in progress, started just now by ImageRepository team/api");
  });

  it("on a dry run says no scan is created", () => {
    const { d } = run({ dryRun: true });
    expect(d.message).toContain("dry run: no ImageScan is created");
    expect(d.message).not.toContain("is creating");
  });

  it.each(["Pending", "Resolving", "Indexing", undefined])("a scan in phase %s is not enough; the message points at it", (phase) => {
    const { d } = run({ scans: { [DA]: scan(phase, "app-existing") } });
    expect(d.allowed).toBe(false);
    expect(d.verdicts[0]).toMatchObject({ rule: "scan-pending", scan: { name: "app-existing", namespace: "team", exists: true }, needsScan: true });
    expect(d.message).toContain(`is not scanned yet (ImageScan app-existing is ${phase ?? "Pending"})`);
    expect(d.message).toContain("Watch it: kubectl get scan -n team app-existing");
    expect(d.message).toContain("controllers retry on their own");
    expect(d.scansWanted).toEqual([{ image: APP, digest: DA }]);
  });

  it("a Failed scan: the reason and message are in the denial, without promising a retry", () => {
    const { d } = run({ scans: { [DA]: scan("Failed", "app-failed", { reason: "AuthFailed", message: "401 from registry.example.com" }) } });
    expect(d.allowed).toBe(false);
    expect(d.verdicts[0]!.rule).toBe("scan-failed");
    expect(d.message).toContain("could not be scanned (ImageScan app-failed Failed: AuthFailed: 401 from registry.example.com)");
    expect(d.message).toContain("kubectl get scan -n team app-failed");
    expect(d.message).not.toContain("controllers retry");
  });

  it("a Failed scan under onMissingScan warn is a warning with the reason", () => {
    const { d } = run({ policies: [cip("soft", { onMissingScan: "warn" })], scans: { [DA]: scan("Failed", "x", { reason: "ManifestUnknown" }) } });
    expect(d.allowed).toBe(true);
    expect(d.warnings[0]).toContain("ManifestUnknown");
  });

  it.each([
    ["timeout", /could not be resolved to a digest in time, so its scan cannot be checked/],
    ["the registry did not answer within the webhook's 3500 ms budget", /could not be resolved to a digest in time \(the registry did not answer within the webhook's 3500 ms budget\)/],
    ["MANIFEST_UNKNOWN: manifest unknown", /could not be resolved to a digest \(MANIFEST_UNKNOWN: manifest unknown\)/],
  ])("an unresolved digest (%s) gets the policy's decision with a message that says so", (unresolved, re) => {
    const image = "registry.example.com/team/app:2.0";
    const { d, calls } = run({ images: [img(0, image, undefined, { unresolved })] });
    expect(calls).toEqual([]);
    expect(d.allowed).toBe(false);
    expect(d.verdicts[0]).toMatchObject({ rule: "unresolved", needsScan: true });
    expect(d.message).toMatch(re);
    const ref = parseReference(image);
    const name = scanName(ref, `sha256:${referenceHash(ref)}`);
    expect(d.message).toContain(`kubectl get scan -n team ${name}`);
    expect(d.scansWanted).toEqual([{ image }]);
  });

  it("an unresolved digest under onMissingScan allow is admitted", () => {
    const { d } = run({ policies: [cip("lenient", { onMissingScan: "allow" })], images: [img(0, APP, undefined, { unresolved: "timeout" })] });
    expect(d.allowed).toBe(true);
    expect(d.verdicts[0]).toMatchObject({ outcome: "allowed", rule: "unresolved" });
  });

  it("takes the digest from the reference itself", () => {
    const image = `registry.example.com/team/app@${DA}`;
    const { d } = run({ images: [img(0, image)], scans: indexed });
    expect(d.allowed).toBe(true);
    expect(d.verdicts[0]!.digest).toBe(DA);
  });

  it("does not repeat a digest the reference already carries", () => {
    const image = `registry.example.com/team/app:1.0@${DA}`;
    const { d } = run({ images: [img(0, image, DA)] });
    expect(d.message).toContain(`${image} is not scanned yet`);
    expect(d.message).not.toContain(`${DA}@${DA}`);
  });
});

describe("decide: allowed and denied lists, requireDigest", () => {
  it.each<[string, Record<string, unknown>, string, string | undefined]>([
    ["denied registry", { deniedImages: ["docker.io/**"] }, "nginx:1.25", "denied-list"],
    ["denied repository glob", { deniedImages: ["registry.example.com/team/*"] }, APP, "denied-list"],
    ["denied tag glob", { deniedImages: ["docker.io/**:latest"] }, "nginx", "denied-list"],
    ["denied tag glob, other tag", { deniedImages: ["docker.io/**:latest"] }, "nginx:1.25", undefined],
    ["denied digest glob matches a tag resolved to it", { deniedImages: [`registry.example.com/team/app@${DA}`] }, APP, "denied-list"],
    ["allowed registry", { allowedImages: ["registry.example.com/**"] }, APP, undefined],
    ["allowed repository glob", { allowedImages: ["registry.example.com/team/*"] }, APP, undefined],
    ["not in allowed registry", { allowedImages: ["registry.example.com/**"] }, "ghcr.io/org/app:1", "not-allowed"],
    ["not in allowed repository glob", { allowedImages: ["registry.example.com/other/*"] }, APP, "not-allowed"],
    ["empty allowedImages restricts nothing", { allowedImages: [] }, APP, undefined],
    ["deny wins over allow", { allowedImages: ["registry.example.com/**"], deniedImages: ["registry.example.com/team/**"] }, APP, "denied-list"],
  ])("%s", (_, spec, image, rule) => {
    const { d } = run({ policies: [cip("lists", spec)], images: [img(0, image, DA)], scans: indexed });
    if (rule === undefined) {
      expect(d.allowed).toBe(true);
      expect(d.verdicts[0]!.rule).toBe("scanned");
    } else {
      expect(d.allowed).toBe(false);
      expect(d.verdicts[0]!.rule).toBe(rule);
    }
  });

  it("quotes the glob that denied and the allowed globs", () => {
    const denied = run({ policies: [cip("lists", { deniedImages: ["docker.io/**:latest"] })], images: [img(0, "nginx", DA)], scans: indexed }).d;
    expect(denied.message).toContain('spec.containers[0].image: nginx@' + DA + ' matches deniedImages "docker.io/**:latest" [ClusterImagePolicy/lists]');
    const notAllowed = run({ policies: [cip("lists", { allowedImages: ["a.example.com/**", "b.example.com/**", "c.example.com/**", "d.example.com/**"] })], scans: indexed }).d;
    expect(notAllowed.message).toContain('is not in allowedImages ("a.example.com/**", "b.example.com/**", "c.example.com/**", +1 more)');
  });

  it("an image refused by a list gets no scan and no hint to wait, but every failure is reported", () => {
    const { d } = run({ policies: [cip("lists", { deniedImages: ["registry.example.com/**"] })] });
    expect(d.verdicts[0]!.results.map((r) => r.rule)).toEqual(["denied-list", "scan-missing"]);
    expect(d.verdicts[0]!.message).toBe('matches deniedImages "registry.example.com/**"');
    expect(d.verdicts[0]!.needsScan).toBeUndefined();
    expect(d.scansWanted).toEqual([]);
    expect(d.message).not.toContain("kubectl get scan");
    expect(d.message).not.toContain("controllers retry");
  });

  it("deny beats warn: the list decides over a scan that would only warn", () => {
    const { d } = run({ policies: [cip("lists", { deniedImages: ["registry.example.com/**"], onMissingScan: "warn" })] });
    expect(d.verdicts[0]).toMatchObject({ outcome: "denied", rule: "denied-list" });
  });

  it("every failure is reported: requireDigest and a missing scan together", () => {
    const { d } = run({ policies: [cip("pinned", { requireDigest: true })] });
    expect(d.verdicts[0]).toMatchObject({ rule: "digest-required", needsScan: true });
    expect(d.verdicts[0]!.message).toBe("is not referenced by digest and requireDigest is set: write it as name[:tag]@sha256:…; is not scanned yet");
    // Waiting does not fix a missing digest: no promise that controllers will get through.
    expect(d.message).not.toContain("controllers retry");
  });

  it.each([
    ["a tag, resolved and scanned", APP, false],
    ["a digest", `registry.example.com/team/app@${DA}`, true],
    ["a tag and a digest", `registry.example.com/team/app:1.0@${DA}`, true],
  ])("requireDigest with %s", (_, image, allowed) => {
    const { d } = run({ policies: [cip("pinned", { requireDigest: true })], images: [img(0, image, DA)], scans: indexed });
    expect(d.allowed).toBe(allowed);
    if (!allowed) {
      expect(d.verdicts[0]!.rule).toBe("digest-required");
      expect(d.message).toContain("is not referenced by digest and requireDigest is set");
    }
  });

  it("an unparsable reference is denied by the policy that selects every image", () => {
    const { d } = run({ policies: [ip("audit", { mode: "Audit" })], images: [img(0, "Registry.Example.com/Team/App")] });
    expect(d.allowed).toBe(true);
    expect(d.verdicts[0]).toMatchObject({ outcome: "audited", rule: "invalid-reference", policy: "ImagePolicy/team/audit" });
    expect(d.scansWanted).toEqual([]);
    const strict = run({ images: [img(0, "registry.example.com/Team/app", undefined, { unresolved: "invalid reference" })] }).d;
    expect(strict.allowed).toBe(false);
    expect(strict.message).toMatch(/registry\.example\.com\/Team\/app is not a valid image reference: invalid reference .*must be lowercase/);
    expect(strict.message).not.toContain("kubectl get scan");
  });
});

describe("decide: which policy decides", () => {
  it("an ImagePolicy wins over a ClusterImagePolicy", () => {
    const { d } = run({ policies: [cip("strict"), ip("relaxed", { onMissingScan: "allow" })] });
    expect(d.allowed).toBe(true);
    expect(d.verdicts[0]!.policy).toBe("ImagePolicy/team/relaxed");
  });

  it("an ImagePolicy of another namespace does not apply; a non-matching selector falls back to the default", () => {
    const { d } = run({ policies: [ip("elsewhere", { onMissingScan: "allow" }, "other"), cip("dev", { namespaceSelector: { matchLabels: { env: "dev" } }, onMissingScan: "allow" })] });
    expect(d.allowed).toBe(false);
    expect(d.verdicts[0]!.policy).toBeUndefined();
  });

  it("the more specific ClusterImagePolicy glob decides", () => {
    const { d } = run({ policies: [cip("all", { onMissingScan: "allow" }), cip("team", { images: ["registry.example.com/team/**"] })] });
    expect(d.allowed).toBe(false);
    expect(d.message).toContain("[ClusterImagePolicy/team, onMissingScan: deny]");
  });

  it.each<[string, Record<string, unknown>, boolean]>([
    ["an active exception admits", { images: ["registry.example.com/team/**"], reason: "SEC-1: assessed", expires: FUTURE }, true],
    ["an expired exception does not", { images: ["registry.example.com/team/**"], reason: "SEC-1: assessed", expires: PAST }, false],
    ["an exception for other namespaces does not", { images: ["registry.example.com/team/**"], namespaces: ["web"], reason: "SEC-1", expires: FUTURE }, false],
    ["an exception listing the namespace does", { images: ["registry.example.com/team/**"], namespaces: ["web", "team"], reason: "SEC-1", expires: FUTURE }, true],
    ["an exception for other images does not", { images: ["ghcr.io/**"], reason: "SEC-1", expires: FUTURE }, false],
  ])("exceptions: %s", (_, exception, allowed) => {
    const { d } = run({ policies: [cip("default", { exceptions: [exception] })] });
    expect(d.allowed).toBe(allowed);
    if (allowed) {
      expect(d.verdicts[0]).toMatchObject({ outcome: "allowed", rule: "exception", policy: "ClusterImagePolicy/default" });
      expect(d.verdicts[0]!.message).toBe(`admitted by ClusterImagePolicy/default spec.exceptions[0] until ${FUTURE}: ${String(exception.reason)}`);
      expect(d.auditAnnotations.exception).toContain(`spec.containers[0].image ${APP}@${DA}: admitted by ClusterImagePolicy/default`);
      // Still scanned for the inventory.
      expect(d.scansWanted).toEqual([{ image: APP, digest: DA }]);
    } else {
      expect(d.verdicts[0]!.rule).toBe("scan-missing");
    }
  });

  it("an exception of a ClusterImagePolicy admits even where an ImagePolicy decides the rules", () => {
    const { d } = run({ policies: [ip("strict", { deniedImages: ["registry.example.com/**"] }), cip("ex", { exceptions: [{ images: [APP], reason: "INC-9", expires: FUTURE }] })] });
    expect(d.allowed).toBe(true);
    expect(d.verdicts[0]).toMatchObject({ rule: "exception", policy: "ClusterImagePolicy/ex" });
  });

  it("an exception is judged at `now`", () => {
    const p = cip("default", { exceptions: [{ images: ["**"], reason: "temporary", expires: "2026-06-01T00:00:01Z" }] });
    expect(run({ policies: [p], now: NOW }).d.allowed).toBe(true);
    expect(run({ policies: [p], now: new Date("2026-06-01T00:00:01Z") }).d.allowed).toBe(false);
  });
});

describe("decide: modes", () => {
  it("Warn admits a would-be denial with a warning naming the field, the rule and the policy", () => {
    const { d } = run({ policies: [cip("warn", { mode: "Warn" })] });
    expect(d.allowed).toBe(true);
    expect(d.verdicts[0]!.outcome).toBe("warned");
    expect(d.warnings).toHaveLength(1);
    const w = d.warnings[0]!;
    expect(w).toMatch(/^Portcullis: spec\.containers\[0\]\.image: registry\.example\.com\/team\/app:1\.0@sha256:aaaaaaaaaaaa… is not scanned yet/);
    expect(w).toContain("[ClusterImagePolicy/warn, onMissingScan: deny; Warn mode: would be denied]");
    expect(w).toContain(`; requested ImageScan ${scanName(parseReference(APP), DA)}`);
    expect(d.auditAnnotations).toEqual({});
    expect(d.scansWanted).toHaveLength(1);
  });

  it("Warn mode turns list denials into warnings too", () => {
    const { d } = run({ policies: [cip("warn", { mode: "Warn", deniedImages: ["registry.example.com/**"] })], scans: indexed });
    expect(d.allowed).toBe(true);
    expect(d.warnings[0]).toContain('matches deniedImages "registry.example.com/**"');
  });

  it.each(["deny", "warn"] as const)("Audit admits (onMissingScan %s) and records in auditAnnotations, without warnings", (onMissingScan) => {
    const { d } = run({ policies: [cip("audit", { mode: "Audit", onMissingScan })] });
    expect(d.allowed).toBe(true);
    expect(d.warnings).toEqual([]);
    expect(d.verdicts[0]!.outcome).toBe("audited");
    expect(d.auditAnnotations.audit).toBe(`spec.containers[0].image ${APP}@${DA}: is not scanned yet (ClusterImagePolicy/audit, Audit: would ${onMissingScan})`);
  });

  it("audit annotation keys are qualified-name parts without a prefix (the API server adds the webhook's name)", () => {
    const { d } = run({
      policies: [cip("audit", { mode: "Audit", exceptions: [{ images: ["ghcr.io/**"], reason: "r", expires: FUTURE }] }), ip("glass", { images: ["docker.io/**"], breakGlass: { allowed: true } })],
      images: [img(0, APP, DA), img(1, "ghcr.io/org/x:1", DB), img(2, "nginx:1", DC)],
      annotations: { "portcullis.dev/break-glass": "INC-7" },
    });
    expect(Object.keys(d.auditAnnotations).sort()).toEqual(["audit", "break-glass", "exception"]);
    for (const k of Object.keys(d.auditAnnotations)) expect(k).toMatch(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);
  });

  it("an allowed image is not softened or recorded in any mode", () => {
    for (const mode of ["Enforce", "Warn", "Audit"]) {
      const { d } = run({ policies: [cip("m", { mode })], scans: indexed });
      expect(d).toMatchObject({ allowed: true, warnings: [], auditAnnotations: {} });
    }
  });
});

describe("decide: break-glass", () => {
  const glass = (reason: string) => ({ "portcullis.dev/break-glass": reason });

  it("a reason admits what would be denied, recorded for an Event and a metric", () => {
    const { d } = run({ policies: [cip("default", { deniedImages: ["docker.io/**"], breakGlass: { allowed: true } })], images: [img(0, APP, DA), img(1, "nginx", DB)], annotations: glass("INC-42: hotfix") });
    expect(d.allowed).toBe(true);
    expect(d.breakGlass).toEqual({ reason: "INC-42: hotfix", fields: ["spec.containers[0].image", "spec.containers[1].image"] });
    expect(d.verdicts.map((v) => v.rule)).toEqual(["breakGlass", "breakGlass"]);
    expect(d.verdicts[1]!.message).toBe('admitted by break-glass (INC-42: hotfix); it matches deniedImages "docker.io/**"');
    expect(d.auditAnnotations["break-glass"]).toContain("INC-42: hotfix (admitted: spec.containers[0].image");
    expect(d.warnings[0]).toBe("Portcullis: admitted by break-glass (INC-42: hotfix), recorded: spec.containers[0].image, spec.containers[1].image");
    // The unscanned image is still scanned; the denied one is not.
    expect(d.scansWanted).toEqual([{ image: APP, digest: DA }]);
  });

  it("is not recorded when nothing needed it", () => {
    const { d } = run({ scans: indexed, annotations: glass("INC-42") });
    expect(d.allowed).toBe(true);
    expect(d.breakGlass).toBeUndefined();
    expect(d.auditAnnotations).toEqual({});
  });

  it.each(["Warn", "Audit"])("is not used where %s mode admits anyway", (mode) => {
    const { d } = run({ policies: [cip("soft", { mode })], annotations: glass("INC-42") });
    expect(d.allowed).toBe(true);
    expect(d.breakGlass).toBeUndefined();
    expect(d.verdicts[0]!.outcome).toBe(mode === "Warn" ? "warned" : "audited");
  });

  it("does nothing where the deciding policy disables it", () => {
    const { d } = run({ policies: [ip("locked", { breakGlass: { allowed: false } })], annotations: glass("INC-42") });
    expect(d.allowed).toBe(false);
    expect(d.breakGlass).toBeUndefined();
    expect(d.message).toContain("[ImagePolicy/team/locked, onMissingScan: deny; break-glass is disabled for it]");
  });

  it("is not recorded when another image's policy keeps the object out", () => {
    const { d } = run({ policies: [cip("open", { breakGlass: { allowed: true } }), ip("locked", { images: ["docker.io/**"], breakGlass: { allowed: false } })], images: [img(0, APP, DA), img(1, "nginx", DB)], annotations: glass("INC-42") });
    expect(d.allowed).toBe(false);
    expect(d.breakGlass).toBeUndefined();
    expect(d.message).toContain("refused 1 of 2 images");
    expect(d.message).toContain("spec.containers[1].image: nginx@");
  });

  it.each(["", "   ", "\n"])("an empty reason (%j) does not count, and the message says so", (reason) => {
    const { d } = run({ annotations: glass(reason) });
    expect(d.allowed).toBe(false);
    expect(d.breakGlass).toBeUndefined();
    expect(d.message).toContain('The portcullis.dev/break-glass annotation is empty and does not count: it needs a reason, e.g. portcullis.dev/break-glass: "INC-123: hotfix".');
  });

  it("is off unless turned on: by default in a policy and in the built-in default", () => {
    for (const setup of [{ policies: [cip("plain", { deniedImages: ["docker.io/**"] })] }, {}]) {
      const { d } = run({ ...setup, images: [img(0, "nginx", DB)], annotations: glass("INC-42") });
      expect(d.allowed).toBe(false);
      expect(d.breakGlass).toBeUndefined();
      expect(d.verdicts[0]!.breakGlassRefused).toBe("disabled");
      expect(d.message).toContain("break-glass is disabled for it");
    }
  });

  it("where a policy allows it, refuses a user who may not use it (no SubjectAccessReview granted), naming the verb to grant", () => {
    for (const permitted of [false, undefined]) {
      const { d } = run({ policies: [cip("open", { breakGlass: { allowed: true } })], annotations: glass("INC-42"), breakGlassPermitted: permitted, user: "dev@example.com" });
      expect(d.allowed).toBe(false);
      expect(d.breakGlass).toBeUndefined();
      expect(d.auditAnnotations["break-glass"]).toBeUndefined();
      expect(d.verdicts[0]!.breakGlassRefused).toBe("not-permitted");
      expect(d.message).toContain('break-glass needs permission: user "dev@example.com" may not break-glass imagepolicies.portcullis.dev in namespace team');
    }
    // Nothing to ask when the policy disables it anyway, or nothing is denied.
    expect(run({ policies: [cip("locked")], annotations: glass("INC-42"), breakGlassPermitted: false }).d.verdicts[0]!.breakGlassRefused).toBe("disabled");
    expect(run({ scans: indexed, annotations: glass("INC-42"), breakGlassPermitted: false }).d.verdicts[0]!.breakGlassRefused).toBeUndefined();
  });

  it("keeps a reason with newlines on one line in warnings", () => {
    const { d } = run({ defaultPolicy: GLASS_DEFAULT, annotations: glass("INC-1\nsecond line") });
    expect(d.breakGlass!.reason).toBe("INC-1 second line");
    for (const w of d.warnings) expect([...w].every((c) => c.charCodeAt(0) >= 0x20)).toBe(true);
  });
});

describe("decide: several images", () => {
  it("denies when one image is denied and names only that field path, one line per denied image", () => {
    const { d } = run({
      kindLabel: "Deployment apps/v1 team/web",
      images: [
        { field: "spec.template.spec.initContainers[0].image", image: "registry.example.com/team/init:1", digest: DA },
        { field: "spec.template.spec.containers[0].image", image: APP, digest: DB },
        { field: "spec.template.spec.volumes[0].image.reference", image: "registry.example.com/team/data:1", digest: DC },
      ],
      scans: { [DA]: scan("Indexed"), [DC]: scan("Indexed", "data") },
    });
    expect(d.allowed).toBe(false);
    const lines = d.message!.split("\n");
    expect(lines[0]).toBe("Deployment apps/v1 team/web: Portcullis refused 1 of 3 images:");
    expect(lines[1]).toMatch(new RegExp(`^- spec\\.template\\.spec\\.containers\\[0\\]\\.image: ${APP.replace(/\./g, "\\.")}@${DB} is not scanned yet`));
    expect(lines.filter((l) => l.startsWith("- "))).toHaveLength(1);
    expect(d.message).not.toContain("initContainers");
    expect(d.message).not.toContain("volumes");
    expect(d.verdicts.map((v) => v.outcome)).toEqual(["allowed", "denied", "allowed"]);
    expect(d.scansWanted).toEqual([{ image: APP, digest: DB }]);
  });

  it("lists each denied image on its own line, with different rules", () => {
    const { d } = run({
      policies: [cip("p", { deniedImages: ["docker.io/**"] })],
      images: [img(0, APP, DA), img(1, "nginx", DB), img(2, "registry.example.com/team/x:1", undefined, { unresolved: "timeout" })],
    });
    const lines = d.message!.split("\n").filter((l) => l.startsWith("- "));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain("is not scanned yet");
    expect(lines[1]).toContain("matches deniedImages");
    expect(lines[2]).toContain("could not be resolved to a digest in time");
    expect(d.message).toContain("For the images waiting on a scan, nothing else to do: controllers retry on their own");
  });

  it("asks for one scan per digest when containers share an image", () => {
    const { d } = run({ images: [img(0, APP, DA), img(1, APP, DA), img(2, "registry.example.com/team/app:latest", DA)] });
    expect(d.scansWanted).toEqual([{ image: APP, digest: DA }]);
    expect(d.message!.split("\n").filter((l) => l.startsWith("- "))).toHaveLength(3);
  });

  it("decides 50 images with one scan lookup each", () => {
    const policies = Array.from({ length: 20 }, (_, i) => cip(`p${i}`, { images: [`registry.example.com/team${i}/**`] }));
    const images = Array.from({ length: 50 }, (_, i) => img(i, `registry.example.com/team${i % 25}/app${i}:1`, digest((i % 16).toString(16))));
    const scans = Object.fromEntries(images.map((m) => [m.digest!, scan("Indexed")]));
    const { d, calls } = run({ policies, images, scans });
    expect(d.allowed).toBe(true);
    expect(d.verdicts).toHaveLength(50);
    expect(calls).toHaveLength(50);
    const unscanned = run({ policies, images });
    expect(unscanned.d.message!.split("\n").filter((l) => l.startsWith("- "))).toHaveLength(50);
    expect(unscanned.d.scansWanted).toHaveLength(16);
  });
});

describe("decide: warnings stay within Kubernetes limits", () => {
  const long = `registry.example.com/${Array.from({ length: 12 }, (_, i) => `segment-number-${i}`).join("/")}:1.0`;

  it("cuts each warning to 255 characters and keeps it on one line", () => {
    const { d } = run({ policies: [cip("warn", { mode: "Warn", allowedImages: ["ghcr.io/**", "quay.io/**"] })], images: [img(0, long, DA, { unresolved: "x" })] });
    expect(d.warnings).toHaveLength(1);
    expect(d.warnings[0]!.length).toBeLessThanOrEqual(WARNING_MAX);
    expect(d.warnings[0]).toMatch(/\.\.\.$/);
    expect(d.warnings[0]).not.toContain("\n");
  });

  it("keeps 50 warnings under 4 KiB in all and says how many did not fit", () => {
    const images = Array.from({ length: 50 }, (_, i) => img(i, `${long.slice(0, -4)}/app${i}:1`, DA));
    const { d } = run({ policies: [cip("warn", { onMissingScan: "warn" })], images });
    const total = d.warnings.reduce((n, w) => n + w.length, 0);
    expect(total).toBeLessThanOrEqual(4096);
    for (const w of d.warnings) expect(w.length).toBeLessThanOrEqual(WARNING_MAX);
    const last = d.warnings[d.warnings.length - 1]!;
    const shownCount = d.warnings.length - 1;
    expect(last).toBe(`Portcullis: ${50 - shownCount} more image warnings not shown (Kubernetes limits warnings to 4 KiB)`);
  });

  it("counts characters, not UTF-16 units, when cutting", () => {
    const { d } = run({ policies: [cip("warn", { mode: "Warn" })], scans: indexed, annotations: { "portcullis.dev/break-glass": "🚨".repeat(300) } });
    // Nothing needed break-glass: no warning.
    expect(d.warnings).toEqual([]);
    const used = run({ defaultPolicy: GLASS_DEFAULT, annotations: { "portcullis.dev/break-glass": "🚨".repeat(300) } }).d;
    expect(Array.from(used.warnings[0]!).length).toBeLessThanOrEqual(WARNING_MAX);
  });
});

describe("decide: the rule pipeline", () => {
  it("has the documented order, vulnerability rules last", () => {
    const names = RULES.map((r) => r({
      item: { field: "f", image: APP },
      ref: { ...parseReference(APP), digest: DA },
      pinned: false,
      digest: DA,
      now: NOW,
      scan: scan("Indexed"),
      policy: {
        label: "x", mode: "Enforce", onMissingScan: "deny", requireDigest: true, allowedImages: ["ghcr.io/**"], deniedImages: ["registry.example.com/**"], breakGlassAllowed: true,
        vulnerabilities: { fixableOnly: false, onStaleDatabase: "warn", onUnsupportedDistribution: "deny", maxSeverity: "High" },
      },
    })?.rule);
    expect(names).toEqual(["denied-list", "not-allowed", "digest-required", "scanned", "vulnerabilities-unknown"]);
  });
});

describe("decide: vulnerability rules", () => {
  const summary = (o: Partial<FindingsSummary> = {}): FindingsSummary => ({
    critical: 1, high: 1, medium: 1, low: 0, negligible: 0, unknown: 1, total: 4, fixable: 2, unfixed: 2,
    coverage: "supported", coverageMessage: "Debian:12 supported", matchedAt: "2026-05-31T12:00:00Z", databaseUpdatedAt: "2026-05-31T06:00:00Z", ...o,
  });
  const findings: Finding[] = [
    { id: "CVE-2024-1111", aliases: ["DSA-5001-1"], severity: "Critical", package: "libssl3", version: "3.0.11-1~deb12u2", fixState: "fixed", fixedIn: "3.0.13-1~deb12u1" },
    { id: "CVE-2024-1111", aliases: ["DSA-5001-1"], severity: "Critical", package: "openssl", version: "3.0.11-1~deb12u2", fixState: "fixed", fixedIn: "3.0.13-1~deb12u1" },
    { id: "CVE-2023-2222", severity: "High", package: "zlib1g", version: "1:1.2.13.dfsg-1", fixState: "wont_fix" },
    { id: "CVE-2023-3333", aliases: ["GHSA-aaaa-bbbb-cccc"], severity: "Medium", package: "curl", version: "7.88.1-10", fixState: "fixed", fixedIn: "7.88.1-10+deb12u5" },
    { id: "CVE-2023-4444", severity: "Unknown", package: "tar", version: "1.34", fixState: "not_fixed" },
  ];
  const matched = (o: Partial<ScanInfo> = {}) => ({ [DA]: scan("Indexed", "app-aaaaaaaaaaaa", { vulnerabilities: summary(), findings, ...o }) });
  const vulnPolicy = (vulnerabilities: Record<string, unknown>, extra: Record<string, unknown> = {}) => [cip("vulns", { onMissingScan: "deny", vulnerabilities, ...extra })];

  it("denies findings above maxSeverity, naming ids, packages and fixes, once per (id, package)", () => {
    const { d } = run({ policies: vulnPolicy({ maxSeverity: "Medium" }), scans: matched() });
    expect(d.allowed).toBe(false);
    expect(d.verdicts[0]).toMatchObject({ outcome: "denied", rule: "vulnerabilities" });
    expect(d.message).toContain("has 2 vulnerabilities above maxSeverity Medium: CVE-2024-1111 (Critical, libssl3 3.0.11-1~deb12u2, fixed in 3.0.13-1~deb12u1), CVE-2024-1111 (Critical, openssl 3.0.11-1~deb12u2, fixed in 3.0.13-1~deb12u1), CVE-2023-2222 (High, zlib1g 1:1.2.13.dfsg-1, no fix)");
    expect(d.message).not.toContain("CVE-2023-3333");
    // Nothing to wait for: no scan is requested.
    expect(d.scansWanted).toEqual([]);
  });

  it("admits when every finding is at or below maxSeverity", () => {
    expect(run({ policies: vulnPolicy({ maxSeverity: "Critical" }), scans: matched() }).d.allowed).toBe(true);
  });

  it("counts Unknown severity only under maxSeverity None", () => {
    const onlyUnknown = matched({ findings: [findings[4]!], vulnerabilities: summary({ critical: 0, high: 0, medium: 0, unknown: 1, total: 1 }) });
    expect(run({ policies: vulnPolicy({ maxSeverity: "Negligible" }), scans: onlyUnknown }).d.allowed).toBe(true);
    expect(run({ policies: vulnPolicy({ maxSeverity: "None" }), scans: onlyUnknown }).d.message).toContain("CVE-2023-4444 (Unknown, tar 1.34, no fix)");
  });

  it("fixableOnly leaves findings without a fix out", () => {
    const { d } = run({ policies: vulnPolicy({ maxSeverity: "Medium", fixableOnly: true }), scans: matched() });
    expect(d.message).toContain("has 1 vulnerability above maxSeverity Medium with a fix: CVE-2024-1111");
    expect(d.message).not.toContain("CVE-2023-2222");
  });

  it("allowedIds overlook a finding (by id or alias) until they expire, and only for their images", () => {
    const allow = (id: string, expires: string, images?: string[]) => ({ id, reason: "not reachable: TICKET-7", expires, ...(images ? { images } : {}) });
    const admitted = run({ policies: vulnPolicy({ maxSeverity: "High", allowedIds: [allow("DSA-5001-1", FUTURE)] }), scans: matched() }).d;
    expect(admitted.allowed).toBe(true);
    const expired = run({ policies: vulnPolicy({ maxSeverity: "High", allowedIds: [allow("CVE-2024-1111", PAST)] }), scans: matched() }).d;
    expect(expired.allowed).toBe(false);
    expect(expired.message).toContain("CVE-2024-1111 (Critical, libssl3");
    const otherImage = run({ policies: vulnPolicy({ maxSeverity: "High", allowedIds: [allow("CVE-2024-1111", FUTURE, ["ghcr.io/**"])] }), scans: matched() }).d;
    expect(otherImage.allowed).toBe(false);
    const thisImage = run({ policies: vulnPolicy({ maxSeverity: "High", allowedIds: [allow("CVE-2024-1111", FUTURE, ["registry.example.com/team/**"])] }), scans: matched() }).d;
    expect(thisImage.allowed).toBe(true);
  });

  it("deniedIds deny at any severity, by id or alias, and allowedIds do not override them", () => {
    const { d } = run({ policies: vulnPolicy({ deniedIds: ["GHSA-aaaa-bbbb-cccc"], allowedIds: [{ id: "CVE-2023-3333", reason: "r", expires: FUTURE }] }), scans: matched() });
    expect(d.allowed).toBe(false);
    expect(d.message).toContain("has 1 vulnerability in deniedIds: CVE-2023-3333 (Medium, curl 7.88.1-10, fixed in 7.88.1-10+deb12u5)");
  });

  it("says how many more and where to look when the list is long", () => {
    const many: Finding[] = Array.from({ length: 12 }, (_, i) => ({ id: `CVE-2024-${1000 + i}`, severity: "Critical", package: `p${i}`, version: "1", fixState: "fixed", fixedIn: "2" }));
    const { d } = run({ policies: vulnPolicy({ maxSeverity: "High" }), scans: matched({ findings: many }) });
    expect(d.message).toContain(`and 9 more: kubectl get scan -n team app-aaaaaaaaaaaa; portcullis report ${DA} --vulns`);
  });

  it("a stale database follows onStaleDatabase", () => {
    const stale = matched({ vulnerabilities: summary({ databaseUpdatedAt: "2026-05-20T00:00:00Z" }), findings: [] });
    const warned = run({ policies: vulnPolicy({ maxSeverity: "High", maxDatabaseAge: "72h" }), scans: stale }).d;
    expect(warned.allowed).toBe(true);
    expect(warned.warnings.join()).toContain("older than maxDatabaseAge 72h");
    const denied = run({ policies: vulnPolicy({ maxSeverity: "High", maxDatabaseAge: "72h", onStaleDatabase: "deny" }), scans: stale }).d;
    expect(denied.verdicts[0]).toMatchObject({ outcome: "denied", rule: "database-stale" });
    expect(run({ policies: vulnPolicy({ maxSeverity: "High", maxDatabaseAge: "720h", onStaleDatabase: "deny" }), scans: stale }).d.allowed).toBe(true);
  });

  it("an unsupported distribution, or no match at all, follows onUnsupportedDistribution (warn by default)", () => {
    const eol = matched({ vulnerabilities: summary({ coverage: "end_of_life", coverageMessage: "Debian:9 end of life (2022-06-30)" }), findings: [] });
    const warned = run({ policies: vulnPolicy({ maxSeverity: "High" }), scans: eol }).d;
    expect(warned.allowed).toBe(true);
    expect(warned.warnings.join()).toContain("is not covered by the advisory data (Debian:9 end of life (2022-06-30))");
    expect(run({ policies: vulnPolicy({ maxSeverity: "High", onUnsupportedDistribution: "deny" }), scans: eol }).d.allowed).toBe(false);
    const unmatched = { [DA]: scan("Indexed") };
    const none = run({ policies: vulnPolicy({ maxSeverity: "High", onUnsupportedDistribution: "deny" }), scans: unmatched }).d;
    expect(none.verdicts[0]).toMatchObject({ outcome: "denied", rule: "vulnerabilities-unknown" });
  });

  it("without the list in memory, decides a plain threshold from the counts, and anything else by onMissingScan", () => {
    const noList = matched({ findings: undefined });
    const counted = run({ policies: vulnPolicy({ maxSeverity: "Medium" }), scans: noList }).d;
    expect(counted.message).toContain("has 2 vulnerabilities above maxSeverity Medium (ImageScan app-aaaaaaaaaaaa: 1 critical, 1 high)");
    expect(run({ policies: vulnPolicy({ maxSeverity: "Critical" }), scans: noList }).d.allowed).toBe(true);
    const withAllow = run({ policies: vulnPolicy({ maxSeverity: "Medium", allowedIds: [{ id: "CVE-2024-1111", reason: "r", expires: FUTURE }] }, { onMissingScan: "warn" }), scans: noList }).d;
    expect(withAllow.allowed).toBe(true);
    expect(withAllow.warnings.join()).toContain("could not be read in time");
  });

  it("Warn mode and break-glass soften a vulnerability denial as any other", () => {
    expect(run({ policies: vulnPolicy({ maxSeverity: "Medium" }, { mode: "Warn" }), scans: matched() }).d.allowed).toBe(true);
    const glass = run({ policies: vulnPolicy({ maxSeverity: "Medium" }, { breakGlass: { allowed: true } }), scans: matched(), annotations: { "portcullis.dev/break-glass": "INC-9" } }).d;
    expect(glass.allowed).toBe(true);
    expect(glass.breakGlass?.reason).toBe("INC-9");
  });

  it("does nothing before the scan is Indexed: the scan rule decides", () => {
    const { d } = run({ policies: vulnPolicy({ maxSeverity: "None" }), scans: { [DA]: scan("Indexing") } });
    expect(d.verdicts[0]!.rule).toBe("scan-pending");
  });
});

describe("decide: generic answers (no client CA: the review may be anyone's)", () => {
  // Everything a namespace's credentials found: the resolved digest, the scan's name (made of it), its message,
  // the registry's error, the findings and the coverage. The full answer has each (so the test can fail).
  const vulns: FindingsSummary = {
    critical: 1, high: 0, medium: 0, low: 0, negligible: 0, unknown: 0, total: 1, fixable: 1, unfixed: 0,
    coverage: "supported", coverageMessage: "Debian:12 supported", matchedAt: "2026-05-31T00:00:00Z", databaseUpdatedAt: "2026-05-31T00:00:00Z",
  } as FindingsSummary;
  const finding = { id: "CVE-2026-0001", severity: "Critical", package: "openssl", version: "3.0.1", fixedIn: "3.0.2" } as Finding;
  const cases: Array<[string, Setup, string[]]> = [
    ["a missing scan of a resolved tag", {}, [DA, DA.slice(7, 19), scanName(parseReference(APP), DA)]],
    ["a pending scan", { scans: { [DA]: scan("Indexing", "app-secretname1") } }, ["app-secretname1", DA.slice(7, 19)]],
    ["a failed scan", { scans: { [DA]: scan("Failed", "app-secretname2", { reason: "AuthFailed", message: "registry.example.com/team/app: not authorized (tried secret team/regcred)" }) } }, ["app-secretname2", "AuthFailed", "not authorized", "regcred"]],
    ["a registry error", { images: [img(0, APP, undefined, { unresolved: "registry.example.com/team/app: manifest not found (1.0)" })] }, ["manifest not found", referenceHash(parseReference(APP)).slice(0, 12)]],
    ["findings above the threshold", {
      policies: [ip("vulns", { vulnerabilities: { maxSeverity: "High" } })],
      scans: { [DA]: scan("Indexed", "app-secretname3", { vulnerabilities: vulns, findings: [finding] }) },
    }, ["CVE-2026-0001", "openssl", "app-secretname3", "Debian:12"]],
  ];
  it.each(cases)("%s: the full answer says it, the generic one does not", (_, setup, secrets) => {
    const full = run(setup).d;
    const generic = run({ ...setup, detail: "generic" }).d;
    const text = (d: typeof full) => JSON.stringify([d.message, d.warnings, d.auditAnnotations]);
    expect(full.allowed).toBe(false);
    expect(generic.allowed).toBe(false);
    expect(secrets.some((x) => text(full).includes(x)), text(full)).toBe(true);
    for (const x of secrets) expect(text(generic), `generic answer leaks ${x}`).not.toContain(x);
    // Same verdict, same rule, same scans asked for: only the words differ.
    expect(generic.verdicts.map((v) => [v.outcome, v.rule])).toEqual(full.verdicts.map((v) => [v.outcome, v.rule]));
    expect(generic.scansWanted).toEqual(full.scansWanted);
    expect(generic.message).toContain(`spec.containers[0].image: ${APP} `);
  });

  it("keeps what the request itself carries: a digest written in the reference, the policy, the namespace's scans to look at", () => {
    const pinned = `registry.example.com/team/app@${DB}`;
    const { d } = run({ images: [img(0, pinned, DB)], detail: "generic" });
    expect(d.message).toContain(`${pinned} is not scanned yet`);
    expect(d.message).toContain("onMissingScan: deny");
    expect(d.message).toContain("kubectl get imagescans -n team");
  });

  it("warnings and audit annotations are generic too", () => {
    const warnPolicy = [ip("warn", { mode: "Warn" }), ip("audit", { mode: "Audit", images: ["registry.example.com/team/other*"] })];
    const images = [img(0, APP, DA), img(1, "registry.example.com/team/other:2", DC)];
    const full = run({ images, policies: warnPolicy }).d;
    const generic = run({ images, policies: warnPolicy, detail: "generic" }).d;
    expect(JSON.stringify([full.warnings, full.auditAnnotations])).toContain(DC.slice(7, 19));
    expect(JSON.stringify([generic.warnings, generic.auditAnnotations])).not.toContain(DA.slice(7, 19));
    expect(JSON.stringify([generic.warnings, generic.auditAnnotations])).not.toContain(DC.slice(7, 19));
    expect(generic.warnings.length).toBe(full.warnings.length);
  });
});
