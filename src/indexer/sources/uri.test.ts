import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { digestOf, gzip, makeTar } from "../../layers/testing.js";
import type { Scanner } from "../../model/scanner.js";
import { openStore } from "../../store/open.js";
import type { Store } from "../../store/types.js";
import { EgressGuard } from "../../net/egress.js";
import { Indexer } from "../indexer.js";
import { blockedHost, checkLayerUri, UriLayerFetcher } from "./uri.js";

const lines: Scanner = {
  name: "lines", version: "1", kind: "package",
  wants: (e) => e.path === "pkgs/db",
  scan: async (files) => ({ packages: (files.get("pkgs/db")?.toString() ?? "").split("\n").filter(Boolean).map((l) => ({ name: l.split(" ")[0]!, version: l.split(" ")[1]!, package_db: "pkgs/db" })) }),
};

describe("checkLayerUri", () => {
  it("refuses loopback, link-local and metadata hosts however they are written, unless allowed", () => {
    for (const u of [
      "http://127.0.0.1/x", "http://localhost:5000/x", "http://a.localhost/x", "http://[::1]/x", "http://0.0.0.0/x", "http://2130706433/x", "http://0x7f.1/x",
      "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://metadata.google.internal/computeMetadata/v1/", "http://METADATA.google.internal./",
      "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://[::169.254.169.254]/", "http://[fe80::1]/", "http://100.100.100.200/", "http://[64:ff9b::a9fe:a9fe]/",
    ]) {
      expect(checkLayerUri(u, false), u).toMatch(/is refused/);
      expect(checkLayerUri(u, true), u).toBeInstanceOf(URL);
    }
    expect(checkLayerUri("http://169.254.169.254/", false)).toMatch(/metadata/);
    // Private addresses stay allowed: in-cluster registries live there.
    for (const u of ["https://10.0.0.7:5000/v2/a/blobs/x", "http://192.168.1.2/", "https://registry.example.com/v2/", "http://[fd12::1]/"]) expect(checkLayerUri(u, false), u).toBeInstanceOf(URL);
    expect(checkLayerUri("ftp://example.com/x", true)).toMatch(/http/);
    expect(checkLayerUri("/v2/a/blobs/x", true)).toMatch(/absolute/);
    expect(checkLayerUri("https://u:p@example.com/x", true)).toMatch(/credentials/);
    expect(blockedHost("registry.example.com")).toBeUndefined();
  });
});

