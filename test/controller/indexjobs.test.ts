// Indexing handed out through the PostgreSQL job queue to the indexer role of several `portcullis serve`
// processes, against the real API server, registry and PostgreSQL: `kill -9` of the process indexing a job in
// the middle of a layer, and another process finishes the job once its lease expired. Checked against what
// the registry served (through a loopback proxy that can hold a blob's response: the "middle of a layer" a
// real registry cannot be told to stop at) and against the job's row: the layer was fetched once more at
// most, every other layer once, the job done after two attempts, the ImageScan Indexed.
import { execFile } from "node:child_process";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import pg from "pg";
import { request } from "undici";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GROUP, type ImageScan, VERSION } from "../../src/kube/api/v1alpha1/index.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool } from "../env/index.js";
import { ociBookworm, skopeoPush } from "../env/images.js";
import { freePort, ProcessSupervisor } from "../env/process.js";
import { ServeProcess, waitFor } from "../env/serve.js";
import { startPostgres } from "../env/services.js";

const run = promisify(execFile);
const ns = "indexjobs-test";
const own = "indexjobs-system";
const databases = scratchDatabases();

/** Forwards everything to the registry; a blob GET whose digest is held waits until released. Counts blob GETs. */
class HoldingProxy {
  private readonly server: Server;
  readonly blobGets = new Map<string, number>();
  private held = new Set<string>();
  private waiting: Array<() => void> = [];
  host = "";

  constructor(private readonly upstream: URL) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.host = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  hold(digest: string): void {
    this.held.add(digest);
  }

  /** Blob requests waiting now. */
  get holding(): number {
    return this.waiting.length;
  }

