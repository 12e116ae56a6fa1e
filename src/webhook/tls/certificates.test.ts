// WebhookCertificates over an in-memory API server: the leader's rotator (plan, Secret writes, caBundle patches) and
// the replicas' reloader, served by real https servers on loopback.
import { X509Certificate } from "node:crypto";
import { createServer, request, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import * as k8s from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import {
  ANNOTATIONS, createCA, issueServingCertificate, SECRET_KEYS, splitPem, WebhookCertificates,
  type TlsApi, type WebhookCertificatesOptions, type WebhookConfigurationView, type WebhookKind,
} from "./index.js";

const DAY = 86_400_000;

/** An in-memory API server for the Secret and the webhook configurations, with resourceVersion semantics. */
class FakeApi implements TlsApi {
  secret?: k8s.V1Secret;
  configs = new Map<string, WebhookConfigurationView>();
  private rv = 100;
  /** Replies 409 to this many writes of the Secret, after applying `beforeConflict` (another writer). */
  conflicts = 0;
  beforeConflict?: () => void;
  /** Fails Secret writes with a 500 while set. */
  failWrites = false;
  /** Configurations (kind/name) whose caBundle patches fail with a 403. */
  forbidden = new Set<string>();
  writes = 0;
  patches: string[] = [];

  private conflict(): Error {
    return Object.assign(new Error("Conflict"), { code: 409 });
  }

  async readSecret(): Promise<k8s.V1Secret | undefined> {
    return this.secret && structuredClone(this.secret);
  }

  private store(body: k8s.V1Secret): k8s.V1Secret {
    if (this.failWrites) throw Object.assign(new Error("etcdserver: request timed out"), { code: 500 });
    if (this.conflicts > 0) {
      this.conflicts--;
      this.beforeConflict?.();
      throw this.conflict();
    }
    this.writes++;
    this.secret = structuredClone({ ...body, metadata: { ...body.metadata, resourceVersion: String(++this.rv) } });
    return structuredClone(this.secret);
  }

  async createSecret(_ns: string, body: k8s.V1Secret): Promise<k8s.V1Secret> {
    if (this.secret) throw this.conflict();
    return this.store(body);
  }

  async replaceSecret(_ns: string, _name: string, body: k8s.V1Secret): Promise<k8s.V1Secret> {
    if (!this.secret) throw Object.assign(new Error("NotFound"), { code: 404 });
    if (body.metadata?.resourceVersion !== this.secret.metadata?.resourceVersion) throw this.conflict();
    return this.store(body);
  }

  addConfig(kind: WebhookKind, name: string, entries: string[]): void {
    this.configs.set(`${kind}/${name}`, { resourceVersion: String(++this.rv), webhooks: entries.map((n) => ({ name: n })) });
  }

  async readWebhookConfiguration(kind: WebhookKind, name: string): Promise<WebhookConfigurationView | undefined> {
    const c = this.configs.get(`${kind}/${name}`);
    return c && structuredClone(c);
  }

  async setCaBundles(kind: WebhookKind, name: string, resourceVersion: string, entries: Array<{ index: number; name: string; caBundle: string }>): Promise<void> {
    const id = `${kind}/${name}`;
    if (this.forbidden.has(id)) throw Object.assign(new Error("forbidden"), { code: 403 });
    const c = this.configs.get(id);
    if (!c) throw Object.assign(new Error("NotFound"), { code: 404 });
    if (c.resourceVersion !== resourceVersion) throw this.conflict();
    for (const e of entries) {
      expect(c.webhooks[e.index]?.name).toBe(e.name);
      c.webhooks[e.index]!.caBundle = e.caBundle;
    }
    c.resourceVersion = String(++this.rv);
    this.patches.push(id);
  }

  data(key: string): string | undefined {
    const v = this.secret?.data?.[key];
    return v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");
  }

  /** The fingerprints in a configuration entry's caBundle. */
  bundleOf(id: string, index = 0): string[] {
    const b = this.configs.get(id)?.webhooks[index]?.caBundle;
    return splitPem(b ? Buffer.from(b, "base64").toString("utf8") : "").map((p) => new X509Certificate(p).fingerprint256);
  }
}

const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
const serialOf = (pem: string | undefined) => new X509Certificate(pem!).serialNumber;

/** A manager on a fake API with a settable clock. */
function setup(over: Partial<WebhookCertificatesOptions> = {}, api = new FakeApi()) {
  const clock = { now: new Date() };
  const logs: string[] = [];
  const certs = new WebhookCertificates({
    kc: new k8s.KubeConfig(), namespace: "portcullis-system", api,
    dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"],
    webhookConfigurations: { validating: ["portcullis"], mutating: ["portcullis-pin-digests"] },
    now: () => clock.now, log: (level, msg) => logs.push(`${level}: ${msg}`),
    ...over,
  });
  return { api, clock, certs, logs };
}

const servers: Server[] = [];
const managers: WebhookCertificates[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const m of managers.splice(0)) m.stop();
});

