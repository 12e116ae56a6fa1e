// Pushing and pulling OCI artifacts (the offline advisory bundle, issue 15) against the real registries:
// Debian's distribution 2.8.2 with htpasswd Basic auth, with Bearer tokens from the test token server, and
// over TLS with a private CA. What the registry stored is read back with skopeo and plain HTTP requests,
// oracles that are not our client.
//
// What distribution 2.8.2 does with OCI 1.1 artifacts (checked here, so a registry upgrade that changes it
// shows up): it accepts an image manifest with `artifactType` and the empty config
// (application/vnd.oci.empty.v1+json, `{}`) and serves it byte for byte; it only requires that the config
// and layer blobs exist. It has no referrers API. So pushArtifact's default "artifact" form is what gets
// stored; the "config" form (no `artifactType`, the type in a config blob) is for registries that refuse
// OCI 1.1 fields, and pullArtifact reads both (the automatic fallback is tested against a fake registry
// that refuses, in src/registry/push.test.ts).
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Agent, request } from "undici";
import { afterAll, expect, it } from "vitest";
import { parseReference } from "../../src/image/reference.js";
import { RegistryClient } from "../../src/registry/client.js";
import { artifactManifest, EMPTY_CONFIG, pushBlobFile, type ArtifactInput } from "../../src/registry/push.js";
import type { RegistryMetrics } from "../../src/registry/transport.js";
import { describeWith, service, tool } from "../env/index.js";
import { RegistryPusher } from "../env/oci-push.js";
import type { RegistryService } from "../env/services.js";

const run = promisify(execFile);
const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

const ARTIFACT_TYPE = "application/vnd.portcullis.advisory-bundle.v1";
const BUNDLE_TYPE = "application/vnd.portcullis.advisory-bundle.v1.tar+zstd";
const INDEX_TYPE = "application/vnd.portcullis.advisory-bundle.index.v1+json";

function artifact(size = 200_000): ArtifactInput {
  return {
    artifactType: ARTIFACT_TYPE,
    layers: [
      { mediaType: BUNDLE_TYPE, bytes: randomBytes(size), annotations: { "org.opencontainers.image.title": "advisories.tar.zst" } },
      { mediaType: INDEX_TYPE, bytes: Buffer.from(JSON.stringify({ sources: ["debian", "alpine"], n: randomBytes(4).toString("hex") })) },
    ],
    annotations: { "org.opencontainers.image.created": "2026-01-02T03:04:05Z" },
  };
}

const alice = (reg: RegistryService, password = reg.password!) => ({ lookup: async () => [{ username: reg.username!, password, source: "test alice" }] });

