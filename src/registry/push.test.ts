// Pushing against a fake registry, only for what a real one cannot be made to do: name an upload URL on
// another host, refuse OCI 1.1 fields, fail a write with 5xx, lose the answer to a blob PUT it stored,
// redirect a write. Everything else is tested against the real registries in test/registry/push.test.ts.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { parseReference } from "../image/reference.js";
import { RegistryClient } from "./client.js";
import { artifactManifest, EMPTY_CONFIG, type ArtifactInput } from "./push.js";
import { withoutPush, withPush } from "./transport.js";

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

interface FakeOptions {
  /** The Location of a started upload, from its id and the server's own host. */
  location?: (id: string, host: string) => string;
  /** Drop the connection instead of answering a blob PUT the registry stored (once true). */
  dropStoredPutAnswer?: () => boolean;
  /** Answer instead of the registry (return true when handled). */
  intercept?: (req: IncomingMessage, res: ServerResponse, body: Buffer, host: string) => boolean;
}

interface Fake {
  server: Server;
  host: string;
  blobs: Map<string, Buffer>;
  manifests: Map<string, Buffer>;
  log: string[];
}

/** An in-memory registry speaking enough of the distribution API for pushes. */
async function fakeRegistry(o: FakeOptions = {}): Promise<Fake> {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, Buffer>();
  const uploads = new Set<string>();
  const log: string[] = [];
  let next = 0;
  let host = "";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const u = new URL(req.url ?? "/", `http://${host}`);
      log.push(`${req.method} ${u.pathname}`);
      if (o.intercept?.(req, res, body, host)) return;
      const err = (status: number, code: string) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] }));
      let m: RegExpExecArray | null;
      if ((m = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(u.pathname)) && req.method === "POST") {
        const id = `u${next++}`;
        uploads.add(id);
        res.writeHead(202, { location: o.location ? o.location(id, host) : `/v2/${m[1]}/blobs/uploads/${id}?_state=s` }).end();
      } else if ((m = /^\/v2\/.+\/blobs\/uploads\/([^/]+)$/.exec(u.pathname)) && req.method === "PUT") {
        if (!uploads.delete(m[1]!)) return err(404, "BLOB_UPLOAD_UNKNOWN");
        const digest = u.searchParams.get("digest") ?? "";
        if (sha(body) !== digest) return err(400, "DIGEST_INVALID");
        blobs.set(digest, body);
        if (o.dropStoredPutAnswer?.()) return void req.socket.destroy();
        res.writeHead(201, { "docker-content-digest": digest }).end();
      } else if ((m = /^\/v2\/.+\/blobs\/([^/]+)$/.exec(u.pathname)) && (req.method === "HEAD" || req.method === "GET")) {
        const b = blobs.get(m[1]!);
        if (!b) return err(404, "BLOB_UNKNOWN");
        res.writeHead(200, { "content-length": String(b.length) }).end(req.method === "HEAD" ? undefined : b);
      } else if ((m = /^\/v2\/.+\/manifests\/([^/]+)$/.exec(u.pathname)) && req.method === "PUT") {
        manifests.set(m[1]!, body);
        manifests.set(sha(body), body);
        res.writeHead(201, { "docker-content-digest": sha(body) }).end();
      } else if ((m = /^\/v2\/.+\/manifests\/([^/]+)$/.exec(u.pathname)) && (req.method === "HEAD" || req.method === "GET")) {
        const b = manifests.get(m[1]!);
        if (!b) return err(404, "MANIFEST_UNKNOWN");
        res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": sha(b), "content-length": String(b.length) }).end(req.method === "HEAD" ? undefined : b);
      } else {
        err(404, "NOT_FOUND");
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  servers.push(server);
  return { server, host, blobs, manifests, log };
}

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

const ARTIFACT: ArtifactInput = {
  artifactType: "application/vnd.portcullis.advisory-bundle.v1",
  layers: [{ mediaType: "application/vnd.portcullis.advisory-bundle.v1.tar+zstd", bytes: Buffer.from("bundle bytes") }],
};

