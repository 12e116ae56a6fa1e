// The Pod controller with the ImageScan controller against the real API server and registry: pods in two
// namespaces get one ImageScan per (namespace, digest), with the kubelet's credential order, shared layers
// are indexed once, kubectl shows the scans, and unused managed scans are collected.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SharedCache } from "../../src/kube/cache.js";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { PodController } from "../../src/controller/pods.js";
import { parseReference } from "../../src/image/reference.js";
import { Indexer, type IndexResult } from "../../src/indexer/indexer.js";
import { EventRecorder } from "../../src/kube/events.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool, until } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { DIGEST_LABEL, GROUP, type ImageScan, MANAGED_BY_LABEL, scanName, UNUSED_SINCE_ANNOTATION, VERSION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const crdDir = fileURLToPath(new URL("../../crds/", import.meta.url));
const [nsA, nsB] = ["pods-a", "pods-b"];

describeWith(["kube", "registryBasic", "postgres"], "Pod controller", () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let scans: ImageScanController;
  let cache: SharedCache;
  let pods: PodController;
  /** The registry's answers to the Pod controller's tag resolutions (its registry metrics hook). */
  const registryAnswers: Array<number | "error"> = [];
  let store: Store;
  let events: EventRecorder;
  const results: IndexResult[] = [];
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const base = () => layoutDigest(ociBookworm(), "base");
  const two = () => layoutDigest(ociBookworm(), "two");
  const image = (tag: string) => `${service("registryBasic").host}/pods/debian:${tag}`;

  beforeAll(async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "pods/debian:base");
    await skopeoPush(`oci:${ociBookworm()}:two`, reg, "pods/debian:two");
    await kubectl("apply", "-f", crdDir);
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
    for (const ns of [nsA, nsB]) {
      await kubectl("create", "namespace", ns);
      await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    }
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    // In pods-b the credentials come from the ServiceAccount, as the kubelet would take them.
    await core.createNamespacedServiceAccount({ namespace: nsB, body: { metadata: { name: "puller" }, imagePullSecrets: [{ name: "regcred" }] } });
    store = await openStore(await databases.create("controller_pods"));
    const indexer = new Indexer({ store, scanners: defaultScanners() });
    const index = indexer.index.bind(indexer);
    indexer.index = async (...a: Parameters<Indexer["index"]>) => {
      const r = await index(...a);
      results.push(r);
      return r;
    };
    events = new EventRecorder(kc);
    // One cache, as in `portcullis serve`: the two controllers share the ImageScan informer.
    cache = new SharedCache(kc);
    scans = new ImageScanController({ kc, cache, indexer, registry: { maxAttempts: 1 }, defaultPlatform: { os: "linux", architecture: "amd64" }, events, namespaces: [nsA, nsB] });
    pods = new PodController({ kc, cache, registry: { maxAttempts: 1 }, registryMetrics: { request: (e) => void registryAnswers.push(e.status) }, gcAfterMs: 1500, gcIntervalMs: 300, events, namespaces: [nsA, nsB] });
    await scans.start();
    await pods.start();
  }, 180_000);
  afterAll(async () => {
    await pods?.stop();
    await scans?.stop();
    cache?.stop();
    await events?.flush();
    await store?.close();
  });

  const pod = (ns: string, name: string, spec: Partial<k8s.V1PodSpec>) =>
    core.createNamespacedPod({ namespace: ns, body: { metadata: { name }, spec: { containers: [], ...spec } as k8s.V1PodSpec } });
  const list = async (ns: string) => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans" })) as { items: ImageScan[] }).items;
  const allIndexed = (ns: string, n: number) =>
    until(`${n} indexed scans in ${ns}`, async () => {
      const items = await list(ns);
      return items.length === n && items.every((s) => s.status?.phase === "Indexed") ? items : undefined;
    });

  it("creates one ImageScan per (namespace, digest) for pods' containers and init containers, with the kubelet's credential order", async () => {
    await pod(nsA, "web-1", { imagePullSecrets: [{ name: "regcred" }], initContainers: [{ name: "init", image: image("two") }], containers: [{ name: "app", image: image("base") }] });
    await pod(nsA, "web-2", { imagePullSecrets: [{ name: "regcred" }], containers: [{ name: "app", image: image("base") }, { name: "sidecar", image: `${image("base").split(":base")[0]}@${base()}` }] });
    await pod(nsB, "job-1", { serviceAccountName: "puller", containers: [{ name: "app", image: image("base") }] });

    const a = await allIndexed(nsA, 2);
    const b = await allIndexed(nsB, 1);
    const ref = parseReference(image("base"));
    const byDigest = Object.fromEntries(a.map((s) => [s.status!.digest!, s]));
    expect(Object.keys(byDigest).sort()).toEqual([base(), two()].sort());
    const scan = byDigest[base()]!;
    expect(scan.metadata!.name).toBe(scanName(ref, base()));
    expect(scan.metadata!.name).toMatch(/^pods-debian-[a-f0-9]{12}$/);
    expect(scan.metadata!.labels).toMatchObject({ [MANAGED_BY_LABEL]: "portcullis", [DIGEST_LABEL]: base().slice(7, 70) });
    expect(scan.spec).toEqual({ image: `${ref.registry}/${ref.repository}@${base()}`, imagePullSecrets: [{ name: "regcred" }] });
    expect(scan.status!.credentialSource).toBe(`secret ${nsA}/regcred`);
    // pods-b: the secret came from the ServiceAccount.
    expect(b[0]!.spec.imagePullSecrets).toEqual([{ name: "regcred" }]);
    expect(b[0]!.status!.credentialSource).toBe(`secret ${nsB}/regcred`);
    expect(b[0]!.status!.digest).toBe(base());

    // Three scans of two images with two distinct layers (base, and two's extra layer), indexed at once:
    // each layer is downloaded once, the same digest in two namespaces and the shared base included.
    expect(results.reduce((n, r) => n + r.stats.layersFetched, 0), JSON.stringify(results.map((r) => [r.report.manifest_hash.slice(7, 19), r.report.state, r.stats]))).toBe(2);
    expect(new Set(results.map((r) => r.report.manifest_hash))).toEqual(new Set([base(), two()]));

    const table = (await kubectl("get", "scans", "-A")).stdout;
    expect(table.split("\n")[0]).toMatch(/^NAMESPACE\s+NAME\s+IMAGE\s+DIGEST\s+PHASE\s+DISTRIBUTION\s+PACKAGES\s+CRITICAL\s+HIGH\s+FIXABLE\s+AGE/);
    expect(table).toMatch(new RegExp(`^${nsB}\\s+pods-debian-${base().slice(7, 19)}\\s+\\S+/pods/debian@sha256:\\S+\\s+${base().slice(7, 19)}\\s+Indexed\\s+Debian GNU/Linux 12 \\(bookworm\\)\\s+\\d+\\s+`, "m"));

    await events.flush();
    const ev = (await core.listNamespacedEvent({ namespace: nsA, fieldSelector: `involvedObject.name=${scan.metadata!.name}` })).items.map((e) => e.reason);
    expect(ev).toEqual(expect.arrayContaining(["Requested", "Indexed"]));
  });

  it("takes the digest from the kubelet's imageID without asking the registry", async () => {
    // A resolution is one answer of the registry other than the challenge (401) before the credentials.
    const resolutions = () => registryAnswers.filter((s) => s !== 401).length;
    const before = resolutions();
    expect(before, "the first test's tags, resolved through the hook").toBeGreaterThan(0);
    // A tag the registry does not have: only the kubelet's record can name the digest.
    await pod(nsA, "pulled", { imagePullSecrets: [{ name: "regcred" }], containers: [{ name: "app", image: image("gone") }] });
    await core.patchNamespacedPodStatus(
      { name: "pulled", namespace: nsA, body: { status: { phase: "Running", containerStatuses: [{ name: "app", image: image("gone"), imageID: `${image("gone").split(":gone")[0]}@${base()}`, ready: true, restartCount: 0 }] } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await until("the pod to be reconciled with its imageID", async () => {
      await new Promise((r) => setTimeout(r, 300));
      const items = await list(nsA);
      return items.length === 2 && items.every((s) => !s.metadata?.labels?.["portcullis.dev/reference"]) ? true : undefined;
    });
    // The first reconcile (before the status) may have tried the tag; after it, no scan of the tag remains needed.
    expect(resolutions() - before).toBeLessThanOrEqual(1);
  });

  it("a pod whose pull secret does not exist gets a scan that says so", async () => {
    await pod(nsB, "private", { imagePullSecrets: [{ name: "nope" }], containers: [{ name: "app", image: image("two") }] });
    const failed = await until("a failed scan for the missing secret", async () => (await list(nsB)).find((s) => s.status?.phase === "Failed"));
    expect(failed.status!.conditions!.find((c) => c.type === "Resolved")).toMatchObject({ status: "False", reason: "PullSecretMissing" });
    expect(failed.status!.message).toContain(`${nsB}/nope`);
    expect(failed.spec.image).toBe(image("two"));
  });

  it("collects managed scans no pod uses any more, and never a user's own", async () => {
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: nsB, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "mine" }, spec: { image: image("base"), imagePullSecrets: [{ name: "regcred" }] } } });
    await core.deleteNamespacedPod({ namespace: nsB, name: "job-1", gracePeriodSeconds: 0 });
    await core.deleteNamespacedPod({ namespace: nsB, name: "private", gracePeriodSeconds: 0 });
    // First marked unused, then (gcAfter 1.5 s) deleted.
    const marked = await until("an unused-since mark", async () => (await list(nsB)).find((s) => s.metadata?.annotations?.[UNUSED_SINCE_ANNOTATION]));
    expect(Date.parse(marked.metadata!.annotations![UNUSED_SINCE_ANNOTATION]!)).toBeGreaterThan(Date.now() - 60_000);
    const left = await until("collection", async () => {
      const items = await list(nsB);
      return items.length === 1 ? items : undefined;
    });
    expect(left[0]!.metadata!.name).toBe("mine");
    // pods-a still runs its pods: nothing collected there.
    expect((await list(nsA)).length).toBe(2);
  });
});
