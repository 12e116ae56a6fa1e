// Vulnerabilities from the store to the admission verdict, through the real kube-apiserver, a real registry
// and the PostgreSQL the cluster would use: an image is indexed and matched against Debian's tracker data;
// an advisory operation that adds a High finding for one of its packages is re-matched without a layer
// download, changes the ImageScan's status and records an Event; a policy then denies the pod naming the id,
// the package and the fix, an allowedIds entry admits it, and when the entry expires it is denied again.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { defaultCatalogue } from "../../src/advisories/catalogue.js";
import { importPlans, planImport } from "../../src/advisories/import.js";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { Rematcher } from "../../src/findings/rematch.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { EventRecorder } from "../../src/kube/events.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { registerWebhooks, unregisterWebhooks } from "../../src/webhook/register.js";
import { AdmissionWebhook } from "../../src/webhook/server.js";
import { ClientCa } from "../../src/webhook/client-ca.js";
import { issueCert, makeCA } from "../env/certs.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool, until } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { freePort } from "../env/process.js";
import { GROUP, type ImageScan, VERSION } from "../../src/kube/api/v1alpha1/index.js";

const run = promisify(execFile);
const ns = "vuln-adm";
const label = { key: "portcullis.dev/test-webhook", value: "vulns" };
const tracker = fileURLToPath(new URL("../../../shared/fixtures/advisories/debian/vunnel/debian.json", import.meta.url));
const CVE = "CVE-2099-0001";

