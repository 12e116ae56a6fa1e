// The validating webhook end to end: the real kube-apiserver calls it over TLS (clientConfig.url with a
// caBundle), kubectl is refused with Portcullis's message, the ImageScan it asks for is indexed by the
// controller, and the same command then succeeds. Only namespaces labelled for this test are sent to it.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { Agent, request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { EventRecorder } from "../../src/kube/events.js";
import { registerWebhooks, unregisterWebhooks } from "../../src/webhook/register.js";
import { AdmissionWebhook } from "../../src/webhook/server.js";
import { ClientCa } from "../../src/webhook/client-ca.js";
import { issueCert, makeCA } from "../env/certs.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool, until } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { freePort } from "../env/process.js";
import { GROUP, type ImageScan, PRIORITY_ANNOTATION, VERSION } from "../../src/kube/api/v1alpha1/index.js";
import { policyAppliesToNamespace } from "../../src/policy/select.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const ns = "adm-test";
const open = "adm-open";
const label = { key: "portcullis.dev/test-webhook", value: "adm" };

describeWith(["kube", "registryBasic", "postgres"], "admission webhook through the API server", () => {
  const dir = mkdtempSync(join(tmpdir(), "adm-"));
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let webhook: AdmissionWebhook;
  let events: EventRecorder;
  let server: Server;
  let controller: ImageScanController;
  let store: Store;
  let port: number;
  let caBundle: string;
  let tls: { cert: string; key: string };
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const image = (tag: string) => `${service("registryBasic").host}/adm/debian:${tag}`;
  const fails = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (e) {
      return `${(e as { stderr?: string }).stderr ?? ""}${(e as Error).message}`;
    }
    throw new Error("expected the command to be refused");
  };
  const scans = async () => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans" })) as { items: ImageScan[] }).items;
  const register = (failurePolicy: "Fail" | "Ignore" = "Fail", mutating = false) =>
    registerWebhooks(kc, { url: `https://127.0.0.1:${port}`, caBundle, failurePolicy, timeoutSeconds: 5, excludeNamespaces: ["kube-system", "portcullis-system"], onlyLabel: label, mutating });

  beforeAll(async () => {
    const reg = service("registryBasic");
    for (const tag of ["base", "two", "lang"]) await skopeoPush(`oci:${ociBookworm()}:${tag}`, reg, `adm/debian:${tag}`);
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans", "imagepolicies", "clusterimagepolicies"].map((crd) => `${crd}.portcullis.dev`));
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    for (const n of [ns, open]) {
      await core.createNamespace({ body: { metadata: { name: n, labels: n === ns ? { [label.key]: label.value } : {} } } });
      await kubectl("-n", n, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
      // `kubectl run` sets no pull secret: the namespace's default ServiceAccount carries it, as in a real cluster.
      await core.createNamespacedServiceAccount({ namespace: n, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } }).catch(() => undefined);
    }

    const ca = await makeCA(dir, "webhook");
    const leaf = await issueCert(dir, ca, "webhook", ["IP:127.0.0.1"], "serverAuth");
    caBundle = Buffer.from(ca.certPem).toString("base64");
    tls = { cert: leaf.certPem, key: leaf.keyPem };
    writeFileSync(join(dir, "ca.pem"), ca.certPem);

    store = await openStore(await databases.create("webhook_admission"));
    controller = new ImageScanController({ kc, indexer: new Indexer({ store, scanners: defaultScanners() }), registry: { maxAttempts: 1 }, defaultPlatform: { os: "linux", architecture: "amd64" }, namespaces: [ns, open] });
    await controller.start();
    events = new EventRecorder(kc);
    // Break-glass on for the default policy (serve --break-glass=true); the admin user passes its SubjectAccessReview.
    webhook = new AdmissionWebhook({
      kc, namespace: "portcullis-system", timeoutSeconds: 5, registry: { maxAttempts: 1 }, events,
      defaultPolicy: { mode: "Enforce", onMissingScan: "deny", requireDigest: false, breakGlassAllowed: true },
    });
    await webhook.start();
    port = await freePort();
    // The API server presents its client certificate (test/env): the answers are the full ones (docs/trust.md).
    server = (await webhook.listen({ host: "127.0.0.1", port, tls, clientCa: new ClientCa({ file: service("kube").webhookClient.caFile }) })) as Server;
    await register();
  }, 180_000);

  afterAll(async () => {
    // Never leave a webhook behind that could refuse other tests' objects.
    if (kc) await unregisterWebhooks(kc);
    server?.close();
    await webhook?.stop();
    await controller?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses `kubectl run` of an unscanned image with the field, the digest and the scan to watch; after the scan the same command succeeds", async () => {
    const out = await fails(kubectl("-n", ns, "run", "web", `--image=${image("base")}`, "--restart=Never"));
    const digest = layoutDigest(ociBookworm(), "base");
    expect(out).toContain("spec.containers[0].image");
    expect(out).toContain(image("base"));
    expect(out).toContain(digest);
    const scan = await until("the ImageScan the webhook asked for", async () => (await scans()).find((s) => s.metadata?.labels?.["portcullis.dev/digest"] === digest.slice(7, 70)));
    expect(out).toContain(`kubectl get scan -n ${ns} ${scan.metadata!.name}`);
    expect(scan.metadata!.annotations![PRIORITY_ANNOTATION]).toBe("true");
    await until("Indexed", async () => ((await scans()).find((s) => s.metadata!.name === scan.metadata!.name)?.status?.phase === "Indexed" ? true : undefined));
    // The webhook's cache follows the watch: give it a moment, then the same command goes through.
    await until("admission", async () => (await kubectl("-n", ns, "run", "web", `--image=${image("base")}`, "--restart=Never").then(() => true, () => undefined)));
  });

  it("refuses a Deployment at apply time with the template's field path; a server-side dry run creates no ImageScan", async () => {
    const before = (await scans()).length;
    const dry = await fails(kubectl("-n", ns, "create", "deployment", "dry", `--image=${image("lang")}`, "--dry-run=server"));
    expect(dry).toContain("spec.template.spec.containers[0].image");
    await new Promise((r) => setTimeout(r, 1500));
    expect((await scans()).length).toBe(before);

    const out = await fails(kubectl("-n", ns, "create", "deployment", "app", `--image=${image("two")}`));
    expect(out).toContain("spec.template.spec.containers[0].image");
    expect(out).toContain(image("two"));
    await until("a scan for the Deployment's image", async () => ((await scans()).length === before + 1 ? true : undefined));
  });

  it("lets a namespace that is not selected through, and its ImagePolicy in Warn mode turns a denial into a warning", async () => {
    await kubectl("-n", open, "run", "free", `--image=${image("lang")}`, "--restart=Never");
    writeFileSync(join(dir, "warn.yaml"), `apiVersion: portcullis.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: soft, namespace: ${ns}}\nspec: {mode: Warn}\n`);
    await kubectl("apply", "-f", join(dir, "warn.yaml"));
    const res = await until("the policy in the webhook's cache", async () => kubectl("-n", ns, "run", "warned", `--image=${image("lang")}`, "--restart=Never").then((r) => r, () => undefined), 15_000);
    expect(res.stderr).toMatch(/Warning: .*spec\.containers\[0\]\.image/);
    await kubectl("delete", "-f", join(dir, "warn.yaml"));
  });

  it("break-glass: an annotation with a reason lets a pod through (the default policy allows it, the user may)", async () => {
    // (Other tests' policies may be in the cache; none of them applies here.)
    const here = { name: ns, labels: { "kubernetes.io/metadata.name": ns, [label.key]: label.value } };
    await until("policy gone from the cache", async () => (webhook.policies().some((p) => policyAppliesToNamespace(p, here)) ? undefined : true));
    const out = await fails(kubectl("-n", ns, "run", "glass-0", `--image=${image("lang")}@${layoutDigest(ociBookworm(), "lang")}`, "--restart=Never", "--annotations=portcullis.dev/break-glass="));
    expect(out).toMatch(/break-glass/i);
    await kubectl("-n", ns, "run", "glass", `--image=${image("lang")}@${layoutDigest(ociBookworm(), "lang")}`, "--restart=Never", "--annotations=portcullis.dev/break-glass=incident 42: hotfix");
    await events.flush();
    const ev = (await kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: ns, fieldSelector: "involvedObject.name=glass" })).items;
    expect(ev.map((e) => [e.reason, e.type])).toContainEqual(["BreakGlass", "Warning"]);
    expect(ev.find((e) => e.reason === "BreakGlass")!.message).toContain("incident 42: hotfix");
  });

  it("Audit mode admits and records; the mutating webhook pins image:tag to its digest where a policy asks", async () => {
    writeFileSync(join(dir, "audit.yaml"), `apiVersion: portcullis.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: audit, namespace: ${ns}}\nspec: {mode: Audit, pinDigests: true}\n`);
    await kubectl("apply", "-f", join(dir, "audit.yaml"));
    await register("Fail", true);
    // "two" was refused earlier and its scan may not be indexed: Audit lets it through without a warning.
    const res = await until("the Audit policy in the cache", async () => kubectl("-n", ns, "run", "audited", `--image=${image("two")}`, "--restart=Never").then((r) => r, () => undefined), 15_000);
    expect(res.stderr).not.toMatch(/Warning/);
    const pod = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedPod({ namespace: ns, name: "audited" });
    expect(pod.spec!.containers[0]!.image).toBe(`${image("two")}@${layoutDigest(ociBookworm(), "two")}`);
    await kubectl("delete", "-f", join(dir, "audit.yaml"));
    await register("Fail", false);
  });

  it("answers a malformed AdmissionReview with HTTP 400 naming the problem, and judges ephemeral containers", async () => {
    // As the API server: with its client certificate (the webhook requires it; test/webhook/forged-review.test.ts posts without).
    const apiServer = { cert: service("kube").webhookClient.certPem, key: service("kube").webhookClient.keyPem };
    const post = (body: string) => request(`https://127.0.0.1:${port}/validate`, { method: "POST", body, headers: { "content-type": "application/json" }, dispatcher: new Agent({ connect: { ca: Buffer.from(caBundle, "base64").toString(), ...apiServer } }) });
    const bad = await post("{not json");
    expect(bad.statusCode).toBe(400);
    expect(await bad.body.text()).toMatch(/not JSON/);
    const wrong = await post(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "" } }));
    expect(wrong.statusCode).toBe(400);
    expect(await wrong.body.text()).toMatch(/request/);
    const eph = await post(JSON.stringify({
      apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      request: {
        uid: "u1", kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" }, subResource: "ephemeralcontainers",
        namespace: ns, name: "web", operation: "UPDATE", dryRun: true,
        object: { metadata: { name: "web" }, spec: { containers: [{ name: "app", image: image("base") }], ephemeralContainers: [{ name: "debug", image: image("never-pushed") }] } },
        oldObject: { metadata: { name: "web" }, spec: { containers: [{ name: "app", image: image("base") }] } },
      },
    }));
    expect(eph.statusCode).toBe(200);
    const r = (await eph.body.json()) as { response: { uid: string; allowed: boolean; status?: { message: string } } };
    expect(r.response).toMatchObject({ uid: "u1", allowed: false });
    expect(r.response.status!.message).toContain("spec.ephemeralContainers[0].image");
    expect(r.response.status!.message).not.toContain("spec.containers[0].image");
  });

  it("when the webhook is down: Fail refuses, Ignore lets through", async () => {
    await new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections?.();
    const out = await fails(kubectl("-n", ns, "run", "down", `--image=${image("base")}`, "--restart=Never"));
    expect(out).toMatch(/failed calling webhook/);
    await register("Ignore");
    await kubectl("-n", ns, "run", "down", `--image=${image("lang")}`, "--restart=Never");
  });
});