/** An https server on 127.0.0.1 kept on the manager's current certificate. */
async function serve(certs: WebhookCertificates): Promise<number> {
  const server = createServer({}, (_req, res) => res.end("ok"));
  server.keepAliveTimeout = 1;
  certs.attach(server);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

/** One HTTPS request trusting `caPem`: the serial of the certificate the server presented, or the error. */
function get(port: number, caPem: string): Promise<{ serial?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/", ca: caPem, agent: false }, (res) => {
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      res.resume().on("end", () => resolve({ serial }));
    });
    req.on("error", (e) => resolve({ error: e.message }));
    req.end();
  });
}

describe("certificates through the rotator", () => {
  it("serves an https server on 127.0.0.1 that a client trusting the CA bundle connects to (and one trusting another CA does not)", async () => {
    const { certs } = setup();
    managers.push(certs);
    await certs.reconcile();
    const port = await serve(certs);
    const bundle = Buffer.from(certs.caBundle()!, "base64").toString("utf8");
    expect(await get(port, bundle)).toEqual({ serial: serialOf(certs.tlsOptions()!.cert) });
    const other = await createCA({ now: new Date(), validityDays: 1 });
    expect((await get(port, other.certPem)).error).toMatch(/self[- ]signed|unable to verify|unknown/i);
  });

});

