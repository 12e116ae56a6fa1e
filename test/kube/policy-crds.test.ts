// The ImagePolicy and ClusterImagePolicy CRDs on the real API server: accepted objects get the schema's
// defaults and parse with the zod model; invalid ones are refused with a message naming the field; kubectl
// explain and kubectl get show what the CRDs promise. The test API server is 1.20 (no CEL), so everything here
// rests on the OpenAPI schema alone.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";
import { parsePolicy } from "../../src/kube/api/v1alpha1/index.js";

const run = promisify(execFile);
const crdFiles = ["imagepolicies.portcullis.dev.yaml", "clusterimagepolicies.portcullis.dev.yaml"].map((f) => fileURLToPath(new URL(`../../crds/${f}`, import.meta.url)));

const NS = "policy-crd-test";
/** Cluster-scoped objects outlive this file in the shared API server: every one is named with this prefix and deleted afterwards. */
const CLUSTER_PREFIX = "policy-crd-test-";
const API = { group: "portcullis.dev", version: "v1alpha1" };
const FUTURE = "2030-01-01T00:00:00Z";

/** The message of the API server's Status for a refused request (HTTP 422 Invalid). */
async function refusal(request: Promise<unknown>): Promise<string> {
  const e: unknown = await request.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof k8s.ApiException)) throw new Error(`expected the API server to refuse the object, got ${e === undefined ? "success" : String(e)}`);
  expect(e.code).toBe(422);
  const status = JSON.parse(e.body as string) as { reason: string; message: string };
  expect(status.reason).toBe("Invalid");
  return status.message;
}

