// The registry client against a fake registry, only for what a real registry cannot be made to do: lie
// about a digest, redirect to another host, drop a connection mid-blob, rate limit, compress blobs in
// transit, send hostile sizes. Everything else is tested against the real registries in test/registry/.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isTransient } from "../errors.js";
import { parseReference } from "../image/reference.js";
import { RegistryClient } from "./client.js";
import { RegistryError } from "./errors.js";

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ server: Server; host: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const layer = Buffer.from("x".repeat(300_000));
const layerDigest = sha(layer);
const config = Buffer.from(JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [layerDigest] } }));
const manifest = JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
  layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layer.length }],
});
const manifestDigest = sha(manifest);

const servers: Server[] = [];
const clients: RegistryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function client(options = {}): RegistryClient {
  const c = new RegistryClient({ options: { backoffBaseMs: 1, ...options } });
  clients.push(c);
  return c;
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("registry client against a fake registry", () => {
  it("refuses a manifest whose bytes do not hash to the digest it was asked for", async () => {
    const { server, host } = await serve((req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": manifestDigest });
      res.end(req.method === "HEAD" ? undefined : manifest.replace("amd64", "arm64").replace('"schemaVersion":2', '"schemaVersion": 2'));
    });
    servers.push(server);
    const err = await client().resolve(parseReference(`${host}/app:1`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({ code: "DIGEST_MISMATCH" });
    expect((err as Error).message).toContain(manifestDigest.slice(0, 20));
  });

  it("follows a cross-host blob redirect without the Authorization header", async () => {
    const cdn = await serve((req, res) => {
      res.writeHead(200, { "content-length": String(layer.length) });
      res.end(layer);
    });
    servers.push(cdn.server);
    const reg = await serve((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="r"' }).end();
        return;
      }
      // localhost vs 127.0.0.1: another host as far as credentials go.
      res.writeHead(307, { location: `http://localhost:${cdn.host.split(":")[1]}/blob?sig=1` }).end();
    });
    servers.push(reg.server);
    const c = new RegistryClient({ options: { backoffBaseMs: 1 }, keyring: { lookup: async () => [{ username: "u", password: "p", source: "test" }] } });
    clients.push(c);
    const body = await readAll(c.getBlob(parseReference(`${reg.host}/app:1`), { digest: layerDigest, size: layer.length }));
    expect(body.equals(layer)).toBe(true);
    expect(reg.requests.some((r) => r.headers.authorization?.startsWith("Basic "))).toBe(true);
    expect(cdn.requests).toHaveLength(1);
    expect(cdn.requests[0]!.headers.authorization).toBeUndefined();
  });

  it("refuses a redirect to a link-local (metadata) address", async () => {
    const reg = await serve((_req, res) => res.writeHead(307, { location: "http://169.254.169.254/latest/meta-data/" }).end());
    servers.push(reg.server);
    const err = await readAll(client().getBlob(parseReference(`${reg.host}/app:1`), { digest: layerDigest })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "BLOCKED_URL" });
  });

  it("resumes a blob with Range after the connection drops, and the digest still checks", async () => {
    let calls = 0;
    const reg = await serve((req, res) => {
      calls++;
      const range = /bytes=(\d+)-/.exec(req.headers.range ?? "");
      if (!range) {
        // Send half, then cut the connection.
        res.writeHead(200, { "content-length": String(layer.length) });
        res.write(layer.subarray(0, 100_000), () => setTimeout(() => req.socket.destroy(), 20));
        return;
      }
      const start = Number(range[1]);
      res.writeHead(206, { "content-range": `bytes ${start}-${layer.length - 1}/${layer.length}`, "content-length": String(layer.length - start) });
      res.end(layer.subarray(start));
    });
    servers.push(reg.server);
    const body = await readAll(client().getBlob(parseReference(`${reg.host}/app:1`), { digest: layerDigest, size: layer.length }));
    expect(body.equals(layer)).toBe(true);
    expect(calls).toBe(2);
    expect(reg.requests[1]!.headers.range).toMatch(/^bytes=\d+-$/);
  });

  it("after a restart that skipped what it had, a later resume with Range skips nothing", async () => {
    let calls = 0;
    const reg = await serve((req, res) => {
      calls++;
      const range = /bytes=(\d+)-/.exec(req.headers.range ?? "");
      if (calls === 3 && range) {
        const start = Number(range[1]);
        res.writeHead(206, { "content-range": `bytes ${start}-${layer.length - 1}/${layer.length}`, "content-length": String(layer.length - start) });
        res.end(layer.subarray(start));
        return;
      }
      // The first answer and the second (Range ignored) are cut: after 50,000 bytes, then after 150,000.
      res.writeHead(200, { "content-length": String(layer.length) });
      res.write(layer.subarray(0, calls === 1 ? 50_000 : 150_000), () => setTimeout(() => req.socket.destroy(), 20));
    });
    servers.push(reg.server);
    const body = await readAll(client().getBlob(parseReference(`${reg.host}/app:1`), { digest: layerDigest, size: layer.length }));
    expect(calls).toBe(3);
    expect(body.equals(layer)).toBe(true);
  });

  it("restarts from zero, skipping what it has, when the registry ignores Range", async () => {
    let calls = 0;
    const reg = await serve((req, res) => {
      calls++;
      res.writeHead(200, { "content-length": String(layer.length) });
      if (calls === 1) res.write(layer.subarray(0, 50_000), () => setTimeout(() => req.socket.destroy(), 20));
      else res.end(layer);
    });
    servers.push(reg.server);
    const body = await readAll(client().getBlob(parseReference(`${reg.host}/app:1`), { digest: layerDigest, size: layer.length }));
    expect(body.equals(layer)).toBe(true);
  });

  it("errors the stream when a blob's bytes are not what its digest says", async () => {
    const reg = await serve((_req, res) => res.writeHead(200).end(Buffer.from("y".repeat(300_000))));
    servers.push(reg.server);
    await expect(readAll(client().getBlob(parseReference(`${reg.host}/app:1`), { digest: layerDigest, size: layer.length }))).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
  });

  it("stops reading a blob longer than its descriptor", async () => {
    const reg = await serve((_req, res) => res.writeHead(200).end(Buffer.concat([layer, layer])));
    servers.push(reg.server);
    await expect(readAll(client().getBlob(parseReference(`${reg.host}/app:1`), { digest: layerDigest, size: layer.length }))).rejects.toMatchObject({ code: "SIZE_MISMATCH" });
  });

  it("keeps raw bytes when a server gzips a blob in transit (Content-Encoding is not decoded)", async () => {
    const reg = await serve((req, res) => {
      expect(req.headers["accept-encoding"]).toBe("identity");
      res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync(layer));
    });
    servers.push(reg.server);
    // The raw (gzipped) bytes do not hash to the layer's digest: refused, never silently decoded.
    await expect(readAll(client().getBlob(parseReference(`${reg.host}/app:1`), { digest: layerDigest }))).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
  });

  it("waits as Retry-After says on 429, then succeeds", async () => {
    let calls = 0;
    const reg = await serve((req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(429, { "retry-after": "1" }).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": manifestDigest }).end(req.method === "HEAD" ? undefined : manifest);
    });
    servers.push(reg.server);
    const t0 = Date.now();
    const digest = await client().resolveDigest(parseReference(`${reg.host}/app:1`));
    expect(digest).toBe(manifestDigest);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });

  it("gives up with RATE_LIMITED when Retry-After is longer than it may wait", async () => {
    const reg = await serve((_req, res) => res.writeHead(429, { "retry-after": "3600" }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}'));
    servers.push(reg.server);
    const err = await client().resolveDigest(parseReference(`${reg.host}/app:1`)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "RATE_LIMITED", qualifiedCode: "registry/RATE_LIMITED" });
    expect(isTransient(err)).toBe(true);
    expect((err as RegistryError).details.retryAfterMs).toBe(3_600_000);
  });

  it("retries 5xx with backoff and reports SERVER_ERROR when it persists", async () => {
    const reg = await serve((_req, res) => res.writeHead(503).end());
    servers.push(reg.server);
    const err = await client({ maxAttempts: 3 }).resolveDigest(parseReference(`${reg.host}/app:1`)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SERVER_ERROR" });
    expect(reg.requests.filter((r) => r.url?.includes("/manifests/"))).toHaveLength(3);
  });

  it("refuses a manifest over the size cap without reading it all", async () => {
    const reg = await serve((req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "content-length": String(20 * 1024 * 1024) });
      if (req.method === "HEAD") res.end();
      else res.end(Buffer.alloc(20 * 1024 * 1024, 0x20));
    });
    servers.push(reg.server);
    await expect(client().getManifest(parseReference(`${reg.host}/app:1`), "1")).rejects.toMatchObject({ code: "TOO_LARGE" });
  });

  it("refuses a token realm on a private address of another host", async () => {
    const reg = await serve((_req, res) => res.writeHead(401, { "www-authenticate": 'Bearer realm="http://10.0.0.1/token",service="x"' }).end());
    servers.push(reg.server);
    await expect(client().resolveDigest(parseReference(`${reg.host}/app:1`))).rejects.toMatchObject({ code: "BLOCKED_URL" });
  });
});

