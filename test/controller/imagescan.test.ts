// The ImageScan controller against the real API server and the real registries.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { GROUP, type ImageScan, VERSION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const crdDir = fileURLToPath(new URL("../../crds/", import.meta.url));
const ns = "scans-test";

describeWith(["kube", "registryBasic", "postgres"], "ImageScan controller", () => {
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let controller: ImageScanController;
  let store: Store;
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);

  beforeAll(async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "ctl/debian:base");
    await kubectl("apply", "-f", crdDir);
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
    await kubectl("create", "namespace", ns);
    await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    store = await openStore(await databases.create("controller_imagescan"));
    controller = new ImageScanController({ kc, indexer: new Indexer({ store, scanners: defaultScanners() }), registry: { maxAttempts: 1 }, defaultPlatform: { os: "linux", architecture: "amd64" }, namespaces: [ns] });
    await controller.start();
  }, 180_000);
  afterAll(async () => {
    await controller?.stop();
    await store?.close();
  });

  const create = (name: string, spec: ImageScan["spec"]) => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name }, spec } });
  const get = async (name: string) => (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name })) as ImageScan;
  async function until(name: string, phases: string[], timeoutMs = 60_000): Promise<ImageScan> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await get(name);
      if (s.status?.phase && phases.includes(s.status.phase)) return s;
      if (Date.now() > deadline) throw new Error(`${name} still ${JSON.stringify(s.status)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it("indexes an image from a private registry with the ImageScan's pull secret, and kubectl get scans shows it", async () => {
    const reg = service("registryBasic");
    await create("debian", { image: `${reg.host}/ctl/debian:base`, imagePullSecrets: [{ name: "regcred" }] });
    const s = await until("debian", ["Indexed", "Failed"]);
    expect(s.status).toMatchObject({ phase: "Indexed", digest: layoutDigest(ociBookworm(), "base"), observedGeneration: 1, credentialSource: `secret ${ns}/regcred`, layers: { total: 1 } });
    expect(s.status!.packages!.total).toBeGreaterThan(80);
    expect(s.status!.distribution!.prettyName).toMatch(/Debian GNU\/Linux 12/);
    expect(s.status!.conditions!.map((c) => `${c.type}=${c.status}`)).toEqual(["Resolved=True", "Indexed=True"]);
    expect(JSON.stringify(s.status).length).toBeLessThan(4096);
    const table = (await kubectl("get", "scans", "-A")).stdout;
    expect(table).toMatch(new RegExp(`^${ns}\\s+debian\\s+\\S+/ctl/debian:base\\s+${s.status!.shortDigest}\\s+Indexed\\s+Debian GNU/Linux 12 \\(bookworm\\)\\s+${s.status!.packages!.total}\\s+`, "m"));
  });

  it("fails with readable reasons: bad reference, missing secret, no credentials, unknown tag", async () => {
    const reg = service("registryBasic");
    await create("bad-ref", { image: "Not A Reference" });
    await create("no-secret", { image: `${reg.host}/ctl/debian:base`, imagePullSecrets: [{ name: "missing" }] });
    await create("anonymous", { image: `${reg.host}/ctl/debian:base` });
    await create("no-tag", { image: `${reg.host}/ctl/debian:nope`, imagePullSecrets: [{ name: "regcred" }] });
    const reasons: Record<string, string> = {};
    for (const n of ["bad-ref", "no-secret", "anonymous", "no-tag"]) {
      const s = await until(n, ["Failed", "Indexed"]);
      expect(s.status!.phase, n).toBe("Failed");
      reasons[n] = s.status!.conditions!.find((c) => c.type === "Indexed")!.reason;
      expect(s.status!.message!.length, n).toBeGreaterThan(10);
    }
    expect(reasons).toEqual({ "bad-ref": "InvalidSpec", "no-secret": "PullSecretMissing", anonymous: "AuthFailed", "no-tag": "ManifestUnknown" });
    expect((await get("bad-ref")).status!.message).toMatch(/invalid reference "Not A Reference"/);
    expect((await get("no-secret")).status!.message).toContain(`${ns}/missing`);
  });

  it("does nothing for an ImageScan already answered, and indexes again when the spec changes", async () => {
    const before = await get("debian");
    await controller.reconcile(`${ns}/debian`);
    expect((await get("debian")).metadata!.resourceVersion).toBe(before.metadata!.resourceVersion);
    await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name: "anonymous", body: { spec: { imagePullSecrets: [{ name: "regcred" }] } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const s = await until("anonymous", ["Indexed"]);
    expect(s.status!.observedGeneration).toBe(2);
    expect(s.status!.layers).toEqual({ total: 1, reused: 1 });
  });
});
