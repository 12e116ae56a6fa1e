// `portcullis serve --webhook-url https://127.0.0.1:PORT` as a process: it makes its own CA and serving
// certificate (SAN 127.0.0.1), registers the webhook with that URL and caBundle, the API server calls it,
// an unscanned image is refused, the scan it asked for is indexed by the same process, and the same
// `kubectl run` then succeeds without anyone acting. It requires the API server's client certificate
// (--webhook-client-ca: a review without it fails the handshake and creates nothing) and serves the report API
// over HTTPS only (--report-tls), with the webhook's certificate, for tokens of the audience `portcullis`.
import { execFile, spawn } from "node:child_process";
import { request as httpsRequest } from "node:https";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";
import { ociBookworm, skopeoPush } from "../env/images.js";
import { freePort } from "../env/process.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const run = promisify(execFile);
const ns = "serve-webhook";
const own = "serve-webhook-system";
const forgedNs = "serve-webhook-forged";

describeWith(["kube", "registryBasic"], "portcullis serve with the webhook", () => {
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<number | null>;
  const stderr: string[] = [];
  let kc: k8s.KubeConfig;
  const kubectl = (...a: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...a]);
  const image = () => `${service("registryBasic").host}/servewh/debian:base`;
  let port: number;
  let health: number;
  let reportPort: number;
  /** HTTPS to 127.0.0.1:p trusting the CA of the Secret Portcullis keeps; rejects on a TLS or socket error. */
  const https = async (p: number, path: string, o: { method?: string; body?: string; token?: string; client?: { cert: string; key: string } } = {}): Promise<{ status: number; text: string }> => {
    const secret = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedSecret({ namespace: own, name: "portcullis-webhook-tls" });
    const ca = Buffer.from(secret.data!["ca.crt"]!, "base64").toString("utf8");
    return new Promise((resolve, reject) => {
      const req = httpsRequest({
        host: "127.0.0.1", port: p, path, method: o.method ?? "GET", ca, ...(o.client ?? {}), timeout: 10_000,
        headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.body ? { "content-type": "application/json" } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      });
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.end(o.body);
    });
  };

  beforeAll(async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "servewh/debian:base");
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev", "imagepolicies.portcullis.dev", "clusterimagepolicies.portcullis.dev"]);
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: own } } });
    await core.createNamespace({ body: { metadata: { name: ns, labels: { "portcullis.dev/test-webhook": "serve" } } } });
    await core.createNamespace({ body: { metadata: { name: forgedNs } } });
    await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } }).catch(() => undefined);
    port = await freePort();
    health = await freePort();
    reportPort = await freePort();
    child = spawn(process.execPath, ["--import", "tsx", bin, "serve", "--store-path", `${service("kube").kubeconfig}.store-${process.pid}`, "--namespace", own,
      "--health-addr", `127.0.0.1:${health}`, "--webhook-addr", `127.0.0.1:${port}`, "--webhook-url", `https://127.0.0.1:${port}`,
      "--webhook-namespace-label", "portcullis.dev/test-webhook=serve", "--lease-duration", "4s", "--watch-namespaces", ns,
      "--webhook-client-ca", service("kube").webhookClient.caFile, "--report-tls", "true", "--report-addr", `127.0.0.1:${reportPort}`, "--report-token-audiences", "portcullis"], { env: { ...process.env, KUBECONFIG: service("kube").kubeconfig } });
    child.stderr!.on("data", (c: Buffer) => stderr.push(c.toString()));
    exited = new Promise((r) => child!.on("exit", (code) => r(code)));
    let ready = 0;
    for (let i = 0; i < 300 && ready !== 200; i++) {
      ready = await request(`http://127.0.0.1:${health}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode), () => 0);
      if (ready !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready, stderr.join("")).toBe(200);
    for (let i = 0; i < 100 && !stderr.join("").includes("webhook registered"); i++) await new Promise((r) => setTimeout(r, 200));
  }, 180_000);

  afterAll(async () => {
    child?.kill("SIGTERM");
    const code = await exited;
    // Never leave the webhook registered: other tests create pods.
    await kubectl("delete", "validatingwebhookconfiguration", "portcullis", "--ignore-not-found");
    expect(code, stderr.join("")).toBe(0);
  });

  it("refuses an unscanned image, indexes it on its own, then admits the same command", async () => {
    let refused = "";
    await kubectl("-n", ns, "run", "web", `--image=${image()}`, "--restart=Never").catch((e: { stderr?: string }) => (refused = e.stderr ?? ""));
    expect(refused, stderr.join("").slice(-3000)).toMatch(/denied the request/);
    expect(refused).toContain("spec.containers[0].image");
    expect(refused).toMatch(/kubectl get scan -n serve-webhook \S+/);
    // The TLS material is Portcullis's own: a Secret in its namespace, and the caBundle in the configuration.
    const secret = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedSecret({ namespace: own, name: "portcullis-webhook-tls" });
    expect(Object.keys(secret.data ?? {})).toEqual(expect.arrayContaining(["tls.crt", "tls.key", "ca.crt"]));
    const cfg = await kc.makeApiClient(k8s.AdmissionregistrationV1Api).readValidatingWebhookConfiguration({ name: "portcullis" });
    expect(cfg.webhooks![0]!.clientConfig.caBundle).toBe(secret.data!["ca.crt"]);
    let admitted = false;
    for (let i = 0; i < 300 && !admitted; i++) {
      admitted = await kubectl("-n", ns, "run", "web", `--image=${image()}`, "--restart=Never").then(() => true, () => false);
      if (!admitted) await new Promise((r) => setTimeout(r, 300));
    }
    expect(admitted, stderr.join("").slice(-3000)).toBe(true);
  }, 150_000);

  it("a review posted without the API server's client certificate fails the handshake and creates nothing; with it, it is answered", async () => {
    const digest = `sha256:${"7".repeat(64)}`;
    const body = JSON.stringify({
      apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      request: {
        uid: "forged-1", kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" }, name: "forged", namespace: forgedNs, operation: "CREATE",
        userInfo: { username: "admin" }, object: { metadata: { name: "forged", namespace: forgedNs }, spec: { containers: [{ name: "c", image: `${service("registryBasic").host}/servewh/debian@${digest}` }] } },
      },
    });
    const refused = await https(port, "/validate", { method: "POST", body }).then((r) => `answered ${r.status}`, (e: Error) => e.message);
    expect(refused).toMatch(/certificate|socket hang up|ECONNRESET|EPIPE/i);
    await new Promise((r) => setTimeout(r, 3000));
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const list = async () => ((await custom.listNamespacedCustomObject({ group: "portcullis.dev", version: "v1alpha1", namespace: forgedNs, plural: "imagescans" })) as { items: unknown[] }).items;
    expect(await list()).toEqual([]);
    // The control: with the API server's certificate the same review is answered in full and asks for the scan.
    const real = await https(port, "/validate", { method: "POST", body, client: { cert: service("kube").webhookClient.certPem, key: service("kube").webhookClient.keyPem } });
    expect(real.status).toBe(200);
    expect(real.text).toContain(digest);
    let made = 0;
    for (let i = 0; i < 50 && !made; i++) {
      made = (await list()).length;
      if (!made) await new Promise((r) => setTimeout(r, 200));
    }
    expect(made).toBe(1);
  }, 60_000);

  it("the report API answers over HTTPS only, and only to tokens issued for its audience", async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "report-reader" } } });
    const token = async (audiences: string[]) => (await core.createNamespacedServiceAccountToken({ namespace: ns, name: "report-reader", body: { spec: { audiences, expirationSeconds: 600 } } })).status!.token;
    const path = "/indexer/api/v1/index_state";
    // Plain HTTP to the report port: no answer at all (the TLS server drops it).
    expect(await request(`http://127.0.0.1:${reportPort}${path}`).then((r) => `answered ${r.statusCode}`, (e: Error) => e.message)).not.toMatch(/^answered/);
    // The plain health port still serves probes, and refuses the API with a reason.
    expect((await request(`http://127.0.0.1:${health}/healthz`)).statusCode).toBe(200);
    const plain = await request(`http://127.0.0.1:${health}${path}`, { headers: { authorization: `Bearer ${await token(["portcullis"])}` } });
    expect(plain.statusCode).toBe(403);
    expect(await plain.body.json()).toMatchObject({ code: "tls-required" });
    // HTTPS: a token for another audience (the API server's own, or any other) is refused; one for portcullis is not.
    expect((await https(reportPort, path)).status).toBe(401);
    expect((await https(reportPort, path, { token: await token(["other"]) })).status).toBe(401);
    expect((await https(reportPort, path, { token: await token([]) })).status).toBe(401);
    const ok = await https(reportPort, path, { token: await token(["portcullis"]) });
    expect(ok.status, ok.text).toBe(200);
    expect(JSON.parse(ok.text)).toHaveProperty("state");
  });
});
