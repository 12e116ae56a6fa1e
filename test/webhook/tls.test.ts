// The webhook's certificate manager against the real kube-apiserver: the leader writes the Secret and the
// caBundle, a replica (a second manager that only reads the Secret) keeps an https admission server on the
// current certificate, and the API server — which verifies that certificate against the caBundle on every
// call — refuses `kubectl create configmap` with the webhook's own message. Then, with creates running in a
// loop, the leaf is rotated and the CA rolled over (an injected clock makes them due): not one call fails.
// Only a namespace of this test (by label) is sent to the webhook, and the configuration is deleted at the end.
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createCA, issueServingCertificate, kubeTlsApi, SECRET_KEYS, splitPem, webhookSans, WebhookCertificates, type WebhookCertificatesOptions } from "../../src/webhook/tls/index.js";
import { describeWith, service, tool } from "../env/index.js";

const run = promisify(execFile);
const DAY = 86_400_000;
const suffix = Date.now().toString(36);
const NS = `tls-test-${suffix}`;
const CONFIG = "tls-test";
const LABEL = "portcullis.dev/tls-test";

describeWith(["kube"], "webhook certificates through the API server", () => {
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let adm: k8s.AdmissionregistrationV1Api;
  let server: Server;
  let leader: WebhookCertificates;
  let replica: WebhookCertificates;
  let detach: () => void;
  /** The injected clock: real time plus this offset. */
  let offset = 0;
  const logs: string[] = [];
  /** The serial of the certificate each admission request arrived on. */
  const served: string[] = [];

  const secretData = async (key: string) => {
    const s = await core.readNamespacedSecret({ namespace: NS, name: "portcullis-webhook-tls" });
    return Buffer.from(s.data![key]!, "base64").toString("utf8");
  };
  const serial = (pem: string) => new X509Certificate(pem).serialNumber;
  async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  beforeAll(async () => {
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    core = kc.makeApiClient(k8s.CoreV1Api);
    adm = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    await core.createNamespace({ body: { metadata: { name: NS, labels: { [LABEL]: suffix } } } });

    // The admission server: refuses ConfigMaps named deny-*, admits the rest. Each answer closes the
    // connection, so every call is a new TLS handshake that the API server verifies.
    server = createServer({}, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request: { uid: string; name?: string; object?: { metadata?: { name?: string } } } };
        const name = review.request.object?.metadata?.name ?? review.request.name ?? "";
        const cert = (req.socket as TLSSocket).getCertificate() as { serialNumber?: string } | null;
        served.push(cert?.serialNumber ?? "?");
        const deny = name.startsWith("deny-");
        res.writeHead(200, { "content-type": "application/json", connection: "close" }).end(JSON.stringify({
          apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
          response: { uid: review.request.uid, allowed: !deny, ...(deny ? { status: { code: 403, message: `the tls-test webhook refuses ${name}` } } : {}) },
        }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

    await adm.createValidatingWebhookConfiguration({
      body: {
        metadata: { name: CONFIG },
        webhooks: [{
          name: "tls-test.portcullis.dev",
          clientConfig: { url: `${url}/validate` },
          rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"], scope: "Namespaced" }],
          failurePolicy: "Fail",
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
          timeoutSeconds: 5,
          namespaceSelector: { matchLabels: { [LABEL]: suffix } },
        }],
      },
    });

    const options: WebhookCertificatesOptions = {
      kc, namespace: NS, ...webhookSans({ url }),
      webhookConfigurations: { validating: [CONFIG], mutating: ["tls-test-absent"] },
      rolloverSettleSeconds: 2, caOverlapDays: 1,
      now: () => new Date(Date.now() + offset),
      log: (level, msg) => logs.push(`${level}: ${msg}`),
    };
    leader = new WebhookCertificates(options);
    replica = new WebhookCertificates({ ...options, pollSeconds: 0.25 });
    await replica.start();
    detach = replica.attach(server);
  });

  afterAll(async () => {
    // Never leave a webhook behind that could refuse other tests' objects.
    await adm?.deleteValidatingWebhookConfiguration({ name: CONFIG }).catch(() => undefined);
    replica?.stop();
    server?.close();
    await kubectl("delete", "namespace", NS, "--wait=false").catch(() => undefined);
  });

  it("writes the Secret and the caBundle; the API server trusts the certificate and kubectl gets the webhook's refusal", async () => {
    expect(replica.isReady()).toBe(false); // no Secret yet: a replica waits
    // The clock starts four years back, so that the CA rollover below comes due today; the leaf made then
    // has long expired, and the next reconcile (61 days back) replaces it with one valid today.
    offset = -1461 * DAY;
    expect((await leader.reconcile()).changes).toEqual([expect.stringMatching(/created the CA/)]);
    offset = -61 * DAY;
    const r = await leader.reconcile();
    expect(r.changes).toEqual([expect.stringMatching(/new serving certificate/)]);
    expect(r.missing).toEqual(["mutating/tls-test-absent"]);
    expect(logs.some((l) => /tls-test-absent does not exist/.test(l))).toBe(true);
    await replica.ready();
    const leaf = await secretData(SECRET_KEYS.cert);
    await until("the replica to serve the current certificate", () => replica.tlsOptions()?.cert === leaf);

    const cfg = await adm.readValidatingWebhookConfiguration({ name: CONFIG });
    expect(Buffer.from(cfg.webhooks![0]!.clientConfig.caBundle!, "base64").toString("utf8")).toBe(await secretData(SECRET_KEYS.bundle));

    const refused = await kubectl("-n", NS, "create", "configmap", "deny-me", "--from-literal=a=b").then(
      () => "admitted",
      (e: { stderr?: string }) => e.stderr ?? "",
    );
    expect(refused).toContain("the tls-test webhook refuses deny-me");
    expect(refused).toContain("denied the request");
    await kubectl("-n", NS, "create", "configmap", "ok-kubectl", "--from-literal=a=b");
    expect(served.at(-1)).toBe(serial(leaf));
  });

  it("rotates the leaf and rolls the CA over while creates keep going through: zero failures", async () => {
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: `ok-${i}` }, data: { i: String(i) } } });
          ok++;
        } catch (e) {
          failures.push(`${(e as Error).message}`.slice(0, 400));
        }
        await sleep(10);
      }
    })();
    /** Waits until a call reached the webhook on `pem`'s certificate (after letting the loop run a little). */
    const throughApiServer = async (pem: string) => {
      const from = served.length;
      await until(`a call on certificate ${serial(pem)}`, () => served.slice(from).includes(serial(pem)));
      await sleep(500);
    };
    try {
      const leaf2 = await secretData(SECRET_KEYS.cert);
      const ca1 = await secretData(SECRET_KEYS.bundle);
      await throughApiServer(leaf2);

      // Leaf rotation (2/3 of its life): same CA, new leaf; the replica picks it up from the Secret.
      offset = -DAY;
      expect((await leader.reconcile()).changes).toEqual([expect.stringMatching(/new serving certificate/)]);
      const leaf3 = await secretData(SECRET_KEYS.cert);
      expect(serial(leaf3)).not.toBe(serial(leaf2));
      await throughApiServer(leaf3);

      // CA rollover: both CAs go into the caBundle; the leaf stays on the old CA.
      offset = 0;
      const started = await leader.reconcile();
      expect(started.changes).toEqual([expect.stringMatching(/rollover started/)]);
      expect(started.patched).toEqual([`validating/${CONFIG}`]);
      const ca2 = await secretData("ca-next.crt");
      const cfg = await adm.readValidatingWebhookConfiguration({ name: CONFIG });
      expect(splitPem(Buffer.from(cfg.webhooks![0]!.clientConfig.caBundle!, "base64").toString("utf8"))).toEqual([...splitPem(ca1), ca2]);
      await throughApiServer(leaf3);

      // The configuration carries both: recorded; after the settle time the leaf switches to the new CA.
      expect((await leader.reconcile()).changes).toEqual([expect.stringMatching(/carries both CAs/)]);
      await sleep(2100);
      expect((await leader.reconcile()).changes).toEqual([expect.stringMatching(/switched to the new CA/)]);
      const leaf4 = await secretData(SECRET_KEYS.cert);
      expect(new X509Certificate(leaf4).verify(new X509Certificate(ca2).publicKey)).toBe(true);
      await throughApiServer(leaf4);

      // The overlap ends (caOverlapDays: 1): the old CA leaves the caBundle; calls go on with the new one.
      offset = DAY + 60_000;
      const retired = await leader.reconcile();
      expect(retired.changes).toEqual([expect.stringMatching(/removed 1 previous CA/)]);
      expect(retired.patched).toEqual([`validating/${CONFIG}`]);
      const after = await adm.readValidatingWebhookConfiguration({ name: CONFIG });
      expect(Buffer.from(after.webhooks![0]!.clientConfig.caBundle!, "base64").toString("utf8")).toBe(ca2);
      await throughApiServer(leaf4);
      await sleep(1000);
      expect(replica.expiry().ca!.getTime()).toBe(Date.parse(new X509Certificate(ca2).validTo));
    } finally {
      stop = true;
      await loop;
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
  });

  it("patches a caBundle only on the resourceVersion it read (409 when the configuration changed since)", async () => {
    const api = kubeTlsApi(kc);
    const view = (await api.readWebhookConfiguration("validating", CONFIG))!;
    const entry = { index: 0, name: view.webhooks[0]!.name, caBundle: view.webhooks[0]!.caBundle! };
    await adm.patchValidatingWebhookConfiguration({ name: CONFIG, body: { metadata: { labels: { touched: "yes" } } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    await expect(api.setCaBundles("validating", CONFIG, view.resourceVersion, [entry])).rejects.toMatchObject({ code: 409 });
    const fresh = (await api.readWebhookConfiguration("validating", CONFIG))!;
    await api.setCaBundles("validating", CONFIG, fresh.resourceVersion, [entry]);
    expect((await leader.reconcile()).patched).toEqual([]);
  });

  it("(control) the API server refuses a certificate whose CA is not in the caBundle", async () => {
    detach();
    const stranger = await createCA({ now: new Date(), validityDays: 1 });
    const leaf = await issueServingCertificate(stranger, { now: new Date(), validityDays: 1, dnsNames: [], ipAddresses: ["127.0.0.1"] });
    server.setSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
    const err = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "ok-control" } } }).then(() => "admitted", (e: Error) => e.message);
    expect(err).toMatch(/failed calling webhook[\s\S]*x509: certificate signed by unknown authority/);
    detach = replica.attach(server);
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "ok-again" } } });
  });
});
