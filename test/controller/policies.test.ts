// Policy status against the real API server: the operator says in `Valid` and `Ready` whether the webhook uses
// a policy, names the bad fields of one it does not, reports an exception when it expires, and does not write
// again when nothing changed.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PolicyStatusController } from "../../src/controller/policies.js";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";
import { waitUntil } from "../env/process.js";
import { type PolicyStatus } from "../../src/kube/api/v1alpha1/index.js";

const run = promisify(execFile);
const ns = "policy-status-test";
const clusterName = "policy-status-test-expiring";
const API = { group: "portcullis.dev", version: "v1alpha1" };

describeWith(["kube"], "policy status", () => {
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  let custom: k8s.CustomObjectsApi;
  let controller: PolicyStatusController;
  /** Status writes the controller made. */
  let writes = 0;

  beforeAll(async () => {
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagepolicies", "clusterimagepolicies"].map((crd) => `${crd}.portcullis.dev`));
    await kubectl("create", "namespace", ns);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    controller = new PolicyStatusController({ kc, namespaces: [ns], onStatusWrite: () => writes++ });
    await controller.start();
  });
  afterAll(async () => {
    await controller?.stop();
    await custom?.deleteClusterCustomObject({ ...API, plural: "clusterimagepolicies", name: clusterName }).catch(() => undefined);
    // A namespace is never removed on this API server (no controller manager): its policies would stay in
    // other tests' caches.
    for (const name of ["good", "bad"]) await custom?.deleteNamespacedCustomObject({ ...API, plural: "imagepolicies", namespace: ns, name }).catch(() => undefined);
  });

  const status = async (plural: string, name: string, namespace?: string) =>
    ((namespace
      ? await custom.getNamespacedCustomObject({ ...API, plural, namespace, name })
      : await custom.getClusterCustomObject({ ...API, plural, name })) as { metadata: { generation: number }; status?: PolicyStatus });
  const until = <T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 20_000) => waitUntil(what, f, { timeoutMs });
  const condition = (s: PolicyStatus | undefined, type: string) => s?.conditions?.find((c) => c.type === type);

  it("says Valid and Ready for a good policy, and which field is wrong in one the webhook ignores", async () => {
    await custom.createNamespacedCustomObject({ ...API, plural: "imagepolicies", namespace: ns, body: { apiVersion: "portcullis.dev/v1alpha1", kind: "ImagePolicy", metadata: { name: "good" }, spec: { images: ["registry.example.com/**"], onMissingScan: "warn" } } });
    // The API server accepts this glob (its characters are fine); the operator knows a glob needs its registry.
    await custom.createNamespacedCustomObject({ ...API, plural: "imagepolicies", namespace: ns, body: { apiVersion: "portcullis.dev/v1alpha1", kind: "ImagePolicy", metadata: { name: "bad" }, spec: { images: ["nginx"] } } });

    const good = await until("the good policy's status", async () => {
      const p = await status("imagepolicies", "good", ns);
      return p.status?.observedGeneration === p.metadata.generation ? p : undefined;
    });
    expect(condition(good.status, "Valid")).toMatchObject({ status: "True", reason: "Valid", observedGeneration: good.metadata.generation });
    expect(condition(good.status, "Ready")).toMatchObject({ status: "True", reason: "Loaded" });

    const bad = await until("the bad policy's status", async () => (await status("imagepolicies", "bad", ns)).status);
    expect(condition(bad, "Valid")).toMatchObject({ status: "False", reason: "InvalidSpec", message: expect.stringMatching(/^the policy is not used: spec\.images\[0\]: .*nginx/) });
    expect(condition(bad, "Ready")).toMatchObject({ status: "False", reason: "InvalidSpec" });

    const table = (await kubectl("get", "imagepolicies", "-n", ns)).stdout;
    expect(table).toMatch(/^bad\s+Enforce\s+deny\s+False\s+/m);
    expect(table).toMatch(/^good\s+Enforce\s+warn\s+True\s+/m);

    // A fix is a new generation: the conditions follow it, and the time of the transition moves.
    const before = condition(bad, "Valid")!.lastTransitionTime!;
    await new Promise((r) => setTimeout(r, 1100));
    await custom.patchNamespacedCustomObject({ ...API, plural: "imagepolicies", namespace: ns, name: "bad", body: { spec: { images: ["docker.io/library/nginx"] } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    const fixed = await until("the fixed policy's status", async () => {
      const p = await status("imagepolicies", "bad", ns);
      return condition(p.status, "Valid")?.status === "True" ? p : undefined;
    });
    expect(fixed.status!.observedGeneration).toBe(2);
    expect(Date.parse(condition(fixed.status, "Valid")!.lastTransitionTime!)).toBeGreaterThan(Date.parse(before));

    // Settled: its own writes do not wake it again.
    const settled = writes;
    await new Promise((r) => setTimeout(r, 1500));
    expect(writes).toBe(settled);
  });

  it("reports an exception in the Valid condition once it has expired, without anyone touching the policy", async () => {
    const expires = new Date(Date.now() + 3000).toISOString().replace(/\.\d+Z$/, "Z");
    await custom.createClusterCustomObject({
      ...API, plural: "clusterimagepolicies",
      body: {
        apiVersion: "portcullis.dev/v1alpha1", kind: "ClusterImagePolicy", metadata: { name: clusterName },
        spec: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } }, exceptions: [{ images: ["docker.io/library/nginx:1.25"], reason: "SEC-1: migration", expires }] },
      },
    });
    const valid = await until("the cluster policy's status", async () => condition((await status("clusterimagepolicies", clusterName)).status, "Valid"));
    expect(valid).toMatchObject({ status: "True", reason: "Valid" });
    const expired = await until("the expiry to show", async () => {
      const c = condition((await status("clusterimagepolicies", clusterName)).status, "Valid");
      return c?.reason === "ExceptionsExpired" ? c : undefined;
    }, 15_000);
    expect(expired.status).toBe("True");
    expect(expired.message).toContain(`spec.exceptions[0] (expired ${expires}: SEC-1: migration)`);
  });
});