  release(): void {
    this.held.clear();
    for (const w of this.waiting.splice(0)) w();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec((req.url ?? "").split("?")[0]!)?.[1];
    if (blob && req.method === "GET") this.blobGets.set(blob, (this.blobGets.get(blob) ?? 0) + 1);
    const forward = () => {
      const up = httpRequest(new URL(req.url!, this.upstream), { method: req.method, headers: { ...req.headers, host: this.upstream.host } }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on("error", () => res.destroy());
      req.pipe(up);
    };
    if (blob && req.method === "GET" && this.held.has(blob)) this.waiting.push(forward);
    else forward();
  }
}

describeWith(["kube", "registryBasic", "postgres"], "index jobs across serve processes", () => {
  let dbUrl: string;
  let proxy: HoldingProxy;
  let custom: k8s.CustomObjectsApi;
  const procs: ServeProcess[] = [];

  beforeAll(async () => {
    const reg = service("registryBasic");
    proxy = new HoldingProxy(new URL(reg.url));
    const kubectl = (...a: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...a]);
    [dbUrl] = await Promise.all([
      databases.create("indexjobs"),
      proxy.start(),
      skopeoPush(`oci:${ociBookworm()}:two`, reg, "indexjobs/debian:two"),
      (async () => {
        await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
        await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
      })(),
    ]);
    await kubectl("create", "namespace", ns);
    await kubectl("create", "namespace", own);
    await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${proxy.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }, 180_000);

  afterAll(async () => {
    for (const p of procs) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await proxy?.stop();
    await databases.dropAll();
  });

  async function start(name: string, url = dbUrl, jobLease = "3s"): Promise<ServeProcess> {
    const health = await freePort();
    const p = new ServeProcess(name, ["--database-url", url, "--namespace", own, "--health-addr", `127.0.0.1:${health}`, "--lease-duration", "4s", "--job-lease", jobLease,
      "--webhook", "false", "--no-pods", "--watch-namespaces", ns, "--advisory-update-interval", "0", "--index-workers", "1"], service("kube").kubeconfig);
    procs.push(p);
    await waitFor(`${name} ready`, async () => request(`http://127.0.0.1:${health}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false), 120_000, () => p.tail());
    return p;
  }

  it("a job whose process is killed in the middle of a layer is finished by another process after its lease; the layer is fetched once more, nothing else again", async () => {
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    try {
      const a = await start("indexer-a");
      // The image's top layer is held at the proxy: indexer-a will be in the middle of it when it dies.
      const { stdout } = await run(tool("skopeo"), ["inspect", "--raw", "--tls-verify=false", `--creds=${service("registryBasic").username}:${service("registryBasic").password}`, `docker://${service("registryBasic").host}/indexjobs/debian:two`]);
      const layers = (JSON.parse(stdout) as { layers: Array<{ digest: string }> }).layers.map((l) => l.digest);
      expect(layers.length).toBe(2);
      proxy.hold(layers[1]!);
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body: {
        apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "two" }, spec: { image: `${proxy.host}/indexjobs/debian:two`, imagePullSecrets: [{ name: "regcred" }] },
      } });
      const job = await waitFor("indexer-a to claim the job and reach the held layer", async () => {
        const { rows } = await db.query<{ id: string; owner: string | null; attempts: number; state: string }>("SELECT id, owner, attempts, state FROM index_job");
        if (!rows[0]?.owner?.startsWith("indexer-a/") || proxy.holding !== 1) return undefined;
        // ...and the base layer scanned and stored.
        const base = await db.query("SELECT 1 FROM scanned_layer s JOIN layer l ON l.id = s.layer_id WHERE l.hash = $1", [layers[0]]);
        return base.rows.length ? rows[0] : undefined;
      }, 90_000, () => a.tail());
      expect(job).toMatchObject({ state: "running", attempts: 1 });

      const b = await start("indexer-b");
      a.child.kill("SIGKILL");
      await a.exited;
      const killedAt = Date.now();
      proxy.release();

      const scan = await waitFor("the ImageScan Indexed by indexer-b", async () => {
        const s = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name: "two" })) as ImageScan;
        return s.status?.phase === "Indexed" ? s : undefined;
      }, 120_000, () => b.tail());
      expect(scan.status?.packages?.total).toBeGreaterThan(80);
      const took = Date.now() - killedAt;
      console.info(`index job taken over ${took} ms after its owner was killed (job lease 3 s)`);
      expect(took).toBeGreaterThan(1000);

      const { rows } = await db.query<{ owner: string | null; attempts: number; state: string }>("SELECT owner, attempts, state FROM index_job");
      expect(rows).toEqual([{ owner: null, attempts: 2, state: "done" }]);
      // The held layer: once by indexer-a (cut off), once by indexer-b. The base layer, finished and stored by
      // indexer-a before it died, is not fetched again.
      expect(proxy.blobGets.get(layers[1]!)).toBe(2);
      expect(proxy.blobGets.get(layers[0]!)).toBe(1);
      expect(b.lines.some((l) => l.includes('"msg":"index job done"'))).toBe(true);
      // A graceful stop gives up the Lease and any job at once.
      b.child.kill("SIGTERM");
      expect(await b.exited).toBe(0);
    } finally {
      await db.end();
    }
  }, 300_000);
  it("a PostgreSQL restart in the middle of a job: the process stays up and the job is done, the restart costing no attempt", async () => {
    // A cluster of this test's own (the shared one serves every other test): restarted with a fast shutdown.
    const runDir = mkdtempSync(join(tmpdir(), "indexjobs-pg-"));
    const sup = new ProcessSupervisor(runDir);
    const shared = process.env.PORTCULLIS_TEST_POSTGRES_ADMIN_URL;
    process.env.PORTCULLIS_TEST_POSTGRES_ADMIN_URL = "postgres://postgres@127.0.0.1:1/postgres";
    let own: Awaited<ReturnType<typeof startPostgres>>;
    try {
      own = await startPostgres(sup, "restart");
    } finally {
      if (shared === undefined) delete process.env.PORTCULLIS_TEST_POSTGRES_ADMIN_URL;
      else process.env.PORTCULLIS_TEST_POSTGRES_ADMIN_URL = shared;
    }
    const restart = own.restart!;
    try {
      // A job lease longer than the outage: the attempt cut short by it is given back, not taken over.
      const c = await start("indexer-c", own.service.url, "15s");
      const { stdout } = await run(tool("skopeo"), ["inspect", "--raw", "--tls-verify=false", `--creds=${service("registryBasic").username}:${service("registryBasic").password}`, `docker://${service("registryBasic").host}/indexjobs/debian:two`]);
      const layers = (JSON.parse(stdout) as { layers: Array<{ digest: string }> }).layers.map((l) => l.digest);
      const held = proxy.blobGets.get(layers[1]!) ?? 0;
      proxy.hold(layers[1]!);
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body: {
        apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "two-restart" }, spec: { image: `${proxy.host}/indexjobs/debian:two`, imagePullSecrets: [{ name: "regcred" }] },
      } });
      const jobState = async () => {
        const db = new pg.Client({ connectionString: own.service.url });
        await db.connect();
        try {
          return (await db.query<{ owner: string | null; attempts: number; state: string }>("SELECT owner, attempts, state FROM index_job")).rows;
        } finally {
          await db.end();
        }
      };
      await waitFor("indexer-c in the middle of the held layer", async () => ((await jobState())[0]?.owner?.startsWith("indexer-c/") && proxy.holding === 1) || undefined, 90_000, () => c.tail());
      // Down for 3 s while the layer is streaming; the layer's bytes arrive while the database is away.
      const restarting = restart(3000);
      await new Promise((r) => setTimeout(r, 500));
      proxy.release();
      await restarting;
      const scan = await waitFor("the ImageScan Indexed after the restart", async () => {
        const s = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name: "two-restart" })) as ImageScan;
        return s.status?.phase === "Indexed" ? s : undefined;
      }, 120_000, () => c.tail());
      expect(scan.status?.packages?.total).toBeGreaterThan(80);
      expect(c.child.exitCode).toBeNull();
      expect(await jobState()).toEqual([{ owner: null, attempts: 1, state: "done" }]);
      // The held layer was fetched again at most once.
      expect((proxy.blobGets.get(layers[1]!) ?? 0) - held).toBeLessThanOrEqual(2);
    } finally {
      for (const p of procs.filter((x) => x.name === "indexer-c")) p.child.kill("SIGKILL");
      await own.stop();
      await sup.stopAll();
      rmSync(runDir, { recursive: true, force: true });
    }
  }, 300_000);
});
