// Forged AdmissionReviews, posted straight to the webhook's port as any pod could, in both webhook modes
// (docs/trust.md, "The two webhook modes"), through the real API server and a real registry that refuses
// anonymous pulls:
// - with --webhook-client-ca (the client CA is the one the test API server's --admission-control-config-file
//   gives a certificate of, for every webhook): a caller without that certificate fails the TLS handshake and
//   causes nothing — no ImageScan, no Event — while the very same review sent with the API server's
//   certificate creates both (the control that shows what the refusal prevented);
// - without it: the answer says allowed or denied and which rule, never a digest resolved, a registry error
//   met or an ImageScan named with the namespace's credentials (the control: the same reviews through the
//   client-CA webhook say all three); the BreakGlass Event names no user; new scans are deduplicated and
//   limited per namespace.
// In both modes `kubectl run` of an unscanned image is denied, the scan is made and Indexed, and the same
// command is then admitted.
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { parseReference } from "../../src/image/reference.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { EventRecorder } from "../../src/kube/events.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { ClientCa } from "../../src/webhook/client-ca.js";
import { validatingConfiguration } from "../../src/webhook/register.js";
import { AdmissionWebhook } from "../../src/webhook/server.js";
import { issueCert, makeCA } from "../env/certs.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool, until as untilShared } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { freePort } from "../env/process.js";
import { GROUP, type ImageScan, scanName, VERSION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const CA_NS = "fr-ca"; // judged by the webhook that requires the API server's client certificate
const OPEN_NS = "fr-open"; // judged by the webhook without a client CA
const VICTIM = "fr-victim"; // has a pull secret; forged reviews name it
const GLASS = "fr-glass";
const LIMIT = "fr-limit";
const LIMIT2 = "fr-limit2";
const CONFIGS = ["portcullis-fr-ca", "portcullis-fr-open"];
const LABEL = "portcullis.dev/test-webhook";

describeWith(["kube", "registryBasic", "postgres"], "forged AdmissionReviews, with and without the client CA", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-"));
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  let store: Store;
  let controller: ImageScanController;
  let events: EventRecorder;
  let withCa: AdmissionWebhook;
  let open: AdmissionWebhook;
  let clientCa: ClientCa;
  const servers: Server[] = [];
  let caPort: number;
  let openPort: number;
  let serverCaPem: string;
  const scanRequests: string[] = [];
  const reg = () => service("registryBasic");
  const image = (tag: string) => `${reg().host}/fr/debian:${tag}`;
  const digestOf = (tag: string) => layoutDigest(ociBookworm(), tag);
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const until = <T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 90_000) => untilShared(what, f, timeoutMs, 250);
  const scans = async (ns: string) => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans" })) as { items: ImageScan[] }).items;
  const eventsOf = async (ns: string, name: string) => {
    await events.flush();
    return (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })).items;
  };
  const fails = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (e) {
      return `${(e as { stderr?: string }).stderr ?? ""}${(e as Error).message}`;
    }
    throw new Error("expected the command to be refused");
  };

  /** An AdmissionReview of a Pod CREATE, as the API server would send it. */
  function review(ns: string, name: string, img: string, o: { user?: string; groups?: string[]; annotations?: Record<string, string> } = {}): string {
    return JSON.stringify({
      apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      request: {
        uid: `${name}-${Date.now()}`, kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" },
        name, namespace: ns, operation: "CREATE", userInfo: { username: o.user ?? "someone", groups: o.groups ?? ["system:authenticated"] },
        object: { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: ns, annotations: o.annotations ?? {} }, spec: { containers: [{ name: "c", image: img }] } },
      },
    });
  }

  /** POSTs a review to /validate over a new TLS connection, with a client certificate or without. */
  function post(port: number, body: string, client?: { cert: string; key: string }): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest({ host: "127.0.0.1", port, path: "/validate", method: "POST", ca: serverCaPem, agent: false, ...(client ?? {}), headers: { "content-type": "application/json" }, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.end(body);
    });
  }
  const apiServerCert = () => ({ cert: service("kube").webhookClient.certPem, key: service("kube").webhookClient.keyPem });

  beforeAll(async () => {
    for (const tag of ["base", "two", "lang"]) await skopeoPush(`oci:${ociBookworm()}:${tag}`, reg(), `fr/debian:${tag}`);
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans", "imagepolicies", "clusterimagepolicies"].map((crd) => `${crd}.portcullis.dev`));
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    core = kc.makeApiClient(k8s.CoreV1Api);
    for (const [n, value] of [[CA_NS, "fr-ca"], [OPEN_NS, "fr-open"], [VICTIM, ""], [GLASS, ""], [LIMIT, ""], [LIMIT2, ""]] as const) {
      await core.createNamespace({ body: { metadata: { name: n, labels: value ? { [LABEL]: value } : {} } } });
      await kubectl("-n", n, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg().host}`, `--docker-username=${reg().username}`, `--docker-password=${reg().password}`);
      await core.createNamespacedServiceAccount({ namespace: n, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } });
    }
    const serverCa = await makeCA(dir, "webhook");
    serverCaPem = serverCa.certPem;
    const leaf = await issueCert(dir, serverCa, "webhook", ["IP:127.0.0.1"], "serverAuth");
    const tls = { cert: leaf.certPem, key: leaf.keyPem };
    store = await openStore(await databases.create("webhook_forged_review"));
    controller = new ImageScanController({
      kc, indexer: new Indexer({ store, scanners: defaultScanners() }), registry: { maxAttempts: 1 }, defaultPlatform: { os: "linux", architecture: "amd64" }, namespaces: [CA_NS, OPEN_NS],
    });
    await controller.start();
    events = new EventRecorder(kc);
    // Break-glass on for the default policy, so that a review claiming a user the API server lets break glass is admitted (and recorded).
    const defaultPolicy = { mode: "Enforce" as const, onMissingScan: "deny" as const, requireDigest: false, breakGlassAllowed: true };
    // The client CA file is a copy, so that the reload test can change it.
    const caFile = join(dir, "client-ca.pem");
    copyFileSync(service("kube").webhookClient.caFile, caFile);
    clientCa = new ClientCa({ file: caFile, pollSeconds: 1 });
    clientCa.start();
    withCa = new AdmissionWebhook({ kc, namespace: "portcullis-system", timeoutSeconds: 5, registry: { maxAttempts: 1 }, events, defaultPolicy });
    open = new AdmissionWebhook({
      kc, namespace: "portcullis-system", timeoutSeconds: 5, registry: { maxAttempts: 1 }, events, defaultPolicy,
      scanRequests: { perSecond: 0.001, burst: 2 }, onScanRequest: (r) => scanRequests.push(r),
    });
    await withCa.start();
    await open.start();
    caPort = await freePort();
    openPort = await freePort();
    servers.push((await withCa.listen({ host: "127.0.0.1", port: caPort, tls, clientCa })) as Server);
    servers.push((await open.listen({ host: "127.0.0.1", port: openPort, tls })) as Server);
    const adm = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    for (const [name, port, value] of [[CONFIGS[0]!, caPort, "fr-ca"], [CONFIGS[1]!, openPort, "fr-open"]] as const) {
      const v = validatingConfiguration({
        url: `https://127.0.0.1:${port}`, caBundle: Buffer.from(serverCaPem).toString("base64"), failurePolicy: "Fail", timeoutSeconds: 5,
        excludeNamespaces: ["kube-system", "portcullis-system"], onlyLabel: { key: LABEL, value },
      });
      await adm.createValidatingWebhookConfiguration({ body: { ...v, metadata: { ...v.metadata, name } } });
    }
  }, 240_000);

  afterAll(async () => {
    // Never leave a webhook behind that could refuse other tests' objects.
    if (kc) for (const name of CONFIGS) await kc.makeApiClient(k8s.AdmissionregistrationV1Api).deleteValidatingWebhookConfiguration({ name }).catch(() => undefined);
    for (const s of servers) s.close();
    clientCa?.stop();
    await withCa?.stop();
    await open?.stop();
    await controller?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("with the client CA: the API server's reviews get the full answer; denied, then admitted once the scan is Indexed", async () => {
    const out = await fails(kubectl("-n", CA_NS, "run", "web", `--image=${image("base")}`, "--restart=Never"));
    expect(out).toContain("is not scanned yet");
    // The API server presented its client certificate: the answer names the digest and the scan.
    expect(out).toContain(digestOf("base"));
    const name = scanName(parseReference(image("base")), digestOf("base"));
    expect(out).toContain(`kubectl get scan -n ${CA_NS} ${name}`);
    await until("the scan Indexed", async () => ((await scans(CA_NS)).find((s) => s.metadata!.name === name)?.status?.phase === "Indexed" ? true : undefined));
    await until("admission", async () => kubectl("-n", CA_NS, "run", "web", `--image=${image("base")}`, "--restart=Never").then(() => true, () => undefined), 15_000);
  });

  it("without the client CA: a generic denial (no digest, no scan name), then admitted once the scan is Indexed", async () => {
    const out = await fails(kubectl("-n", OPEN_NS, "run", "web", `--image=${image("two")}`, "--restart=Never"));
    expect(out).toContain("denied the request");
    expect(out).toContain(`spec.containers[0].image: ${image("two")} is not scanned yet`);
    expect(out).toContain(`kubectl get imagescans -n ${OPEN_NS}`);
    expect(out).not.toContain(digestOf("two").slice(7, 19));
    const name = scanName(parseReference(image("two")), digestOf("two"));
    expect(out).not.toContain(name);
    // The scan was asked for all the same, and the controller indexes it.
    await until("the scan Indexed", async () => ((await scans(OPEN_NS)).find((s) => s.metadata!.name === name)?.status?.phase === "Indexed" ? true : undefined));
    await until("admission", async () => kubectl("-n", OPEN_NS, "run", "web", `--image=${image("two")}`, "--restart=Never").then(() => true, () => undefined), 15_000);
  });

  it("with the client CA, a review without the API server's certificate fails the handshake and creates nothing, writes no Event; with it, it would have", async () => {
    const forged = review(VICTIM, "forged", `${reg().host}/fr/debian@${digestOf("lang")}`, { user: "admin", groups: ["system:masters", "system:authenticated"], annotations: { "portcullis.dev/break-glass": "INC-7: forged" } });
    const refused = await post(caPort, forged).then((r) => `answered ${r.status}`, (e: Error) => e.message);
    expect(refused).not.toMatch(/^answered/);
    expect(refused).toMatch(/certificate|socket hang up|ECONNRESET|EPIPE/i);
    // A certificate of another CA is no better.
    const other = await makeCA(dir, "other-client");
    const stranger = await issueCert(dir, other, "stranger", [], "clientAuth");
    expect(await post(caPort, forged, { cert: stranger.certPem, key: stranger.keyPem }).then((r) => `answered ${r.status}`, (e: Error) => e.message)).not.toMatch(/^answered/);
    // Nothing happened: give any background work the time the control below needs, then look.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await scans(VICTIM)).toEqual([]);
    expect(await eventsOf(VICTIM, "forged")).toEqual([]);
    // The control: the same review with the API server's certificate is answered (admitted by break-glass for
    // a user the API server lets do anything), asks for the scan and records the user in an Event.
    const real = await post(caPort, forged, apiServerCert());
    expect(real.status).toBe(200);
    expect(JSON.parse(real.text).response.allowed).toBe(true);
    await until("the scan the review asked for", async () => ((await scans(VICTIM)).length ? true : undefined), 15_000);
    const recorded = await until("the BreakGlass Event", async () => (await eventsOf(VICTIM, "forged")).find((e) => e.reason === "BreakGlass"), 15_000);
    expect(recorded.message).toContain("admin admitted");
  });

  it("without the client CA, a forged review's answer reveals nothing the namespace's credentials found; the client-CA answer to the same review does", async () => {
    const cases = [
      // A tag the victim's pull secret resolves: the digest would tell what the private image is.
      { img: image("base"), secret: [digestOf("base").slice(7, 19), scanName(parseReference(image("base")), digestOf("base"))] },
      // A tag the registry does not have: its error (MANIFEST_UNKNOWN) would tell what exists.
      { img: image("nope"), secret: ["manifest not found", "MANIFEST_UNKNOWN"] },
    ];
    for (const [i, c] of cases.entries()) {
      const body = review(VICTIM, `peek-${i}`, c.img);
      const generic = await post(openPort, body);
      expect(generic.status).toBe(200);
      const answer = JSON.parse(generic.text) as { response: { allowed: boolean; status?: { message: string } } };
      expect(answer.response.allowed).toBe(false);
      expect(answer.response.status!.message).toContain(`spec.containers[0].image: ${c.img}`);
      for (const s of c.secret) expect(generic.text.toLowerCase(), `generic answer leaks ${s}`).not.toContain(s.toLowerCase());
      // The control: the API server's review of the same object, answered in full, says what the other hid.
      const full = await post(caPort, body, apiServerCert());
      expect(c.secret.some((s) => full.text.toLowerCase().includes(s.toLowerCase())), full.text).toBe(true);
    }
  });

  it("without the client CA, the BreakGlass Event of a forged review names no user", async () => {
    const body = review(GLASS, "glass", `${reg().host}/fr/debian@sha256:${"d".repeat(64)}`, { user: "admin", groups: ["system:masters", "system:authenticated"], annotations: { "portcullis.dev/break-glass": "INC-8: forged" } });
    const answer = JSON.parse((await post(openPort, body)).text) as { response: { allowed: boolean } };
    expect(answer.response.allowed).toBe(true);
    const recorded = await until("the BreakGlass Event", async () => (await eventsOf(GLASS, "glass")).find((e) => e.reason === "BreakGlass"), 15_000);
    expect(recorded.message).not.toMatch(/\badmin\b/);
    expect(recorded.message).toContain("not authenticated");
    expect(recorded.message).toContain("INC-8: forged");
  });

  it("without the client CA, the scans forged reviews start are deduplicated and limited per namespace", async () => {
    const digests = ["1", "2", "3", "4"].map((d) => `sha256:${d.repeat(64)}`);
    const before = scanRequests.length;
    for (const [i, d] of digests.entries()) expect((await post(openPort, review(LIMIT, `flood-${i}`, `${reg().host}/fr/debian@${d}`))).status).toBe(200);
    // The same review again, and again: the scan it asked for is not asked for twice, and costs no token.
    for (let i = 0; i < 3; i++) await post(openPort, review(LIMIT, "flood-0", `${reg().host}/fr/debian@${digests[0]}`));
    await until("the scan requests to settle", async () => (scanRequests.length - before >= 7 ? true : undefined), 15_000);
    const made = await until("two scans", async () => {
      const s = await scans(LIMIT);
      return s.length >= 2 ? s : undefined;
    }, 15_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await scans(LIMIT)).length).toBe(2);
    expect(made.map((s) => s.spec.image).sort()).toEqual(digests.slice(0, 2).map((d) => `${reg().host}/fr/debian@${d}`));
    const results = scanRequests.slice(before);
    expect(results.filter((r) => r === "rate-limited")).toHaveLength(2);
    // Another namespace has a bucket of its own.
    await post(openPort, review(LIMIT2, "other", `${reg().host}/fr/debian@${digests[2]}`));
    await until("the other namespace's scan", async () => ((await scans(LIMIT2)).length === 1 ? true : undefined), 15_000);
  });

  it("a new client CA file is taken without a restart: the old CA's certificate is then refused, the new one's accepted", async () => {
    const body = review(VICTIM, "reload", `${reg().host}/fr/debian@${digestOf("base")}`);
    expect((await post(caPort, body, apiServerCert())).status).toBe(200);
    const next = await makeCA(dir, "next-client");
    const nextLeaf = await issueCert(dir, next, "next-apiserver", [], "clientAuth");
    writeFileSync(join(dir, "client-ca.pem"), next.certPem);
    await until("the old certificate refused", async () => (await post(caPort, body, apiServerCert()).then(() => undefined, () => true)), 15_000);
    expect((await post(caPort, body, { cert: nextLeaf.certPem, key: nextLeaf.keyPem })).status).toBe(200);
    // A file that is no CA is refused; the CA in force stays.
    writeFileSync(join(dir, "client-ca.pem"), "not a certificate");
    expect(await clientCa.reload()).toBe(false);
    expect((await post(caPort, body, { cert: nextLeaf.certPem, key: nextLeaf.keyPem })).status).toBe(200);
    // Back to the API server's CA for whatever runs after.
    copyFileSync(service("kube").webhookClient.caFile, join(dir, "client-ca.pem"));
    await until("the API server's certificate accepted again", async () => (await post(caPort, body, apiServerCert()).then((r) => (r.status === 200 ? true : undefined), () => undefined)), 15_000);
  });
});
