import { request, Agent } from "undici";
import { afterAll, expect, it } from "vitest";
import { describeWith, service } from "../env/index.js";
import { RegistryPusher, sha256 } from "../env/oci-push.js";
import type { RegistryService } from "../env/services.js";

const variants = [
  ["registryBasic", "Basic auth"],
  ["registryToken", "Bearer tokens from the test token server"],
  ["registryTls", "TLS with its own CA"],
] as const;

for (const [name, title] of variants) {
  describeWith([name], `test registry with ${title}`, () => {
    const pushers: RegistryPusher[] = [];
    afterAll(async () => Promise.all(pushers.map((p) => p.close())));

    it("stores a blob and a manifest pushed with undici and serves them back by digest", async () => {
      const reg = service(name);
      const pusher = new RegistryPusher(reg);
      pushers.push(pusher);
      const layer = Buffer.from(`a layer for ${name} ${Date.now()}`);
      const { digest, manifest } = await pusher.pushImage("harness/app", "v1", [{ data: layer, mediaType: "application/vnd.oci.image.layer.v1.tar" }]);

      const blob = await pusher.send("harness/app", "GET", `/v2/harness/app/blobs/${sha256(layer)}`);
      const blobBytes = Buffer.from(await blob.body.arrayBuffer());
      expect(blob.statusCode).toBe(200);
      expect(blobBytes.equals(layer)).toBe(true);

      const byTag = await pusher.send("harness/app", "GET", "/v2/harness/app/manifests/v1", { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
      expect(byTag.statusCode).toBe(200);
      expect(byTag.headers["docker-content-digest"]).toBe(digest);
      expect(await byTag.body.text()).toBe(manifest);
    });

    it("refuses a request without credentials", async () => {
      const reg: RegistryService = service(name);
      const res = await request(`${reg.url}/v2/harness/app/manifests/v1`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
        dispatcher: new Agent({ connect: reg.caPem ? { ca: reg.caPem } : {} }),
      });
      await res.body.dump();
      if (reg.auth === "none") {
        expect(res.statusCode).toBe(200);
        return;
      }
      expect(res.statusCode).toBe(401);
      const challenge = String(res.headers["www-authenticate"]);
      if (reg.auth === "basic") expect(challenge).toMatch(/^Basic realm="portcullis-test"/);
      else {
        expect(challenge).toContain(`realm="${reg.realm}"`);
        expect(challenge).toContain(`service="${reg.service}"`);
        expect(challenge).toContain('scope="repository:harness/app:pull"');
      }
    });
  });
}

describeWith(["registryTls"], "test registry TLS", () => {
  it("is not trusted without its CA", async () => {
    const reg = service("registryTls");
    await expect(request(`${reg.url}/v2/`)).rejects.toThrow(/certificate/i);
  });
});

describeWith(["registryToken"], "test token server", () => {
  it("rejects wrong credentials and grants anonymous pull only under public/", async () => {
    const reg = service("registryToken");
    const wrong = new RegistryPusher(reg, { username: "alice", password: "wrong" });
    await expect(wrong.pushBlob("harness/app", Buffer.from("x"))).rejects.toThrow(/token server answered 401/);
    const anon = new RegistryPusher({ ...reg, username: undefined, password: undefined });
    const res = await anon.send("public/x", "GET", "/v2/public/x/tags/list");
    await res.body.dump();
    // The registry accepted the anonymous token (the repository simply does not exist yet).
    expect(res.statusCode).toBe(404);
    await Promise.all([wrong.close(), anon.close()]);
  });
});
