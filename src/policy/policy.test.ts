import { describe, expect, it } from "vitest";
import { parseReference } from "../image/reference.js";
import { bestMatchingGlob, compareSpecificity, compileImageGlob, ImageGlobError, imageGlobError, matchImageGlob } from "./glob.js";
import { isRfc3339DateTime, parsePolicy, type Policy, type PolicyParseResult, validCondition } from "../kube/api/v1alpha1/index.js";
import { labelSelectorMatches, selectPolicy } from "./select.js";

const D = `sha256:${"a".repeat(64)}`;
const NOW = new Date("2026-06-01T00:00:00Z");
const FUTURE = "2027-01-01T00:00:00Z";
const PAST = "2026-01-01T00:00:00Z";

const imagePolicy = (spec: unknown, name = "p", namespace = "team") => ({ apiVersion: "portcullis.dev/v1alpha1", kind: "ImagePolicy", metadata: { name, namespace }, spec });
const clusterPolicy = (spec: unknown, name = "c") => ({ apiVersion: "portcullis.dev/v1alpha1", kind: "ClusterImagePolicy", metadata: { name }, spec });

function ok(obj: unknown): Extract<PolicyParseResult, { ok: true }> {
  const r = parsePolicy(obj, { now: NOW });
  if (!r.ok) throw new Error(`refused: ${JSON.stringify(r.errors)}`);
  return r;
}

function errors(obj: unknown): Record<string, string> {
  const r = parsePolicy(obj, { now: NOW });
  if (r.ok) throw new Error("accepted");
  return Object.fromEntries(r.errors.map((e) => [e.path, e.message]));
}

describe("matchImageGlob", () => {
  it.each<[string, string, boolean]>([
    // exact
    ["registry.example.com/team/app", "registry.example.com/team/app:1.0", true],
    ["registry.example.com/team/app", "registry.example.com/team/app2", false],
    ["registry.example.com/team/app", `registry.example.com/team/app@${D}`, true],
    // * is one segment, never a slash
    ["registry.example.com/team/*", "registry.example.com/team/app", true],
    ["registry.example.com/team/*", "registry.example.com/team/app/sub", false],
    ["registry.example.com/team/*", "registry.example.com/other/app", false],
    ["registry.example.com/team-*/app", "registry.example.com/team-a/app", true],
    ["registry.example.com/team-*/app", "registry.example.com/team/app", false],
    ["*.example.com/team/app", "eu.example.com/team/app", true],
    ["*.example.com/team/app", "example.com/team/app", false],
    ["*/team/app", "ghcr.io/team/app", true],
    // ** is one or more whole segments
    ["registry.example.com/**", "registry.example.com/a", true],
    ["registry.example.com/**", "registry.example.com/a/b/c", true],
    ["registry.example.com/**", "registry.example.com:5000/a", false],
    ["registry.example.com/team/**", "registry.example.com/team/app/sub", true],
    ["registry.example.com/team/**", "registry.example.com/teamx/app", false],
    ["registry.example.com/**/app", "registry.example.com/a/b/app", true],
    ["registry.example.com/**/app", "registry.example.com/app", false],
    ["**", "nginx", true],
    ["**", "localhost:5000/x/y/z", true],
    ["**/nginx", "nginx", true],
    ["**:latest", "ghcr.io/org/app:1", false],
    ["**:latest", "ghcr.io/org/app", true],
    ["**:latest", "ghcr.io/org/app:latest", true],
    // Docker Hub: docker.io, index.docker.io and registry-1.docker.io are one registry; library/ for official images
    ["docker.io/library/**", "nginx:1.25", true],
    ["docker.io/library/*", "docker.io/bitnami/nginx", false],
    ["docker.io/nginx", "nginx", true],
    ["index.docker.io/library/nginx", "docker.io/library/nginx", true],
    ["registry-1.docker.io/library/nginx", "nginx", true],
    ["docker.io/**", "registry-1.docker.io/bitnami/redis", true],
    // registries are case-insensitive, ports are part of the registry
    ["Registry.Example.COM/app", "registry.example.com/app", true],
    ["localhost:5000/app", "localhost:5000/app", true],
    ["localhost:5000/app", "localhost/app", false],
    ["[::1]:5000/app", "[::1]:5000/app:1", true],
    // tags: a glob without a tag matches every tag; with one it needs a matching tag
    ["docker.io/**:latest", "nginx", true],
    ["docker.io/**:latest", "nginx:1.25", false],
    ["ghcr.io/org/app:v1.*", "ghcr.io/org/app:v1.2.3", true],
    ["ghcr.io/org/app:v1.*", "ghcr.io/org/app:v2.0", false],
    ["ghcr.io/org/app:v1.*", `ghcr.io/org/app@${D}`, false],
    ["ghcr.io/org/app:*", `ghcr.io/org/app:1@${D}`, true],
    ["localhost:5000/app:1.*", "localhost:5000/app:1.0", true],
    // digests compare exactly
    [`ghcr.io/org/app@${D}`, `ghcr.io/org/app:1@${D}`, true],
    [`ghcr.io/org/app@${D}`, "ghcr.io/org/app:1", false],
    [`ghcr.io/org/app@${D}`, `ghcr.io/org/app@sha256:${"b".repeat(64)}`, false],
  ])("%s against %s: %s", (pattern, ref, want) => {
    expect(matchImageGlob(pattern, ref)).toBe(want);
    expect(matchImageGlob(compileImageGlob(pattern), parseReference(ref))).toBe(want);
  });

  it.each<[string, RegExp]>([
    ["", /empty/],
    ["registry.example.com/team app", /whitespace/],
    ["nginx", /docker\.io\/library\/nginx/],
    ["localhost:5000", /localhost:5000\/\*\*/],
    ["library/nginx", /not a registry host.*docker\.io\/library\/nginx/],
    ["registry.example.com/team**", /whole path segment/],
    ["registry.example.com/***", /whole path segment/],
    ["registry.example.com//app", /empty path segment/],
    ["registry.example.com/Team/app", /lowercase/],
    ["registry.example.com/app:", /tag/],
    ["registry.example.com/app:-x", /tag/],
    ["registry.example.com/app@sha256:abc", /digest/],
    ["registry.example.com/app@sha256:*", /digest/],
    ["reg!stry.example.com/app", /registry/],
    [":latest", /no registry/],
  ])("refuses %j", (pattern, why) => {
    expect(imageGlobError(pattern)).toMatch(why);
    expect(() => compileImageGlob(pattern)).toThrow(ImageGlobError);
    expect(() => matchImageGlob(pattern, "nginx")).toThrow(ImageGlobError);
  });

  it("throws for an unparsable reference", () => {
    expect(() => matchImageGlob("**", "UPPER/Case:x")).toThrow(/invalid reference/);
  });
});

