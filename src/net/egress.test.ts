// The egress guard's table: every spelling of an address class, judged by the classifier and then through
// both HTTP stacks that use the guard: the registry client (token realm, redirect, the registry host
// itself) and the layer-URI fetcher of the report API (the URI, a redirect). Names resolve through a table
// resolver (what /etc/hosts would say), so "a name resolving to X" is tested for every X without DNS.
// Expected classes are the ranges of RFC 6890 (special-purpose registries), RFC 4291 (mapped and
// compatible IPv6), RFC 6052 / 8215 (NAT64), RFC 6145 (SIIT), RFC 3056 (6to4), and the providers' documented
// metadata endpoints; IPv4 spellings are what inet_aton and the WHATWG URL parser accept.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { LookupAddress } from "node:dns";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Indexer } from "../indexer/indexer.js";
import { UriLayerFetcher } from "../indexer/sources/uri.js";
import { parseReference } from "../image/reference.js";
import { digestOf, gzip, makeTar } from "../layers/testing.js";
import { RegistryClient } from "../registry/client.js";
import type { Scanner } from "../model/scanner.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/types.js";
import { classifyAddress, classifyHost, EgressGuard, parseIpv4, type AddressClass } from "./egress.js";

/** How each host spelling must be classified (the host as it may appear in a URL). */
const LITERALS: Array<[string, AddressClass]> = [
  ["169.254.169.254", "metadata"],
  ["2852039166", "metadata"], // decimal
  ["0251.0376.0251.0376", "metadata"], // octal
  ["0xa9fea9fe", "metadata"], // hex
  ["0xa9.0xfe.0xa9.0xfe", "metadata"],
  ["169.254.43518", "metadata"], // a.b.c16
  ["[::ffff:169.254.169.254]", "metadata"], // mapped, dotted
  ["[::ffff:a9fe:a9fe]", "metadata"], // mapped, as the URL parser writes it
  ["[64:ff9b::169.254.169.254]", "metadata"], // NAT64
  ["[64:ff9b::a9fe:a9fe]", "metadata"],
  ["[::169.254.169.254]", "metadata"], // IPv4-compatible
  ["[::a9fe:a9fe]", "metadata"],
  ["[::ffff:0:a9fe:a9fe]", "metadata"], // SIIT
  ["[2002:a9fe:a9fe::1]", "metadata"], // 6to4
  ["[fd00:ec2::254]", "metadata"], // AWS IMDS over IPv6
  ["100.100.100.200", "metadata"], // Alibaba
  ["169.254.170.2", "metadata"], // ECS task credentials
  ["169.254.1.1", "link-local"],
  ["[fe80::1]", "link-local"],
  ["[::ffff:169.254.1.1]", "link-local"],
  ["127.0.0.1", "loopback"],
  ["127.1", "loopback"],
  ["2130706433", "loopback"],
  ["0x7f000001", "loopback"],
  ["017700000001", "loopback"],
  ["0.0.0.0", "loopback"],
  ["0", "loopback"],
  ["[::1]", "loopback"],
  ["[::]", "loopback"],
  ["[::ffff:127.0.0.1]", "loopback"],
  ["[::ffff:7f00:1]", "loopback"],
  ["[64:ff9b::7f00:1]", "loopback"],
  ["[::127.0.0.1]", "loopback"],
  ["localhost", "loopback"],
  ["registry.localhost", "loopback"],
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.168.1.1", "private"],
  ["100.64.0.1", "private"],
  ["[fd12::1]", "private"],
  ["[fc00::1]", "private"],
  ["[::ffff:10.0.0.1]", "private"],
  ["[64:ff9b::a00:1]", "private"],
  ["[64:ff9b:1::808:808]", "private"], // local-use NAT64
  ["224.0.0.1", "reserved"],
  ["255.255.255.255", "reserved"],
  ["[ff02::1]", "reserved"],
  ["8.8.8.8", "public"],
  ["172.32.0.1", "public"],
  ["100.128.0.1", "public"],
  ["[2606:4700::1111]", "public"],
  ["[::ffff:8.8.8.8]", "public"],
  ["[64:ff9b::808:808]", "public"],
  ["[2002:808:808::1]", "public"],
  ["metadata.google.internal", "metadata"],
];

