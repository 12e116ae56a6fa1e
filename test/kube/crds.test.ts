import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { beforeAll, expect, it } from "vitest";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";

const run = promisify(execFile);
const crdDir = fileURLToPath(new URL("../../crds/", import.meta.url));

describeWith(["kube"], "Portcullis CRDs on the API server", () => {
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  let custom: k8s.CustomObjectsApi;

  beforeAll(async () => {
    await kubectl("apply", "-f", crdDir);
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await kubectl("create", "namespace", "crd-test");
  });

  const create = (body: object) => custom.createNamespacedCustomObject({ group: "portcullis.dev", version: "v1alpha1", namespace: "crd-test", plural: "imagescans", body });

  it("serves ImageScans with `kubectl get scans` and the documented columns", async () => {
    await create({ apiVersion: "portcullis.dev/v1alpha1", kind: "ImageScan", metadata: { name: "nginx" }, spec: { image: "nginx:1.25", platform: "linux/arm64/v8" } });
    await custom.patchNamespacedCustomObjectStatus(
      { group: "portcullis.dev", version: "v1alpha1", namespace: "crd-test", plural: "imagescans", name: "nginx", body: { status: {
        phase: "Indexed", shortDigest: "0123456789ab", distribution: { prettyName: "Debian GNU/Linux 12 (bookworm)" }, packages: { total: 88 },
        vulnerabilities: { critical: 2, high: 7, medium: 0, low: 0, negligible: 0, unknown: 0, total: 9, fixable: 5, unfixed: 4, coverage: "supported", coverageMessage: "Debian:12 supported", matchedAt: "2026-12-04T00:00:00Z" },
      } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const out = (await kubectl("get", "scans", "-n", "crd-test")).stdout;
    expect(out).toMatch(/^NAME\s+IMAGE\s+DIGEST\s+PHASE\s+DISTRIBUTION\s+PACKAGES\s+CRITICAL\s+HIGH\s+FIXABLE\s+AGE/m);
    expect(out).toMatch(/^nginx\s+nginx:1\.25\s+0123456789ab\s+Indexed\s+Debian GNU\/Linux 12 \(bookworm\)\s+88\s+2\s+7\s+5\s+/m);
    expect((await kubectl("get", "scans", "-n", "crd-test", "-o", "wide")).stdout).toMatch(/COVERAGE[\s\S]*\ssupported\s/);
    expect((await kubectl("get", "scan", "nginx", "-n", "crd-test", "-o", "name")).stdout.trim()).toBe("imagescan.portcullis.dev/nginx");
    expect((await kubectl("get", "portcullis", "-n", "crd-test", "-o", "name")).stdout).toContain("imagescan.portcullis.dev/nginx");
  });

  it("documents its fields for kubectl explain", async () => {
    // The API server publishes a new CRD's OpenAPI a few seconds after it is Established.
    let out = "";
    for (let i = 0; i < 40 && !out; i++) {
      out = await kubectl("explain", "imagescan.spec.image").then((r) => r.stdout, async () => (await new Promise((r) => setTimeout(r, 500)), ""));
    }
    expect(out).toMatch(/resolved\s+to\s+a\s+digest/);
  });

  it("refuses an ImageScan without spec.image, and a malformed platform", async () => {
    await expect(create({ apiVersion: "portcullis.dev/v1alpha1", kind: "ImageScan", metadata: { name: "noimage" }, spec: {} })).rejects.toThrow(/spec.image/);
    await expect(create({ apiVersion: "portcullis.dev/v1alpha1", kind: "ImageScan", metadata: { name: "badplat" }, spec: { image: "x", platform: "Linux AMD64" } })).rejects.toThrow(/spec.platform/);
    await expect(create({ apiVersion: "portcullis.dev/v1alpha1", kind: "ImageScan", metadata: { name: "badrescan" }, spec: { image: "x", rescanAfter: "tomorrow" } })).rejects.toThrow(/spec.rescanAfter/);
  });
});
