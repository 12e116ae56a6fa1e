// The ImageScan controller's condition reasons and phases for registry faults, against the real API server
// and the real Basic-auth registry. Only 429 and 500, which a real registry cannot be made to show, come
// from a small fake registry on loopback; once it "recovers" it proxies to the real registry.
import { execFile } from "node:child_process";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { type Condition, GROUP, type ImageScan, VERSION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const crdDir = fileURLToPath(new URL("../../crds/", import.meta.url));
const ns = "reasons-test";
/** The one image pushed to the real registry; the fake's proxy mode serves it under any repository name. */
const upstreamRepo = "reasons/debian";

/** What the fake answers for a repository's manifests: an error every time, or the real registry's answers. */
type Mode = { kind: "status"; status: 404 | 429 | 500 } | { kind: "proxy" };

/**
 * A registry that answers `/v2/` with 200 and a repository's manifests per its mode, recording when each
 * manifest request arrived. In proxy mode every request of the repository goes to the real registry,
 * under `upstreamRepo`, with the client's headers (Authorization included), and streams the answer back.
 */
class FakeRegistry {
  private readonly server: Server;
  private readonly modes = new Map<string, Mode>();
  private readonly hits = new Map<string, number[]>();
  host = "";

  constructor(private readonly upstream: URL) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve());
    });
    this.host = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  set(repo: string, mode: Mode): void {
    this.modes.set(repo, mode);
  }

  /** Times (Date.now()) of the manifest requests (HEAD or GET) for a repository. */
  manifestHits(repo: string): number[] {
    return [...(this.hits.get(repo) ?? [])];
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0]!;
    if (path === "/v2/" || path === "/v2") {
      res.writeHead(200, { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" }).end("{}");
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/[^/]+$/.exec(path);
    if (!m) return this.error(res, 404, "NAME_UNKNOWN", "no such route");
    const repo = m[1]!;
    if (m[2] === "manifests") this.hits.set(repo, [...(this.hits.get(repo) ?? []), Date.now()]);
    const mode = this.modes.get(repo) ?? { kind: "status", status: 404 };
    if (mode.kind === "proxy") return this.proxy(req, res, req.url!.replace(`/v2/${repo}/`, `/v2/${upstreamRepo}/`));
    switch (mode.status) {
      case 429:
        return this.error(res, 429, "TOOMANYREQUESTS", "slow down", { "retry-after": "1" });
      case 500:
        return this.error(res, 500, "UNKNOWN", "the storage backend is on fire");
      case 404:
        return this.error(res, 404, "MANIFEST_UNKNOWN", "manifest unknown");
    }
  }

  private error(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify({ errors: [{ code, message }] }));
  }

  private proxy(req: IncomingMessage, res: ServerResponse, path: string): void {
    const headers = { ...req.headers, host: this.upstream.host };
    const up = httpRequest(new URL(path, this.upstream), { method: req.method, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", (e) => {
      if (!res.headersSent) this.error(res, 502, "UNKNOWN", e.message);
      else res.destroy(e);
    });
    req.pipe(up);
  }
}