describe("address classes", () => {
  it.each(LITERALS)("%s is %s", (host, cls) => {
    expect(classifyHost(host)).toBe(cls);
    // As a URL's host, after the WHATWG parser rewrote it (decimal, octal, hex, mapped forms).
    const parsed = new URL(`http://${host}/`).hostname;
    expect(classifyHost(parsed), `${host} parsed as ${parsed}`).toBe(cls);
  });

  it("is undefined for names other than the well-known internal ones, and for malformed literals", () => {
    for (const n of ["registry.example.com", "1.2.3.4.example", "0x.example", "256.1.1.1.1", "1.2.3.256", "127.0.0.1.nip.io"]) expect(classifyHost(n), n).toBeUndefined();
    expect(parseIpv4("1.2.3.256")).toBeUndefined();
    expect(parseIpv4("1.16777216")).toBeUndefined();
    expect(parseIpv4("1.16777215")).toBe(0x01ffffff);
    expect(classifyAddress("::ffff:1.2.3.4")).toBe("public");
    expect(classifyAddress("fe80::1%eth0")).toBe("link-local");
  });
});

// ---------------------------------------------------------------------------------------------- HTTP

/** Names and what they resolve to: each hostile address, and a mix where only one address is bad. */
const NAMES: Record<string, string[]> = {
  "meta.test": ["169.254.169.254"],
  "mapped.test": ["::ffff:169.254.169.254"],
  "nat64.test": ["64:ff9b::a9fe:a9fe"],
  "compat.test": ["::a9fe:a9fe"],
  "aws6.test": ["fd00:ec2::254"],
  "ll.test": ["169.254.7.7"],
  "ll6.test": ["fe80::1"],
  "private.test": ["10.0.0.1"],
  "mixed.test": ["127.0.0.1", "169.254.169.254"],
  "multicast.test": ["224.0.0.1"],
  "lo.test": ["127.0.0.1"],
  "lo6.test": ["::1"],
  "mappedlo.test": ["::ffff:127.0.0.1"],
};
const NAME_CLASS: Record<string, AddressClass> = {
  "meta.test": "metadata", "mapped.test": "metadata", "nat64.test": "metadata", "compat.test": "metadata", "aws6.test": "metadata",
  "ll.test": "link-local", "ll6.test": "link-local", "private.test": "private", "mixed.test": "metadata", "multicast.test": "reserved",
  "lo.test": "loopback", "lo6.test": "loopback", "mappedlo.test": "loopback",
};

const resolved: string[] = [];
const guard = new EgressGuard(async (name): Promise<LookupAddress[]> => {
  resolved.push(name);
  const a = NAMES[name];
  if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
  return a.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
});

