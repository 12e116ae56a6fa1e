// The report API's POST index_report with layer URIs chosen by a caller, as `portcullis serve` runs it
// (private layer hosts not allowed), against the real API server (TokenReview, SubjectAccessReview) and the
// real registry: URIs written as internal addresses in any spelling are refused before anything is
// fetched (400 blocked-uri); URIs whose name resolves to an internal address are refused when connecting
// (400 layer-fetch-failed, nothing reaches the server); a name resolving to an allowed address is fetched
// and indexed. Names resolve from a table, as a hosts file would answer.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import { pipeline } from "node:stream/promises";
import * as k8s from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ReportApi } from "../../src/api/report.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { openRegistryImage } from "../../src/indexer/sources/registry.js";
import { parseReference } from "../../src/image/reference.js";
import { EgressGuard } from "../../src/net/egress.js";
import { RegistryClient } from "../../src/registry/client.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { describeWith, scratchDatabases, service } from "../env/index.js";
import { ociBookworm, skopeoPush } from "../env/images.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const repo = "egress/debian";

describeWith(["kube", "registryBasic", "postgres"], "report API: layer URIs through the egress guard", () => {
  let store: Store;
  let api: ReportApi;
  let server: Server;
  let base: string;
  /** A proxy to the registry on this machine's own (non-loopback) address: what a layer URI may reach. */
  let proxy: Server;
  let proxyPort: number;
  let own: string;
  const proxied: string[] = [];
  let image: { digest: string; layers: Array<{ digest: string; mediaType: string }> };
  let auth: string;
  const NAMES: Record<string, string> = {
    "meta.test": "169.254.169.254", "mapped.test": "::ffff:a9fe:a9fe", "nat64.test": "64:ff9b::a9fe:a9fe", "compat.test": "::a9fe:a9fe",
    "lo.test": "127.0.0.1", "lo6.test": "::1", "ll.test": "fe80::1",
  };
  const guard = new EgressGuard(async (name) => {
    const address = name === "layers.test" ? own : NAMES[name];
    if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
    return [{ address, family: address.includes(":") ? 6 : 4 }];
  });

  const post = (body: unknown) => request(`${base}/indexer/api/v1/index_report`, { method: "POST", headers: { authorization: `Bearer ${service("kube").token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  const manifest = (host: string, hash = image.digest) => ({
    hash, layers: image.layers.map((l) => ({ hash: l.digest, uri: `http://${host}:${proxyPort}/v2/${repo}/blobs/${l.digest}`, headers: { Authorization: [auth] }, media_type: l.mediaType })),
  });

  beforeAll(async () => {
    const reg = service("registryBasic");
    auth = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString("base64")}`;
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, `${repo}:base`);
    const client = new RegistryClient({ keyring: { lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] } });
    const img = await openRegistryImage(client, parseReference(`${reg.host}/${repo}:base`));
    image = { digest: img.manifest.digest, layers: img.manifest.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType })) };
    await client.close();
    own = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === "IPv4")?.address ?? "";
    expect(own, "a non-loopback IPv4 interface").not.toBe("");
    proxy = createServer((req, res) => {
      proxied.push(`${req.method} ${req.url}`);
      void (async () => {
        const up = await request(`${reg.url}${req.url}`, { headers: typeof req.headers.authorization === "string" ? { authorization: req.headers.authorization } : {} });
        res.writeHead(up.statusCode, typeof up.headers["content-length"] === "string" ? { "content-length": up.headers["content-length"] } : {});
        await pipeline(up.body, res);
      })().catch(() => res.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, own, r));
    proxyPort = (proxy.address() as AddressInfo).port;
    store = await openStore(await databases.create("api_egress"));
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const indexer = new Indexer({ store, scanners: defaultScanners() });
    api = new ReportApi({ kc, store, scannerSet: indexer.scannerSet, indexer, scans: { list: () => [] }, egress: guard, layerFetch: { maxAttempts: 1 } });
    server = createServer((req, res) => void api.handle(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 180_000);
  afterAll(async () => {
    api?.stop();
    for (const s of [server, proxy]) if (s) await new Promise<void>((r) => s.close(() => r()));
    await store?.close();
  });

  it.each([
    "169.254.169.254", "2852039166", "0251.0376.0251.0376", "0xa9fea9fe", "[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]", "[::169.254.169.254]",
    "[fd00:ec2::254]", "100.100.100.200", "[fe80::1]", "127.0.0.1", "0x7f000001", "[::1]", "[::ffff:7f00:1]", "0.0.0.0", "localhost", "metadata.google.internal",
  ])("refuses a layer URI written as %s before fetching anything", async (host) => {
    const before = proxied.length;
    const res = await post(manifest(host));
    const body = (await res.body.json()) as { code: string; message: string };
    expect(res.statusCode, JSON.stringify(body)).toBe(400);
    expect(body).toMatchObject({ code: "blocked-uri", message: expect.stringContaining(`layers[0].uri (layer ${image.layers[0]!.digest})`) });
    expect(proxied.length).toBe(before);
  });

  it.each(Object.keys(NAMES))("refuses a layer URI whose name %s resolves to an internal address, at connect time", async (name) => {
    const before = proxied.length;
    const res = await post(manifest(name));
    const body = (await res.body.json()) as { code: string; message: string };
    expect(res.statusCode, JSON.stringify(body)).toBe(400);
    expect(body.code).toBe("layer-fetch-failed");
    expect(body.message).toContain(`${name} resolves to ${NAMES[name]}: refused`);
    expect(proxied.length).toBe(before);
  });

  it("fetches and indexes through a name that resolves to an allowed address", async () => {
    const res = await post(manifest("layers.test"));
    const body = (await res.body.json()) as { state: string; packages?: Record<string, unknown> };
    expect(res.statusCode, JSON.stringify(body).slice(0, 500)).toBe(201);
    expect(body.state).toBe("IndexFinished");
    expect(Object.keys(body.packages ?? {}).length).toBeGreaterThan(80);
    expect(proxied.filter((p) => p.startsWith("GET /v2/")).length).toBe(image.layers.length);
  });
});