describeWith(["kube", "registryBasic", "postgres"], "ImageScan controller: condition reasons for registry faults", () => {
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let controller: ImageScanController;
  let store: Store;
  let fake: FakeRegistry;
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const dockerSecret = (name: string, server: string, username: string, password: string) =>
    kubectl("-n", ns, "create", "secret", "docker-registry", name, `--docker-server=${server}`, `--docker-username=${username}`, `--docker-password=${password}`);
  beforeAll(async () => {
    const reg = service("registryBasic");
    expect(reg.url, "the proxy speaks plain HTTP to the basic registry").toMatch(/^http:\/\//);
    fake = new FakeRegistry(new URL(reg.url));
    await Promise.all([
      skopeoPush(`oci:${ociBookworm()}:base`, reg, `${upstreamRepo}:base`),
      fake.start(),
      (async () => {
        await kubectl("apply", "-f", crdDir);
        await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
        await kubectl("create", "namespace", ns);
      })(),
    ]);
    await Promise.all([
      dockerSecret("good", reg.host, reg.username!, reg.password!),
      dockerSecret("wrong", reg.host, reg.username!, "not-the-password"),
      // For the fake: the real registry's credentials, sent once the fake proxies its 401 challenge.
      dockerSecret("fake", fake.host, reg.username!, reg.password!),
      kubectl("-n", ns, "create", "secret", "generic", "opaque", "--from-literal=password=hunter2"),
    ]);
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    store = await openStore(await databases.create("controller_reasons"));
    const t0 = Date.now();
    controller = new ImageScanController({ kc, indexer: new Indexer({ store, scanners: defaultScanners() }), registry: { maxAttempts: 1 }, defaultPlatform: { os: "linux", architecture: "amd64" }, namespaces: [ns],
      // PORTCULLIS_TEST_LOG=1 shows the controller's retries.
      log: (m) => { if (process.env.PORTCULLIS_TEST_LOG === "1") console.error(`[controller +${Date.now() - t0} ms] ${m}`); },
    });
    await controller.start();
  }, 180_000);
  afterAll(async () => {
    await controller?.stop();
    await store?.close();
    await fake?.stop();
  });

  const create = (name: string, spec: ImageScan["spec"]) => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name }, spec } });
  const get = async (name: string) => (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name })) as ImageScan;
  const patchSpec = (name: string, spec: Partial<ImageScan["spec"]>) =>
    custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name, body: { spec } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  async function until(name: string, phases: string[], timeoutMs = 30_000): Promise<ImageScan> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await get(name);
      if (s.status?.phase && phases.includes(s.status.phase)) return s;
      if (Date.now() > deadline) throw new Error(`${name} is not ${phases.join("/")} after ${timeoutMs} ms: ${JSON.stringify(s.status)}`);
      await sleep(100);
    }
  }
  const condition = (s: ImageScan, type: Condition["type"]) => s.status?.conditions?.find((c) => c.type === type);
  /** Failed, with Resolved=False and Indexed=False both giving `reason`; the scan for the caller's further checks. */
  async function expectFailed(name: string, reason: string): Promise<ImageScan> {
    const s = await until(name, ["Failed", "Indexed"]);
    expect(s.status?.phase, name).toBe("Failed");
    expect(s.status?.observedGeneration, name).toBe(s.metadata?.generation);
    expect(condition(s, "Resolved"), name).toMatchObject({ status: "False", reason });
    expect(condition(s, "Indexed"), name).toMatchObject({ status: "False", reason });
    expect(condition(s, "Resolved")?.message, name).toBe(s.status?.message);
    return s;
  }

  it("401 from the Basic-auth registry is AuthFailed, with wrong credentials and with none, and names the registry", async () => {
    const reg = service("registryBasic");
    await create("wrong-creds", { image: `${reg.host}/${upstreamRepo}:base`, imagePullSecrets: [{ name: "wrong" }] });
    await create("no-creds", { image: `${reg.host}/${upstreamRepo}:base` });
    const wrong = await expectFailed("wrong-creds", "AuthFailed");
    expect(wrong.status!.message).toContain(`${reg.host}/${upstreamRepo}`);
    expect(wrong.status!.message).toContain(`secret ${ns}/wrong`);
    const none = await expectFailed("no-creds", "AuthFailed");
    expect(none.status!.message).toContain(`${reg.host}/${upstreamRepo}`);
    expect(none.status!.message).toMatch(/anonymous/);
  });

  it("404 from the real registry is ManifestUnknown for an unknown tag and an unknown repository, and names the reference", async () => {
    const reg = service("registryBasic");
    await create("unknown-tag", { image: `${reg.host}/${upstreamRepo}:no-such-tag`, imagePullSecrets: [{ name: "good" }] });
    await create("unknown-repo", { image: `${reg.host}/reasons/nothing-here:base`, imagePullSecrets: [{ name: "good" }] });
    const tag = await expectFailed("unknown-tag", "ManifestUnknown");
    expect(tag.status!.message).toContain(`${reg.host}/${upstreamRepo}`);
    expect(tag.status!.message).toContain("no-such-tag");
    const repo = await expectFailed("unknown-repo", "ManifestUnknown");
    expect(repo.status!.message).toContain(`${reg.host}/reasons/nothing-here`);
  });

  it("an unparsable image is InvalidSpec; a missing pull secret is PullSecretMissing when the registry then refuses, and a secret that is no pull secret is PullSecretInvalid", async () => {
    const reg = service("registryBasic");
    await create("bad-image", { image: "Not A Valid//Ref" });
    await create("missing-secret", { image: `${reg.host}/${upstreamRepo}:base`, imagePullSecrets: [{ name: "nope" }] });
    await create("missing-beside-good", { image: `${reg.host}/${upstreamRepo}:base`, imagePullSecrets: [{ name: "nope" }, { name: "good" }] });
    await create("not-a-pull-secret", { image: `${reg.host}/${upstreamRepo}:base`, imagePullSecrets: [{ name: "opaque" }] });
    const bad = await expectFailed("bad-image", "InvalidSpec");
    expect(bad.status!.message).toMatch(/^invalid reference "Not A Valid\/\/Ref": /);
    expect(bad.status!.message).toMatch(/registry "Not A Valid" is not a valid host/);
    // Skipped, as the kubelet skips it; anonymous, the registry answers 401, and the missing secret is named as the cause.
    const missing = await expectFailed("missing-secret", "PullSecretMissing");
    expect(missing.status!.message).toMatch(new RegExp(`^pull secret ${ns}/nope does not exist`));
    expect(missing.status!.message).toContain(`${reg.host}/${upstreamRepo}`);
    // With another secret that works, the missing one does not matter.
    const beside = await until("missing-beside-good", ["Indexed", "Failed"]);
    expect(beside.status).toMatchObject({ phase: "Indexed", credentialSource: `secret ${ns}/good` });
    const opaque = await expectFailed("not-a-pull-secret", "PullSecretInvalid");
    expect(opaque.status!.message).toMatch(new RegExp(`^secret ${ns}/opaque: not an image pull secret \\(type "Opaque"\\)`));
  });

  it("a permanent failure is not retried in a loop, but is retried when the spec changes", async () => {
    const reg = service("registryBasic");
    fake.set("reasons/gone", { kind: "status", status: 404 });
    await create("perm-tag", { image: `${reg.host}/${upstreamRepo}:missing`, imagePullSecrets: [{ name: "good" }] });
    await create("perm-auth", { image: `${reg.host}/${upstreamRepo}:base`, imagePullSecrets: [{ name: "wrong" }] });
    await create("perm-fake", { image: `${fake.host}/reasons/gone:base` });
    const failed = {
      "perm-tag": await expectFailed("perm-tag", "ManifestUnknown"),
      "perm-auth": await expectFailed("perm-auth", "AuthFailed"),
      "perm-fake": await expectFailed("perm-fake", "ManifestUnknown"),
    };
    // One attempt, one manifest request (HEAD). A second is the controller re-running the scan because
    // the watch echo of its own "Resolving" status write re-queued it while the cache was stale.
    await sleep(1000);
    expect.soft(fake.manifestHits("reasons/gone").length, "manifest requests for one permanent failure").toBe(1);
    // From then on nobody patches the status (each patch moves the resourceVersion) nor asks the registry.
    const settled = Object.fromEntries(await Promise.all(Object.keys(failed).map(async (n) => [n, (await get(n)).metadata!.resourceVersion] as const)));
    expect.soft(settled, "no status write after the first Failed").toEqual(Object.fromEntries(Object.entries(failed).map(([n, s]) => [n, s.metadata!.resourceVersion])));
    const hitsSettled = fake.manifestHits("reasons/gone").length;
    await sleep(3000);
    for (const name of Object.keys(failed)) {
      const s = await get(name);
      expect(s.metadata!.resourceVersion, name).toBe(settled[name]);
      expect(s.status?.phase, name).toBe("Failed");
    }
    expect(fake.manifestHits("reasons/gone").length).toBe(hitsSettled);

    // A spec change (new generation) is retried: fix the tag of one, the pull secret of the other.
    await patchSpec("perm-tag", { image: `${reg.host}/${upstreamRepo}:base` });
    await patchSpec("perm-auth", { imagePullSecrets: [{ name: "good" }] });
    for (const name of ["perm-tag", "perm-auth"]) {
      const s = await until(name, ["Indexed"]);
      expect(s.metadata!.generation, name).toBe(2);
      expect(s.status).toMatchObject({ phase: "Indexed", observedGeneration: 2, digest: layoutDigest(ociBookworm(), "base"), credentialSource: `secret ${ns}/good` });
      expect(s.status!.conditions!.map((c) => `${c.type}=${c.status}/${c.reason}`), name).toEqual(["Resolved=True/Resolved", "Indexed=True/Indexed"]);
    }
  });

  it("429 and 500 are transient: Pending with RateLimited / RegistryUnavailable, retried with a growing backoff, and Indexed on their own once the registry recovers", async () => {
    const repos = { "flaky-429": "reasons/flaky-429", "flaky-500": "reasons/flaky-500", "flaky-then-404": "reasons/flaky-then-404" } as const;
    fake.set(repos["flaky-429"], { kind: "status", status: 429 });
    fake.set(repos["flaky-500"], { kind: "status", status: 500 });
    fake.set(repos["flaky-then-404"], { kind: "status", status: 500 });
    const expected = { "flaky-429": "RateLimited", "flaky-500": "RegistryUnavailable", "flaky-then-404": "RegistryUnavailable" } as const;
    for (const [name, repo] of Object.entries(repos)) await create(name, { image: `${fake.host}/${repo}:base`, imagePullSecrets: [{ name: "fake" }] });

    // Pending (not Failed), the Resolved condition carrying the transient reason and the registry's name.
    for (const [name, reason] of Object.entries(expected)) {
      const s = await until(name, ["Pending", "Failed", "Indexed"]);
      expect(s.status?.phase, name).toBe("Pending");
      expect(condition(s, "Resolved"), name).toMatchObject({ status: "False", reason });
      expect(condition(s, "Resolved")!.message, name).toContain(`${fake.host}/${repos[name as keyof typeof repos]}`);
    }

    // Watch the retries for 5 s from the first request. The controller's backoff starts at 1 s and
    // doubles: requests at about 0, 1 and 3 s. More than one request shows it retries; fewer than 10 that
    // it does not hammer the registry; growing gaps that the backoff grows.
    const firstHit = Math.min(...Object.values(repos).map((r) => fake.manifestHits(r)[0]!));
    await sleep(Math.max(0, firstHit + 5000 - Date.now()));
    for (const [name, repo] of Object.entries(repos)) {
      const hits = fake.manifestHits(repo);
      const window = hits.filter((t) => t - hits[0]! <= 5000);
      const gaps = window.slice(1).map((t, i) => t - window[i]!);
      const shown = `gaps ${JSON.stringify(gaps.slice(0, 8))}${gaps.length > 8 ? ` and ${gaps.length - 8} more` : ""} ms`;
      expect.soft(window.length, `${name}: manifest requests in 5 s (${shown})`).toBeGreaterThan(1);
      expect.soft(window.length, `${name}: manifest requests in 5 s (${shown})`).toBeLessThan(10);
      expect.soft(Math.min(...gaps), `${name}: shortest gap between retries (${shown})`).toBeGreaterThanOrEqual(700);
      if (gaps.length >= 2) expect.soft(gaps[1]!, `${name}: the second gap is longer than the first (${shown})`).toBeGreaterThan(gaps[0]! * 1.5);
      const s = await get(name);
      expect(["Pending", "Resolving"], `${name} is still being retried`).toContain(s.status?.phase);
    }

    // The registry recovers; nobody touches the ImageScans (their generation stays 1).
    fake.set(repos["flaky-429"], { kind: "proxy" });
    fake.set(repos["flaky-500"], { kind: "proxy" });
    fake.set(repos["flaky-then-404"], { kind: "status", status: 404 });
    for (const name of ["flaky-429", "flaky-500"]) {
      const s = await until(name, ["Indexed", "Failed"], 20_000);
      expect(s.status, name).toMatchObject({ phase: "Indexed", observedGeneration: 1, digest: layoutDigest(ociBookworm(), "base"), credentialSource: `secret ${ns}/fake` });
      expect(s.metadata!.generation, name).toBe(1);
      expect(s.status!.conditions!.map((c) => `${c.type}=${c.status}/${c.reason}`), name).toEqual(["Resolved=True/Resolved", "Indexed=True/Indexed"]);
      expect(s.status!.packages!.total, name).toBeGreaterThan(80);
    }
    // The one whose 500s turned into 404s: the retry happened, and ended in a permanent failure.
    const gone = await expectFailed("flaky-then-404", "ManifestUnknown");
    expect(gone.metadata!.generation).toBe(1);
    expect(gone.status!.message).toContain(`${fake.host}/${repos["flaky-then-404"]}`);
  });
});
