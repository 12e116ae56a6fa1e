// Indexing scaled out through the PostgreSQL job queue: 200 images of one layer each (a Debian-like package
// database and 2 MB of other files, every layer different) queued at once, indexed by 1, 2 and 4
// `portcullis serve --roles indexer` processes (the built JavaScript, as deployed), each doing one layer at a
// time (--concurrency 1, --index-workers 1) so that processes, not threads inside one, are what scales. Each
// count gets a fresh database. The counts are measured in turn, round after round (--rounds, default 3: this
// machine's figure for the same work varies by a fifth from one minute to the next), and each count's figure is
// the median of its rounds. Figures: images indexed per minute, and the ratio to one process, same run.
// Twice: with the machine to themselves (every process shares the same cores with PostgreSQL, the registry
// and the API server, as nothing in a cluster would), and with each indexer process (its workers included)
// held to a CPU quota by a cgroup of its own, as a pod's `resources.limits.cpu` holds it, so the figure shows
// how the queue scales processes rather than how one process fills this machine. Where the CPU went is
// printed for every count.
//
//   npx tsx bench/scaleout.ts [--images 200] [--processes 1,2,4] [--rounds 3] [--cpu-quota 0.5 (0: no quota variant)]
//     [--profile DIR (V8 CPU profiles of the serve processes)] [--quick]
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { gzipSync } from "node:zlib";
import pg from "pg";
import { findTool } from "../src/cli/tools.js";
import { scannerSetHash } from "../src/indexer/scanner-set.js";
import { makeTar } from "../src/layers/testing.js";
import { defaultScanners } from "../src/scanners/index.js";
import { openStore } from "../src/store/open.js";
import { RegistryPusher } from "../test/env/oci-push.js";
import { cpuWindow, formatCpu, type CpuWindow } from "./cpu.js";
import { median } from "./env.js";
import { freePort, ProcessSupervisor } from "../test/env/process.js";
import { startKube, startPostgres, startRegistry } from "../test/env/services.js";

const { values } = parseArgs({ options: { images: { type: "string" }, processes: { type: "string" }, rounds: { type: "string" }, "cpu-quota": { type: "string" }, profile: { type: "string" }, quick: { type: "boolean" } } });
const IMAGES = Number(values.images ?? (values.quick ? 40 : 200));
const ROUNDS = Math.max(1, Number(values.rounds ?? (values.quick ? 1 : 3)));
const COUNTS = (values.processes ?? "1,2,4").split(",").map(Number);
const QUOTA = Number(values["cpu-quota"] ?? 0.5);

/**
 * A cgroup with a CPU quota of `cpus` cores (the CFS quota a pod's CPU limit sets), as a folder whose
 * cgroup.procs a process writes itself into before it execs; cgroup v1's cpu controller or v2's.
 */
function cpuCgroup(name: string, cpus: number): string {
  const period = 100_000;
  const quota = String(Math.round(cpus * period));
  for (const [base, files] of [["/sys/fs/cgroup/cpu", { "cpu.cfs_period_us": String(period), "cpu.cfs_quota_us": quota }], ["/sys/fs/cgroup", { "cpu.max": `${quota} ${period}` }]] as const) {
    if (!existsSync(join(base, "cgroup.procs")) || (base === "/sys/fs/cgroup" && !existsSync(join(base, "cgroup.controllers")))) continue;
    const dir = join(base, name);
    mkdirSync(dir, { recursive: true });
    for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), v);
    return dir;
  }
  throw new Error("--cpu-quota needs a writable cgroup cpu controller (run as root, or pass --cpu-quota 0)");
}
const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));

/** A dpkg status database of `n` packages, versions made unique by `k`. */
function status(k: number, n: number): string {
  return Array.from({ length: n }, (_, i) => `Package: pkg-${i}\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: ${100 + i}\nMaintainer: Bench <bench@example.org>\nArchitecture: amd64\nSource: src-${i % 50}\nVersion: 1.${i}-${k}\nDescription: package ${i} of image ${k}\n`).join("\n");
}

/** 2 MB of text-like bytes (compresses a few times, as real files do). */
function filler(k: number): Buffer {
  const b = Buffer.alloc(2 << 20);
  let seed = k + 1;
  for (let i = 0; i < b.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    b[i] = 97 + ((seed >> 16) % 20);
  }
  return b;
}