interface Row {
  /** The host as written in the URL the peer hands us. */
  host: string;
  cls: AddressClass;
}
const ROWS: Row[] = [
  ...LITERALS.filter(([h]) => h !== "registry.localhost").map(([host, cls]) => ({ host, cls })),
  ...Object.keys(NAMES).map((host) => ({ host, cls: NAME_CLASS[host]! })),
];
// What a token realm or redirect of a loopback registry may reach (the registry under test is on 127.0.0.1):
// public addresses and its own class. A layer URI may reach public and private addresses.
const REGISTRY_FOLLOW: ReadonlySet<AddressClass> = new Set(["public", "loopback"]);
const LAYER_URI: ReadonlySet<AddressClass> = new Set(["public", "private"]);
/** Rows that would really connect: loopback spellings that reach the IPv4 test servers on 127.0.0.1. */
const REACHES_TEST_SERVER = (r: Row) => r.cls === "loopback" && !/[[\]]/.test(r.host) && !["lo6.test", "localhost"].includes(r.host);

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];
async function serve(h: Handler, address = "127.0.0.1"): Promise<{ port: number; requests: string[] }> {
  const requests: string[] = [];
  const s = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    h(req, res);
  });
  await new Promise<void>((r) => s.listen(0, address, r));
  servers.push(s);
  return { port: (s.address() as AddressInfo).port, requests };
}
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("the registry client: token realms, redirects and registries at every address form", () => {
  let tokenServer: { port: number; requests: string[] };
  let blobServer: { port: number; requests: string[] };
  const blob = Buffer.from("layer bytes");
  const blobDigest = digestOf(blob);
  const client = new RegistryClient({ options: { backoffBaseMs: 1, maxAttempts: 1 }, egress: guard });
  afterAll(() => client.close());

  beforeAll(async () => {
    tokenServer = await serve((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"token":"t-123","expires_in":300}'));
    blobServer = await serve((_req, res) => res.writeHead(200, { "content-length": String(blob.length) }).end(blob));
  });

  it.each(ROWS)("a token realm at $host ($cls)", async ({ host, cls }) => {
    const realm = `http://${host}${REACHES_TEST_SERVER({ host, cls }) ? `:${tokenServer.port}` : ""}/token`;
    const reg = await serve((req, res) => {
      if (req.headers.authorization !== "Bearer t-123") return void res.writeHead(401, { "www-authenticate": `Bearer realm="${realm}",service="reg"` }).end();
      res.writeHead(200, { "docker-content-digest": DIGEST, "content-type": "application/vnd.oci.image.manifest.v1+json" }).end();
    });
    const before = tokenServer.requests.length;
    const c = new RegistryClient({ options: { backoffBaseMs: 1, maxAttempts: 1 }, egress: guard });
    const got = await c.resolveDigest(parseReference(`127.0.0.1:${reg.port}/app:1`)).catch((e: unknown) => e);
    await c.close();
    if (!REGISTRY_FOLLOW.has(cls)) {
      expect(got, realm).toMatchObject({ code: "BLOCKED_URL" });
      expect((got as Error).message).toMatch(/may not reach|is not allowed|refused/);
      expect(tokenServer.requests.length).toBe(before);
    } else if (REACHES_TEST_SERVER({ host, cls })) {
      expect(got).toBe(DIGEST);
      expect(tokenServer.requests.length).toBe(before + 1);
    } else {
      // Allowed, but nothing listens there for this test: a network error, not a refusal.
      expect((got as { code?: string }).code, String(got)).not.toBe("BLOCKED_URL");
    }
  });

  it.each(ROWS)("a blob redirect to $host ($cls)", async ({ host, cls }) => {
    const target = `http://${host}${REACHES_TEST_SERVER({ host, cls }) ? `:${blobServer.port}` : ""}/blob`;
    const reg = await serve((_req, res) => res.writeHead(307, { location: target }).end());
    const before = blobServer.requests.length;
    const got = await readAll(client.getBlob(parseReference(`127.0.0.1:${reg.port}/app:1`), { digest: blobDigest, size: blob.length })).catch((e: unknown) => e);
    if (!REGISTRY_FOLLOW.has(cls)) {
      expect(got, target).toMatchObject({ code: "BLOCKED_URL" });
      expect(blobServer.requests.length).toBe(before);
    } else if (REACHES_TEST_SERVER({ host, cls })) {
      expect(Buffer.isBuffer(got) && got.equals(blob), String(got)).toBe(true);
    } else {
      expect((got as { code?: string }).code, String(got)).not.toBe("BLOCKED_URL");
    }
  });

  it.each(ROWS.filter((r) => r.cls === "metadata" && !r.host.includes("[")))("a registry at $host itself ($cls)", async ({ host }) => {
    const got = await client.resolveDigest(parseReference(`${host}:5000/app:1`)).catch((e: unknown) => e);
    expect(got).toMatchObject({ code: "BLOCKED_URL" });
    expect((got as Error).message).toMatch(/cloud metadata service/);
  });

  it("resolves each name when it connects (not once, ahead of time): a realm's name is looked up by the guard", async () => {
    resolved.length = 0;
    const reg = await serve((req, res) => {
      if (req.headers.authorization !== "Bearer t-123") return void res.writeHead(401, { "www-authenticate": `Bearer realm="http://lo.test:${tokenServer.port}/token",service="reg"` }).end();
      res.writeHead(200, { "docker-content-digest": DIGEST }).end();
    });
    const c = new RegistryClient({ options: { backoffBaseMs: 1, maxAttempts: 1 }, egress: guard });
    expect(await c.resolveDigest(parseReference(`127.0.0.1:${reg.port}/app:1`))).toBe(DIGEST);
    await c.close();
    expect(resolved).toEqual(["lo.test"]);
  });
});

describe("the layer-URI fetcher: layer URIs and their redirects at every address form", () => {
  let store: Store;
  const lines: Scanner = {
    name: "lines", version: "1", kind: "package",
    wants: (e) => e.path === "pkgs/db",
    scan: async (files) => ({ packages: (files.get("pkgs/db")?.toString() ?? "").split("\n").filter(Boolean).map((l) => ({ name: l, version: "1", package_db: "pkgs/db" })) }),
  };
  let blob: Buffer;
  let layerServer: { port: number; requests: string[] };
  const fetcher = new UriLayerFetcher({ registry: { maxAttempts: 1, connectTimeoutMs: 2000 }, egress: guard });
  beforeAll(async () => {
    store = await openStore("memory:");
    blob = gzip(await makeTar([{ name: "pkgs/db", content: "libc\n" }]));
    layerServer = await serve((_req, res) => res.writeHead(200, { "content-length": String(blob.length) }).end(blob));
  });
  afterAll(async () => {
    await fetcher.close();
    await store.close();
  });

  async function index(uri: string, n: string) {
    const { manifest, source } = fetcher.open({ hash: digestOf(Buffer.from(n)), layers: [{ hash: digestOf(blob), uri }] });
    return new Indexer({ store, scanners: [lines] }).index(manifest, source);
  }

  // Only refused rows are fetched: an allowed private or public address would wait for a connect timeout.
  it.each(ROWS.filter((r) => !LAYER_URI.has(r.cls)))("a layer URI at $host ($cls) is refused", async ({ host }) => {
    const before = layerServer.requests.length;
    const r = await index(`http://${host}:${layerServer.port}/blob`, `uri ${host}`);
    expect(r.error, host).toMatchObject({ code: "FETCH_FAILED", callerFault: true });
    expect(r.report.err).toMatch(/refused/);
    expect(layerServer.requests.length).toBe(before);
  });

  it.each(ROWS.filter((r) => !LAYER_URI.has(r.cls)))("a redirect to $host ($cls) is refused", async ({ host }) => {
    const before = layerServer.requests.length;
    // The first hop must be allowed: a server on this machine's own (non-loopback) address, by a name.
    const own = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === "IPv4")?.address;
    expect(own, "a non-loopback IPv4 interface").toBeDefined();
    const hop = await serve((_req, res) => res.writeHead(302, { location: `http://${host}:${layerServer.port}/blob` }).end(), own);
    const open = new UriLayerFetcher({ registry: { maxAttempts: 1 }, egress: new EgressGuard(async (name) => (name === "cdn.example" ? [{ address: own!, family: 4 }] : guardLookup(name))) });
    const { manifest, source } = open.open({ hash: digestOf(Buffer.from(`redirect ${host}`)), layers: [{ hash: digestOf(blob), uri: `http://cdn.example:${hop.port}/x` }] });
    const r = await new Indexer({ store, scanners: [lines] }).index(manifest, source);
    await open.close();
    expect(hop.requests).toEqual(["GET /x"]);
    expect(r.error).toMatchObject({ code: "FETCH_FAILED", callerFault: true });
    expect(r.report.err).toMatch(/redirected to a URL that is refused|refused: /);
    expect(layerServer.requests.length).toBe(before);
  });

  it("fetches through a name when the policy allows its address (the guard's own lookup connects)", async () => {
    const open = new UriLayerFetcher({ allowPrivateHosts: true, egress: guard });
    resolved.length = 0;
    const { manifest, source } = open.open({ hash: digestOf(Buffer.from("allowed name")), layers: [{ hash: digestOf(blob), uri: `http://lo.test:${layerServer.port}/blob` }] });
    const r = await new Indexer({ store: await openStore("memory:"), scanners: [lines] }).index(manifest, source);
    await open.close();
    expect(r.report.state, r.report.err).toBe("IndexFinished");
    expect(resolved).toEqual(["lo.test"]);
  });
});

async function guardLookup(name: string): Promise<LookupAddress[]> {
  const a = NAMES[name];
  if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
  return a.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