describe("registry client options", () => {
  let c: RegistryClient;
  beforeAll(() => {
    c = new RegistryClient({ options: { insecureRegistries: ["*.internal:5000"] } });
  });
  afterAll(() => c.close());
  it("matches insecure registries by per-label glob", () => {
    expect(c.transport.isInsecure("reg.internal:5000")).toBe(true);
    expect(c.transport.isInsecure("reg.internal")).toBe(false);
    expect(c.transport.isInsecure("a.b.internal:5000")).toBe(false);
  });
  it("rejects unknown options", () => {
    expect(() => new RegistryClient({ options: { insecureRegistry: [] } as never })).toThrow(/insecureRegistry/);
  });
});

describe("registry client auth details", () => {
  it("exchanges an identity token (OAuth2 refresh token) by POST and sends a registry token as is", async () => {
    const tokenReqs: Array<{ method?: string; body: string }> = [];
    const tokenSrv = await serve((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        tokenReqs.push({ method: req.method, body });
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: "from-refresh", expires_in: 300 }));
      });
    });
    servers.push(tokenSrv.server);
    const reg = await serve((req, res) => {
      const auth = req.headers.authorization;
      if (auth !== "Bearer from-refresh" && auth !== "Bearer static-registry-token") {
        res.writeHead(401, { "www-authenticate": `Bearer realm="http://${tokenSrv.host}/token",service="reg",scope="repository:app:pull"` }).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": manifestDigest }).end(req.method === "HEAD" ? undefined : manifest);
    });
    servers.push(reg.server);
    const viaIdentity = new RegistryClient({ keyring: { lookup: async () => [{ username: "<token>", identityToken: "refresh-123", source: "docker config" }] } });
    clients.push(viaIdentity);
    expect(await viaIdentity.resolveDigest(parseReference(`${reg.host}/app:1`))).toBe(manifestDigest);
    expect(tokenReqs[0]!.method).toBe("POST");
    const form = new URLSearchParams(tokenReqs[0]!.body);
    expect(Object.fromEntries(form)).toMatchObject({ grant_type: "refresh_token", refresh_token: "refresh-123", service: "reg", scope: "repository:app:pull" });
    const viaRegistryToken = new RegistryClient({ keyring: { lookup: async () => [{ registryToken: "static-registry-token", source: "docker config" }] } });
    clients.push(viaRegistryToken);
    expect(await viaRegistryToken.resolveDigest(parseReference(`${reg.host}/app:1`))).toBe(manifestDigest);
    expect(tokenReqs).toHaveLength(1);
  });

  it("keeps at most maxConcurrentPerRegistry requests in flight to one registry", async () => {
    let inFlight = 0;
    let peak = 0;
    const reg = await serve((req, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": manifestDigest }).end(req.method === "HEAD" ? undefined : manifest);
      }, 20);
    });
    servers.push(reg.server);
    const c = client({ maxConcurrentPerRegistry: 2 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => c.resolveDigest(parseReference(`${reg.host}/app:${i}`))));
    expect(peak).toBe(2);
  });
});

