// Watched repositories against the real API server and registries: a repository of 30 tags (versions and not)
// whose newest 5 versions get ImageScans and nothing else; a pushed tag is scanned within an interval and a pod
// with it is admitted on the first review; a moved tag is scanned again; a deleted tag stops being tracked and
// its scan is collected; a restart lists nothing within the interval; a token-auth registry paged with `n` and
// `Link`; and a registry answering 429 on the listing (a proxy in front of the real registry: the one fault a
// real registry cannot be made to show).
import { execFile } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SharedCache } from "../../src/kube/cache.js";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { PodController } from "../../src/controller/pods.js";
import { ImageRepositoryController, type ImageRepository, type ListingObservation, type RepositoryCall } from "../../src/controller/repositories.js";
import { parseReference } from "../../src/image/reference.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { gzip, makeTar } from "../../src/layers/testing.js";
import { PortcullisMetrics } from "../../src/metrics/metrics.js";
import type { RegistryMetrics } from "../../src/registry/transport.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { AdmissionWebhook } from "../../src/webhook/server.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool, until } from "../env/index.js";
import { RegistryPusher, sha256 } from "../env/oci-push.js";
import type { RegistryService } from "../env/services.js";
import { GROUP, type ImageScan, scanName, UNUSED_SINCE_ANNOTATION, VERSION, WATCHED_BY_ANNOTATION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const crdDir = fileURLToPath(new URL("../../crds/", import.meta.url));
const NS = "repos-a";
const STEADY = "repos-steady";
const PAGED = "repos-paged";
const LIMITED = "repos-429";
const MANY = "repos-many";
const DATED = "repos-dated";
const INTERVAL_MS = 2000;

// 30 tags: 18 versions the filter takes, 2 prereleases it leaves out (semver ranges skip them), 10 that are not versions (1.0 among them).
const TAKEN = [...Array.from({ length: 12 }, (_, i) => `1.${i}.0`), ...Array.from({ length: 6 }, (_, i) => `v2.${i}.0`)];
const OTHERS = ["2.6.0-rc.1", "3.0.0-beta.1", "latest", "main", "dev-1", "dev-2", "sha-0a1b2c", "nightly", "1.0", "stable", "edge", "canary"];
const NEWEST_5 = ["v2.5.0", "v2.4.0", "v2.3.0", "v2.2.0", "v2.1.0"];

/**
 * A reverse proxy in front of a real registry (auth and content stay the registry's), for the two things this
 * registry (distribution 2.8) cannot be made to do: page a tag list (it ignores `n`; distribution 3 pages with
 * `n`, `last` and `Link`, which `page` does here on the real list), and answer 429 (`intercept`).
 */
async function registryProxy(upstream: RegistryService, o: { page?: boolean; intercept?: (req: IncomingMessage, res: ServerResponse) => boolean }): Promise<{ server: Server; host: string }> {
  const server = createServer((req, res) => {
    if (o.intercept?.(req, res)) return;
    const u = new URL(req.url!, "http://proxy");
    const paging = o.page && u.pathname.endsWith("/tags/list");
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== "host" && k !== "connection")) as Record<string, string>;
    void request(`${upstream.url}${paging ? u.pathname : req.url}`, { method: req.method as "GET", headers }).then(async (up) => {
      const out = Object.fromEntries(Object.entries(up.headers).filter(([k]) => !["connection", "transfer-encoding", "keep-alive", "content-length"].includes(k))) as Record<string, string>;
      let body = Buffer.from(await up.body.arrayBuffer());
      if (paging && up.statusCode === 200) {
        const all = (JSON.parse(body.toString("utf8")) as { name: string; tags: string[] });
        const n = Number(u.searchParams.get("n") ?? all.tags.length);
        const sorted = [...all.tags].sort();
        const last = u.searchParams.get("last");
        const from = last ? sorted.findIndex((t) => t > last) : 0;
        const page = from < 0 ? [] : sorted.slice(from, from + n);
        if (from >= 0 && from + n < sorted.length) out.link = `<${u.pathname}?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
        body = Buffer.from(JSON.stringify({ name: all.name, tags: page }));
      }
      res.writeHead(up.statusCode, { ...out, "content-length": String(body.length) });
      res.end(req.method === "HEAD" ? undefined : body);
    }, () => res.writeHead(502).end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describeWith(["kube", "registryBasic", "registryToken", "postgres"], "ImageRepository controller", () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let store: Store;
  let scans: ImageScanController;
  let cache: SharedCache;
  let pods: PodController;
  let repos: ImageRepositoryController;
  let webhook: AdmissionWebhook;
  let pusher: RegistryPusher;
  const proxies: Server[] = [];
  const metrics = new PortcullisMetrics();
  const requests: Array<{ method: string; status: number | "error" }> = [];
  const listings: ListingObservation[] = [];
  const digests = new Map<string, string>();
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const repoImage = () => `${service("registryBasic").host}/repos/app`;
  const counting = (into: typeof requests): RegistryMetrics => ({ request: (e) => void into.push({ method: e.method, status: e.status }) });
  const hooks = metrics.registryHooks();

  /** A one-layer image whose layer names the tag and a generation, so every push has a digest of its own. */
  const pushTag = async (p: RegistryPusher, repo: string, tag: string, generation = 0, created?: string) => {
    const tar = await makeTar([{ name: `etc/tag-${tag}`, content: `${tag} ${generation}\n` }]);
    const { digest } = await p.pushImage(repo, tag, [{ data: gzip(tar), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: sha256(tar) }], undefined, created ? { created } : {});
    return digest;
  };
  const scansIn = async (ns: string) => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans" })) as { items: ImageScan[] }).items;
  const repository = async (ns: string, name: string) => (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagerepositories", name })) as ImageRepository;
  const createRepository = (ns: string, name: string, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagerepositories", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageRepository", metadata: { name }, spec } });
  /** A controller, and how many of each call it made (its onCall). */
  const makeRepos = (o: Partial<ConstructorParameters<typeof ImageRepositoryController>[0]> & { namespaces: string[] }) => {
    const counts: Record<RepositoryCall, number> = { listing: 0, resolution: 0, configRead: 0, statusWrite: 0 };
    const ctl = new ImageRepositoryController({ kc, cache, store: store.repositories, registry: { maxAttempts: 2, backoffBaseMs: 50 }, minIntervalMs: 0, onCall: (c) => counts[c]++, ...o });
    return Object.assign(ctl, { counts });
  };

  beforeAll(async () => {
    const reg = service("registryBasic");
    pusher = new RegistryPusher(reg);
    // Pushed in a shuffled order, so the registry's (lexical) listing order is not the answer.
    for (const tag of [...TAKEN, ...OTHERS].sort(() => Math.random() - 0.5)) digests.set(tag, await pushTag(pusher, "repos/app", tag));
    await kubectl("apply", "-f", crdDir);
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev", "imagerepositories.portcullis.dev"]);
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    for (const ns of [NS, STEADY, PAGED, LIMITED, MANY, DATED]) await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const ns of [NS, STEADY, MANY, DATED]) {
      await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } }).catch(() => undefined);
    }
    store = await openStore(await databases.create("controller_repositories"));
    // One cache, as in `portcullis serve`: controllers and webhook share the ImageScan informer.
    cache = new SharedCache(kc);
    scans = new ImageScanController({ kc, cache, indexer: new Indexer({ store, scanners: defaultScanners() }), registry: { maxAttempts: 1 }, defaultPlatform: { os: "linux", architecture: "amd64" }, namespaces: [NS, STEADY, PAGED, LIMITED, MANY, DATED] });
    repos = makeRepos({
      namespaces: [NS], jitter: 0.1,
      registryMetrics: { request: (e) => (counting(requests).request!(e), hooks.request!(e)) },
      onListing: (e) => (listings.push(e), metrics.observeListing(e)),
    });
    pods = new PodController({ kc, cache, registry: { maxAttempts: 1 }, gcAfterMs: 1500, gcIntervalMs: 300, namespaces: [NS], alsoInUse: () => repos.uses() });
    webhook = new AdmissionWebhook({ kc, cache, namespace: "portcullis-system", timeoutSeconds: 5, registry: { maxAttempts: 1 }, defaultPolicy: { mode: "Enforce", onMissingScan: "deny", requireDigest: false } });
    await scans.start();
    await repos.start();
    await pods.start();
    await webhook.start();
  }, 300_000);

  afterAll(async () => {
    await pods?.stop();
    await repos?.stop();
    await webhook?.stop();
    await scans?.stop();
    cache?.stop();
    await pusher?.close();
    for (const p of proxies) p.close();
    await store?.close();
  });

  const indexedScans = (ns: string, want: readonly string[]) => until(`Indexed ImageScans of ${want.length} digests in ${ns}`, async () => {
    const items = (await scansIn(ns)).filter((s) => !s.metadata?.deletionTimestamp);
    const byDigest = new Map(items.map((s) => [s.status?.resolvedDigest ?? "", s]));
    return want.every((d) => byDigest.get(d)?.status?.phase === "Indexed") ? items : undefined;
  }, 120_000);

  it("selects the newest 5 of 30 tags by version and scans exactly those, named and de-duplicated as pods' scans", async () => {
    await createRepository(NS, "app", {
      image: repoImage(), interval: `${INTERVAL_MS / 1000}s`, tagRecheckInterval: "0s", maxTags: 5,
      tagFilter: { semverRange: ">=1.0.0" }, imagePullSecrets: [{ name: "regcred" }],
    });
    const want = NEWEST_5.map((t) => digests.get(t)!);
    const items = await indexedScans(NS, want);
    // Exactly those: no scan of any other tag.
    expect(items.map((s) => s.status!.resolvedDigest).sort()).toEqual([...want].sort());
    const ref = parseReference(repoImage());
    for (const s of items) {
      expect(s.metadata!.name).toBe(scanName(ref, s.status!.resolvedDigest!));
      expect(s.metadata!.annotations![WATCHED_BY_ANNOTATION]).toBe(`${NS}/app`);
      expect(s.spec).toEqual({ image: `${ref.registry}/${ref.repository}@${s.status!.resolvedDigest}`, imagePullSecrets: [{ name: "regcred" }] });
    }
    const repo = await until("the repository Ready", async () => {
      const r = await repository(NS, "app");
      return r.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" && r.status.selected?.length === 5 ? r : undefined;
    });
    expect(repo.status!.tags).toBe(30);
    expect(repo.status!.selected!.map((s) => s.tag)).toEqual(NEWEST_5);
    expect(repo.status!.selected!.map((s) => s.digest)).toEqual(want);
    const table = (await kubectl("-n", NS, "get", "repo")).stdout;
    expect(table.split("\n")[0]).toMatch(/^NAME\s+IMAGE\s+TAGS\s+LAST SCAN\s+READY\s+AGE/);
    expect(table).toMatch(new RegExp(`^app\\s+${repoImage()}\\s+30\\s+\\S+\\s+True\\s+`, "m"));
    console.info(`kubectl get repo:\n${table}`);
  });

  it("takes the API server's defaults, and says InvalidSpec for a tag in the image or a pattern that could backtrack for ever", async () => {
    await createRepository(NS, "bad-tag", { image: `${repoImage()}:v1` });
    await createRepository(NS, "bad-pattern", { image: repoImage(), tagFilter: { pattern: "^(v+)+$" } });
    for (const [name, why] of [["bad-tag", /names a tag or digest/], ["bad-pattern", /nested quantifiers/]] as const) {
      const r = await until(`${name} InvalidSpec`, async () => {
        const x = await repository(NS, name);
        return x.status?.conditions?.[0]?.reason ? x : undefined;
      });
      expect(r.status!.conditions![0]).toMatchObject({ type: "Ready", status: "False", reason: "InvalidSpec", message: expect.stringMatching(why) });
      // The CRD's defaults, filled by the API server.
      expect(r.spec).toMatchObject({ interval: "10m", tagRecheckInterval: "1h", maxTags: 5 });
    }
    const refused = await createRepository(NS, "digest", { image: `${repoImage()}@sha256:${"0".repeat(64)}` }).catch((e: unknown) => e);
    expect(String((refused as { body?: unknown }).body)).toMatch(/spec.image/);
    for (const name of ["bad-tag", "bad-pattern"]) await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: "imagerepositories", name });
  });

  it("scans a pushed tag within one interval, and a pod with it is admitted on the first review", async () => {
    const t0 = Date.now();
    const digest = await pushTag(pusher, "repos/app", "v2.6.0");
    digests.set("v2.6.0", digest);
    const created = await until("an ImageScan of the pushed tag", async () => (await scansIn(NS)).find((s) => s.spec.image.endsWith(digest)), 30_000, 50);
    const requestedMs = Date.now() - t0;
    await indexedScans(NS, [digest]);
    const indexedMs = Date.now() - t0;
    console.info(`push to ImageScan created: ${requestedMs} ms; push to Indexed: ${indexedMs} ms (interval ${INTERVAL_MS} ms, jitter 10%)`);
    // One interval (jitter included) and a listing's round trip at most.
    expect(requestedMs).toBeLessThan(INTERVAL_MS * 1.1 + 1500);
    expect(created.metadata!.annotations![WATCHED_BY_ANNOTATION]).toBe(`${NS}/app`);

    const review = JSON.stringify({
      apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      request: {
        uid: "first-try", kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" }, operation: "CREATE",
        namespace: NS, name: "web", userInfo: { username: "deployer" },
        object: { apiVersion: "v1", kind: "Pod", metadata: { name: "web", namespace: NS }, spec: { containers: [{ name: "app", image: `${repoImage()}:v2.6.0` }] } },
      },
    });
    await until("the webhook's cache to hold the Indexed scan", async () => webhook.scans.list().some((s) => s.status?.resolvedDigest === digest && s.status.phase === "Indexed") || undefined);
    const answer = (await webhook.review(review, "validate")) as { response: { allowed: boolean; status?: { message?: string } } };
    expect(answer.response.allowed, answer.response.status?.message).toBe(true);

    // v2.1.0 fell out of the newest 5: its scan is no longer used by anything and is collected.
    const dropped = digests.get("v2.1.0")!;
    await until("the scan of the tag no longer selected collected", async () => ((await scansIn(NS)).some((s) => s.status?.resolvedDigest === dropped) ? undefined : true), 30_000);
    expect((await repository(NS, "app")).status!.selected!.map((s) => s.tag)).toEqual(["v2.6.0", ...NEWEST_5.slice(0, 4)]);
  });

  it("scans a moved tag's new image, and stops tracking a deleted tag (its scan collected)", async () => {
    const before = digests.get("v2.6.0")!;
    const moved = await pushTag(pusher, "repos/app", "v2.6.0", 1);
    expect(moved).not.toBe(before);
    await indexedScans(NS, [moved]);
    await until("the repository to select the moved digest", async () => ((await repository(NS, "app")).status?.selected?.[0]?.digest === moved ? true : undefined));
    await until("the old digest's scan collected", async () => ((await scansIn(NS)).some((s) => s.status?.resolvedDigest === before) ? undefined : true), 30_000);

    const del = await pusher.send("repos/app", "DELETE", `/v2/repos/app/manifests/${moved}`);
    await del.body.dump();
    expect(del.statusCode).toBe(202);
    const repo = await until("the deleted tag dropped", async () => {
      const r = await repository(NS, "app");
      return r.status?.selected?.some((s) => s.tag === "v2.6.0") ? undefined : r;
    }, 30_000);
    expect(repo.status!.selected!.map((s) => s.tag)).toEqual(NEWEST_5);
    expect(repo.status!.tags).toBe(30);
    expect((await store.repositories.get(`${NS}/app`))!.tags.map((t) => t.tag)).not.toContain("v2.6.0");
    // Marked unused, then deleted by the Pod controller's collector.
    await until("the deleted tag's scan collected", async () => ((await scansIn(NS)).some((s) => s.status?.resolvedDigest === moved) ? undefined : true), 30_000);
    // v2.1.0 is selected again and scanned again.
    await indexedScans(NS, [digests.get("v2.1.0")!]);
    expect((await scansIn(NS)).filter((s) => s.metadata?.annotations?.[UNUSED_SINCE_ANNOTATION]).map((s) => s.status?.resolvedDigest)).toEqual([]);
    const text = (await metrics.text()).body;
    expect(text).toMatch(/portcullis_repository_tags_listed_total\{registry="other"\} \d+/);
    expect(text).toMatch(/portcullis_repository_new_digests_total\{registry="other"\} [1-9]/);
  });

  it("after a restart lists nothing and resolves nothing it knows within the interval", async () => {
    const steady = makeRepos({ namespaces: [STEADY] });
    await steady.start();
    await createRepository(STEADY, "steady", { image: repoImage(), interval: "1h", maxTags: 3, tagFilter: { pattern: "^v2\\.", semverRange: ">=2.0.0" }, imagePullSecrets: [{ name: "regcred" }] });
    await until("steady Ready", async () => ((await repository(STEADY, "steady")).status?.conditions?.[0]?.status === "True" ? true : undefined));
    expect(steady.counts.listing).toBe(1);
    await steady.stop();

    const seen: typeof requests = [];
    const again = makeRepos({ namespaces: [STEADY], registryMetrics: counting(seen) });
    await again.start();
    await until("the restarted controller to reconcile", async () => (again.counts.statusWrite >= 1 ? true : undefined));
    await again.stop();
    expect(again.counts).toMatchObject({ listing: 0, resolution: 0 });
    expect(seen, "registry requests after the restart").toEqual([]);
    // Its scans are the very ones of the first repository (one per namespace and digest: here another namespace).
    expect((await scansIn(STEADY)).map((s) => s.status?.resolvedDigest).sort()).toEqual(["v2.5.0", "v2.4.0", "v2.3.0"].map((t) => digests.get(t)).sort());
  });

  it("orders tags that are not versions by their image's creation time (from the config)", async () => {
    const dated: Record<string, string | undefined> = { alpha: "2026-03-01T00:00:00Z", beta: "2026-01-01T00:00:00Z", gamma: "2026-02-01T00:00:00Z", delta: undefined };
    const d = new Map<string, string>();
    for (const [tag, created] of Object.entries(dated)) d.set(tag, await pushTag(pusher, "repos/dated", tag, 0, created));
    const ctl = makeRepos({ namespaces: [DATED] });
    await ctl.start();
    try {
      await createRepository(DATED, "dated", { image: `${service("registryBasic").host}/repos/dated`, maxTags: 2, imagePullSecrets: [{ name: "regcred" }] });
      const r = await until("dated Ready", async () => {
        const x = await repository(DATED, "dated");
        return x.status?.conditions?.[0]?.status === "True" ? x : undefined;
      });
      expect(r.status!.selected!.map((s) => [s.tag, s.digest, s.created])).toEqual([["alpha", d.get("alpha"), "2026-03-01T00:00:00.000Z"], ["gamma", d.get("gamma"), "2026-02-01T00:00:00.000Z"]]);
      expect(r.status!.message).toMatch(/by creation time/);
      // Each tag's manifest and config read once; a second pass reads nothing.
      expect(ctl.counts.configRead).toBe(4);
      ctl.queue.add(`${DATED}/dated`);
      await until("a second pass", async () => (ctl.counts.statusWrite >= 2 ? true : undefined));
      expect(ctl.counts.configRead).toBe(4);
    } finally {
      await ctl.stop();
    }
  });

  it("asks the registry for one tag list per interval and no manifest when 1,000 tags do not change", async () => {
    // One image under 1,000 tags (the manifest PUT again under each tag).
    await pushTag(pusher, "repos/many", "5.0.0");
    const manifest = await pusher.send("repos/many", "GET", "/v2/repos/many/manifests/5.0.0", { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
    const body = await manifest.body.text();
    for (let i = 1; i < 1000; i++) await pusher.pushManifest("repos/many", `5.${i}.0`, body, "application/vnd.oci.image.manifest.v1+json");
    const seen: typeof requests = [];
    let listed = 0;
    const ctl = makeRepos({ namespaces: [MANY], jitter: 0.1, registryMetrics: counting(seen), onListing: (e) => void (e.error === undefined && listed++) });
    await ctl.start();
    try {
      await createRepository(MANY, "many", { image: `${service("registryBasic").host}/repos/many`, interval: "2s", maxTags: 5, imagePullSecrets: [{ name: "regcred" }] });
      await until("many Ready", async () => ((await repository(MANY, "many")).status?.conditions?.[0]?.status === "True" ? true : undefined));
      const first = { gets: seen.filter((x) => x.method === "GET" && x.status === 200).length, heads: seen.filter((x) => x.method === "HEAD").length };
      const startListings = listed;
      const mark = seen.length;
      const t0 = Date.now();
      await until("three more listings", async () => (listed >= startListings + 3 ? true : undefined), 30_000, 20);
      const later = seen.slice(mark).filter((x) => x.status !== 401);
      const n = listed - startListings;
      console.info(`${n} listings in ${Date.now() - t0} ms (interval 2 s, jitter 10%)`);
      const pages = later.filter((x) => x.method === "GET").length;
      const manifests = later.filter((x) => x.method === "HEAD").length;
      console.info(`1,000 tags, no change: first round ${first.gets} GET (tag list pages), ${first.heads} HEAD (5 selected tags resolved); then per interval: ${(pages / n).toFixed(2)} tag-list request(s), ${(manifests / n).toFixed(2)} manifest request(s) over ${n} intervals`);
      expect(first.heads).toBe(5);
      expect(manifests).toBe(0);
      expect(pages / n).toBe(1);
      expect((await repository(MANY, "many")).status!.tags).toBe(1000);
    } finally {
      await ctl.stop();
    }
  });

  it("lists a token-auth registry page by page (n and Link)", async () => {
    const reg = service("registryToken");
    const p = new RegistryPusher(reg);
    const tags = Array.from({ length: 25 }, (_, i) => `0.${i}.0`);
    const d = new Map<string, string>();
    try {
      for (const tag of tags) d.set(tag, await pushTag(p, "paged/app", tag));
    } finally {
      await p.close();
    }
    const pager = await registryProxy(reg, { page: true });
    proxies.push(pager.server);
    await kubectl("-n", PAGED, "create", "secret", "docker-registry", "regcred", `--docker-server=${pager.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    const seen: Array<{ method: string; status: number | "error" }> = [];
    let tokens = 0;
    const paged = makeRepos({ namespaces: [PAGED], pageSize: 10, registryMetrics: { ...counting(seen), tokenFetch: (e) => void (e.ok && tokens++) } });
    await paged.start();
    try {
      await createRepository(PAGED, "paged", { image: `${pager.host}/paged/app`, maxTags: 2, imagePullSecrets: [{ name: "regcred" }] });
      const r = await until("paged Ready", async () => {
        const x = await repository(PAGED, "paged");
        return x.status?.conditions?.[0]?.status === "True" ? x : undefined;
      });
      expect(r.status!.tags).toBe(25);
      expect(r.status!.selected!.map((s) => [s.tag, s.digest])).toEqual([["0.24.0", d.get("0.24.0")], ["0.23.0", d.get("0.23.0")]]);
      // Three pages of at most 10, each a GET (plus the 401 that asked for a token), then a HEAD per selected tag.
      expect(seen.filter((x) => x.method === "GET" && x.status === 200)).toHaveLength(3);
      expect(seen.filter((x) => x.method === "HEAD" && x.status === 200)).toHaveLength(2);
      expect(tokens).toBeGreaterThan(0);
    } finally {
      await paged.stop();
    }
  });

  it("honours 429 and Retry-After on the listing, and says RateLimited when the registry asks for too long a wait", async () => {
    const reg = service("registryBasic");
    let mode: "once" | "always" = "once";
    let limited = 0;
    const limiter = await registryProxy(reg, {
      intercept: (req, res) => {
        if (!req.url?.includes("/tags/list") || !req.headers.authorization || (mode === "once" && limited > 0)) return false;
        limited++;
        res.writeHead(429, { "retry-after": mode === "always" ? "600" : "1", "content-type": "application/json" }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
        return true;
      },
    });
    proxies.push(limiter.server);
    const host = limiter.host;
    await kubectl("-n", LIMITED, "create", "secret", "docker-registry", "regcred", `--docker-server=${host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    const seen: ListingObservation[] = [];
    const ctl = makeRepos({ namespaces: [LIMITED], registry: { maxAttempts: 3, maxRetryAfterMs: 5000 }, onListing: (e) => void seen.push(e) });
    await ctl.start();
    try {
      const t0 = Date.now();
      await createRepository(LIMITED, "limited", { image: `${host}/repos/app`, maxTags: 1, tagFilter: { semverRange: "^1" }, imagePullSecrets: [{ name: "regcred" }] });
      const r = await until("limited Ready after the 429", async () => {
        const x = await repository(LIMITED, "limited");
        return x.status?.conditions?.[0]?.status === "True" ? x : undefined;
      });
      expect(limited).toBe(1);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
      expect(r.status!.selected!.map((s) => s.tag)).toEqual(["1.11.0"]);

      mode = "always";
      await custom.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace: LIMITED, plural: "imagerepositories", name: "limited", body: { spec: { image: `${host}/repos/other` } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
      const failed = await until("limited RateLimited", async () => {
        const x = await repository(LIMITED, "limited");
        const c = x.status?.conditions?.[0];
        return c?.status === "False" ? c : undefined;
      });
      expect(failed.reason).toBe("RateLimited");
      expect(failed.message).toMatch(/asks to wait 600 s/);
      expect(seen.at(-1)).toMatchObject({ error: "RateLimited", tags: 0 });
      // The client gave up at once (600 s is over its limit): one request, and the next attempt waits those 600 s.
      expect(limited).toBe(2);
    } finally {
      await ctl.stop();
    }
  });
});