describe("the leader's reconcile", () => {
  it("writes the Secret and patches the caBundle into every entry of every configuration; a missing one is logged", async () => {
    const { api, certs, logs } = setup();
    api.addConfig("validating", "portcullis", ["images.portcullis.dev", "other.portcullis.dev"]);
    const r = await certs.reconcile();
    expect(r.changes[0]).toMatch(/created the CA/);
    expect(r.patched).toEqual(["validating/portcullis"]);
    expect(r.missing).toEqual(["mutating/portcullis-pin-digests"]);
    expect(logs.some((l) => /mutating webhook configuration portcullis-pin-digests does not exist/.test(l))).toBe(true);
    expect(api.secret?.type).toBe("kubernetes.io/tls");
    expect(Object.keys(api.secret!.data!).sort()).toEqual([SECRET_KEYS.bundle, SECRET_KEYS.caKey, SECRET_KEYS.cert, SECRET_KEYS.key].sort());
    const ca = splitPem(api.data(SECRET_KEYS.bundle));
    expect(ca).toHaveLength(1);
    expect(new X509Certificate(api.data(SECRET_KEYS.cert)!).verify(new X509Certificate(ca[0]!).publicKey)).toBe(true);
    expect(api.bundleOf("validating/portcullis", 0)).toEqual([fp(ca[0]!)]);
    expect(api.bundleOf("validating/portcullis", 1)).toEqual([fp(ca[0]!)]);
    expect(r.caBundle).toBe(api.secret!.data![SECRET_KEYS.bundle]);
    expect(certs.caBundle()).toBe(r.caBundle);

    // Nothing due: no write, no patch. A configuration that appears later gets the bundle.
    const writes = api.writes;
    expect(await certs.reconcile()).toMatchObject({ changes: [], patched: [] });
    expect(api.writes).toBe(writes);
    api.addConfig("mutating", "portcullis-pin-digests", ["pin-digests.portcullis.dev"]);
    expect(await certs.reconcile()).toMatchObject({ changes: [], patched: ["mutating/portcullis-pin-digests"], missing: [] });
    // A configuration re-applied with an empty caBundle is fixed at the next reconcile.
    api.configs.get("validating/portcullis")!.webhooks[1]!.caBundle = undefined;
    expect((await certs.reconcile()).patched).toEqual(["validating/portcullis"]);
    expect(api.bundleOf("validating/portcullis", 1)).toEqual([fp(ca[0]!)]);
  });

  it("rotates the leaf at 2/3 of its life, with the same CA", async () => {
    const { api, certs, clock } = setup();
    const t0 = clock.now.getTime();
    await certs.reconcile();
    const leaf1 = api.data(SECRET_KEYS.cert)!;
    const ca1 = api.data(SECRET_KEYS.bundle);
    // Life is 90 days + the hour of backdating: rotation when less than a third (30 d 20 min) remains.
    clock.now = new Date(t0 + 60 * DAY - 25 * 60_000);
    expect((await certs.reconcile()).changes).toEqual([]);
    clock.now = new Date(t0 + 60 * DAY - 15 * 60_000);
    expect((await certs.reconcile()).changes).toEqual([expect.stringMatching(/new serving certificate .*: it expires/)]);
    const leaf2 = api.data(SECRET_KEYS.cert)!;
    expect(serialOf(leaf2)).not.toBe(serialOf(leaf1));
    expect(api.data(SECRET_KEYS.bundle)).toBe(ca1);
    expect(api.patches).toHaveLength(0); // no configuration named here exists; nothing else to patch either
    expect(certs.tlsOptions()!.cert).toBe(leaf2);
    expect(certs.expiry().leaf!.getTime()).toBe(new Date(new X509Certificate(leaf2).validTo).getTime());
  });

  it("re-issues the leaf when its names change, and when the stored one is not signed by the CA", async () => {
    const api = new FakeApi();
    const { certs } = setup({}, api);
    await certs.reconcile();
    const leaf1 = api.data(SECRET_KEYS.cert);
    const moved = setup({ dnsNames: ["portcullis.ops.svc"], ipAddresses: [] }, api).certs;
    expect((await moved.reconcile()).changes).toEqual([expect.stringMatching(/names .* differ/)]);
    expect(new X509Certificate(api.data(SECRET_KEYS.cert)!).subjectAltName).toBe("DNS:portcullis.ops.svc");
    const stranger = await createCA({ now: new Date(), validityDays: 10 });
    const foreign = await issueServingCertificate(stranger, { now: new Date(), validityDays: 10, dnsNames: ["portcullis.ops.svc"], ipAddresses: [] });
    api.secret!.data![SECRET_KEYS.cert] = Buffer.from(foreign.certPem).toString("base64");
    api.secret!.data![SECRET_KEYS.key] = Buffer.from(foreign.keyPem).toString("base64");
    expect((await moved.reconcile()).changes).toEqual([expect.stringMatching(/not signed by the current CA/)]);
    expect(api.data(SECRET_KEYS.cert)).not.toBe(leaf1);
  });

  it("rolls the CA over with both CAs in the bundle: clients trusting the old bundle and the new one connect throughout", async () => {
    // The clock is anchored on real time so that what is served is valid for the TLS clients: the CA is
    // made 4 years ago (1461 of its 1826 days), so today less than a fifth of its life remains.
    const R = Date.now();
    const { api, certs, clock } = setup({ rolloverSettleSeconds: 60 });
    api.addConfig("validating", "portcullis", ["images.portcullis.dev"]);
    api.addConfig("mutating", "portcullis-pin-digests", ["pin-digests.portcullis.dev"]);
    clock.now = new Date(R - 1461 * DAY);
    await certs.reconcile();
    clock.now = new Date(R - DAY);
    expect((await certs.reconcile()).changes).toEqual([expect.stringMatching(/new serving certificate .*: it expired/)]);
    const ca1 = splitPem(api.data(SECRET_KEYS.bundle))[0]!;
    const leafBefore = api.data(SECRET_KEYS.cert)!;
    const port = await serve(certs);
    const bundleBefore = api.data(SECRET_KEYS.bundle)!;
    expect(await get(port, bundleBefore)).toEqual({ serial: serialOf(leafBefore) });

    // Rollover starts: the new CA is published next to the old one; the leaf stays.
    clock.now = new Date(R);
    const started = await certs.reconcile();
    expect(started.changes).toEqual([expect.stringMatching(/rollover started/)]);
    expect(started.patched.sort()).toEqual(["mutating/portcullis-pin-digests", "validating/portcullis"]);
    const ca2 = api.data(SECRET_KEYS.nextCert)!;
    expect(api.data(SECRET_KEYS.nextKey)).toContain("PRIVATE KEY");
    const bundleDuring = api.data(SECRET_KEYS.bundle)!;
    expect(splitPem(bundleDuring).map(fp)).toEqual([fp(ca1), fp(ca2)]);
    expect(api.bundleOf("validating/portcullis")).toEqual([fp(ca1), fp(ca2)]);
    expect(api.bundleOf("mutating/portcullis-pin-digests")).toEqual([fp(ca1), fp(ca2)]);
    expect(api.data(SECRET_KEYS.cert)).toBe(leafBefore);
    expect(await get(port, bundleBefore)).toEqual({ serial: serialOf(leafBefore) });
    expect(await get(port, bundleDuring)).toEqual({ serial: serialOf(leafBefore) });

    // Every configuration carries both: recorded, and the switch waits out the settle time.
    clock.now = new Date(R + 1000);
    expect((await certs.reconcile()).changes).toEqual([expect.stringMatching(/carries both CAs/)]);
    expect(api.secret!.metadata!.annotations![ANNOTATIONS.carriedSince]).toBe(new Date(R + 1000).toISOString());
    clock.now = new Date(R + 30_000);
    expect((await certs.reconcile()).changes).toEqual([]);
    expect(api.data(SECRET_KEYS.cert)).toBe(leafBefore);

    // The switch: a leaf signed by the new CA; the old CA stays in the bundle until the old leaf expires.
    clock.now = new Date(R + 62_000);
    const switched = await certs.reconcile();
    expect(switched.changes).toEqual([expect.stringMatching(/switched to the new CA/)]);
    const leafAfter = api.data(SECRET_KEYS.cert)!;
    expect(new X509Certificate(leafAfter).verify(new X509Certificate(ca2).publicKey)).toBe(true);
    expect(api.data(SECRET_KEYS.nextCert)).toBeUndefined();
    expect(api.data(SECRET_KEYS.nextKey)).toBeUndefined();
    expect(new X509Certificate(ca2).checkPrivateKey((await import("node:crypto")).createPrivateKey(api.data(SECRET_KEYS.caKey)!))).toBe(true);
    expect(splitPem(api.data(SECRET_KEYS.bundle)).map(fp).sort()).toEqual([fp(ca1), fp(ca2)].sort());
    expect(switched.patched).toEqual([]); // the same two CAs: nothing to patch
    const retireAt = api.secret!.metadata!.annotations![ANNOTATIONS.retireAt];
    expect(retireAt).toBe(new Date(new X509Certificate(leafBefore).validTo).toISOString());
    // The API server has carried both CAs since before the switch: its bundle trusts the new leaf. Only a
    // client that never received the new CA (the pre-rollover bundle) no longer does — which is why the switch
    // waits for the configurations.
    expect(await get(port, bundleDuring)).toEqual({ serial: serialOf(leafAfter) });
    expect(await get(port, ca2)).toEqual({ serial: serialOf(leafAfter) });
    expect((await get(port, bundleBefore)).error).toBeDefined();
    expect(certs.expiry().ca!.getTime()).toBe(Date.parse(new X509Certificate(ca2).validTo));

    // The old CA leaves the bundle once the old leaf has expired (by then the new leaf was renewed too).
    clock.now = new Date(Date.parse(retireAt!) - 60_000);
    await certs.reconcile();
    expect(splitPem(api.data(SECRET_KEYS.bundle))).toHaveLength(2);
    clock.now = new Date(Date.parse(retireAt!) + 1000);
    const retired = await certs.reconcile();
    expect(retired.changes).toEqual([expect.stringMatching(/removed 1 previous CA/)]);
    expect(splitPem(api.data(SECRET_KEYS.bundle)).map(fp)).toEqual([fp(ca2)]);
    expect(api.bundleOf("validating/portcullis")).toEqual([fp(ca2)]);
    expect(api.secret!.metadata!.annotations![ANNOTATIONS.retireAt]).toBeUndefined();
  });

  it("does not switch while a configuration lacks the new CA; caOverlapDays shortens the overlap", async () => {
    const R = Date.now();
    const { api, certs, clock } = setup({ rolloverSettleSeconds: 10, caOverlapDays: 1 });
    api.addConfig("validating", "portcullis", ["images.portcullis.dev"]);
    clock.now = new Date(R - 1461 * DAY);
    await certs.reconcile();
    api.forbidden.add("validating/portcullis");
    clock.now = new Date(R);
    expect((await certs.reconcile()).changes).toContainEqual(expect.stringMatching(/rollover started/));
    const leaf = api.data(SECRET_KEYS.cert);
    for (const s of [20, 40, 3600]) {
      clock.now = new Date(R + s * 1000);
      expect((await certs.reconcile()).changes.filter((c) => /switch|carries/.test(c))).toEqual([]);
      expect(api.data(SECRET_KEYS.cert)).toBe(leaf);
    }
    api.forbidden.clear();
    clock.now = new Date(R + 3601_000);
    expect((await certs.reconcile()).changes).toEqual([expect.stringMatching(/carries both CAs/)]);
    clock.now = new Date(R + 3612_000);
    expect((await certs.reconcile()).changes).toEqual([expect.stringMatching(/switched to the new CA/)]);
    expect(api.secret!.metadata!.annotations![ANNOTATIONS.retireAt]).toBe(new Date(R + 3612_000 + DAY).toISOString());
    clock.now = new Date(R + 3613_000 + DAY);
    expect((await certs.reconcile()).changes).toEqual([expect.stringMatching(/removed 1 previous CA/)]);
  });

  it("replaces a CA whose key went missing through a rollover, not by breaking trust", async () => {
    const { api, certs, clock } = setup({ rolloverSettleSeconds: 0 });
    api.addConfig("validating", "portcullis", ["images.portcullis.dev"]);
    await certs.reconcile();
    const leaf = api.data(SECRET_KEYS.cert);
    delete api.secret!.data![SECRET_KEYS.caKey];
    expect((await certs.reconcile()).changes).toEqual([expect.stringMatching(/key is missing or does not match: rolling over/)]);
    expect(api.data(SECRET_KEYS.cert)).toBe(leaf);
    expect(api.bundleOf("validating/portcullis")).toHaveLength(2);
    clock.now = new Date(clock.now.getTime() + 1000);
    await certs.reconcile(); // carried
    clock.now = new Date(clock.now.getTime() + 1000);
    expect((await certs.reconcile()).changes).toEqual([expect.stringMatching(/switched/)]);
    expect(api.data(SECRET_KEYS.caKey)).toContain("PRIVATE KEY");
    expect(api.data(SECRET_KEYS.cert)).not.toBe(leaf);
  });

  it("retries a conflicting write on what the other writer stored; two leaders at once agree on one CA", async () => {
    const api = new FakeApi();
    const a = setup({}, api).certs;
    const b = setup({}, api).certs;
    const [ra, rb] = await Promise.all([a.reconcile(), b.reconcile()]);
    expect([ra.changes.length, rb.changes.length].sort()).toEqual([0, 1]); // one created, the other adopted it
    expect(a.tlsOptions()).toEqual(b.tlsOptions());
    expect(api.writes).toBe(1);

    // A 409 on replace: another writer changed the Secret; the rotation is planned again on its version.
    const { clock, certs: c } = setup({}, api);
    clock.now = new Date(Date.now() + 61 * DAY);
    api.conflicts = 1;
    api.beforeConflict = () => {
      api.secret!.metadata!.labels = { ...api.secret!.metadata!.labels, touched: "yes" };
      api.secret!.metadata!.resourceVersion = "999";
    };
    expect((await c.reconcile()).changes).toEqual([expect.stringMatching(/new serving certificate/)]);
    expect(api.secret!.metadata!.labels!.touched).toBe("yes");
    expect(api.writes).toBe(2);
  });

  it("a write that fails leaves the previous Secret (and the served certificate) as it was", async () => {
    const { api, certs, clock } = setup();
    await certs.reconcile();
    const before = structuredClone(api.secret);
    const served = certs.tlsOptions();
    clock.now = new Date(Date.now() + 61 * DAY);
    api.failWrites = true;
    await expect(certs.reconcile()).rejects.toThrow(/timed out/);
    expect(api.secret).toEqual(before);
    expect(certs.tlsOptions()).toEqual(served);
    api.failWrites = false;
    expect((await certs.reconcile()).changes).toHaveLength(1);
    expect(api.data(SECRET_KEYS.bundle)).toBe(Buffer.from(before!.data![SECRET_KEYS.bundle]!, "base64").toString()); // same CA: no key lost
  });
});