describe("glob specificity", () => {
  const order = ["registry.example.com/team/app:1.0", "registry.example.com/team/app", "registry.example.com/team/app-*", "registry.example.com/team/*", "registry.example.com/team/**", "registry.example.com/**", "*/**", "**"];
  it("orders exact before wildcards, then by literal characters, then fewer ** and *", () => {
    const sorted = [...order].reverse().sort((a, b) => compareSpecificity(compileImageGlob(b).specificity, compileImageGlob(a).specificity));
    expect(sorted).toEqual(order);
    expect(compareSpecificity(compileImageGlob("a.io/x/*").specificity, compileImageGlob("a.io/x/**").specificity)).toBeGreaterThan(0);
    expect(compareSpecificity(compileImageGlob("a.io/x/*").specificity, compileImageGlob("a.io/x/*").specificity)).toBe(0);
  });

  it("picks the most specific matching glob of a list", () => {
    expect(bestMatchingGlob(["**", "registry.example.com/team/*", "registry.example.com/**"], "registry.example.com/team/app")?.pattern).toBe("registry.example.com/team/*");
    expect(bestMatchingGlob(["registry.example.com/team/*"], "nginx")).toBeUndefined();
  });
});

describe("isRfc3339DateTime", () => {
  it.each(["2026-12-31T23:59:59Z", "2026-12-31t23:59:59z", "2026-02-28T00:00:00.123456+02:00", "2028-02-29T00:00:00-05:30"])("accepts %s", (s) => expect(isRfc3339DateTime(s)).toBe(true));
  it.each(["2026-12-31", "2026-12-31T23:59Z", "2026-12-31T23:59:59", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-12-31T24:00:00Z", "next tuesday", "2026-12-31 23:59:59Z"])("refuses %s", (s) =>
    expect(isRfc3339DateTime(s)).toBe(false),
  );
});

describe("parsePolicy", () => {
  it("applies the CRD's defaults to an empty ImagePolicy", () => {
    const r = ok({ apiVersion: "portcullis.dev/v1alpha1", kind: "ImagePolicy", metadata: { name: "p", namespace: "team" } });
    expect(r.policy.spec).toEqual({ mode: "Enforce", onMissingScan: "deny", requireDigest: false, pinDigests: true, breakGlass: { allowed: false } });
    expect(r.expired).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(validCondition(r)).toEqual({ type: "Valid", status: "True", reason: "Valid", message: "the policy is valid" });
  });

  it("parses a full ClusterImagePolicy", () => {
    const spec = {
      namespaceSelector: { matchLabels: { team: "a" }, matchExpressions: [{ key: "env", operator: "In", values: ["prod"] }] },
      images: ["registry.example.com/**", "docker.io/**"],
      mode: "Warn",
      onMissingScan: "warn",
      allowedImages: ["registry.example.com/**"],
      deniedImages: ["docker.io/**:latest"],
      requireDigest: true,
      pinDigests: false,
      breakGlass: { allowed: false },
      exceptions: [{ images: ["docker.io/library/nginx:1.25"], namespaces: ["web"], reason: "TICKET-42", expires: FUTURE }],
    };
    const r = ok(clusterPolicy(spec));
    expect(r.policy.kind).toBe("ClusterImagePolicy");
    expect(r.policy.spec).toEqual(spec);
    expect(r.expired).toEqual([]);
  });

  it("keeps status and unknown metadata", () => {
    const r = ok({ ...imagePolicy({}), metadata: { name: "p", namespace: "team", generation: 3, labels: { a: "b" } }, status: { observedGeneration: 2, conditions: [{ type: "Ready", status: "True", reason: "Loaded", message: "", lastTransitionTime: PAST }] } });
    expect(r.policy.metadata).toMatchObject({ generation: 3, labels: { a: "b" } });
    expect(r.policy.status?.conditions?.[0]?.type).toBe("Ready");
  });

  it("reports an expired exception instead of refusing the policy", () => {
    const r = ok(imagePolicy({ exceptions: [{ images: ["docker.io/library/nginx"], reason: "old", expires: PAST }, { images: ["docker.io/library/redis"], reason: "new", expires: FUTURE }] }));
    expect(r.expired).toEqual([{ path: "spec.exceptions[0]", index: 0, expires: PAST, reason: "old" }]);
    const c = validCondition(r);
    expect(c).toMatchObject({ status: "True", reason: "ExceptionsExpired" });
    expect(c.message).toContain("spec.exceptions[0]");
  });

  it("accepts vulnerability rules with their defaults, and reports expired allowedIds like expired exceptions", () => {
    const r = ok(imagePolicy({ vulnerabilities: { maxSeverity: "High", allowedIds: [
      { id: "CVE-2024-3094", reason: "not reachable", expires: FUTURE },
      { id: "GHSA-xxxx-yyyy-zzzz", reason: "TICKET-9", expires: "2020-01-01T00:00:00Z", images: ["ghcr.io/org/**"] },
    ] } }));
    expect(r.warnings).toEqual([]);
    expect(r.policy.spec.vulnerabilities).toMatchObject({ maxSeverity: "High", fixableOnly: false, onStaleDatabase: "warn", onUnsupportedDistribution: "warn" });
    expect(r.expired).toEqual([{ path: "spec.vulnerabilities.allowedIds[1]", index: 1, expires: "2020-01-01T00:00:00Z", reason: "GHSA-xxxx-yyyy-zzzz: TICKET-9" }]);
    expect(validCondition(r)).toMatchObject({ status: "True", reason: "ExceptionsExpired", message: expect.stringContaining("spec.vulnerabilities.allowedIds[1]") });
  });

  it("names the field of every vulnerability rule error", () => {
    expect(errors(imagePolicy({ vulnerabilities: {
      deniedIds: ["CVE 2024 1"], allowedIds: [{ id: "CVE-2024-1", expires: FUTURE }], maxDatabaseAge: "3 days", onStaleDatabase: "block",
    } }))).toEqual({
      "spec.vulnerabilities.deniedIds[0]": expect.stringMatching(/vulnerability or advisory id/),
      "spec.vulnerabilities.allowedIds[0].reason": "required",
      "spec.vulnerabilities.maxDatabaseAge": expect.stringMatching(/duration/),
      "spec.vulnerabilities.onStaleDatabase": 'must be one of deny, warn, allow, not "block"',
    });
  });

  it("names the field of every error", () => {
    const e = errors(
      imagePolicy({
        mode: "Block",
        onMissingScan: "Deny",
        images: ["nginx"],
        deniedImages: ["registry.example.com/x**"],
        requireDigest: "yes",
        breakGlass: { allowed: true, why: 1 },
        vulnerabilities: { maxSeverity: "Huge" },
        exceptions: [
          { images: ["docker.io/library/nginx"], expires: FUTURE },
          { images: ["docker.io/library/nginx"], reason: "x" },
          { images: ["docker.io/library/nginx"], reason: "x", expires: "2026-12-31" },
          { images: [], reason: "   ", expires: FUTURE },
        ],
        typo: true,
      }),
    );
    expect(e).toEqual({
      "spec.mode": 'must be one of Enforce, Warn, Audit, not "Block"',
      "spec.onMissingScan": 'must be one of deny, warn, allow, not "Deny"',
      "spec.images[0]": expect.stringMatching(/docker\.io\/library\/nginx/),
      "spec.deniedImages[0]": expect.stringMatching(/whole path segment/),
      "spec.requireDigest": expect.stringMatching(/boolean/),
      "spec.breakGlass.why": "unknown field",
      "spec.vulnerabilities.maxSeverity": expect.stringMatching(/must be one of None/),
      "spec.exceptions[0].reason": "required",
      "spec.exceptions[1].expires": "required",
      "spec.exceptions[2].expires": expect.stringMatching(/RFC 3339/),
      "spec.exceptions[3].images": expect.stringMatching(/at least one image glob/),
      "spec.exceptions[3].reason": expect.stringMatching(/blank/),
      "spec.typo": "unknown field",
    });
  });

  it("keeps namespaces out of a namespaced ImagePolicy", () => {
    const e = errors(imagePolicy({ namespaceSelector: {}, exceptions: [{ images: ["docker.io/library/nginx"], namespaces: ["web"], reason: "x", expires: FUTURE }] }));
    expect(e["spec.namespaceSelector"]).toMatch(/ClusterImagePolicy/);
    expect(e["spec.exceptions[0].namespaces"]).toMatch(/ClusterImagePolicy/);
  });

  it("checks what a label selector's schema cannot", () => {
    const e = errors(clusterPolicy({ namespaceSelector: { matchExpressions: [{ key: "a", operator: "In" }, { key: "b", operator: "Exists", values: ["x"] }, { key: "c", operator: "Near", values: ["x"] }] }, exceptions: [{ images: ["**"], namespaces: ["Web"], reason: "x", expires: FUTURE }] }));
    expect(e).toEqual({
      "spec.namespaceSelector.matchExpressions[0].values": "operator In needs at least one value",
      "spec.namespaceSelector.matchExpressions[1].values": "operator Exists takes no values",
      "spec.namespaceSelector.matchExpressions[2].operator": expect.stringMatching(/must be one of In, NotIn, Exists, DoesNotExist/),
      "spec.exceptions[0].namespaces[0]": expect.stringMatching(/namespace name/),
    });
  });

  it("refuses what is not a policy", () => {
    expect(parsePolicy(null)).toEqual({ ok: false, errors: [{ path: "", message: "expected a Kubernetes object" }] });
    expect(parsePolicy({ kind: "ImageScan" })).toMatchObject({ ok: false, errors: [{ path: "kind" }] });
    expect(errors({ ...imagePolicy({}), apiVersion: "portcullis.dev/v1" })).toEqual({ apiVersion: expect.stringMatching(/portcullis\.dev\/v1alpha1/) });
    expect(errors({ ...imagePolicy({}), metadata: {} })).toEqual({ "metadata.name": "required" });
  });

  it("turns errors into a Valid=False condition that names the fields", () => {
    const r = parsePolicy(imagePolicy({ images: ["nginx"] }));
    expect(validCondition(r)).toMatchObject({ type: "Valid", status: "False", reason: "InvalidSpec", message: expect.stringMatching(/^the policy is not used: spec\.images\[0\]: invalid image glob "nginx"/) });
  });
});

describe("labelSelectorMatches", () => {
  const labels = { team: "a", env: "prod" };
  it.each<[unknown, boolean]>([
    [undefined, true],
    [{}, true],
    [{ matchLabels: { team: "a" } }, true],
    [{ matchLabels: { team: "b" } }, false],
    [{ matchExpressions: [{ key: "env", operator: "In", values: ["prod", "stage"] }] }, true],
    [{ matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] }, false],
    [{ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["x"] }] }, true],
    [{ matchExpressions: [{ key: "team", operator: "Exists" }] }, true],
    [{ matchExpressions: [{ key: "tier", operator: "Exists" }] }, false],
    [{ matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] }, true],
    [{ matchLabels: { team: "a" }, matchExpressions: [{ key: "env", operator: "DoesNotExist" }] }, false],
  ])("%j: %s", (sel, want) => {
    expect(labelSelectorMatches(sel as Parameters<typeof labelSelectorMatches>[0], labels)).toBe(want);
  });
});