/** The manifest as skopeo reads it from the registry (raw bytes, as stored). */
async function skopeoRaw(reg: RegistryService, repoRef: string): Promise<string> {
  const args = ["inspect", "--raw", "--retry-times", "2"];
  if (reg.username) args.push("--creds", `${reg.username}:${reg.password}`);
  if (reg.caPem) {
    const certDir = mkdtempSync(join(tmpdir(), "skopeo-certs-"));
    writeFileSync(join(certDir, "ca.crt"), reg.caPem);
    args.push("--cert-dir", certDir);
  } else {
    args.push("--tls-verify=false");
  }
  args.push(`docker://${reg.host}/${repoRef}`);
  const { stdout } = await run(tool("skopeo"), args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

describeWith(["registryBasic", "registryToken", "registryTls"], "OCI artifacts pushed to and pulled from the real registries", () => {
  const clients: RegistryClient[] = [];
  afterAll(async () => Promise.all(clients.map((c) => c.close())));

  /** A client for `reg` with its credentials (and CA), and the requests it makes as `METHOD status`. */
  const make = (reg: RegistryService, o: { password?: string } = {}) => {
    const requests: string[] = [];
    const tokenFetches: boolean[] = [];
    const metrics: RegistryMetrics = { request: (e) => void requests.push(`${e.method} ${e.status}`), tokenFetch: (e) => void tokenFetches.push(e.ok) };
    const c = new RegistryClient({
      keyring: reg.username ? alice(reg, o.password) : undefined,
      options: { backoffBaseMs: 1, ...(reg.caPem ? { caCertificates: { [reg.host]: reg.caPem } } : {}) },
      metrics,
    });
    clients.push(c);
    return { c, requests, tokenFetches };
  };

  for (const name of ["registryBasic", "registryToken", "registryTls"] as const) {
    it(`${name}: round trip of a two-layer artifact, byte-identical, and skopeo reads what we said`, async () => {
      const reg = service(name);
      const { c } = make(reg);
      const a = artifact();
      const ref = parseReference(`${reg.host}/portcullis/advisory-db:v1`);
      const pushed = await c.pushArtifact(ref, a);
      expect(pushed).toMatchObject({ form: "artifact", uploadedBlobs: 3 });

      // The oracle: skopeo reads the manifest the registry stored; its sha256 is the digest we returned.
      const stored = await skopeoRaw(reg, "portcullis/advisory-db:v1");
      expect(sha256(stored)).toBe(pushed.digest);
      expect(Buffer.byteLength(stored)).toBe(pushed.size);
      const doc = JSON.parse(stored) as Record<string, unknown>;
      expect(doc).toEqual({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: ARTIFACT_TYPE,
        config: { mediaType: "application/vnd.oci.empty.v1+json", digest: EMPTY_CONFIG.digest, size: 2 },
        layers: a.layers.map((l) => ({ mediaType: l.mediaType, digest: sha256(l.bytes), size: l.bytes.length, ...(l.annotations ? { annotations: l.annotations } : {}) })),
        annotations: a.annotations,
      });
      expect(EMPTY_CONFIG.digest).toBe(sha256("{}"));

      const pulled = await make(reg).c.pullArtifact(ref, { artifactType: ARTIFACT_TYPE, maxLayerBytes: 1 << 20 });
      expect(pulled.digest).toBe(pushed.digest);
      expect(sha256(pulled.raw)).toBe(pushed.digest);
      expect(pulled.raw.toString()).toBe(stored);
      expect(pulled.artifactType).toBe(ARTIFACT_TYPE);
      expect(pulled.layers).toHaveLength(2);
      for (const [i, l] of pulled.layers.entries()) {
        expect(l.bytes.equals(a.layers[i]!.bytes)).toBe(true);
        expect(l.mediaType).toBe(a.layers[i]!.mediaType);
        expect(l.annotations).toEqual(a.layers[i]!.annotations);
      }
    });
  }

  it("registryBasic: blob bytes in the registry are the layers (read with plain HTTP, not our client)", async () => {
    const reg = service("registryBasic");
    const a = artifact(50_000);
    await make(reg).c.pushArtifact(parseReference(`${reg.host}/portcullis/raw-check:v1`), a);
    const auth = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString("base64")}`;
    const dispatcher = new Agent();
    try {
      for (const l of [...a.layers.map((x) => x.bytes), EMPTY_CONFIG.bytes]) {
        const res = await request(`${reg.url}/v2/portcullis/raw-check/blobs/${sha256(l)}`, { headers: { authorization: auth }, dispatcher });
        expect(res.statusCode).toBe(200);
        expect(Buffer.from(await res.body.arrayBuffer()).equals(l)).toBe(true);
      }
    } finally {
      await dispatcher.close();
    }
  });

  it("registryBasic: request counts; a second push uploads no blob, since HEAD finds each one", async () => {
    const reg = service("registryBasic");
    const { c, requests } = make(reg);
    const a = artifact();
    const ref = parseReference(`${reg.host}/portcullis/counts:v1`);
    const first = await c.pushArtifact(ref, a);
    console.error(`[push counts] basic first push: ${requests.join(", ")}`);
    // One 401 teaches the client Basic; then per blob (2 layers, the empty config) HEAD 404, POST, PUT.
    expect(requests).toEqual(["HEAD 401", ...Array<string[]>(3).fill(["HEAD 404", "POST 202", "PUT 201"]).flat(), "PUT 201"]);
    requests.length = 0;
    const again = await c.pushArtifact(ref, a);
    console.error(`[push counts] basic re-push: ${requests.join(", ")}`);
    expect(again).toEqual({ ...first, uploadedBlobs: 0 });
    expect(requests).toEqual(["HEAD 200", "HEAD 200", "HEAD 200", "PUT 201"]);
    // A new client (no learned scheme) pushing the same content: still nothing uploaded.
    const fresh = make(reg);
    expect((await fresh.c.pushArtifact(parseReference(`${reg.host}/portcullis/counts:v2`), a)).uploadedBlobs).toBe(0);
    expect(fresh.requests.filter((r) => r.startsWith("POST"))).toEqual([]);
    requests.length = 0;
    await c.pullArtifact(ref, { artifactType: ARTIFACT_TYPE, maxLayerBytes: 1 << 20 });
    console.error(`[push counts] basic pull: ${requests.join(", ")}`);
    expect(requests).toEqual(["HEAD 200", "GET 200", "GET 200", "GET 200"]);
  });

  it("registryToken: asks the token server for pull,push once, and a later pull for pull only", async () => {
    const reg = service("registryToken");
    const stats = async () => {
      const res = await request(reg.realm!.replace(/\/token$/, "/stats"));
      return ((await res.body.json()) as { requests: Array<{ user: string | null; scopes: string[]; status: number }> }).requests;
    };
    const before = (await stats()).length;
    const { c, requests, tokenFetches } = make(reg);
    const a = artifact();
    const ref = parseReference(`${reg.host}/portcullis/token-db:v1`);
    await c.pushArtifact(ref, a);
    console.error(`[push counts] token first push: ${requests.join(", ")}; token fetches ${tokenFetches.length}`);
    expect(tokenFetches).toEqual([true]);
    expect(requests).toEqual(["HEAD 401", ...Array<string[]>(3).fill(["HEAD 404", "POST 202", "PUT 201"]).flat(), "PUT 201"]);
    requests.length = 0;
    expect((await c.pushArtifact(ref, a)).uploadedBlobs).toBe(0);
    console.error(`[push counts] token re-push: ${requests.join(", ")}`);
    expect(requests).toEqual(["HEAD 200", "HEAD 200", "HEAD 200", "PUT 201"]);
    requests.length = 0;
    const pulled = await c.pullArtifact(ref, { artifactType: ARTIFACT_TYPE, maxLayerBytes: 1 << 20 });
    console.error(`[push counts] token pull: ${requests.join(", ")}; token fetches ${tokenFetches.length}`);
    expect(pulled.layers[0]!.bytes.equals(a.layers[0]!.bytes)).toBe(true);
    expect(tokenFetches).toEqual([true, true]);
    expect(requests).toEqual(["HEAD 200", "GET 200", "GET 200", "GET 200"]);
    const asked = (await stats()).slice(before).map((r) => ({ user: r.user, scopes: r.scopes, status: r.status }));
    expect(asked).toEqual([
      { user: "alice", scopes: ["repository:portcullis/token-db:pull,push"], status: 200 },
      { user: "alice", scopes: ["repository:portcullis/token-db:pull"], status: 200 },
    ]);
  });

  it("registryToken: anonymous gets a pull-only token for public/*, so a push is refused with AUTH_FAILED", async () => {
    const reg = service("registryToken");
    const anon = new RegistryClient({ options: { backoffBaseMs: 1 } });
    clients.push(anon);
    await expect(anon.pushArtifact(parseReference(`${reg.host}/public/db:v1`), artifact(1000))).rejects.toMatchObject({ code: "AUTH_FAILED" });
  });

  for (const name of ["registryBasic", "registryToken"] as const) {
    it(`${name}: wrong credentials are AUTH_FAILED, naming them`, async () => {
      const reg = service(name);
      const { c, requests } = make(reg, { password: "wrong" });
      const err = await c.pushArtifact(parseReference(`${reg.host}/portcullis/denied:v1`), artifact(1000)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "AUTH_FAILED", message: expect.stringContaining("test alice") });
      expect(requests.some((r) => r.startsWith("POST") || r.startsWith("PUT"))).toBe(false);
    });
  }

  it("registryBasic: pulling with another artifactType is UNSUPPORTED, and fetches no layer", async () => {
    const reg = service("registryBasic");
    const ref = parseReference(`${reg.host}/portcullis/typed:v1`);
    await make(reg).c.pushArtifact(ref, artifact(1000));
    const { c, requests } = make(reg);
    const err = (await c.pullArtifact(ref, { artifactType: "application/vnd.example.other.v1", maxLayerBytes: 1 << 20 }).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: "UNSUPPORTED" });
    expect(err.message).toContain(ARTIFACT_TYPE);
    expect(err.message).toContain("application/vnd.example.other.v1");
    expect(requests.filter((r) => r.startsWith("GET"))).toEqual(["GET 200"]); // the manifest only
    // Without an artifactType everything is accepted, and the type is reported.
    expect((await c.pullArtifact(ref, { maxLayerBytes: 1 << 20 })).artifactType).toBe(ARTIFACT_TYPE);
  });

  it("registryBasic: an image is not the artifact asked for", async () => {
    const reg = service("registryBasic");
    const { c } = make(reg);
    // An image manifest (pushed by the test-side pusher): its artifact type is its config's media type.
    const pusher = new RegistryPusher(reg);
    await pusher.pushImage("portcullis/not-an-artifact", "v1", [{ data: Buffer.from("an image layer"), mediaType: "application/vnd.oci.image.layer.v1.tar" }]);
    await pusher.close();
    const ref = parseReference(`${reg.host}/portcullis/not-an-artifact:v1`);
    await expect(c.pullArtifact(ref, { artifactType: ARTIFACT_TYPE, maxLayerBytes: 1 << 20 })).rejects.toMatchObject({ code: "UNSUPPORTED", message: expect.stringContaining("application/vnd.oci.image.config.v1+json") });
  });

  it("registryBasic: a layer over maxLayerBytes is TOO_LARGE before any layer is fetched", async () => {
    const reg = service("registryBasic");
    const ref = parseReference(`${reg.host}/portcullis/big:v1`);
    const a = artifact(10_000);
    await make(reg).c.pushArtifact(ref, a);
    const { c, requests } = make(reg);
    const err = (await c.pullArtifact(ref, { artifactType: ARTIFACT_TYPE, maxLayerBytes: 9_999 }).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: "TOO_LARGE" });
    expect(err.message).toContain("10000 bytes");
    expect(requests).toEqual(["HEAD 401", "HEAD 200", "GET 200"]);
    expect((await c.pullArtifact(ref, { maxLayerBytes: 10_000 })).layers[0]!.bytes.length).toBe(10_000);
  });

  it("registryToken: push and pull by digest reference; a reference whose digest is not the manifest's sends nothing", async () => {
    const reg = service("registryToken");
    const a = artifact(5_000);
    const digest = sha256(artifactManifest(a, "artifact").raw);
    const ref = parseReference(`${reg.host}/portcullis/by-digest@${digest}`);
    const { c, requests } = make(reg);
    const pushed = await c.pushArtifact(ref, a);
    expect(pushed.digest).toBe(digest);
    expect(sha256(await skopeoRaw(reg, `portcullis/by-digest@${digest}`))).toBe(digest);
    const pulled = await make(reg).c.pullArtifact(ref, { artifactType: ARTIFACT_TYPE, maxLayerBytes: 1 << 20 });
    expect(pulled.layers.map((l) => l.bytes.equals(a.layers[pulled.layers.indexOf(l)]!.bytes))).toEqual([true, true]);
    requests.length = 0;
    const wrong = parseReference(`${reg.host}/portcullis/by-digest@${sha256("something else")}`);
    await expect(c.pushArtifact(wrong, a)).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(requests).toEqual([]);
  });

  it("registryBasic: the config form (for registries refusing OCI 1.1 fields) is stored as said and pulled by its type", async () => {
    const reg = service("registryBasic");
    const ref = parseReference(`${reg.host}/portcullis/config-form:v1`);
    const a = { ...artifact(3_000), configMediaType: "application/vnd.portcullis.advisory-bundle.config.v1+json", form: "config" as const };
    const { c } = make(reg);
    const pushed = await c.pushArtifact(ref, a);
    expect(pushed.form).toBe("config");
    const doc = JSON.parse(await skopeoRaw(reg, "portcullis/config-form:v1")) as { artifactType?: string; config: { mediaType: string; digest: string } };
    expect(doc.artifactType).toBeUndefined();
    expect(doc.config.mediaType).toBe("application/vnd.portcullis.advisory-bundle.config.v1+json");
    expect(doc.config.digest).toBe(sha256(JSON.stringify({ artifactType: ARTIFACT_TYPE })));
    const pulled = await make(reg).c.pullArtifact(ref, { artifactType: ARTIFACT_TYPE, maxLayerBytes: 1 << 20 });
    expect(pulled).toMatchObject({ digest: pushed.digest, artifactType: ARTIFACT_TYPE });
    expect(pulled.layers[0]!.bytes.equals(a.layers[0]!.bytes)).toBe(true);
  });

  it("registryBasic: distribution 2.8 has no referrers API (why the artifact carries no subject)", async () => {
    const reg = service("registryBasic");
    const ref = parseReference(`${reg.host}/portcullis/subject:v1`);
    const pushed = await make(reg).c.pushArtifact(ref, artifact(100));
    const res = await request(`${reg.url}/v2/portcullis/subject/referrers/${pushed.digest}`, { headers: { authorization: `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString("base64")}` } });
    await res.body.dump();
    expect(res.statusCode).toBe(404);
  });

  it("registryBasic: a layer from a file goes up in chunks (PATCH with Content-Range), byte-identical; a file that is not the digest given is refused before the upload is committed", async () => {
    const reg = service("registryBasic");
    const { c, requests } = make(reg);
    const d = mkdtempSync(join(tmpdir(), "portcullis-chunked-"));
    const bytes = randomBytes(1_000_000);
    const file = join(d, "layer");
    writeFileSync(file, bytes);
    const ref = parseReference(`${reg.host}/portcullis/chunked:v1`);
    const pushed = await pushBlobFile(c, ref, { file, digest: sha256(bytes), size: bytes.length }, undefined, 300_000);
    expect(pushed).toEqual({ digest: sha256(bytes), uploaded: true });
    expect(requests).toEqual(["HEAD 401", "HEAD 404", "POST 202", "PATCH 202", "PATCH 202", "PATCH 202", "PATCH 202", "PUT 201"]);
    const auth = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString("base64")}`;
    const res = await request(`${reg.url}/v2/portcullis/chunked/blobs/${sha256(bytes)}`, { headers: { authorization: auth } });
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(bytes)).toBe(true);
    // The same upload with a digest the file does not have: refused, and the registry has no such blob.
    const other = randomBytes(1000);
    await expect(pushBlobFile(c, ref, { file, digest: sha256(other), size: bytes.length }, undefined, 300_000)).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    const head = await request(`${reg.url}/v2/portcullis/chunked/blobs/${sha256(other)}`, { method: "HEAD", headers: { authorization: auth } });
    await head.body.dump();
    expect(head.statusCode).toBe(404);
    // A whole artifact with the file as its layer: skopeo reads the manifest naming the file's digest and size.
    await c.pushArtifact(ref, { artifactType: ARTIFACT_TYPE, layers: [{ mediaType: BUNDLE_TYPE, file, digest: sha256(bytes), size: bytes.length }] });
    const doc = JSON.parse(await skopeoRaw(reg, "portcullis/chunked:v1")) as { layers: Array<{ digest: string; size: number }> };
    expect(doc.layers).toEqual([{ mediaType: BUNDLE_TYPE, digest: sha256(bytes), size: bytes.length }]);
  });
});