describeWith(["kube"], "ImagePolicy and ClusterImagePolicy CRDs on the API server", () => {
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  let custom: k8s.CustomObjectsApi;

  const imagePolicy = (name: string, spec?: unknown) => ({ apiVersion: "portcullis.dev/v1alpha1", kind: "ImagePolicy", metadata: { name }, ...(spec === undefined ? {} : { spec }) });
  const clusterPolicy = (name: string, spec?: unknown) => ({ apiVersion: "portcullis.dev/v1alpha1", kind: "ClusterImagePolicy", metadata: { name: CLUSTER_PREFIX + name }, ...(spec === undefined ? {} : { spec }) });
  const createNamespaced = (body: object) => custom.createNamespacedCustomObject({ ...API, namespace: NS, plural: "imagepolicies", body }) as Promise<Record<string, unknown>>;
  const createCluster = (body: object) => custom.createClusterCustomObject({ ...API, plural: "clusterimagepolicies", body }) as Promise<Record<string, unknown>>;
  const deleteAll = async () => {
    await kubectl("delete", "imagepolicies", "--all", "-n", NS, "--ignore-not-found", "--wait=false").catch(() => undefined);
    const names = (await kubectl("get", "clusterimagepolicies", "-o", "name").catch(() => ({ stdout: "" }))).stdout.split("\n").filter((n) => n.includes(`/${CLUSTER_PREFIX}`));
    if (names.length) await kubectl("delete", ...names, "--ignore-not-found", "--wait=false");
  };

  beforeAll(async () => {
    for (const f of crdFiles) await kubectl("apply", "-f", f);
    await crdsEstablished(service("kube").kubeconfig, ["imagepolicies.portcullis.dev", "clusterimagepolicies.portcullis.dev"]);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await kubectl("create", "namespace", NS).catch((e: Error) => {
      if (!/AlreadyExists/.test(e.message)) throw e;
    });
    await deleteAll();
  });

  afterAll(async () => {
    if (custom) await deleteAll();
  });

  describe("valid policies", () => {
    it("accepts an ImagePolicy, applies the defaults, and the zod model agrees", async () => {
      const created = await createNamespaced(
        imagePolicy("team", {
          images: ["registry.example.com/team/**"],
          allowedImages: ["registry.example.com/**"],
          deniedImages: ["docker.io/**:latest"],
          exceptions: [{ images: ["docker.io/library/nginx:1.25"], reason: "TICKET-1: assessed, fix due in March", expires: FUTURE }],
        }),
      );
      expect(created.spec).toEqual({
        images: ["registry.example.com/team/**"],
        allowedImages: ["registry.example.com/**"],
        deniedImages: ["docker.io/**:latest"],
        exceptions: [{ images: ["docker.io/library/nginx:1.25"], reason: "TICKET-1: assessed, fix due in March", expires: FUTURE }],
        mode: "Enforce",
        onMissingScan: "deny",
        requireDigest: false,
        pinDigests: true,
        breakGlass: { allowed: false },
      });
      const parsed = parsePolicy(created);
      expect(parsed).toMatchObject({ ok: true, expired: [], warnings: [] });
      if (parsed.ok) expect(parsed.policy.spec).toEqual(created.spec);
    });

    it("gives an ImagePolicy without a spec the full default spec", async () => {
      const created = await createNamespaced(imagePolicy("defaults"));
      expect(created.spec).toEqual({ mode: "Enforce", onMissingScan: "deny", requireDigest: false, pinDigests: true, breakGlass: { allowed: false } });
      expect(parsePolicy(created)).toMatchObject({ ok: true });
    });

    it("accepts a ClusterImagePolicy with a namespace selector and per-namespace exceptions", async () => {
      const spec = {
        namespaceSelector: { matchLabels: { team: "web" }, matchExpressions: [{ key: "env", operator: "In", values: ["prod", "stage"] }] },
        images: ["**"],
        mode: "Warn",
        onMissingScan: "warn",
        requireDigest: true,
        pinDigests: false,
        breakGlass: { allowed: false },
        exceptions: [{ images: ["ghcr.io/org/tool:v1.*"], namespaces: ["web", "batch"], reason: "CVE-2026-0001 not reachable", expires: "2030-06-30T12:00:00.5+02:00" }],
        vulnerabilities: {
          maxSeverity: "High", fixableOnly: true, deniedIds: ["CVE-2021-44228", "GHSA-jfh8-c2jp-5v3q"],
          allowedIds: [{ id: "CVE-2023-44487", reason: "HTTP/2 not exposed", expires: "2030-01-01T00:00:00Z", images: ["ghcr.io/org/**"] }],
          maxDatabaseAge: "72h", onStaleDatabase: "deny", onUnsupportedDistribution: "allow",
        },
      };
      const created = await createCluster(clusterPolicy("web", spec));
      expect(created.spec).toEqual(spec);
      const parsed = parsePolicy(created);
      expect(parsed).toMatchObject({ ok: true, warnings: [], expired: [] });
      // The API server fills the rules' defaults as the zod model does.
      const vulnDefaults = await createCluster(clusterPolicy("vuln-defaults", { vulnerabilities: { maxSeverity: "Critical" } }));
      expect((vulnDefaults.spec as { vulnerabilities?: unknown }).vulnerabilities).toEqual({ maxSeverity: "Critical", fixableOnly: false, onStaleDatabase: "warn", onUnsupportedDistribution: "warn" });

      const defaulted = await createCluster(clusterPolicy("defaults", {}));
      expect(defaulted.spec).toEqual({ mode: "Enforce", onMissingScan: "deny", requireDigest: false, pinDigests: true, breakGlass: { allowed: false } });
    });

    it("leaves to the zod model what the schema cannot check, such as glob syntax and expiry", async () => {
      const created = await createNamespaced(imagePolicy("lax", { images: ["nginx"], exceptions: [{ images: ["docker.io/library/nginx"], reason: "old", expires: "2020-01-01T00:00:00Z" }] }));
      expect(parsePolicy(created)).toMatchObject({ ok: false, errors: [{ path: "spec.images[0]", message: expect.stringMatching(/docker\.io\/library\/nginx/) }] });
      const expired = await createNamespaced(imagePolicy("expired", { exceptions: [{ images: ["docker.io/library/nginx"], reason: "old", expires: "2020-01-01T00:00:00Z" }] }));
      expect(parsePolicy(expired)).toMatchObject({ ok: true, expired: [{ path: "spec.exceptions[0]", expires: "2020-01-01T00:00:00Z" }] });
    });
  });

  describe("invalid policies are refused by the schema, naming the field", () => {
    const exception = { images: ["docker.io/library/nginx"], reason: "TICKET-2", expires: FUTURE };
    const without = (key: keyof typeof exception) => Object.fromEntries(Object.entries(exception).filter(([k]) => k !== key));

    it.each<[string, unknown, RegExp]>([
      ["a mode outside the enum", { mode: "Block" }, /spec\.mode: Unsupported value: "Block"/],
      ["an onMissingScan outside the enum", { onMissingScan: "Deny" }, /spec\.onMissingScan: Unsupported value: "Deny"/],
      ["an exception without a reason", { exceptions: [without("reason")] }, /spec\.exceptions(\[0\])?\.reason: Required value/],
      ["an exception without an expiry", { exceptions: [without("expires")] }, /spec\.exceptions(\[0\])?\.expires: Required value/],
      ["an exception with a malformed expiry", { exceptions: [{ ...exception, expires: "next tuesday" }] }, /spec\.exceptions(\[0\])?\.expires: Invalid value: "next tuesday".*date-time/],
      ["an exception with a date but no time", { exceptions: [{ ...exception, expires: "2030-01-01" }] }, /spec\.exceptions(\[0\])?\.expires.*date-time/],
      ["an exception with a blank reason", { exceptions: [{ ...exception, reason: "  " }] }, /spec\.exceptions(\[0\])?\.reason/],
      ["an exception without images", { exceptions: [{ ...exception, images: [] }] }, /spec\.exceptions(\[0\])?\.images/],
      ["a glob with a space", { images: ["registry.example.com/a b"] }, /spec\.images/],
      ["a string for requireDigest", { requireDigest: "yes" }, /spec\.requireDigest/],
      ["an unknown severity", { vulnerabilities: { maxSeverity: "Huge" } }, /spec\.vulnerabilities\.maxSeverity/],
      ["an allowed id without a reason", { vulnerabilities: { allowedIds: [{ id: "CVE-2024-1", expires: FUTURE }] } }, /spec\.vulnerabilities\.allowedIds(\[0\])?\.reason: Required value/],
      ["a denied id that is not an id", { vulnerabilities: { deniedIds: ["log4shell please"] } }, /spec\.vulnerabilities\.deniedIds(\[0\])?: Invalid value/],
      ["a database age that is not a duration", { vulnerabilities: { maxDatabaseAge: "3 days" } }, /spec\.vulnerabilities\.maxDatabaseAge/],
    ])("ImagePolicy: %s", async (_what, spec, message) => {
      expect(await refusal(createNamespaced(imagePolicy("bad", spec)))).toMatch(message);
    });

    it.each<[string, unknown, RegExp]>([
      ["a mode outside the enum", { mode: "enforce" }, /spec\.mode: Unsupported value: "enforce"/],
      ["an exception without a reason", { exceptions: [{ images: ["**"], expires: FUTURE }] }, /spec\.exceptions(\[0\])?\.reason: Required value/],
      ["an exception namespace that is not a name", { exceptions: [{ images: ["**"], namespaces: ["Web Team"], reason: "x", expires: FUTURE }] }, /spec\.exceptions(\[0\])?\.namespaces/],
      ["a selector operator outside the enum", { namespaceSelector: { matchExpressions: [{ key: "a", operator: "Near" }] } }, /spec\.namespaceSelector\.matchExpressions(\[0\])?\.operator/],
    ])("ClusterImagePolicy: %s", async (_what, spec, message) => {
      expect(await refusal(createCluster(clusterPolicy("bad", spec)))).toMatch(message);
    });
  });

  describe("kubectl", () => {
    it("explains the fields with their descriptions", async () => {
      // The API server publishes a new CRD's OpenAPI a few seconds after it is Established.
      const explain = async (path: string) => {
        for (let i = 0; i < 40; i++) {
          const out = await kubectl("explain", path).then((r) => r.stdout, () => "");
          if (out) return out;
          await new Promise((r) => setTimeout(r, 500));
        }
        throw new Error(`kubectl explain ${path} never answered`);
      };
      const spec = (await explain("imagepolicy.spec")).replace(/\s+/g, " ");
      for (const field of ["images", "mode", "onMissingScan", "allowedImages", "deniedImages", "requireDigest", "pinDigests", "breakGlass", "exceptions", "vulnerabilities"]) {
        expect(spec).toContain(` ${field} <`);
      }
      expect(spec).toContain("matches within one path segment");
      expect(spec).toContain("Default: Enforce");
      expect(spec).toContain("the findings Portcullis keeps per digest");
      expect(spec).not.toContain("namespaceSelector");
      const exceptions = (await explain("imagepolicy.spec.exceptions")).replace(/\s+/g, " ");
      expect(exceptions).toMatch(/expires <string> -required- When the exception stops applying/);
      expect(exceptions).toMatch(/reason <string> -required-/);
      const cluster = (await explain("clusterimagepolicy.spec.namespaceSelector")).replace(/\s+/g, " ");
      expect(cluster).toContain("kubernetes.io/metadata.name");
    });

    it("lists policies with the printer columns", async () => {
      await createNamespaced(imagePolicy("audit", { mode: "Audit", onMissingScan: "allow", images: ["registry.example.com/**"] }));
      await custom.patchNamespacedCustomObjectStatus(
        {
          ...API, namespace: NS, plural: "imagepolicies", name: "audit",
          body: { status: { observedGeneration: 1, conditions: [{ type: "Ready", status: "True", reason: "Loaded", message: "in use", lastTransitionTime: "2026-01-01T00:00:00Z" }, { type: "Valid", status: "True", reason: "Valid", message: "the policy is valid", lastTransitionTime: "2026-01-01T00:00:00Z" }] } },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
      const out = (await kubectl("get", "imagepolicies", "-n", NS)).stdout;
      expect(out).toMatch(/^NAME\s+MODE\s+ONMISSINGSCAN\s+READY\s+AGE\s*$/m);
      expect(out).toMatch(/^audit\s+Audit\s+allow\s+True\s+\S+\s*$/m);
      expect(out).toMatch(/^defaults\s+Enforce\s+deny\s+\S+\s*$/m);
      const wide = (await kubectl("get", "ipol", "audit", "-n", NS, "-o", "wide")).stdout;
      expect(wide).toMatch(/^NAME\s+MODE\s+ONMISSINGSCAN\s+READY\s+IMAGES\s+AGE/m);
      expect(wide).toContain('["registry.example.com/**"]');

      const cluster = (await kubectl("get", "cipol", `${CLUSTER_PREFIX}web`, "-o", "wide")).stdout;
      expect(cluster).toMatch(/^NAME\s+MODE\s+ONMISSINGSCAN\s+READY\s+NAMESPACES\s+IMAGES\s+AGE/m);
      expect(cluster).toMatch(new RegExp(`^${CLUSTER_PREFIX}web\\s+Warn\\s+warn\\s+.*"team":"web".*\\["\\*\\*"\\]`, "m"));

      const all = (await kubectl("get", "portcullis", "-n", NS, "-o", "name")).stdout;
      expect(all).toContain("imagepolicy.portcullis.dev/audit");
    });
  });
});
