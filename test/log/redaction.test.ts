// Redaction on every channel a message leaves the process by, with the real API server and registry: a log
// line, an Event (read back from the API server), an ImageScan's status (message, conditions,
// credentialSource), and an admission answer (through the webhook's HTTP handler). Two kinds of leak are
// provoked for real: credentials inside a string that flows into messages (a URL with a password that
// contains `@`, written as an image reference), and the names of the operator's own pull secrets (which
// tenants must not learn; they see "operator pull secret"). And the registry metric label, whose values
// tenants would otherwise choose.
import { execFile } from "node:child_process";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { EventRecorder } from "../../src/kube/events.js";
import { logFn } from "../../src/log/logger.js";
import { createLogger } from "../../src/log/pino.js";
import { OPERATOR_PULL_SECRET, tenantRedactor } from "../../src/log/redact.js";
import { PortcullisMetrics } from "../../src/metrics/metrics.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { AdmissionWebhook } from "../../src/webhook/server.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { operatorRegistryHosts, SecretCache } from "../../src/registry/auth/workload.js";
import { GROUP, type ImageScan, VERSION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const opNs = "redact-operator";
const tenant = "redact-tenant";
const tenant2 = "redact-tenant2";
const PASSWORD = "p@ssw0rd-Zq7";
const HIDDEN = ["ssw0rd-Zq7", "op-wrong", "op-missing", "op-good", `${opNs}/`];

describeWith(["kube", "registryBasic", "postgres"], "redaction over every output channel", () => {
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  let store: Store;
  const controllers: ImageScanController[] = [];
  let webhook: AdmissionWebhook;
  let server: Server;
  const logLines: string[] = [];
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const image = () => `${service("registryBasic").host}/redact/debian:base`;
  // An image reference that is a URL with a password containing '@': it reaches messages as written.
  const urlImage = `postgres://u:${PASSWORD}@db.example.com/x`;

  beforeAll(async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "redact/debian:base");
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
    for (const n of [opNs, tenant, tenant2]) await kubectl("create", "namespace", n);
    await kubectl("-n", opNs, "create", "secret", "docker-registry", "op-good", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    await kubectl("-n", opNs, "create", "secret", "docker-registry", "op-wrong", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, "--docker-password=not-the-password");
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    core = kc.makeApiClient(k8s.CoreV1Api);
    store = await openStore(await databases.create("log_redaction"));
    const logger = createLogger({ level: "debug", destination: { write: (s: string) => void logLines.push(s) } });
    const indexer = new Indexer({ store, scanners: defaultScanners() });
    // The tenant's scans fall back to two operator secrets: one with a wrong password, one that does not exist
    // (the operator lists the tenants' namespaces, as it must for its credentials to apply there).
    const failing = { namespace: opNs, names: ["op-wrong", "op-missing"], namespaces: [tenant, tenant2] };
    const working = { namespace: opNs, names: ["op-good"], namespaces: [tenant, tenant2] };
    for (const [ns, operatorSecrets] of [[tenant, failing], [tenant2, working]] as const) {
      const events = new EventRecorder(kc, { redact: tenantRedactor(operatorSecrets) });
      const c = new ImageScanController({ kc, indexer, registry: { maxAttempts: 1 }, defaultPlatform: { os: "linux", architecture: "amd64" }, namespaces: [ns], operatorSecrets, events, log: logFn(logger.child({ component: "imagescan" })) });
      await c.start();
      controllers.push(c);
    }
    webhook = new AdmissionWebhook({ kc, namespace: "portcullis-system", timeoutSeconds: 5, registry: { maxAttempts: 1 }, operatorSecrets: failing });
    await webhook.start();
    server = (await webhook.listen({ host: "127.0.0.1", port: 0 })) as Server;
  }, 240_000);
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await webhook?.stop();
    for (const c of controllers) await c.stop();
    await store?.close();
  });

  const create = (ns: string, name: string, spec: ImageScan["spec"]) => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name }, spec } });
  async function settled(ns: string, name: string): Promise<ImageScan> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name })) as ImageScan;
      if (s.status?.phase === "Failed" || s.status?.phase === "Indexed") return s;
      if (Date.now() > deadline) throw new Error(`${ns}/${name} still ${JSON.stringify(s.status)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const expectHidden = (what: string, text: string) => {
    for (const h of HIDDEN) expect(text, `${what} leaks ${h}`).not.toContain(h);
  };

  it("status: the failure names no operator secret and no password; it says what kind of credential failed", async () => {
    await create(tenant, "wrong", { image: image() });
    await create(tenant, "url", { image: urlImage });
    const wrong = await settled(tenant, "wrong");
    expect(wrong.status!.phase).toBe("Failed");
    expectHidden("status", JSON.stringify(wrong.status));
    // What the tenant is told instead: the kind of source ("pull secret ... does not exist", "tried ...").
    expect(wrong.status!.message).toContain(OPERATOR_PULL_SECRET);
    expect(wrong.status!.conditions!.find((c) => c.type === "Indexed")!.message).toContain(OPERATOR_PULL_SECRET);
    const url = await settled(tenant, "url");
    expect(url.status!.phase).toBe("Failed");
    expectHidden("status", JSON.stringify(url.status));
    expect(url.status!.message).toContain("postgres://u:[REDACTED]@db.example.com/x");
  });

  it("status: credentialSource keeps the kind of source, not the operator secret's name", async () => {
    await create(tenant2, "good", { image: image() });
    const s = await settled(tenant2, "good");
    expect(s.status).toMatchObject({ phase: "Indexed", digest: layoutDigest(ociBookworm(), "base"), credentialSource: OPERATOR_PULL_SECRET });
  });

  it("Events: what the API server stores for the failed scans is redacted the same way", async () => {
    const deadline = Date.now() + 30_000;
    let messages: string[] = [];
    while (Date.now() < deadline) {
      const list = await core.listNamespacedEvent({ namespace: tenant });
      messages = list.items.filter((e) => e.involvedObject.kind === "ImageScan").map((e) => e.message ?? "");
      if (messages.length >= 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(messages.length).toBeGreaterThanOrEqual(2);
    for (const m of messages) expectHidden("Event", m);
    expect(messages.join("\n")).toContain(OPERATOR_PULL_SECRET);
    expect(messages.join("\n")).toContain("postgres://u:[REDACTED]@db.example.com/x");
  });

  it("Events: a recorder scrubs what its caller did not (a lowercase bearer token, AWS_SECRET_ACCESS_KEY)", async () => {
    const events = new EventRecorder(kc);
    const target = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "redact-probe", namespace: tenant, uid: "00000000-0000-0000-0000-000000000001" } };
    events.record(target, "Warning", "Probe", "upstream said: authorization: bearer abc123.def456 AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYz PRIVATE-TOKEN: glpat-Abcdefghij0123456789");
    await events.flush();
    const list = await core.listNamespacedEvent({ namespace: tenant, fieldSelector: "involvedObject.name=redact-probe" });
    expect(list.items).toHaveLength(1);
    const m = list.items[0]!.message!;
    for (const secret of ["abc123.def456", "wJalrXUtnFEMI", "glpat-Abcdefghij"]) expect(m).not.toContain(secret);
    expect(m).toBe("upstream said: authorization: bearer [REDACTED] AWS_SECRET_ACCESS_KEY=[REDACTED] PRIVATE-TOKEN: [REDACTED]");
  });

  it("admission answers: the denial names neither the operator secret nor the password", async () => {
    const review = (img: string, uid: string) => JSON.stringify({
      apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      request: {
        uid, kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" }, operation: "CREATE",
        namespace: tenant, name: "p", userInfo: { username: "tenant-user" },
        object: { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: tenant }, spec: { containers: [{ name: "c", image: img }] } },
      },
    });
    const port = (server.address() as AddressInfo).port;
    for (const [img, uid] of [[`${service("registryBasic").host}/redact/debian:two`, "u-1"], [urlImage, "u-2"]] as const) {
      const res = await request(`http://127.0.0.1:${port}/validate`, { method: "POST", headers: { "content-type": "application/json" }, body: review(img, uid) });
      const text = await res.body.text();
      expect(res.statusCode, text).toBe(200);
      const answer = JSON.parse(text) as { response: { uid: string; allowed: boolean; status?: { message: string }; warnings?: string[] } };
      expect(answer.response).toMatchObject({ uid, allowed: false });
      expect(answer.response.status!.message.length).toBeGreaterThan(20);
      expectHidden("admission answer", text);
    }
  });

  it("metrics: the registry label names the registries of the operator's pull secrets; a tenant's host is `other`", async () => {
    const hosts = await operatorRegistryHosts(new SecretCache(core), { namespace: opNs, names: ["op-good", "op-missing"] });
    expect(hosts).toEqual([service("registryBasic").host]);
    const m = new PortcullisMetrics();
    m.knowRegistries(hosts);
    expect(m.registryLabel(service("registryBasic").host)).toBe(service("registryBasic").host);
    expect(m.registryLabel("attacker-chosen-1234.example.com")).toBe("other");
  });

  it("log lines: the controller's lines carry no password (operators may read secret names in logs)", () => {
    const text = logLines.join("");
    expect(text).toContain("postgres://u:[REDACTED]@db.example.com/x");
    expect(text).not.toContain("ssw0rd-Zq7");
  });
});
