// Two `portcullis serve` replicas with leader election and one PostgreSQL store, against the real API
// server: only the leader runs controllers; SIGKILL it mid-scan and the other takes over within the lease
// duration, finishes every scan, and downloads nothing the first one had finished.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import pg from "pg";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";
import { ociBookworm, skopeoPush } from "../env/images.js";
import { freePort } from "../env/process.js";
import { waitFor } from "../env/serve.js";
import { GROUP, type ImageScan, VERSION } from "../../src/kube/api/v1alpha1/index.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const run = promisify(execFile);
const ns = "failover-test";
const own = "failover-system";

interface LogLine {
  msg: string;
  layers?: number;
  layersFetched?: number;
  layersReused?: number;
  cached?: boolean;
  scan?: string;
  time: string;
}

class Replica {
  readonly lines: LogLine[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private partial = "";

  constructor(readonly name: string, args: string[], env: NodeJS.ProcessEnv) {
    // One process (node with tsx's loader, not the tsx wrapper), so that SIGKILL kills the replica itself.
    this.child = spawn(process.execPath, ["--import", "tsx", bin, "serve", ...args], { env: { ...process.env, ...env, POD_NAME: name } });
    this.child.stderr!.on("data", (c: Buffer) => {
      const text = this.partial + c.toString();
      const parts = text.split("\n");
      this.partial = parts.pop()!;
      for (const p of parts) if (p.trim()) this.lines.push(JSON.parse(p) as LogLine);
    });
    this.exited = new Promise((r) => this.child.on("exit", (code) => r(code)));
  }

  saw(msg: string): LogLine | undefined {
    return this.lines.find((l) => l.msg === msg);
  }

  get indexed(): LogLine[] {
    return this.lines.filter((l) => l.msg.startsWith("indexed "));
  }
}

describeWith(["kube", "registryBasic", "postgres"], "leader election and failover of portcullis serve", () => {
  let database: string;
  let dbUrl: string;
  const replicas: Replica[] = [];
  let custom: k8s.CustomObjectsApi;
  let coordination: k8s.CoordinationV1Api;

  beforeAll(async () => {
    // A database of its own: this test is about what gets downloaded, so no other test's layers may be in it.
    const admin = new pg.Client({ connectionString: service("postgres").url });
    await admin.connect();
    database = `portcullis_failover_${process.pid}`;
    await admin.query(`DROP DATABASE IF EXISTS ${database}`);
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const u = new URL(service("postgres").url);
    u.pathname = `/${database}`;
    dbUrl = u.toString();

    const reg = service("registryBasic");
    for (const tag of ["base", "two", "lang"]) await skopeoPush(`oci:${ociBookworm()}:${tag}`, reg, `failover/debian:${tag}`);
    const kubectl = (...a: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...a]);
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
    await kubectl("create", "namespace", ns);
    await kubectl("create", "namespace", own);
    await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  }, 180_000);

  afterAll(async () => {
    for (const r of replicas) r.child.kill("SIGKILL");
    await Promise.all(replicas.map((r) => r.exited));
    const admin = new pg.Client({ connectionString: service("postgres").url });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => admin.query(`DROP DATABASE IF EXISTS ${database}`));
    await admin.end();
  });

  async function start(name: string): Promise<Replica> {
    const port = await freePort();
    const r = new Replica(name, ["--database-url", dbUrl, "--namespace", own, "--health-addr", `127.0.0.1:${port}`, "--concurrency", "1", "--lease-duration", "4s", "--webhook", "false", "--watch-namespaces", ns], { KUBECONFIG: service("kube").kubeconfig });
    replicas.push(r);
    await waitFor(`${name} ready`, async () => (await request(`http://127.0.0.1:${port}/readyz`).then(async (res) => (await res.body.dump(), res.statusCode === 200), () => false)) || undefined);
    return r;
  }

  it("runs controllers on one replica only, and after a SIGKILL of the leader mid-scan the other finishes the work without downloading it twice", async () => {
    const first = await start("replica-a");
    await waitFor("replica-a to lead", () => first.saw("controllers running"));
    const second = await start("replica-b");
    // Three images sharing a base: three layers in all.
    const reg = service("registryBasic");
    const core = (() => {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(service("kube").kubeconfig);
      return kc.makeApiClient(k8s.CoreV1Api);
    })();
    for (const tag of ["base", "two", "lang"]) {
      await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: `app-${tag}` }, spec: { imagePullSecrets: [{ name: "regcred" }], containers: [{ name: "app", image: `${reg.host}/failover/debian:${tag}` }] } } });
    }
    const lease = await coordination.readNamespacedLease({ namespace: own, name: "portcullis-controller" });
    expect(lease.spec?.holderIdentity).toBe("replica-a");
    expect(second.saw("controllers running")).toBeUndefined();

    // Kill the leader as soon as it has finished one scan (the others are queued or in flight).
    await waitFor("the first scan", () => first.indexed[0]);
    first.child.kill("SIGKILL");
    const killedAt = Date.now();
    await first.exited;
    await waitFor("replica-b to take over", () => second.saw("controllers running"), 30_000);
    const takeover = Date.now() - killedAt;
    console.info(`failover: replica-b runs the controllers ${takeover} ms after the leader was killed (lease 4 s)`);
    // Lease 4 s, attempts every 533 ms (jittered up to 2.2x): the lease, one jittered attempt, start-up.
    expect(takeover).toBeGreaterThan(3000);
    expect(takeover).toBeLessThan(4000 + 1200 + 2500);

    const scans = await waitFor("every scan Indexed", async () => {
      const items = ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans" })) as { items: ImageScan[] }).items;
      return items.length === 3 && items.every((s) => s.status?.phase === "Indexed") ? items : undefined;
    });
    expect(scans.map((s) => s.status!.packages!.total).every((n) => n > 80)).toBe(true);

    // Nothing indexed twice: what replica-a finished, replica-b answers from the store. The only layer that
    // may be fetched twice is one replica-a was streaming when it died.
    const finishedByA = new Set(first.indexed.map((l) => l.scan));
    const redone = second.indexed.filter((l) => finishedByA.has(l.scan) && !l.cached);
    expect(redone).toEqual([]);
    const reports = [...first.indexed, ...second.indexed];
    const fetched = reports.reduce((n, l) => n + (l.layersFetched ?? 0), 0);
    expect(fetched).toBeLessThanOrEqual(4);
    // Each report accounts for every layer of its image, fetched or found in the store. (No lower bound on the
    // fetches reported: a layer replica-a stored just before it died, its scan not yet reported, is fetched by
    // nobody afterwards; the store below says whether anything was lost.)
    for (const l of reports) expect((l.layersFetched ?? 0) + (l.layersReused ?? 0), JSON.stringify(l)).toBe(l.layers);
    // Nothing lost: the store (a database of this test's own) holds the three layers, each with a result from
    // every scanner.
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ layers: string; results: string; scanners: string }>(
        "SELECT count(DISTINCT layer_id) AS layers, count(*) AS results, (SELECT count(*) FROM scanner) AS scanners FROM scanned_layer",
      );
      expect(rows[0]!.layers).toBe("3");
      expect(Number(rows[0]!.scanners)).toBeGreaterThan(5);
      expect(Number(rows[0]!.results)).toBe(3 * Number(rows[0]!.scanners));
    } finally {
      await db.end();
    }

    // A graceful stop gives the Lease up at once.
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    const released = await coordination.readNamespacedLease({ namespace: own, name: "portcullis-controller" });
    expect(released.spec?.holderIdentity ?? "").toBe("");
  }, 240_000);
});
