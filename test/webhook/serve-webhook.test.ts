// `portcullis serve --webhook-url https://127.0.0.1:PORT` as a process: it makes its own CA and serving
// certificate (SAN 127.0.0.1), registers the webhook with that URL and caBundle, the API server calls it,
// an unscanned image is refused, the scan it asked for is indexed by the same process, and the same
// `kubectl run` then succeeds without anyone acting.
import { execFile, spawn } from "node:child_process";
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

describeWith(["kube", "registryBasic"], "portcullis serve with the webhook", () => {
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<number | null>;
  const stderr: string[] = [];
  let kc: k8s.KubeConfig;
  const kubectl = (...a: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...a]);
  const image = () => `${service("registryBasic").host}/servewh/debian:base`;

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
    await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } }).catch(() => undefined);
    const port = await freePort();
    const health = await freePort();
    child = spawn(process.execPath, ["--import", "tsx", bin, "serve", "--store-path", `${service("kube").kubeconfig}.store-${process.pid}`, "--namespace", own,
      "--health-addr", `127.0.0.1:${health}`, "--webhook-addr", `127.0.0.1:${port}`, "--webhook-url", `https://127.0.0.1:${port}`,
      "--webhook-namespace-label", "portcullis.dev/test-webhook=serve", "--lease-duration", "4s", "--watch-namespaces", ns], { env: { ...process.env, KUBECONFIG: service("kube").kubeconfig } });
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
});