async function main(): Promise<void> {
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root });
  const dir = mkdtempSync(join(tmpdir(), "bench-scaleout-"));
  const sup = new ProcessSupervisor(dir);
  sup.startReaper(true);
  const procs: ChildProcess[] = [];
  const cgroups: string[] = [];
  // Drops the test database startPostgres made on the machine's server.
  let stopPg: (() => Promise<void>) | undefined;
  try {
    const [{ service: kube }, { service: reg }, { service: pgS, stop: stopPostgres }] = await Promise.all([
      startKube(sup), startRegistry(sup, { name: "scale", auth: "none" }), startPostgres(sup, `scale${Date.now().toString(36)}`),
    ]);
    stopPg = stopPostgres;
    const kubectl = findTool("kubectl");
    if (!kubectl) throw new Error("kubectl not found; run `npm run env:setup` as root");
    await run(kubectl, ["--kubeconfig", kube.kubeconfig, "apply", "-f", join(root, "crds")]);
    await run(kubectl, ["--kubeconfig", kube.kubeconfig, "create", "namespace", "bench-system"]);

    const pusher = new RegistryPusher(reg);
    const refs: Array<{ reference: string; digest: string }> = [];
    for (let k = 0; k < IMAGES; k++) {
      const layer = gzipSync(await makeTar([
        { name: "etc/os-release", content: 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' },
        { name: "var/lib/dpkg/status", content: status(k, 200) },
        { name: "usr/share/bench/data", content: filler(k) },
      ]));
      const { digest } = await pusher.pushImage(`scale/img-${k}`, "v1", [{ data: layer, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }]);
      refs.push({ reference: `${reg.host}/scale/img-${k}@${digest}`, digest });
    }
    await pusher.close();
    const scannerSet = scannerSetHash(defaultScanners().map((s) => ({ name: s.name, version: s.version, kind: s.kind })));

    interface Result { n: number; seconds: number; perMinute: number; failed: number; cpu: CpuWindow }
    const variants: Array<{ quota: number; results: Result[] }> = [{ quota: 0, results: [] }, ...(QUOTA > 0 ? [{ quota: QUOTA, results: [] }] : [])];
    /** Statements in turn on one connection to `url`; answers the last one's rows. */
    const statementsOn = async (url: string, ...statements: string[]) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        let rows: unknown[] = [];
        for (const sql of statements) ({ rows } = await c.query(sql));
        return rows;
      } finally {
        await c.end();
      }
    };
    /** Statements on the server's own database (each count's database is made and dropped there). */
    const admin = (...statements: string[]) => statementsOn(pgS.url, ...statements);
    for (const variant of variants) {
      console.log(variant.quota ? `Each indexer process in a cgroup of its own with a CPU quota of ${variant.quota} core:` : "No CPU quota:");
      for (let round = 1; round <= ROUNDS; round++) for (const n of COUNTS) {
        const database = `scaleout_${n}_${variant.quota ? "q" : "u"}_${process.pid}`;
        await admin(`DROP DATABASE IF EXISTS ${database}`, `CREATE DATABASE ${database}`);
        const u = new URL(pgS.url);
        u.pathname = `/${database}`;
        const url = u.toString();
        const store = await openStore(url);
        const started: ChildProcess[] = [];
        for (let i = 0; i < n; i++) {
          const health = await freePort();
          const profile = values.profile ? ["--cpu-prof", "--cpu-prof-dir", values.profile] : [];
          const argv = [...profile, join(root, "dist/cli/bin.js"), "serve", "--roles", "indexer", "--database-url", url, "--namespace", "bench-system",
            "--health-addr", `127.0.0.1:${health}`, "--webhook", "false", "--no-pods", "--advisory-update-interval", "0", "--index-workers", "1", "--concurrency", "1", "--log-level", "warn"];
          let command = process.execPath;
          if (variant.quota) {
            // The shell joins the cgroup, then becomes node: the serve process and the workers it forks are all in it.
            const group = cpuCgroup(`portcullis-scaleout-${process.pid}-${n}-${i}`, variant.quota);
            cgroups.push(group);
            argv.unshift("-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', group, process.execPath);
            command = "/bin/sh";
          }
          const child = spawn(command, argv, { env: { ...process.env, KUBECONFIG: kube.kubeconfig, POD_NAME: `indexer-${n}-${i}` }, stdio: ["ignore", "ignore", "inherit"] });
          started.push(child);
          procs.push(child);
          let ready = false;
          for (let t = 0; t < 300 && !ready; t++) {
            ready = await fetch(`http://127.0.0.1:${health}/readyz`).then((r) => r.status === 200, () => false);
            if (!ready) await new Promise((r) => setTimeout(r, 200));
          }
          if (!ready) throw new Error(`indexer ${i} did not become ready`);
        }
        const t0 = performance.now();
        const cpu = cpuWindow([database], 500);
        for (const r of refs) {
          await store.jobs!.enqueue({ manifest: r.digest, scannerSet, reference: r.reference, namespace: "bench-system", pullSecrets: [], priority: false, maxAttempts: 3 });
        }
        let done = 0;
        let failed = 0;
        while (done + failed < refs.length) {
          await new Promise((r) => setTimeout(r, 250));
          ({ done, failed } = await store.jobs!.stats());
        }
        // The end is when the last job was recorded (the database's clock, read as "how long ago"), not when
        // this loop looked: the poll's interval is not in the figure.
        const [ago] = (await statementsOn(url, "SELECT extract(epoch FROM now() - max(updated)) * 1000 AS ms FROM index_job")) as Array<{ ms: string }>;
        const seconds = (performance.now() - Number(ago!.ms) - t0) / 1000;
        variant.results.push({ n, seconds, perMinute: (done / seconds) * 60, failed, cpu: cpu.stop() });
        for (const c of started) c.kill("SIGTERM");
        await Promise.all(started.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))));
        await store.close();
        // The database is the machine's server's: dropped once measured, not left behind run after run.
        await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        console.log(`  round ${round}, ${n} indexer process${n > 1 ? "es" : ""}: ${IMAGES} images in ${seconds.toFixed(1)} s (${((done / seconds) * 60).toFixed(0)}/min)`);
      }
    }
    console.log(`\nIndexing through the PostgreSQL job queue, ${IMAGES} single-layer images (200 dpkg packages and 2 MB each), one layer at a time per process, on ${cpus().length} cores:`);
    const perCount = (results: Result[], n: number) => results.filter((r) => r.n === n);
    for (const { quota, results } of variants) {
      const one = median(perCount(results, COUNTS.includes(1) ? 1 : COUNTS[0]!).map((r) => r.perMinute));
      console.log(quota ? `each process held to ${quota} core (a cgroup CPU quota, as a pod's CPU limit):` : "no CPU quota (the processes, PostgreSQL, the registry and the API server share the cores):");
      for (const n of COUNTS) {
        const rs = perCount(results, n);
        const m = median(rs.map((r) => r.perMinute));
        console.log(`  ${String(n).padStart(2)} process${n > 1 ? "es" : "  "}  ${m.toFixed(0).padStart(6)} images/min (median of ${rs.map((r) => r.perMinute.toFixed(0)).join(", ")})  ratio to one ${(m / one).toFixed(2)}${n === 2 ? "  (target >= 1.6)" : ""}  failed ${rs.reduce((k, r) => k + r.failed, 0)}`);
      }
    }
    console.log("\nWhere the CPU went while the images were indexed (user + system time of every process, sampled from /proc; all rounds):");
    for (const { quota, results } of variants) {
      for (const n of COUNTS) {
        const rs = perCount(results, n);
        const by = new Map<string, number>();
        for (const r of rs) for (const k of r.cpu.byKind) by.set(k.kind, (by.get(k.kind) ?? 0) + k.seconds);
        const stalls = rs.map((r) => r.cpu.stalledSeconds);
        const all: CpuWindow = {
          seconds: rs.reduce((s, r) => s + r.cpu.seconds, 0),
          ...(stalls.every((s) => s !== undefined) ? { stalledSeconds: stalls.reduce((a, b) => a! + b!, 0) } : {}),
          byKind: [...by].map(([kind, seconds]) => ({ kind, seconds })).sort((a, b) => b.seconds - a.seconds),
        };
        const perImage = all.byKind.slice(0, 6).map((k) => `${k.kind} ${((1000 * k.seconds) / (rs.length * IMAGES)).toFixed(1)}`).join(", ");
        console.log(`  ${n} process${n > 1 ? "es" : ""}${quota ? `, ${quota} core each` : ""}:\n${formatCpu(all, cpus().length)}\n      per image, ms: ${perImage}`);
      }
    }
    const results = variants.flatMap((v) => v.results);
    if (results.some((r) => r.failed > 0)) process.exitCode = 1;
  } finally {
    for (const c of procs) c.kill("SIGKILL");
    await Promise.all(procs.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r)))));
    for (const g of cgroups) {
      try {
        rmdirSync(g);
      } catch {
        // still has a process that outlived its parent; the folder goes with the machine
      }
    }
    await stopPg?.();
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
