// The report API against the real API server: TokenReview + SubjectAccessReview decide who sees a report,
// the report is a real index of the Debian test image, and it validates against Clair's schema. Then
// `portcullis serve` as a process: /metrics and the report API on its health port. Then POST index_report:
// Clair Manifests whose layers are the test registries' blob URLs (Basic, Bearer, HTTPS with a private CA),
// compared with the same image indexed from the registry as an ImageScan does it.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { kubeAuthority, ReportApi } from "../../src/api/report.js";
import { reportCommand } from "../../src/cli/report.js";
import { clairValidator } from "../../src/indexer/clair-schema.js";
import { Indexer } from "../../src/indexer/indexer.js";
import type { IndexReport } from "../../src/model/index-report.js";
import { openLocalImage } from "../../src/indexer/sources/local.js";
import { openRegistryImage } from "../../src/indexer/sources/registry.js";
import { parseReference } from "../../src/image/reference.js";
import { digestOf, gzip, makeTar } from "../../src/layers/testing.js";
import { RegistryClient } from "../../src/registry/client.js";
import { PortcullisMetrics } from "../../src/metrics/metrics.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool } from "../env/index.js";
import { ociBookworm, skopeoPush } from "../env/images.js";
import { RegistryPusher } from "../env/oci-push.js";
import { freePort } from "../env/process.js";
import type { RegistryService } from "../env/services.js";
import { GROUP, VERSION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const ns = "report-api-test";
const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const UNKNOWN = `sha256:${"0".repeat(64)}`;

describeWith(["kube", "postgres"], "report API", () => {
  let store: Store;
  let api: ReportApi;
  let server: Server;
  let base: string;
  let digest: string;
  let scannerSet: string;
  const metrics = new PortcullisMetrics();
  const dir = mkdtempSync(join(tmpdir(), "report-api-"));

  beforeAll(async () => {
    const kube = service("kube");
    const kubectl = (...a: string[]) => run(tool("kubectl"), ["--kubeconfig", kube.kubeconfig, ...a]);
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
    await kubectl("create", "namespace", ns);
    // A real report: the Debian test image indexed from its OCI layout.
    store = await openStore(await databases.create("api_report"));
    const indexer = new Indexer({ store, scanners: defaultScanners() });
    scannerSet = indexer.scannerSet;
    const local = (await openLocalImage(`oci:${ociBookworm()}:base`, { os: "linux", architecture: "amd64" }))!;
    const result = await indexer.index(local.manifest, local.source);
    expect(result.report.state).toBe("IndexFinished");
    digest = local.manifest.digest;
    // An ImageScan that says it indexed that digest.
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfig);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "debian" }, spec: { image: `registry.example/debian@${digest}` } } });
    await custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name: "debian", body: { status: { phase: "Indexed", digest, reportRef: { manifestDigest: digest, path: `/indexer/api/v1/index_report/${digest}` } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    api = new ReportApi({ kc, store, scannerSet });
    await api.start();
    // (Other tests on this API server may have scans of the same image in their namespaces.)
    const ours = () => api.scansFor(digest).filter((s) => s.namespace === ns);
    for (let i = 0; i < 100 && ours().length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(ours()).toEqual([{ namespace: ns, name: "debian" }]);
    // As serve wires them: /metrics and the API on one plain HTTP server.
    server = createServer((req, res) => {
      if (req.url === "/metrics") void metrics.serve(req, res);
      else if (api.matches(req.url)) void api.handle(req, res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 180_000);

  afterAll(async () => {
    api?.stop();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, token?: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });

  it("gives an admin the report, in Clair's wire format", async () => {
    const res = await get(`/indexer/api/v1/index_report/${digest}`, service("kube").token);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = (await res.json()) as { manifest_hash: string; state: string; packages: Record<string, unknown> };
    expect(clairValidator("index_report.schema.json")(body)).toEqual([]);
    expect(body).toMatchObject({ manifest_hash: digest, state: "IndexFinished", success: true });
    expect(Object.keys(body.packages).length).toBeGreaterThan(80);
    const vnd = await get(`/indexer/api/v1/index_report/${digest}`, service("kube").token, { accept: "application/vnd.clair.index_report.v1+json" });
    expect(vnd.headers.get("content-type")).toBe("application/vnd.clair.index_report.v1+json");
  });

  it("refuses a caller without a token (401), with an invalid token (401), without access (403)", async () => {
    const none = await get(`/indexer/api/v1/index_report/${digest}`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(clairValidator("error.schema.json")(await none.json())).toEqual([]);
    expect((await get(`/indexer/api/v1/index_report/${digest}`, "not-a-token")).status).toBe(401);
    const nobody = await get(`/indexer/api/v1/index_report/${digest}`, service("kube").unprivilegedToken);
    expect(nobody.status).toBe(403);
    expect(((await nobody.json()) as { message: string }).message).toMatch(/nobody may not get an ImageScan/);
  });

  it("lets a caller who may get ImageScans in that namespace see it (RBAC granted, answers cached for a minute)", async () => {
    const kubectl = (...a: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...a]);
    await kubectl("-n", ns, "create", "role", "scan-reader", "--verb=get", "--resource=imagescans.portcullis.dev");
    await kubectl("-n", ns, "create", "rolebinding", "nobody-reads-scans", "--role=scan-reader", "--user=nobody");
    // The 403 above is cached: a fresh API instance sees the new binding at once.
    const fresh = new ReportApi({ kc: (() => { const kc = new k8s.KubeConfig(); kc.loadFromFile(service("kube").kubeconfig); return kc; })(), store, scannerSet, scans: { list: () => [{ metadata: { namespace: ns, name: "debian" }, spec: { image: "x" }, status: { digest } }] } });
    const srv = createServer((req, res) => void fresh.handle(req, res));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/indexer/api/v1/index_report/${digest}`;
      const res = await fetch(url, { headers: { authorization: `Bearer ${service("kube").unprivilegedToken}` } });
      expect(res.status).toBe(200);
      // The cached instance still says 403 (for up to 60 s).
      expect((await get(`/indexer/api/v1/index_report/${digest}`, service("kube").unprivilegedToken)).status).toBe(403);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
      await kubectl("-n", ns, "delete", "rolebinding", "nobody-reads-scans");
    }
  });

  it("answers 404 for an unknown digest, 400 for a bad one, 501 for POST (this API has no indexer), 400 for an affected_manifest body without vulnerabilities", async () => {
    const admin = service("kube").token;
    const unknown = await get(`/indexer/api/v1/index_report/${UNKNOWN}`, admin);
    expect(unknown.status).toBe(404);
    expect(clairValidator("error.schema.json")(await unknown.json())).toEqual([]);
    expect((await get(`/indexer/api/v1/index_report/${UNKNOWN}`, service("kube").unprivilegedToken)).status).toBe(404);
    expect((await get("/indexer/api/v1/index_report/latest", admin)).status).toBe(400);
    const post = await fetch(`${base}/indexer/api/v1/index_report`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ hash: digest, layers: [] }) });
    expect(post.status).toBe(501);
    expect(((await post.json()) as { message: string }).message).toMatch(/ImageScans/);
    const affected = await fetch(`${base}/indexer/api/v1/internal/affected_manifest`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: "{}" });
    expect(affected.status).toBe(400);
    expect(await affected.json()).toMatchObject({ code: "bad-request", message: expect.stringContaining('{"vulnerabilities": [Vulnerability, ...]}') });
    expect((await get("/indexer/api/v1/nope", admin)).status).toBe(404);
  });

  it("with token audiences, accepts only tokens issued for them (TokenReview with audiences, on the real API server)", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "reader" } } });
    const token = async (audiences: string[]) => (await core.createNamespacedServiceAccountToken({ namespace: ns, name: "reader", body: { spec: { audiences, expirationSeconds: 600 } } })).status!.token;
    const forPortcullis = await token(["portcullis"]);
    const forApiServer = await token([]);
    const strict = kubeAuthority(kc, { audiences: ["portcullis"] });
    expect(await strict.authenticate(forPortcullis)).toMatchObject({ username: `system:serviceaccount:${ns}:reader` });
    // A token for the API server, had it been sent here, could be replayed there: it is refused.
    expect(await strict.authenticate(forApiServer)).toBeUndefined();
    // Without audiences (the default), the API server's own audience is what TokenReview checks.
    const lax = kubeAuthority(kc);
    expect(await lax.authenticate(forApiServer)).toMatchObject({ username: `system:serviceaccount:${ns}:reader` });
    expect(await lax.authenticate(forPortcullis)).toBeUndefined();
  });

  it("returns the index state (the scanner set), with an ETag", async () => {
    expect((await get("/indexer/api/v1/index_state")).status).toBe(401);
    const res = await get("/indexer/api/v1/index_state", service("kube").unprivilegedToken);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({ state: scannerSet });
    expect(clairValidator("index_state.schema.json")(body)).toEqual([]);
    const etag = res.headers.get("etag")!;
    expect((await get("/indexer/api/v1/index_state", service("kube").unprivilegedToken, { "if-none-match": etag })).status).toBe(304);
  });

  it("portcullis report DIGEST prints the report", async () => {
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, `${service("kube").token}\n`);
    let out = "";
    expect(await reportCommand([digest, "--token-file", tokenFile], { PORTCULLIS_SERVER: base }, (s) => (out += s))).toBe(0);
    expect(clairValidator("index_report.schema.json")(JSON.parse(out))).toEqual([]);
    // The kubeconfig's token when there is no --token-file (the harness's kubeconfig has the admin token).
    out = "";
    expect(await reportCommand([digest, "--server", base], { KUBECONFIG: service("kube").kubeconfig }, (s) => (out += s))).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ manifest_hash: digest });
    writeFileSync(tokenFile, service("kube").unprivilegedToken);
    await expect(reportCommand([UNKNOWN, "--token-file", tokenFile, "--server", base], {}, () => {})).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("deletes a manifest only for a caller who may delete ImageScans everywhere", async () => {
    const del = (token: string) => fetch(`${base}/indexer/api/v1/index_report/${digest}`, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
    expect((await del(service("kube").unprivilegedToken)).status).toBe(403);
    expect(await store.indexReport(digest)).toBeDefined();
    expect((await del(service("kube").token)).status).toBe(204);
    expect(await store.indexReport(digest)).toBeUndefined();
    expect((await get(`/indexer/api/v1/index_report/${digest}`, service("kube").token)).status).toBe(404);
  });

  it("portcullis serve exposes /metrics and the report API on its health port", async () => {
    const port = await freePort();
    const stderr: string[] = [];
    const child = spawn(tsx, [bin, "serve", "--store-path", join(dir, "store"), "--namespace", ns, "--webhook", "false", "--watch-namespaces", ns, "--no-pods", "--leader-elect", "false", "--health-addr", `127.0.0.1:${port}`], { env: { ...process.env, KUBECONFIG: service("kube").kubeconfig } });
    child.stderr.on("data", (c: Buffer) => stderr.push(c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      let ready = 0;
      for (let i = 0; i < 300 && ready !== 200; i++) {
        ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status, () => 0);
        if (ready !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      expect(ready, stderr.join("")).toBe(200);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      const text = await res.text();
      for (const name of ["portcullis_scan_duration_seconds", "portcullis_workqueue_depth", "portcullis_workqueue_oldest_item_age_seconds", "portcullis_layers_fetched_total", "portcullis_layers_reused_total", "portcullis_downloaded_bytes_total", "portcullis_registry_requests_total", "portcullis_registry_token_fetches_total", "portcullis_webhook_review_duration_seconds", "portcullis_webhook_decisions_total", "portcullis_webhook_break_glass_total", "portcullis_webhook_certificate_expiry_timestamp_seconds", "portcullis_leader"]) {
        expect(text).toContain(`# TYPE ${name} `);
      }
      expect(text).toMatch(/^portcullis_leader 1$/m);
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
      // The controller reconciles the ImageScan above (its registry does not exist): the scan is observed.
      let scraped = text;
      for (let i = 0; i < 100 && !/^portcullis_scan_duration_seconds_count\{result="(failed|retrying)"\} [1-9]/m.test(scraped); i++) {
        await new Promise((r) => setTimeout(r, 200));
        scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      }
      expect(scraped).toMatch(/^portcullis_scan_duration_seconds_count\{result="(failed|retrying)"\} [1-9]/m);
      const state = await fetch(`http://127.0.0.1:${port}/indexer/api/v1/index_state`, { headers: { authorization: `Bearer ${service("kube").token}` } });
      expect(await state.json()).toEqual({ state: scannerSet });
      // serve wires the indexer for POST index_report, and never lets layer URIs reach loopback or metadata hosts.
      const posted = await fetch(`http://127.0.0.1:${port}/indexer/api/v1/index_report`, {
        method: "POST", headers: { authorization: `Bearer ${service("kube").token}`, "content-type": "application/json" },
        body: JSON.stringify({ hash: UNKNOWN, layers: [{ hash: UNKNOWN, uri: `http://127.0.0.1:${port}/metrics` }] }),
      });
      expect(posted.status).toBe(400);
      expect(await posted.json()).toMatchObject({ code: "blocked-uri" });
      expect((await fetch(`http://127.0.0.1:${port}/indexer/api/v1/index_report/${digest}`)).status).toBe(401);
      // The embedded store of this process has no report: an admin gets 404 (the ImageScan exists, the report does not).
      expect((await fetch(`http://127.0.0.1:${port}/indexer/api/v1/index_report/${UNKNOWN}`, { headers: { authorization: `Bearer ${service("kube").token}` } })).status).toBe(404);
      // The matcher's endpoints are served there too: the API's own 404, not the health server's.
      const vulns = await fetch(`http://127.0.0.1:${port}/matcher/api/v1/vulnerability_report/${UNKNOWN}`, { headers: { authorization: `Bearer ${service("kube").token}` } });
      expect(vulns.status).toBe(404);
      expect(await vulns.json()).toEqual({ code: "not-found", message: `no index report for ${UNKNOWN} (not indexed yet)` });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited, stderr.join("").slice(-2000)).toBe(0);
  });
});

describeWith(["kube", "registryBasic", "registryToken", "registryTls", "postgres"], "report API: POST index_report (layers by URI)", () => {
  const repo = "report-post/debian";
  const scanners = defaultScanners();
  const infos = scanners.map((s) => ({ name: s.name, version: s.version, kind: s.kind }));
  let store: Store;
  let refStore: Store;
  let indexer: Indexer;
  let api: ReportApi;
  let server: Server;
  let base: string;
  /** A counting reverse proxy in front of registryBasic: what the POSTs downloaded. */
  let proxy: Server;
  let proxyUrl: string;
  const proxied: string[] = [];
  let image: { digest: string; layers: Array<{ digest: string; mediaType: string }> };
  /** The same image indexed from the registry, as the ImageScan controller does. */
  let want: IndexReport;
  const basic = (reg: RegistryService) => `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString("base64")}`;

  const post = (body: unknown, token = service("kube").token, url = `${base}/indexer/api/v1/index_report`) =>
    fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  const blobUri = (root: string, digest: string, r = repo) => `${root}/v2/${r}/blobs/${digest}`;
  const blobGets = () => proxied.filter((p) => /^GET \/v2\/.+\/blobs\//.test(p)).length;

  beforeAll(async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:two`, reg, `${repo}:two`);
    const client = new RegistryClient({ keyring: { lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] } });
    const img = await openRegistryImage(client, parseReference(`${reg.host}/${repo}:two`));
    image = { digest: img.manifest.digest, layers: img.manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType })) };
    expect(image.layers).toHaveLength(2);
    refStore = await openStore(await databases.create("api_report"));
    const ref = await new Indexer({ store: refStore, scanners }).index(img.manifest, img.source);
    expect(ref.report.state).toBe("IndexFinished");
    want = ref.report;
    await client.close();

    proxy = createServer((req: IncomingMessage, res) => {
      proxied.push(`${req.method} ${req.url}`);
      const headers: Record<string, string> = {};
      for (const h of ["authorization", "range", "accept"]) if (typeof req.headers[h] === "string") headers[h] = req.headers[h];
      void (async () => {
        const up = await request(`${reg.url}${req.url}`, { method: req.method === "HEAD" ? "HEAD" : "GET", headers });
        const out: Record<string, string> = {};
        for (const h of ["content-length", "content-type", "content-range", "www-authenticate", "docker-content-digest"]) if (typeof up.headers[h] === "string") out[h] = up.headers[h];
        res.writeHead(up.statusCode, out);
        await pipeline(up.body, res);
      })().catch(() => res.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

    store = await openStore(await databases.create("api_report"));
    indexer = new Indexer({ store, scanners });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const tls = service("registryTls");
    api = new ReportApi({ kc, store, scannerSet: indexer.scannerSet, indexer, scans: { list: () => [] }, allowPrivateLayerHosts: true, layerFetch: { caCertificates: { [tls.host]: tls.caPem! } } });
    server = createServer((req, res) => void api.handle(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 180_000);

  afterAll(async () => {
    api?.stop();
    for (const s of [server, proxy]) if (s) await new Promise<void>((r) => s.close(() => r()));
    await store?.close();
    await refStore?.close();
  });

  it("indexes a manifest of registry blob URLs (Basic auth) into the report an ImageScan gets; identical POSTs download once", async () => {
    const manifest = { hash: image.digest, layers: image.layers.map((l) => ({ hash: l.digest, uri: blobUri(proxyUrl, l.digest), headers: { Authorization: [basic(service("registryBasic"))] }, media_type: l.mediaType })) };
    const [a, b] = await Promise.all([post(manifest), post(manifest)]);
    for (const res of [a, b]) {
      expect(res.status).toBe(201);
      expect(res.headers.get("etag")).toBe(`"${indexer.scannerSet}"`);
      expect(res.headers.get("location")).toBe(`/indexer/api/v1/index_report/${image.digest}`);
    }
    const body = (await a.json()) as IndexReport;
    expect(clairValidator("index_report.schema.json")(body)).toEqual([]);
    expect(body).toEqual(want);
    expect(await b.json()).toEqual(want);
    expect(Object.keys(body.packages!).length).toBeGreaterThan(80);
    expect(Object.values(body.packages!).some((p) => p.name === "jq")).toBe(true);
    // Two concurrent POSTs, two layers: each layer downloaded once.
    expect(blobGets()).toBe(2);
    // GET answers the same report.
    const got = await fetch(`${base}/indexer/api/v1/index_report/${image.digest}`, { headers: { authorization: `Bearer ${service("kube").token}` } });
    expect(await got.json()).toEqual(want);

    // Again: answered from the store, nothing downloaded (201 as Clair answers).
    const again = await post(manifest);
    expect(again.status).toBe(201);
    expect(await again.json()).toEqual(want);
    // Another manifest made of the same layers: they are content addressed, so nothing is downloaded either.
    const other = await post({ ...manifest, hash: digestOf(Buffer.from("another manifest of the same layers")) });
    expect(other.status).toBe(201);
    expect(Object.keys(((await other.json()) as IndexReport).packages!).length).toBe(Object.keys(want.packages!).length);
    expect(blobGets()).toBe(2);
  });

  it("refuses a caller who may not create ImageScans in every namespace (SubjectAccessReview)", async () => {
    const res = await post({ hash: image.digest, layers: [{ hash: image.layers[0]!.digest, uri: blobUri(proxyUrl, image.layers[0]!.digest) }] }, service("kube").unprivilegedToken);
    expect(res.status).toBe(403);
    const err = await res.json();
    expect(clairValidator("error.schema.json")(err)).toEqual([]);
    expect(err).toMatchObject({ code: "forbidden", message: expect.stringMatching(/^nobody may not index manifests by URI: that needs create on imagescans\.portcullis\.dev in every namespace/) });
    expect((await post({ hash: "latest", layers: [] })).status).toBe(400);
  });

  it("refuses a lying layer with an error naming it, and stores nothing of it", async () => {
    const reg = service("registryBasic");
    const [, top] = image.layers;
    const lie = digestOf(Buffer.from("a layer that is not what its URI serves"));
    const hash = digestOf(Buffer.from("a manifest with a lying layer"));
    const before = blobGets();
    const res = await post({ hash, layers: [{ hash: lie, uri: blobUri(proxyUrl, top!.digest), headers: { Authorization: [basic(reg)] } }] });
    expect(res.status).toBe(400);
    const err = (await res.json()) as { code: string; message: string };
    expect(clairValidator("error.schema.json")(err)).toEqual([]);
    expect(err).toEqual({ code: "digest-mismatch", message: `layer ${lie}: content has digest ${top!.digest}` });
    expect(blobGets()).toBe(before + 1);
    expect((await store.scannedLayers([lie], infos)).size).toBe(0);
    expect((await store.layerArtifacts([lie], infos)).get(lie)?.outputs.size ?? 0).toBe(0);
    // The manifest's report says what happened (as Clair's does); there is no finished report.
    expect((await store.indexReport(hash))?.report).toMatchObject({ state: "IndexError", success: false, err: err.message });
    expect((await store.indexReport(hash))?.report.packages).toBeUndefined();

    // No credentials: the registry's 401, named.
    const denied = await post({ hash, layers: [{ hash: lie, uri: blobUri(proxyUrl, top!.digest) }] });
    expect(denied.status).toBe(400);
    expect(await denied.json()).toEqual({ code: "layer-fetch-failed", message: expect.stringMatching(new RegExp(`^layer ${lie}: GET ${proxyUrl}/v2/${repo}/blobs/${top!.digest}: HTTP 401, not authorized`)) });
  });

  /** A one-layer image with a dpkg database of two packages, pushed with `pusher`. */
  async function smallImage(pusher: RegistryPusher, name: string) {
    const status = [
      "Package: base-files", "Status: install ok installed", "Maintainer: Santiago Vila <sanvila@debian.org>", "Architecture: amd64", `Version: 12.4+${name}`, "",
      "Package: tzdata", "Status: install ok installed", "Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>", "Architecture: all", "Version: 2024a-0+deb12u1", "",
    ].join("\n");
    const layer = gzip(await makeTar([{ name: "etc/os-release", content: 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' }, { name: "var/lib/dpkg/status", content: status }]));
    const pushed = await pusher.pushImage(repo, name, [{ data: layer, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }]);
    return { digest: pushed.digest, layer: digestOf(layer) };
  }

  it("fetches with a bearer token the caller got from the registry's token server", async () => {
    const reg = service("registryToken");
    const pusher = new RegistryPusher(reg);
    const img = await smallImage(pusher, "bearer");
    await pusher.close();
    const u = new URL(reg.realm!);
    u.searchParams.set("service", reg.service!);
    u.searchParams.set("scope", `repository:${repo}:pull`);
    const tokenRes = await fetch(u, { headers: { authorization: basic(reg) } });
    const { token } = (await tokenRes.json()) as { token: string };
    const res = await post({ hash: img.digest, layers: [{ hash: img.layer, uri: blobUri(reg.url, img.layer), headers: { Authorization: [`Bearer ${token}`], Accept: ["application/gzip"] } }] });
    const body = (await res.json()) as IndexReport;
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(clairValidator("index_report.schema.json")(body)).toEqual([]);
    expect(Object.values(body.packages!).map((p) => `${p.name} ${p.version}`).sort()).toEqual(["base-files 12.4+bearer", "tzdata 2024a-0+deb12u1"]);
    expect(Object.values(body.distributions!)[0]).toMatchObject({ did: "debian", version_id: "12" });
  });

  it("fetches over HTTPS from a registry with a private CA named in layerFetch.caCertificates, and says when the CA is unknown", async () => {
    const reg = service("registryTls");
    const pusher = new RegistryPusher(reg);
    const img = await smallImage(pusher, "tls");
    await pusher.close();
    const manifest = { hash: img.digest, layers: [{ hash: img.layer, uri: blobUri(reg.url, img.layer) }] };
    expect(reg.url).toMatch(/^https:/);
    // Without the CA: the certificate is refused at once (no retries), a 502 naming the layer.
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const plainStore = await openStore(await databases.create("api_report"));
    const plain = new ReportApi({ kc, store: plainStore, scannerSet: indexer.scannerSet, indexer: new Indexer({ store: plainStore, scanners }), scans: { list: () => [] }, allowPrivateLayerHosts: true });
    const srv = createServer((req, res) => void plain.handle(req, res));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const refused = await post(manifest, service("kube").token, `http://127.0.0.1:${(srv.address() as AddressInfo).port}/indexer/api/v1/index_report`);
      expect(refused.status).toBe(502);
      expect(await refused.json()).toEqual({ code: "layer-fetch-failed", message: expect.stringMatching(new RegExp(`^layer ${img.layer}: ${reg.url}/v2/${repo}/blobs/${img.layer}: .*certificate`)) });
    } finally {
      plain.stop();
      await new Promise<void>((r) => srv.close(() => r()));
      await plainStore.close();
    }
    const res = await post(manifest);
    const body = (await res.json()) as IndexReport;
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(Object.values(body.packages!).map((p) => p.version)).toContain("12.4+tls");
  });
});