describe("pushing artifacts to a fake registry", () => {
  it("follows a relative upload Location and an absolute one on the registry's own host", async () => {
    for (const location of [(id: string) => `/v2/db/blobs/uploads/${id}`, (id: string, host: string) => `http://${host}/v2/db/blobs/uploads/${id}?_state=x`]) {
      const reg = await fakeRegistry({ location });
      const pushed = await client().pushArtifact(parseReference(`${reg.host}/db:v1`), ARTIFACT);
      expect(pushed.uploadedBlobs).toBe(2);
      expect(reg.blobs.get(EMPTY_CONFIG.digest)?.toString()).toBe("{}");
      expect(reg.manifests.get("v1")?.equals(artifactManifest(ARTIFACT, "artifact").raw)).toBe(true);
    }
  });

  it("refuses an upload Location on another host (BLOCKED_URL) and sends it nothing", async () => {
    const other = await fakeRegistry();
    // localhost vs 127.0.0.1: another host as far as credentials and pushed content go.
    const reg = await fakeRegistry({ location: (id) => `http://localhost:${other.host.split(":")[1]}/v2/db/blobs/uploads/${id}` });
    const err = await client().pushArtifact(parseReference(`${reg.host}/db:v1`), ARTIFACT).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "BLOCKED_URL" });
    expect(other.log).toEqual([]);
    // The same host on another port is another host too.
    const reg2 = await fakeRegistry({ location: (id) => `http://127.0.0.1:${other.host.split(":")[1]}/v2/db/blobs/uploads/${id}` });
    await expect(client().pushArtifact(parseReference(`${reg2.host}/db:v1`), ARTIFACT)).rejects.toMatchObject({ code: "BLOCKED_URL" });
    expect(other.log).toEqual([]);
  });

  it("falls back to the config form when the registry refuses OCI 1.1 fields, and pulls it back", async () => {
    const reg = await fakeRegistry({
      intercept: (req, res, body) => {
        if (req.method !== "PUT" || !req.url?.includes("/manifests/") || !body.toString().includes('"artifactType"')) return false;
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "MANIFEST_INVALID", message: "manifest invalid" }] }));
        return true;
      },
    });
    const c = client();
    const ref = parseReference(`${reg.host}/db:v1`);
    const pushed = await c.pushArtifact(ref, { ...ARTIFACT, configMediaType: "application/vnd.portcullis.advisory-bundle.config.v1+json" });
    expect(pushed.form).toBe("config");
    const stored = JSON.parse(reg.manifests.get("v1")!.toString()) as { artifactType?: string; config: { mediaType: string } };
    expect(stored.artifactType).toBeUndefined();
    expect(stored.config.mediaType).toBe("application/vnd.portcullis.advisory-bundle.config.v1+json");
    // The layer was not uploaded twice: the fallback pushes only the new config blob.
    expect(reg.log.filter((l) => l.startsWith("POST"))).toHaveLength(3);
    const pulled = await c.pullArtifact(ref, { artifactType: ARTIFACT.artifactType, maxLayerBytes: 100 });
    expect(pulled.artifactType).toBe(ARTIFACT.artifactType);
    expect(pulled.layers[0]!.bytes.toString()).toBe("bundle bytes");
    // A push by digest cannot fall back (the digest would change): the refusal is the answer.
    const byDigest = parseReference(`${reg.host}/db@${sha(artifactManifest(ARTIFACT, "artifact").raw)}`);
    await expect(c.pushArtifact(byDigest, ARTIFACT)).rejects.toMatchObject({ code: "UNEXPECTED_STATUS", details: { status: 400, registryCode: "MANIFEST_INVALID" } });
  });

  it("does not fall back when the registry refuses for another reason (a missing blob)", async () => {
    const reg = await fakeRegistry({
      intercept: (req, res) => {
        if (req.method !== "PUT" || !req.url?.includes("/manifests/")) return false;
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "MANIFEST_BLOB_UNKNOWN", message: "blob unknown" }] }));
        return true;
      },
    });
    await expect(client().pushArtifact(parseReference(`${reg.host}/db:v1`), ARTIFACT)).rejects.toMatchObject({ details: { registryCode: "MANIFEST_BLOB_UNKNOWN" } });
    expect(reg.log.filter((l) => l.startsWith("PUT /v2/db/manifests/"))).toHaveLength(1);
  });

  it("asks the registry before uploading again when the answer to a stored blob PUT is lost", async () => {
    let cut = true;
    const reg = await fakeRegistry({
      dropStoredPutAnswer: () => {
        const drop = cut;
        cut = false;
        return drop;
      },
    });
    const pushed = await client().pushArtifact(parseReference(`${reg.host}/db:v1`), ARTIFACT);
    expect(pushed.form).toBe("artifact");
    // The PUT was retried (idempotent), found its session gone (404), and a HEAD found the blob: no second POST for it.
    const layerDigest = sha(ARTIFACT.layers[0]!.bytes);
    expect(reg.log.slice(0, 5)).toEqual([`HEAD /v2/db/blobs/${layerDigest}`, "POST /v2/db/blobs/uploads/", "PUT /v2/db/blobs/uploads/u0", "PUT /v2/db/blobs/uploads/u0", `HEAD /v2/db/blobs/${layerDigest}`]);
  });

  it("starts an upload over once when POST fails with 5xx (not retried blindly by the transport)", async () => {
    let fail = 1;
    const reg = await fakeRegistry({
      intercept: (req, res) => {
        if (req.method === "POST" && fail-- > 0) {
          res.writeHead(503).end();
          return true;
        }
        return false;
      },
    });
    await client().pushArtifact(parseReference(`${reg.host}/db:v1`), ARTIFACT);
    const layerDigest = sha(ARTIFACT.layers[0]!.bytes);
    expect(reg.log.slice(0, 4)).toEqual([`HEAD /v2/db/blobs/${layerDigest}`, "POST /v2/db/blobs/uploads/", `HEAD /v2/db/blobs/${layerDigest}`, "POST /v2/db/blobs/uploads/"]);
  });

  it("refuses an artifactType that is not a media type, before sending anything", async () => {
    await expect(client().pushArtifact(parseReference("127.0.0.1:1/db:v1"), { ...ARTIFACT, artifactType: "bundle" })).rejects.toMatchObject({ code: "UNSUPPORTED" });
  });
});

