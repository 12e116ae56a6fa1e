import { createHash } from "node:crypto";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseReference } from "../../src/image/reference.js";
import { RegistryClient } from "../../src/registry/client.js";
import { RegistryConnections } from "../../src/registry/connections.js";
import type { RegistryMetrics } from "../../src/registry/transport.js";
import { describeWith, service, testEnv } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush, zstdLayout } from "../env/images.js";
import { RegistryPusher, sha256 } from "../env/oci-push.js";
import type { RegistryService } from "../env/services.js";

const alice = (reg: RegistryService) => ({ lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test alice" }] });

async function drain(s: NodeJS.ReadableStream): Promise<{ bytes: number; digest: string }> {
  const h = createHash("sha256");
  let bytes = 0;
  for await (const c of s) {
    h.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { bytes, digest: `sha256:${h.digest("hex")}` };
}

describeWith(["registryBasic", "registryToken", "registryTls"], "registry client against the real registries", () => {
  const base = () => `oci:${ociBookworm()}:base`;
  beforeAll(async () => {
    const env = testEnv();
    await Promise.all([
      skopeoPush(base(), env.services.registryBasic!, "debian:base"),
      skopeoPush(base(), env.services.registryToken!, "debian:base"),
      skopeoPush(base(), env.services.registryTls!, "debian:base"),
      skopeoPush(base(), env.services.registryBasic!, "debian:base-v2s2", { format: "v2s2" }),
    ]);
  }, 300_000);

  const clients: RegistryClient[] = [];
  afterAll(async () => Promise.all(clients.map((c) => c.close())));
  const make = (...a: ConstructorParameters<typeof RegistryClient>) => {
    const c = new RegistryClient(...a);
    clients.push(c);
    return c;
  };

  it("resolves a tag with Basic auth and streams the layer with its digest verified", async () => {
    const reg = service("registryBasic");
    const c = make({ keyring: alice(reg) });
    const ref = parseReference(`${reg.host}/debian:base`);
    const img = await c.resolve(ref);
    expect(img.digest).toBe(layoutDigest(ociBookworm(), "base"));
    expect(img.manifest.layers).toHaveLength(1);
    const layer = img.manifest.layers[0]!;
    const got = await drain(c.getBlob(ref, layer));
    expect(got).toEqual({ bytes: layer.size, digest: layer.digest });
    const config = await c.getConfig(ref, img.manifest.config);
    expect(config.rootfs.diff_ids).toHaveLength(1);
  });

  it("reads Docker schema 2 manifests too", async () => {
    const reg = service("registryBasic");
    const img = await make({ keyring: alice(reg) }).resolve(parseReference(`${reg.host}/debian:base-v2s2`));
    expect(img.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(img.manifest.layers[0]!.mediaType).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip");
  });

  it("says which credentials failed, and that anonymous had none", async () => {
    const reg = service("registryBasic");
    const ref = parseReference(`${reg.host}/debian:base`);
    const wrong = make({ keyring: { lookup: async () => [{ username: "alice", password: "nope", source: "secret ns/wrong" }] } });
    await expect(wrong.resolve(ref)).rejects.toMatchObject({ code: "AUTH_FAILED", message: expect.stringContaining("secret ns/wrong") });
    await expect(make().resolve(ref)).rejects.toMatchObject({ code: "AUTH_FAILED", message: expect.stringContaining("anonymous") });
    // Two credentials: the first wrong, the second right: the second is used.
    const both = make({ keyring: { lookup: async () => [{ username: "alice", password: "nope", source: "a" }, { username: "alice", password: reg.password!, source: "b" }] } });
    expect((await both.resolve(ref)).digest).toBe(layoutDigest(ociBookworm(), "base"));
  });

  it("close() ends the client even with a blob body nobody read (it used to wait for it forever)", async () => {
    const reg = service("registryBasic");
    const c = new RegistryClient({ keyring: alice(reg) });
    const ref = parseReference(`${reg.host}/debian:base`);
    const img = await c.resolve(ref);
    const body = c.getBlob(ref, img.manifest.layers[0]!);
    // Started, then left: the 30 MB layer's response holds its connection.
    const first = await new Promise<Buffer>((resolve, reject) => body.once("data", resolve).once("error", reject));
    expect(first.length).toBeGreaterThan(0);
    body.pause();
    const ended = await Promise.race([c.close().then(() => "closed"), new Promise((r) => setTimeout(r, 10_000, "still waiting after 10 s"))]);
    expect(ended).toBe("closed");
    // What was left of the body either fails or (when the whole response had already arrived) is the whole,
    // verified layer: never a hang, never part of one passed as whole.
    body.resume();
    const rest = await drain(body).catch((e: unknown) => e as Error);
    const layer = img.manifest.layers[0]!;
    // (getBlob checks the digest itself: a body that ends without error had the layer's digest.)
    if (!(rest instanceof Error)) expect(rest.bytes + first.length).toBe(layer.size);
  });

  it("a client on shared connections closed in the middle of a blob gives no half-read connection to the next client, nor waits for it", async () => {
    const reg = service("registryBasic");
    const ref = parseReference(`${reg.host}/debian:base`);
    // One request at a time per client, so two connections in all: both left under bodies nobody reads.
    const options = { maxConcurrentPerRegistry: 1 };
    const shared = new RegistryConnections();
    try {
      const layer = (await new RegistryClient({ keyring: alice(reg), connections: shared, options }).resolve(ref)).manifest.layers[0]!;
      for (let i = 0; i < 2; i++) {
        const c = new RegistryClient({ keyring: alice(reg), connections: shared, options });
        const body = c.getBlob(ref, layer);
        await new Promise((resolve, reject) => body.once("data", resolve).once("error", reject));
        body.pause();
        const ended = await Promise.race([c.close().then(() => "closed"), new Promise((r) => setTimeout(r, 10_000, "still waiting after 10 s"))]);
        expect(ended).toBe("closed");
        body.resume();
        // The 30 MB layer cut short: an error, never a short layer passed as whole.
        await expect(drain(body)).rejects.toThrow();
      }
      // The next client gets the whole layer over the same shared connections (not a wait behind the two).
      const next = new RegistryClient({ keyring: alice(reg), connections: shared, options });
      const whole = await Promise.race([drain(next.getBlob(ref, layer)), new Promise((r) => setTimeout(r, 20_000, "still waiting after 20 s"))]);
      expect(whole).toEqual({ bytes: layer.size, digest: layer.digest });
      await next.close();
    } finally {
      await shared.close();
    }
  });

  it("clients sharing RegistryConnections reuse the registry's and the token realm's connections; a connection carries no credential", async () => {
    const reg = service("registryToken");
    const ref = parseReference(`${reg.host}/debian:base`);
    const registryPort = new URL(`http://${reg.host}`).port;
    // Counted by undici's own diagnostics channel: every new connection, by port (the registry's, or its
    // token realm's).
    const connected = { registry: 0, realm: 0 };
    const onConnected = (m: unknown) => void connected[(m as { connectParams: { port: string } }).connectParams.port === registryPort ? "registry" : "realm"]++;
    const work = async (c: RegistryClient) => {
      const img = await c.resolve(ref);
      expect(img.digest).toBe(layoutDigest(ociBookworm(), "base"));
      expect((await c.getConfig(ref, img.manifest.config)).rootfs.diff_ids).toHaveLength(1);
      await c.close();
    };
    subscribe("undici:client:connected", onConnected);
    try {
      for (let i = 0; i < 3; i++) await work(new RegistryClient({ keyring: alice(reg) }));
      const own = { ...connected };
      expect(own.realm).toBe(3); // a token each, over a connection each
      connected.registry = connected.realm = 0;
      const shared = new RegistryConnections();
      try {
        for (let i = 0; i < 3; i++) await work(new RegistryClient({ keyring: alice(reg), connections: shared })); // close() leaves them open
        expect(connected.realm).toBe(1);
        // The registry's own: never more than each client's own would have opened (undici closes one after each
        // HEAD, and opens another while a just-read body's connection is being handed back, so the exact count is
        // undici's timing, not ours).
        expect(connected.registry).toBeLessThanOrEqual(own.registry);
        // Another tenant's client without credentials, over the same connections: refused, as on its own.
        await expect(new RegistryClient({ connections: shared }).resolve(ref)).rejects.toMatchObject({ code: "AUTH_FAILED" });
      } finally {
        await shared.close();
      }
      // Closed is closed: a client made on them afterwards fails loudly rather than leak new connections.
      await expect(new RegistryClient({ keyring: alice(reg), connections: shared }).resolve(ref)).rejects.toThrow(/after close/);
    } finally {
      unsubscribe("undici:client:connected", onConnected);
    }
  });

  it("runs the Bearer token flow, caches the token, and resolves a warm tag with one HEAD", async () => {
    const reg = service("registryToken");
    let tokenFetches = 0;
    const requests: string[] = [];
    const metrics: RegistryMetrics = { tokenFetch: () => void tokenFetches++, request: (e) => void requests.push(`${e.method} ${e.status}`) };
    const c = make({ keyring: alice(reg), metrics });
    const ref = parseReference(`${reg.host}/debian:base`);
    const img = await c.resolve(ref);
    expect(img.digest).toBe(layoutDigest(ociBookworm(), "base"));
    expect(tokenFetches).toBe(1);
    requests.length = 0;
    expect(await c.resolveDigest(ref)).toBe(img.digest);
    expect(requests).toEqual(["HEAD 200"]);
    expect(tokenFetches).toBe(1);
  });

  it("gets an anonymous token for a public repository and is refused a private one", async () => {
    const reg = service("registryToken");
    await skopeoPush(base(), reg, "public/debian:base");
    const anon = make();
    expect((await anon.resolve(parseReference(`${reg.host}/public/debian:base`))).digest).toBe(layoutDigest(ociBookworm(), "base"));
    await expect(anon.resolve(parseReference(`${reg.host}/debian:base`))).rejects.toMatchObject({ code: "AUTH_FAILED" });
  });

  it("speaks TLS to a registry with its own CA only when given the CA", async () => {
    const reg = service("registryTls");
    const ref = parseReference(`${reg.host}/debian:base`);
    const trusted = make({ options: { caCertificates: { [reg.host]: reg.caPem! } } });
    expect((await trusted.resolve(ref)).digest).toBe(layoutDigest(ociBookworm(), "base"));
    // Loopback registries may fall back to plain HTTP, but this one speaks only TLS: the failure names TLS.
    const untrusted = make({ options: { maxAttempts: 1 } });
    await expect(untrusted.resolve(ref)).rejects.toMatchObject({ code: expect.stringMatching(/NETWORK|UNEXPECTED_STATUS/) });
    const insecure = make({ options: { insecureRegistries: [reg.host] } });
    expect((await insecure.resolve(ref)).digest).toBe(layoutDigest(ociBookworm(), "base"));
  });

  it("selects a platform from a multi-platform index, and names what the index has when it lacks one", async () => {
    const reg = service("registryBasic");
    const pusher = new RegistryPusher(reg);
    const amd = await pusher.pushImage("multi", "amd64", [{ data: Buffer.from("amd64 layer"), mediaType: "application/vnd.oci.image.layer.v1.tar" }]);
    const arm = await pusher.pushImage("multi", "arm64", [{ data: Buffer.from("arm64 layer"), mediaType: "application/vnd.oci.image.layer.v1.tar" }], { os: "linux", architecture: "arm64" });
    const attestation = await pusher.pushImage("multi", "att", [{ data: Buffer.from("att"), mediaType: "application/vnd.in-toto+json" }]);
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: amd.digest, size: Buffer.byteLength(amd.manifest), platform: { os: "linux", architecture: "amd64" } },
        { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: arm.digest, size: Buffer.byteLength(arm.manifest), platform: { os: "linux", architecture: "arm64", variant: "v8" } },
        { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: attestation.digest, size: Buffer.byteLength(attestation.manifest), platform: { os: "unknown", architecture: "unknown" }, annotations: { "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd.digest } },
      ],
    });
    const indexDigest = await pusher.pushManifest("multi", "latest", index, "application/vnd.oci.image.index.v1+json");
    await pusher.close();
    const c = make({ keyring: alice(reg) });
    const ref = parseReference(`${reg.host}/multi:latest`);
    const a = await c.resolve(ref, { platform: { os: "linux", architecture: "amd64" } });
    expect(a).toMatchObject({ digest: amd.digest, resolvedDigest: indexDigest });
    // arm64 without a variant means v8.
    expect((await c.resolve(ref, { platform: { os: "linux", architecture: "arm64" } })).digest).toBe(arm.digest);
    const err = (await c.resolve(ref, { platform: { os: "linux", architecture: "s390x" } }).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: "PLATFORM_NOT_FOUND" });
    expect(err.message).toContain("linux/amd64");
    expect(err.message).toContain("linux/arm64");
    expect(err.message).not.toContain("unknown");
  });

  it("streams zstd layers as they are (the walk decompresses them)", async () => {
    const reg = service("registryBasic");
    const dir = join(mkdtempSync(join(tmpdir(), "zstd-layout-")), "layout");
    await zstdLayout(base(), dir);
    await skopeoPush(`oci:${dir}`, reg, "debian:zstd");
    const c = make({ keyring: alice(reg) });
    const ref = parseReference(`${reg.host}/debian:zstd`);
    const img = await c.resolve(ref);
    expect(img.manifest.layers[0]!.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    const got = await drain(c.getBlob(ref, img.manifest.layers[0]!));
    expect(got.digest).toBe(img.manifest.layers[0]!.digest);
  });

  it("lists referrers through the tag fallback on a registry without the API", async () => {
    const reg = service("registryBasic");
    const pusher = new RegistryPusher(reg);
    const subject = await pusher.pushImage("refs", "v1", [{ data: Buffer.from("subject"), mediaType: "application/vnd.oci.image.layer.v1.tar" }]);
    const sbom = await pusher.pushImage("refs", "sbom", [{ data: Buffer.from("{}"), mediaType: "application/spdx+json" }]);
    const fallback = JSON.stringify({
      schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sbom.digest, size: Buffer.byteLength(sbom.manifest), artifactType: "application/spdx+json" }],
    });
    await pusher.pushManifest("refs", subject.digest.replace(":", "-"), fallback, "application/vnd.oci.image.index.v1+json");
    await pusher.close();
    const c = make({ keyring: alice(reg) });
    const refs = await c.listReferrers(parseReference(`${reg.host}/refs:v1`), subject.digest);
    expect(refs.map((d) => d.digest)).toEqual([sbom.digest]);
    expect(await c.listReferrers(parseReference(`${reg.host}/refs:v1`), sha256("nothing"))).toEqual([]);
  });
});
