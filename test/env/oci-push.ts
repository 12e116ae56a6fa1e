// Test-side pushes to the test registries with undici: blobs (monolithic upload) and manifests, with the
// registry's own auth flow (Basic, or Bearer tokens fetched from the realm its 401 names). The product's
// registry client pushes only OCI artifacts; tests use this to put hand-made images where it can find them.
import { createHash } from "node:crypto";
import { Agent, request, type Dispatcher } from "undici";
import type { RegistryService } from "./services.js";

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export class RegistryPusher {
  private readonly dispatcher: Dispatcher;
  private readonly tokens = new Map<string, string>();
  /** Every request, for tests that count them. */
  readonly log: Array<{ method: string; path: string; status: number }> = [];

  constructor(private readonly reg: RegistryService, private readonly creds = reg.username ? { username: reg.username, password: reg.password ?? "" } : undefined) {
    this.dispatcher = new Agent({ connect: reg.caPem ? { ca: reg.caPem } : {} });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private basic(): string | undefined {
    return this.creds ? `Basic ${Buffer.from(`${this.creds.username}:${this.creds.password}`).toString("base64")}` : undefined;
  }

  private async authorization(repo: string, challenge?: string): Promise<string | undefined> {
    if (this.reg.auth === "basic") return this.basic();
    if (this.reg.auth !== "token") return undefined;
    const scope = `repository:${repo}:pull,push`;
    const cached = this.tokens.get(scope);
    if (cached && !challenge) return cached;
    const realm = /realm="([^"]+)"/.exec(challenge ?? "")?.[1] ?? this.reg.realm!;
    const service = /service="([^"]+)"/.exec(challenge ?? "")?.[1] ?? this.reg.service!;
    const u = new URL(realm);
    u.searchParams.set("service", service);
    u.searchParams.set("scope", scope);
    const headers: Record<string, string> = {};
    const b = this.basic();
    if (b) headers.authorization = b;
    const res = await request(u, { headers });
    const body = (await res.body.json()) as { token?: string; access_token?: string };
    if (res.statusCode !== 200) throw new Error(`token server answered ${res.statusCode}`);
    const bearer = `Bearer ${body.token ?? body.access_token}`;
    this.tokens.set(scope, bearer);
    return bearer;
  }

  /** A request with auth; on a 401 it takes the challenge, fetches a token, and tries once more. */
  async send(repo: string, method: Dispatcher.HttpMethod, pathOrUrl: string, opts: { headers?: Record<string, string>; body?: Uint8Array | string } = {}): Promise<Dispatcher.ResponseData> {
    const url = pathOrUrl.startsWith("http") ? pathOrUrl : `${this.reg.url}${pathOrUrl}`;
    let challenge: string | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const auth = await this.authorization(repo, challenge);
      const headers = { ...opts.headers, ...(auth ? { authorization: auth } : {}) };
      const res = await request(url, { method, headers, body: opts.body, dispatcher: this.dispatcher });
      this.log.push({ method, path: new URL(url).pathname, status: res.statusCode });
      if (res.statusCode === 401 && attempt === 0 && this.reg.auth === "token") {
        challenge = String(res.headers["www-authenticate"] ?? "");
        await res.body.dump();
        continue;
      }
      return res;
    }
    throw new Error("unreachable");
  }

  async pushBlob(repo: string, data: Uint8Array): Promise<string> {
    const digest = sha256(data);
    const start = await this.send(repo, "POST", `/v2/${repo}/blobs/uploads/`);
    await start.body.dump();
    if (start.statusCode !== 202) throw new Error(`blob upload start: ${start.statusCode}`);
    const loc = new URL(String(start.headers.location), this.reg.url);
    loc.searchParams.set("digest", digest);
    const put = await this.send(repo, "PUT", loc.toString(), { headers: { "content-type": "application/octet-stream" }, body: data });
    const text = await put.body.text();
    if (put.statusCode !== 201) throw new Error(`blob upload: ${put.statusCode} ${text}`);
    return digest;
  }

  async pushManifest(repo: string, reference: string, manifest: string, mediaType: string): Promise<string> {
    const res = await this.send(repo, "PUT", `/v2/${repo}/manifests/${reference}`, { headers: { "content-type": mediaType }, body: manifest });
    const text = await res.body.text();
    if (res.statusCode !== 201) throw new Error(`manifest push: ${res.statusCode} ${text}`);
    return sha256(manifest);
  }

  /**
   * Pushes a one-layer OCI image whose layer is `layer` (already compressed or not; `layerMediaType` says
   * which) and returns the manifest digest.
   */
  async pushImage(repo: string, tag: string, layers: Array<{ data: Uint8Array; mediaType: string; diffId?: string }>, platform = { os: "linux", architecture: "amd64" }, extraConfig: Record<string, unknown> = {}): Promise<{ digest: string; manifest: string }> {
    const config = JSON.stringify({ ...extraConfig, ...platform, rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId ?? sha256(l.data)) }, config: {} });
    const configDigest = await this.pushBlob(repo, Buffer.from(config));
    const layerDescs = [];
    for (const l of layers) layerDescs.push({ mediaType: l.mediaType, digest: await this.pushBlob(repo, l.data), size: l.data.length });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: Buffer.byteLength(config) },
      layers: layerDescs,
    });
    const digest = await this.pushManifest(repo, tag, manifest, "application/vnd.oci.image.manifest.v1+json");
    return { digest, manifest };
  }
}
