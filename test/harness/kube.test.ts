import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { expect, it } from "vitest";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";

const run = promisify(execFile);
const crdFile = fileURLToPath(new URL("../fixtures/harness-crd.yaml", import.meta.url));

describeWith(["kube"], "the test API server", () => {
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);

  it("accepts a CRD from kubectl and serves its objects, schema and status subresource", async () => {
    await kubectl("apply", "-f", crdFile);
    await crdsEstablished(service("kube").kubeconfig, ["widgets.harness.portcullis.dev"]);
    const crd = JSON.parse((await kubectl("get", "crd", "widgets.harness.portcullis.dev", "-o", "json")).stdout) as { spec: { names: { shortNames: string[] } } };
    expect(crd.spec.names.shortNames).toEqual(["wdg"]);

    // The typed client from the product's dependency list talks to it too.
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await custom.createNamespacedCustomObject({
      group: "harness.portcullis.dev", version: "v1", namespace: "default", plural: "widgets",
      body: { apiVersion: "harness.portcullis.dev/v1", kind: "Widget", metadata: { name: "w1", labels: { a: "b" } }, spec: { size: 3 } },
    });
    await custom.patchNamespacedCustomObjectStatus(
      { group: "harness.portcullis.dev", version: "v1", namespace: "default", plural: "widgets", name: "w1", body: { status: { phase: "Ready" } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const table = (await kubectl("get", "wdg", "w1", "-n", "default")).stdout;
    expect(table).toMatch(/^NAME\s+SIZE\s+AGE/m);
    expect(table).toMatch(/^w1\s+3\s+/m);
    const back = JSON.parse((await kubectl("get", "widget", "w1", "-o", "json")).stdout) as { status: { phase: string }; metadata: { labels: Record<string, string> } };
    expect(back.status.phase).toBe("Ready");
    expect(back.metadata.labels).toEqual({ a: "b" });

    // The structural schema is enforced.
    const bad = custom.createNamespacedCustomObject({
      group: "harness.portcullis.dev", version: "v1", namespace: "default", plural: "widgets",
      body: { apiVersion: "harness.portcullis.dev/v1", kind: "Widget", metadata: { name: "w2" }, spec: { size: 0 } },
    });
    await expect(bad).rejects.toThrow(/spec.size/);
  });

  it("enforces RBAC: a user with no roles is forbidden", async () => {
    const kc = new k8s.KubeConfig();
    const kube = service("kube");
    kc.loadFromOptions({
      clusters: [{ name: "c", server: kube.server, caData: Buffer.from(kube.caPem).toString("base64") }],
      users: [{ name: "u", token: kube.unprivilegedToken }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await expect(core.listNamespacedPod({ namespace: "default" })).rejects.toMatchObject({ code: 403 });
  });

  it("keeps pods Pending (no kubelet) and accepts a status patch acting as one", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "harness" } } });
    await core.createNamespacedPod({ namespace: "harness", body: { metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "registry.example/app:1" }] } } });
    const imageID = "registry.example/app@sha256:" + "a".repeat(64);
    await core.patchNamespacedPodStatus(
      { name: "p", namespace: "harness", body: { status: { containerStatuses: [{ name: "c", image: "registry.example/app:1", imageID, ready: false, restartCount: 0 }] } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const pod = await core.readNamespacedPod({ name: "p", namespace: "harness" });
    expect(pod.status?.phase).toBe("Pending");
    expect(pod.status?.containerStatuses?.[0]?.imageID).toBe(imageID);
  });
});