describe("referrers API", () => {
  it("pages with Link and filters by artifactType when the registry did not", async () => {
    const d = (c: string) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${c.repeat(64)}`, size: 10 });
    const reg = await serve((req, res) => {
      const page2 = req.url!.includes("page=2");
      const body = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: page2 ? [{ ...d("b"), artifactType: "application/spdx+json" }] : [{ ...d("a"), artifactType: "application/vnd.dev.sigstore.bundle+json" }] });
      const headers: Record<string, string> = { "content-type": "application/vnd.oci.image.index.v1+json" };
      if (!page2) headers.link = `</v2/app/referrers/${manifestDigest}?page=2>; rel="next"`;
      res.writeHead(200, headers).end(body);
    });
    servers.push(reg.server);
    const c = client();
    const all = await c.listReferrers(parseReference(`${reg.host}/app:1`), manifestDigest);
    expect(all.map((x) => x.digest[7])).toEqual(["a", "b"]);
    const sboms = await c.listReferrers(parseReference(`${reg.host}/app:1`), manifestDigest, { artifactType: "application/spdx+json" });
    expect(sboms.map((x) => x.digest[7])).toEqual(["b"]);
  });
});

// A tag verdict must rest on the manifest's bytes: a Docker-Content-Digest header is the registry's word only.
describe("digests a tag resolves to", () => {
  const ct = { "content-type": "application/vnd.oci.image.manifest.v1+json" };
  const lying = (header: string) => serve((req, res) => res.writeHead(200, { ...ct, "docker-content-digest": header }).end(req.method === "HEAD" ? undefined : manifest));

  it("ignores a HEAD digest of the wrong length and hashes the manifest instead", async () => {
    for (const bad of [`sha256:${"a".repeat(63)}`, `sha256:${"a".repeat(65)}`, `sha512:${"a".repeat(64)}`, `sha256:${"A".repeat(64)}`, "sha256:", `md5:${"a".repeat(32)}`]) {
      const reg = await lying(bad);
      servers.push(reg.server);
      expect(await client().resolveDigest(parseReference(`${reg.host}/app:1`)), bad).toBe(manifestDigest);
      expect(reg.requests.map((r) => r.method), bad).toEqual(["HEAD", "GET"]);
    }
  });

  it("takes a well-formed HEAD digest for resolveDigest, but verifiedDigest hashes the bytes and refuses a registry that lies", async () => {
    const other = `sha256:${"b".repeat(64)}`;
    const reg = await lying(other);
    servers.push(reg.server);
    expect(await client().resolveDigest(parseReference(`${reg.host}/app:1`))).toBe(other);
    const err = await client().verifiedDigest(parseReference(`${reg.host}/app:1`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({ code: "DIGEST_MISMATCH" });
    expect((err as Error).message).toContain(manifestDigest);
    expect(reg.requests.at(-1)!.method).toBe("GET");
  });

  it("verifiedDigest: the hash of the bytes when the header is right, absent or malformed; sha512 when the registry states one", async () => {
    for (const header of [manifestDigest, undefined, "sha256:abc"]) {
      const reg = await serve((req, res) => res.writeHead(200, { ...ct, ...(header ? { "docker-content-digest": header } : {}) }).end(manifest));
      servers.push(reg.server);
      expect(await client().verifiedDigest(parseReference(`${reg.host}/app:1`)), String(header)).toBe(manifestDigest);
    }
    const s512 = `sha512:${createHash("sha512").update(manifest).digest("hex")}`;
    const reg = await lying(s512);
    servers.push(reg.server);
    expect(await client().verifiedDigest(parseReference(`${reg.host}/app:1`))).toBe(s512);
    const pinned = parseReference(`${reg.host}/app@${manifestDigest}`);
    expect(await client().verifiedDigest(pinned)).toBe(manifestDigest);
  });
});

describe("tag listing against a fake registry (hostile pages, rate limits)", () => {
  /** A registry of `all` tags that pages them as the distribution spec says (n, last, Link). */
  const pager = (all: string[], o: { link?: (next: string, host: string) => string; pageBytes?: (body: string) => string } = {}) => serve((req, res) => {
    const u = new URL(req.url!, "http://x");
    const n = Number(u.searchParams.get("n") ?? all.length);
    const last = u.searchParams.get("last");
    const from = last ? all.indexOf(last) + 1 : 0;
    const page = all.slice(from, from + n);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (from + n < all.length) {
      const next = `/v2/app/tags/list?n=${n}&last=${encodeURIComponent(page.at(-1)!)}`;
      headers.link = `<${o.link ? o.link(next, req.headers.host!) : next}>; rel="next"`;
    }
    const body = JSON.stringify({ name: "app", tags: page });
    res.writeHead(200, headers).end(o.pageBytes ? o.pageBytes(body) : body);
  });
  const tags = Array.from({ length: 25 }, (_, i) => `1.${i}.0`);

  it("follows Link pages (relative, or absolute on the same host) and asks for n per page", async () => {
    for (const link of [undefined, (next: string, host: string) => `http://${host}${next}`]) {
      const reg = await pager(tags, { link });
      servers.push(reg.server);
      const got = await client().listTags(parseReference(`${reg.host}/app`), { pageSize: 10 });
      expect(got).toEqual({ tags, requests: 3, truncated: false, invalid: 0 });
      expect(reg.requests.map((r) => r.url)).toEqual(["/v2/app/tags/list?n=10", "/v2/app/tags/list?n=10&last=1.9.0", "/v2/app/tags/list?n=10&last=1.19.0"]);
    }
  });

  it("refuses a next page on another host or another repository, and a page that repeats itself", async () => {
    const other = await pager(tags, { link: (next) => `http://169.254.169.254${next}` });
    const sideways = await pager(tags, { link: (next) => next.replace("/v2/app/", "/v2/other/") });
    const loop = await pager(tags, { link: () => "/v2/app/tags/list?n=10" });
    servers.push(other.server, sideways.server, loop.server);
    await expect(client().listTags(parseReference(`${other.host}/app`), { pageSize: 10 })).rejects.toMatchObject({ code: "BLOCKED_URL" });
    await expect(client().listTags(parseReference(`${sideways.host}/app`), { pageSize: 10 })).rejects.toMatchObject({ code: "BLOCKED_URL" });
    await expect(client().listTags(parseReference(`${loop.host}/app`), { pageSize: 10 })).rejects.toMatchObject({ code: "UNEXPECTED_STATUS", message: expect.stringMatching(/repeats an earlier page/) });
    expect(other.requests).toHaveLength(1);
  });

  it("bounds tags, pages and bytes, and skips names that are not tags", async () => {
    const reg = await pager([...tags, "-bad", "a/b", "x".repeat(200), "1.0.0"]);
    servers.push(reg.server);
    const all = await client().listTags(parseReference(`${reg.host}/app`));
    expect(all).toEqual({ tags, requests: 1, truncated: false, invalid: 3 });
    expect(await client().listTags(parseReference(`${reg.host}/app`), { maxTags: 7 })).toMatchObject({ tags: tags.slice(0, 7), truncated: true });
    expect(await client().listTags(parseReference(`${reg.host}/app`), { pageSize: 5, maxPages: 2 })).toMatchObject({ tags: tags.slice(0, 10), requests: 2, truncated: true });
    const big = await pager(tags, { pageBytes: (b) => b + " ".repeat(2048) });
    servers.push(big.server);
    await expect(client({ maxTagPageBytes: 1024 }).listTags(parseReference(`${big.host}/app`))).rejects.toMatchObject({ code: "TOO_LARGE" });
    const notJson = await serve((_req, res) => res.writeHead(200).end("<html>"));
    servers.push(notJson.server);
    await expect(client().listTags(parseReference(`${notJson.host}/app`))).rejects.toMatchObject({ code: "UNEXPECTED_STATUS" });
  });

  it("waits as Retry-After says when the listing is rate limited, and gives up with RATE_LIMITED past its limit", async () => {
    let calls = 0;
    const reg = await serve((_req, res) => {
      calls++;
      if (calls === 1) return void res.writeHead(429, { "retry-after": "1" }).end();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ name: "app", tags: ["1.0.0"] }));
    });
    const hard = await serve((_req, res) => res.writeHead(429, { "retry-after": "600" }).end());
    servers.push(reg.server, hard.server);
    const t0 = Date.now();
    expect((await client().listTags(parseReference(`${reg.host}/app`))).tags).toEqual(["1.0.0"]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const err = await client().listTags(parseReference(`${hard.host}/app`)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "RATE_LIMITED", details: { retryAfterMs: 600_000 } });
  });
});