describe("the transport's writes", () => {
  it("retries a 5xx PUT (idempotent), never a 5xx POST or PATCH, and always a 429", async () => {
    let tooMany = true;
    const reg = await fakeRegistry({
      intercept: (req, res) => {
        if (req.url?.startsWith("/v2/db/x") && req.method === "POST" && tooMany) {
          tooMany = false;
          res.writeHead(429, { "retry-after": "0" }).end();
          return true;
        }
        if (!req.url?.startsWith("/v2/db/x")) return false;
        res.writeHead(503).end();
        return true;
      },
    });
    const t = client({ maxAttempts: 3 }).transport;
    const body = Buffer.from("b");
    for (const method of ["PUT", "POST", "PATCH"] as const) await expect(t.send(reg.host, "db", { method, path: "/v2/db/x", body })).rejects.toMatchObject({ code: "SERVER_ERROR" });
    expect(reg.log.filter((l) => l.endsWith("/v2/db/x"))).toEqual(["PUT /v2/db/x", "PUT /v2/db/x", "PUT /v2/db/x", "POST /v2/db/x", "POST /v2/db/x", "PATCH /v2/db/x"]);
  });

  it("follows a 307 of a write on the registry's host with the body, and refuses one to another host", async () => {
    const bodies: string[] = [];
    const other = await fakeRegistry({
      intercept: (_req, res) => {
        res.writeHead(201).end();
        return true;
      },
    });
    const reg = await fakeRegistry({
      intercept: (req, res, body, host) => {
        if (req.url === "/v2/db/here") {
          res.writeHead(307, { location: `http://${host}/v2/db/there` }).end();
        } else if (req.url === "/v2/db/there") {
          bodies.push(body.toString());
          res.writeHead(201).end();
        } else if (req.url === "/v2/db/away") {
          res.writeHead(307, { location: `http://localhost:${other.host.split(":")[1]}/v2/db/there` }).end();
        } else {
          return false;
        }
        return true;
      },
    });
    const t = client().transport;
    expect((await t.send(reg.host, "db", { method: "PUT", path: "/v2/db/here", body: Buffer.from("payload") })).statusCode).toBe(201);
    expect(bodies).toEqual(["payload"]);
    await expect(t.send(reg.host, "db", { method: "PUT", path: "/v2/db/away", body: Buffer.from("payload") })).rejects.toMatchObject({ code: "BLOCKED_URL" });
    expect(other.log).toEqual([]);
  });
});

describe("push scopes", () => {
  it("adds push to the repository's own scope, or puts one first", () => {
    expect(withPush(["repository:db:pull"], "db")).toEqual(["repository:db:pull,push"]);
    expect(withPush(["repository:other:pull", "repository:db:pull"], "db")).toEqual(["repository:other:pull", "repository:db:pull,push"]);
    expect(withPush(["registry:catalog:*"], "db")).toEqual(["repository:db:pull,push", "registry:catalog:*"]);
    expect(withPush(["repository:db:pull,push"], "db")).toEqual(["repository:db:pull,push"]);
    // A longer name that starts with the same characters is another repository.
    expect(withPush(["repository:db2:pull"], "db")).toEqual(["repository:db:pull,push", "repository:db2:pull"]);
  });
  it("remembers what a write was challenged for as the read it implies", () => {
    expect(withoutPush("repository:db:pull,push", "db")).toBe("repository:db:pull");
    expect(withoutPush("repository:db:push", "db")).toBe("repository:db:pull");
    expect(withoutPush("repository:other:pull,push", "db")).toBe("repository:other:pull,push");
  });
});