describe("replicas", () => {
  it("wait for the Secret (not ready), then serve it and follow the leader's rotations without a restart", async () => {
    const api = new FakeApi();
    const leader = setup({}, api);
    leader.clock.now = new Date(Date.now() - 61 * DAY); // so that the rotation below happens today
    const replica = setup({ pollSeconds: 0.05 }, api).certs;
    managers.push(replica);
    await replica.start();
    expect(replica.isReady()).toBe(false);
    expect(() => replica.secureContext()).toThrow(/no certificate/);
    const port = await serve(replica); // created before any certificate exists
    await leader.certs.reconcile();
    await replica.ready();
    expect(replica.isReady()).toBe(true);
    expect(replica.secureContext()).toBeDefined();
    const bundle = api.data(SECRET_KEYS.bundle)!;
    expect(await get(port, bundle)).toEqual({ serial: serialOf(api.data(SECRET_KEYS.cert)) });

    leader.clock.now = new Date();
    expect((await leader.certs.reconcile()).changes).toEqual([expect.stringMatching(/new serving certificate/)]);
    const rotated = serialOf(api.data(SECRET_KEYS.cert));
    for (let i = 0; i < 100 && (await get(port, bundle)).serial !== rotated; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await get(port, bundle)).toEqual({ serial: rotated });
  });

  it("ignore a Secret whose key does not match its certificate", async () => {
    const api = new FakeApi();
    const leader = setup({}, api);
    await leader.certs.reconcile();
    const replica = setup({}, api);
    await replica.certs.refresh();
    const good = replica.certs.tlsOptions();
    const other = await createCA({ now: new Date(), validityDays: 1 });
    api.secret!.data![SECRET_KEYS.key] = Buffer.from(other.keyPem).toString("base64");
    api.secret!.metadata!.resourceVersion = "12345";
    await replica.certs.refresh();
    expect(replica.certs.tlsOptions()).toEqual(good);
    expect(replica.logs.some((l) => /not its key: still serving the previous certificate/.test(l))).toBe(true);
  });

  it("external mode (cert-manager): no writes, no patches; the replica serves the Secret and reports its expiry", async () => {
    const api = new FakeApi();
    api.addConfig("validating", "portcullis", ["images.portcullis.dev"]);
    const now = new Date();
    const ca = await createCA({ now, validityDays: 365 });
    const leaf = await issueServingCertificate(ca, { now, validityDays: 30, dnsNames: ["portcullis.ops.svc"], ipAddresses: ["127.0.0.1"] });
    const { certs } = setup({ mode: "external", dnsNames: [], ipAddresses: [] }, api);
    managers.push(certs);
    expect(await certs.reconcile()).toMatchObject({ changes: [], patched: [] });
    expect(api.secret).toBeUndefined();
    api.secret = {
      metadata: { name: "portcullis-webhook-tls", resourceVersion: "1" }, type: "kubernetes.io/tls",
      data: { "tls.crt": Buffer.from(leaf.certPem).toString("base64"), "tls.key": Buffer.from(leaf.keyPem).toString("base64"), "ca.crt": Buffer.from(ca.certPem).toString("base64") },
    };
    await certs.start();
    await certs.ready();
    expect(await certs.reconcile()).toMatchObject({ changes: [], patched: [] });
    expect(api.writes).toBe(0);
    expect(api.patches).toEqual([]);
    expect(certs.expiry()).toEqual({ leaf: new Date(new X509Certificate(leaf.certPem).validTo), ca: new Date(new X509Certificate(ca.certPem).validTo) });
    const port = await serve(certs);
    expect(await get(port, ca.certPem)).toEqual({ serial: serialOf(leaf.certPem) });
  });
});