describe("selectPolicy: the documented precedence", () => {
  const parse = (o: unknown): Policy => ok(o).policy;
  const ns = { name: "team", labels: { tier: "apps" } };
  const img = "registry.example.com/team/app:1.0";

  it("returns undefined when no policy applies (the webhook's built-in default decides)", () => {
    const other = parse(imagePolicy({}, "p", "elsewhere"));
    const unselected = parse(clusterPolicy({ namespaceSelector: { matchLabels: { tier: "infra" } } }));
    const otherImages = parse(clusterPolicy({ images: ["docker.io/**"] }, "hub"));
    expect(selectPolicy([other, unselected, otherImages], img, ns, NOW)).toBeUndefined();
  });

  it("prefers a namespaced ImagePolicy over any ClusterImagePolicy, even a more specific one", () => {
    const ip = parse(imagePolicy({}, "broad"));
    const cip = parse(clusterPolicy({ images: [img] }, "exact"));
    expect(selectPolicy([cip, ip], img, ns, NOW)).toMatchObject({ via: "rules", policy: { kind: "ImagePolicy", metadata: { name: "broad" } } });
  });

  it("then the most specific selecting glob, then the name", () => {
    const all = parse(clusterPolicy({}, "a-all"));
    const registry = parse(clusterPolicy({ images: ["registry.example.com/**"] }, "b-registry"));
    const team = parse(clusterPolicy({ images: ["docker.io/**", "registry.example.com/team/*"] }, "c-team"));
    const team2 = parse(clusterPolicy({ images: ["registry.example.com/team/*"] }, "b-team"));
    expect(selectPolicy([all, registry, team], img, ns, NOW)).toMatchObject({ via: "rules", policy: { metadata: { name: "c-team" } }, glob: { pattern: "registry.example.com/team/*" } });
    expect(selectPolicy([all, registry, team, team2], img, ns, NOW)).toMatchObject({ policy: { metadata: { name: "b-team" } } });
    expect(selectPolicy([all, registry], "nginx", ns, NOW)).toMatchObject({ policy: { metadata: { name: "a-all" } }, glob: { pattern: "**" } });
  });

  it("checks exceptions first, across every applicable policy, skipping expired ones and other namespaces", () => {
    const ip = parse(imagePolicy({ exceptions: [{ images: ["registry.example.com/team/app"], reason: "expired", expires: PAST }] }, "strict"));
    const cip = parse(
      clusterPolicy(
        {
          exceptions: [
            { images: ["registry.example.com/team/*"], namespaces: ["web"], reason: "other namespace", expires: FUTURE },
            { images: ["registry.example.com/team/app:1.*"], namespaces: ["team"], reason: "TICKET-7", expires: FUTURE },
          ],
        },
        "global",
      ),
    );
    const d = selectPolicy([ip, cip], img, ns, NOW);
    expect(d).toMatchObject({ via: "exception", policy: { metadata: { name: "global" } }, index: 1, exception: { reason: "TICKET-7" } });
    expect(selectPolicy([ip, cip], "registry.example.com/team/app:2.0", ns, NOW)).toMatchObject({ via: "rules", policy: { metadata: { name: "strict" } } });
    // An exception only applies where its policy applies: here the policy does not select the image.
    const scoped = parse(clusterPolicy({ images: ["docker.io/**"], exceptions: [{ images: ["**"], reason: "all", expires: FUTURE }] }, "hub"));
    expect(selectPolicy([scoped], img, ns, NOW)).toBeUndefined();
    // After the expiry the exception no longer counts.
    expect(selectPolicy([cip], img, ns, new Date("2027-06-01T00:00:00Z"))).toMatchObject({ via: "rules" });
  });
});