describe("UriLayerFetcher with the Indexer", () => {
  let store: Store;
  let server: Server;
  let base: string;
  const blobs = new Map<string, Buffer>();
  const requests: Array<{ path: string; auth?: string; range?: string }> = [];
  let handler: (req: IncomingMessage, res: ServerResponse) => boolean = () => false;

  beforeAll(async () => {
    store = await openStore("memory:");
    server = createServer((req, res) => {
      requests.push({ path: req.url!, auth: req.headers.authorization, range: req.headers.range });
      if (handler(req, res)) return;
      const m = /^\/blob\/(.+)$/.exec(req.url!);
      const b = m ? blobs.get(m[1]!) : undefined;
      if (req.headers.authorization !== "Basic dTpw") return void res.writeHead(401, { "www-authenticate": 'Basic realm="x"' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      if (!b) return void res.writeHead(404).end();
      res.writeHead(200, { "content-length": b.length }).end(b);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await store.close();
  });
  beforeEach(() => {
    requests.length = 0;
    handler = () => false;
  });

  async function layer(name: string, content: string) {
    const blob = gzip(await makeTar([{ name: "pkgs/db", content }]));
    blobs.set(name, blob);
    return { blob, digest: digestOf(blob) };
  }
  const auth = { Authorization: ["Basic dTpw"] };

  it("fetches each layer once with the caller's headers, checks it, and indexes it", async () => {
    const a = await layer("a", "libc 1\n");
    const b = await layer("b", "jq 2\n");
    const fetcher = new UriLayerFetcher({ allowPrivateHosts: true });
    const ix = new Indexer({ store, scanners: [lines] });
    const m = { hash: digestOf(Buffer.from("m1")), layers: [{ hash: a.digest, uri: `${base}/blob/a`, headers: auth }, { hash: b.digest, uri: `${base}/blob/b`, headers: auth, media_type: "application/vnd.oci.image.layer.v1.tar+gzip" }] };
    const { manifest, source } = fetcher.open(m);
    const r = await ix.index(manifest, source);
    expect(r.report.state).toBe("IndexFinished");
    // (The top layer's pkgs/db replaces the base's.)
    expect(Object.values(r.report.packages!).map((p) => p.name)).toEqual(["jq"]);
    expect(r.stats).toMatchObject({ layersFetched: 2, bytesFetched: a.blob.length + b.blob.length });
    expect(requests.map((q) => [q.path, q.auth])).toEqual(expect.arrayContaining([["/blob/a", "Basic dTpw"], ["/blob/b", "Basic dTpw"]]));
    expect(manifest.layers.map((l) => l.size)).toEqual([a.blob.length, b.blob.length]);
    // A second manifest with one of these layers fetches nothing of it.
    requests.length = 0;
    const again = fetcher.open({ hash: digestOf(Buffer.from("m2")), layers: [{ hash: a.digest, uri: `${base}/blob/a`, headers: auth }] });
    expect((await ix.index(again.manifest, again.source)).stats).toMatchObject({ layersFetched: 0, layersReused: 1 });
    expect(requests).toEqual([]);
    await fetcher.close();
  });

  it("names the layer when the URI serves something else, and stores nothing of it", async () => {
    const real = await layer("real", "x 1\n");
    const lie = digestOf(Buffer.from("what the caller claims"));
    const fetcher = new UriLayerFetcher({ allowPrivateHosts: true });
    const ix = new Indexer({ store, scanners: [lines] });
    const { manifest, source } = fetcher.open({ hash: digestOf(Buffer.from("m-lie")), layers: [{ hash: lie, uri: `${base}/blob/real`, headers: auth }] });
    const r = await ix.index(manifest, source);
    expect(r.report.state).toBe("IndexError");
    expect(r.error).toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(r.report.err).toContain(`layer ${lie}: content has digest ${real.digest}`);
    expect((await store.scannedLayers([lie], [lines])).size).toBe(0);
    await fetcher.close();
  });

  it("says what the server answered, without retrying a 4xx; retries a 5xx", async () => {
    const l = await layer("c", "c 1\n");
    const fetcher = new UriLayerFetcher({ allowPrivateHosts: true, registry: { backoffBaseMs: 1 } });
    const ix = new Indexer({ store, scanners: [lines] });
    const denied = fetcher.open({ hash: digestOf(Buffer.from("m-401")), layers: [{ hash: l.digest, uri: `${base}/blob/c?X-Amz-Signature=secret` }] });
    const r = await ix.index(denied.manifest, denied.source);
    expect(r.error).toMatchObject({ code: "FETCH_FAILED", callerFault: true, upstreamStatus: 401 });
    expect(r.report.err).toBe(`layer ${l.digest}: GET ${base}/blob/c: HTTP 401, not authorized: check the layer's headers (UNAUTHORIZED: authentication required)`);
    expect(r.report.err).not.toContain("secret");
    expect(requests).toHaveLength(1);
    let failures = 2;
    handler = (_req, res) => (failures-- > 0 ? (res.writeHead(503).end(), true) : false);
    requests.length = 0;
    const flaky = fetcher.open({ hash: digestOf(Buffer.from("m-503")), layers: [{ hash: l.digest, uri: `${base}/blob/c`, headers: auth }] });
    expect((await ix.index(flaky.manifest, flaky.source)).report.state).toBe("IndexFinished");
    expect(requests).toHaveLength(3);
    await fetcher.close();
  });

  it("resumes a dropped body with Range, and takes a body without Content-Length", async () => {
    const l = await layer("d", "d 1\n".repeat(2000));
    let dropped = false;
    handler = (req, res) => {
      if (req.url === "/drop") {
        if (!req.headers.range && !dropped) {
          dropped = true;
          res.writeHead(200, { "content-length": l.blob.length });
          res.write(l.blob.subarray(0, 100), () => res.destroy());
          return true;
        }
        const from = Number(/bytes=(\d+)-/.exec(req.headers.range ?? "")?.[1] ?? 0);
        res.writeHead(206, { "content-range": `bytes ${from}-${l.blob.length - 1}/${l.blob.length}`, "content-length": l.blob.length - from }).end(l.blob.subarray(from));
        return true;
      }
      if (req.url === "/chunked") {
        res.writeHead(200);
        res.write(l.blob.subarray(0, 10));
        res.end(l.blob.subarray(10));
        return true;
      }
      return false;
    };
    const fetcher = new UriLayerFetcher({ allowPrivateHosts: true });
    for (const path of ["/drop", "/chunked"]) {
      const s = await openStore("memory:");
      const { manifest, source } = fetcher.open({ hash: digestOf(Buffer.from(path)), layers: [{ hash: l.digest, uri: `${base}${path}` }] });
      const r = await new Indexer({ store: s, scanners: [lines] }).index(manifest, source);
      expect(r.report.state, `${path}: ${r.report.err}`).toBe("IndexFinished");
      await s.close();
    }
    expect(requests.filter((q) => q.path === "/drop").map((q) => q.range ?? "")).toEqual(["", "bytes=100-"]);
    await fetcher.close();
  });

  it("follows redirects, without the caller's credentials to another host", async () => {
    const l = await layer("e", "e 1\n");
    const port = (server.address() as AddressInfo).port;
    handler = (req, res) => {
      if (req.url === "/moved") return res.writeHead(307, { location: `http://localhost:${port}/open` }).end(), true;
      if (req.url === "/open") return res.writeHead(200).end(l.blob), true;
      return false;
    };
    const fetcher = new UriLayerFetcher({ allowPrivateHosts: true });
    const { manifest, source } = fetcher.open({ hash: digestOf(Buffer.from("m-redirect")), layers: [{ hash: l.digest, uri: `${base}/moved`, headers: { ...auth, Accept: ["application/gzip"] } }] });
    expect((await new Indexer({ store, scanners: [lines] }).index(manifest, source)).report.state).toBe("IndexFinished");
    expect(requests.map((q) => [q.path, q.auth])).toEqual([["/moved", "Basic dTpw"], ["/open", undefined]]);
    await fetcher.close();
  });

  it("refuses a name that resolves to a loopback address when private hosts are not allowed", async () => {
    // The name resolves as a hosts file would say (src/net/egress.test.ts has every other address form).
    const name = "layers.example";
    expect(blockedHost(name)).toBeUndefined();
    const l = await layer("f", "f 1\n");
    const fetcher = new UriLayerFetcher({ registry: { maxAttempts: 1 }, egress: new EgressGuard(async () => [{ address: "127.0.0.1", family: 4 }]) });
    const { manifest, source } = fetcher.open({ hash: digestOf(Buffer.from("m-dns")), layers: [{ hash: l.digest, uri: `http://${name}:${(server.address() as AddressInfo).port}/blob/f`, headers: auth }] });
    const r = await new Indexer({ store, scanners: [lines] }).index(manifest, source);
    expect(r.error).toMatchObject({ code: "FETCH_FAILED", callerFault: true });
    expect(r.report.err).toMatch(new RegExp(`${name} resolves to 127\\.[0-9.]+: refused`));
    expect(requests).toEqual([]);
    await fetcher.close();
  });
});