describeWith(["kube", "registryBasic", "postgres"], "vulnerability policies through the API server", () => {
  const dir = mkdtempSync(join(tmpdir(), "vuln-adm-"));
  const databases = scratchDatabases();
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let store: Store;
  let controller: ImageScanController;
  let webhook: AdmissionWebhook;
  let server: Server;
  const rematchStop = new AbortController();
  let rematching: Promise<void> | undefined;
  /** Registry requests the controller made (a re-match must make none). */
  const registryRequests: string[] = [];
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const image = () => `${service("registryBasic").host}/vulns/debian:base`;
  const digest = layoutDigest(ociBookworm(), "base");
  const refused = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (e) {
      return `${(e as { stderr?: string }).stderr ?? ""}${(e as Error).message}`;
    }
    throw new Error("expected the command to be refused");
  };
  const scan = async () => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans" })) as { items: ImageScan[] }).items
    .find((s) => s.status?.digest === digest);
  const importTracker = async (json: string) => {
    const sub = mkdtempSync(join(dir, "tracker-"));
    writeFileSync(join(sub, "debian.json"), json);
    const plan = await planImport([join(sub, "debian.json")], defaultCatalogue());
    return (await importPlans(store.advisories, plan.plans)).map((r) => `${r.source} ${r.status}`);
  };
  const policy = (vulnerabilities: Record<string, unknown>) => ({
    apiVersion: "portcullis.dev/v1alpha1", kind: "ImagePolicy", metadata: { name: "vulns", namespace: ns },
    spec: { images: [`${service("registryBasic").host}/vulns/**`], onMissingScan: "deny", vulnerabilities },
  });
  const applyPolicy = async (vulnerabilities: Record<string, unknown>) => {
    const file = join(dir, `policy-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify(policy(vulnerabilities)));
    await kubectl("apply", "-f", file);
    // The webhook's informer has the new version before the next review is sent.
    const want = JSON.stringify((vulnerabilities.allowedIds as Array<{ expires: string }> | undefined)?.map((a) => a.expires) ?? []);
    await until("the webhook's policy cache", async () => {
      const have = webhook.policies().find((p) => p.metadata.name === "vulns")?.spec.vulnerabilities;
      return have && JSON.stringify((have.allowedIds ?? []).map((a) => a.expires)) === want ? true : undefined;
    });
  };

  beforeAll(async () => {
    store = await openStore(await databases.create("vuln_adm"));

    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "vulns/debian:base");
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans", "imagepolicies", "clusterimagepolicies"].map((crd) => `${crd}.portcullis.dev`));
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns, labels: { [label.key]: label.value } } } });
    await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } }).catch(() => undefined);

    const ca = await makeCA(dir, "webhook");
    const leaf = await issueCert(dir, ca, "webhook", ["IP:127.0.0.1"], "serverAuth");
    const events = new EventRecorder(kc);
    controller = new ImageScanController({
      kc, store, indexer: new Indexer({ store, scanners: defaultScanners() }), registry: { maxAttempts: 1 }, events,
      defaultPlatform: { os: "linux", architecture: "amd64" }, namespaces: [ns],
      registryMetrics: { request: (e) => void registryRequests.push(`${e.method} ${e.registry} ${e.status}`) },
    });
    await controller.start();
    webhook = new AdmissionWebhook({ kc, namespace: "portcullis-system", timeoutSeconds: 5, registry: { maxAttempts: 1 }, events, findings: (d) => store.findings.get(d) });
    await webhook.start();
    const port = await freePort();
    // The API server presents its client certificate (test/env): the answers name the findings (docs/trust.md).
    server = (await webhook.listen({ host: "127.0.0.1", port, tls: { cert: leaf.certPem, key: leaf.keyPem }, clientCa: new ClientCa({ file: service("kube").webhookClient.caFile }) })) as Server;
    await registerWebhooks(kc, { url: `https://127.0.0.1:${port}`, caBundle: Buffer.from(ca.certPem).toString("base64"), failurePolicy: "Fail", timeoutSeconds: 5, excludeNamespaces: ["kube-system", "portcullis-system"], onlyLabel: label, mutating: false });
    rematching = new Rematcher({ store, intervalMs: 300, onChange: async (c) => void (await controller.applyFindings(c)) }).run(rematchStop.signal);
  }, 180_000);

  afterAll(async () => {
    if (kc) await unregisterWebhooks(kc);
    rematchStop.abort();
    await rematching;
    server?.close();
    await webhook?.stop();
    await controller?.stop();
    await store?.close();
    await databases.dropAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("matches on indexing, re-matches an update without downloading, and enforces, allows and re-enforces by policy", async () => {
    // Debian's tracker data (real records; none affects this image), then the policy: nothing above Medium.
    expect(await importTracker(readFileSync(tracker, "utf8"))).toEqual(["debian imported"]);
    await applyPolicy({ maxSeverity: "Medium" });

    // Not scanned yet: refused, and the scan it requests is indexed and matched in one status write.
    expect(await refused(kubectl("-n", ns, "run", "web", `--image=${image()}`, "--restart=Never"))).toContain("is not scanned yet");
    const indexed = await until("Indexed and matched", async () => {
      const s = await scan();
      return s?.status?.phase === "Indexed" ? s : undefined;
    }, 120_000);
    expect(indexed.status!.vulnerabilities).toMatchObject({ critical: 0, high: 0, total: 0, coverage: "supported", coverageMessage: expect.stringMatching(/^Debian:12 supported/) });
    expect(indexed.status!.conditions!.find((c) => c.type === "Matched")).toMatchObject({ status: "True", reason: "Matched" });
    const columns = (await kubectl("-n", ns, "get", "scans")).stdout;
    expect(columns.split("\n")[0]).toMatch(/CRITICAL\s+HIGH\s+FIXABLE/);
    expect(columns.split("\n")[1]).toMatch(/\s0\s+0\s+0\s/);
    await kubectl("-n", ns, "run", "web", `--image=${image()}`, "--restart=Never");
    await kubectl("-n", ns, "delete", "pod", "web", "--wait=false");

    // An update adds a High record for the image's apt (its installed version, +1): re-matched, no layer read.
    const report = (await store.indexReport(digest))!.report;
    const apt = Object.values(report.packages ?? {}).find((p) => p.name === "apt")!;
    const fixed = `${apt.version}+deb12u99`;
    const data = JSON.parse(readFileSync(tracker, "utf8")) as Record<string, unknown>;
    data.apt = { [CVE]: { scope: "local", description: "a test record", releases: { bookworm: { status: "resolved", repositories: { bookworm: apt.version }, fixed_version: fixed, urgency: "high" } } } };
    const requestsBefore = registryRequests.length;
    expect(await importTracker(JSON.stringify(data))).toEqual(["debian imported"]);
    const rematched = await until("the re-matched status", async () => {
      const s = await scan();
      return s?.status?.vulnerabilities?.high === 1 ? s : undefined;
    });
    expect(rematched.status!.vulnerabilities).toMatchObject({ high: 1, total: 1, fixable: 1, unfixed: 0 });
    expect((await store.findings.get(digest))!.findings.map((f) => f.package)).toEqual(["apt", "libapt-pkg6.0"]);
    expect(registryRequests.slice(requestsBefore)).toEqual([]);
    expect(rematched.status!.phase).toBe("Indexed");
    expect(rematched.status!.message).toMatch(/^indexed: \d+ packages; 0 critical, 1 high, 1 fixable \(of 1 vulnerability\)$/);
    expect(rematched.status!.conditions!.find((c) => c.type === "Matched")?.message).toBe("0 critical, 1 high, 1 fixable (of 1 vulnerability); coverage: Debian:12 supported");
    const event = await until("the NewVulnerabilities Event", async () => {
      const list = await kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: ns });
      return list.items.find((e) => e.reason === "NewVulnerabilities" && e.involvedObject.name === rematched.metadata!.name);
    });
    // apt's source also builds libapt-pkg6.0: the record (by source package) affects both.
    expect(event.message).toBe(`1 Critical/High new after an advisory update: ${CVE} (High, apt ${apt.version} and libapt-pkg6.0 ${apt.version}, fixed in ${fixed})`);
    expect(event.type).toBe("Warning");

    // The policy now denies, naming the id, the package and the fix.
    const denied = await refused(kubectl("-n", ns, "run", "web2", `--image=${image()}`, "--restart=Never"));
    expect(denied).toContain(`has 1 vulnerability above maxSeverity Medium: ${CVE} (High, apt ${apt.version}, fixed in ${fixed})`);
    expect(denied).toContain("ImagePolicy/vuln-adm/vulns");

    // Overlooked until an expiry a few seconds away: admitted, then denied again once it has passed.
    const expires = new Date(Date.now() + 8000).toISOString().replace(/\.\d+Z$/, "Z");
    await applyPolicy({ maxSeverity: "Medium", allowedIds: [{ id: CVE, reason: "not reachable: TICKET-42", expires }] });
    await kubectl("-n", ns, "run", "web3", `--image=${image()}`, "--restart=Never");
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expires) - Date.now() + 500)));
    expect(await refused(kubectl("-n", ns, "run", "web4", `--image=${image()}`, "--restart=Never"))).toContain(`${CVE} (High, apt`);
  });
});
