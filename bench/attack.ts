// Admission while hostile images are scanned: `portcullis serve` (the built JavaScript, every role in one
// process, as the chart's combined mode runs it; or, --variants split, the webhook role in a process of its
// own, as the chart's split mode runs it) answers AdmissionReviews at a fixed rate while ImageScans of
// hostile images run back to back, two at a time; the p99 of the same load without the scans, measured in
// the same run on the same process, is the baseline (each quiet window starts once the scans of the attacked
// one before it have ended, so the workers are idle). Three layouts (--variants), each once per --worker-nice value: layers parsed in worker processes (the
// default, --index-workers 2) with PostgreSQL (the cluster's layout: index jobs) and with the embedded store,
// and in the serve process itself (--index-workers 0), so the figures show what the workers buy. The hostile images (each one new, so no layer is answered from the store):
//   - a layer made only of files a scanner reads whole: 16 dpkg status.d files of 30 MiB (480 MiB held, under
//     the walk's 512 MiB per layer) in a 0.5 MB gzip;
//   - a valid zstd layer whose frame header declares a 2 GiB window;
//   - a jar whose 100 central-directory records all point at one 60 MiB deflated entry.
// Also printed: the peak resident memory of the serve process and of its workers during the attacks.
//
//   npx tsx bench/attack.ts [--rate 500] [--seconds 10] [--runs 3] [--variants postgres,split,embedded,in-process] [--worker-nice 10,19] [--profile DIR (V8 CPU profile of serve)] [--quick]
//   (BENCH_SERVE_LOG_LEVEL=debug: serve's log level; its last lines are printed if a scan never ends)
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { gzipSync } from "node:zlib";
import * as k8s from "@kubernetes/client-node";
import { findTool } from "../src/cli/tools.js";
import { scannerSetHash } from "../src/indexer/scanner-set.js";
import { DIGEST_LABEL, GROUP, MANAGED_BY, MANAGED_BY_LABEL, VERSION, type ImageScan } from "../src/kube/api/v1alpha1/index.js";
import { makeTar, zstdDeclaringWindow } from "../src/layers/testing.js";
import { jarBomb } from "../src/scanners/java/testing.js";
import { defaultScanners } from "../src/scanners/index.js";
import { RegistryPusher } from "../test/env/oci-push.js";
import { freePort, ProcessSupervisor } from "../test/env/process.js";
import { startKube, startPostgres, startRegistry } from "../test/env/services.js";
import { load, ms, pct, podReview, type Load } from "./admission-load.js";
import { cpuWindow, formatCpu, type CpuWindow } from "./cpu.js";
import { median } from "./env.js";

const { values } = parseArgs({ options: { rate: { type: "string" }, seconds: { type: "string" }, runs: { type: "string" }, variants: { type: "string" }, "worker-nice": { type: "string" }, profile: { type: "string" }, quick: { type: "boolean" } } });
const quick = values.quick ?? false;
const RATE = Number(values.rate ?? 500);
const SECONDS = Number(values.seconds ?? (quick ? 5 : 10));
const RUNS = Number(values.runs ?? (quick ? 1 : 3));
const DIGESTS = 50;
/**
 * The layouts measured: workers with PostgreSQL, the same split in two processes as the chart's `mode: split`
 * runs it (a webhook process, and a controller+indexer process with the workers), workers with the embedded
 * store, in the serve process.
 */
const ALL_VARIANTS = { postgres: [2, "postgres", false], split: [2, "postgres", true], embedded: [2, "embedded", false], "in-process": [0, "embedded", false] } as const;
const VARIANTS = (values.variants ?? Object.keys(ALL_VARIANTS).join(",")).split(",").map((v) => {
  const variant = ALL_VARIANTS[v as keyof typeof ALL_VARIANTS];
  if (!variant) throw new Error(`--variants: unknown ${JSON.stringify(v)} (known: ${Object.keys(ALL_VARIANTS).join(", ")})`);
  return variant;
});
/** The workers' niceness (--worker-nice of serve); several values measure each layout with workers once per value. */
const NICES = (values["worker-nice"] ?? "").split(",").filter(Boolean).map(Number);
const ns = "bench-adm";
const attackNs = "bench-attack";
const LABEL = "portcullis.dev/bench=on";
const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

/** One hostile image's layer, made unique by `k` (a new digest: nothing is answered from the store). */
async function hostileLayer(kind: "hungry" | "zstd" | "zip", k: number): Promise<{ data: Buffer; mediaType: string }> {
  const nonce = { name: `etc/nonce-${k}`, content: `${kind} ${k}` };
  if (kind === "hungry") {
    const big = Buffer.alloc(30 << 20, 0x41);
    return { data: gzipSync(await makeTar([nonce, ...Array.from({ length: 16 }, (_, i) => ({ name: `var/lib/dpkg/status.d/p${i}`, content: big }))]), { level: 1 }), mediaType: GZIP };
  }
  if (kind === "zip") return { data: gzipSync(await makeTar([nonce, { name: "app/lib/bomb.jar", content: jarBomb() }])), mediaType: GZIP };
  // zstd: a valid frame, then its window descriptor raised to 2 GiB.
  return { data: zstdDeclaringWindow(await makeTar([nonce, { name: "etc/os-release", content: "ID=debian\nVERSION_ID=12\n" }]), 31), mediaType: "application/vnd.oci.image.layer.v1.tar+zstd" };
}

/** Resident memory (VmRSS) of a process and of its children, MiB. */
function rssTree(pid: number): { self: number; children: number[] } {
  const rss = (p: number) => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))![1]) / 1024;
    } catch {
      return 0;
    }
  };
  const kids: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) kids.push(...readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    // gone
  }
  return { self: rss(pid), children: kids.map(rss) };
}

interface Variant {
  label: string;
  workers: number;
  /** The webhook in a process of its own (the chart's mode: split). */
  split: boolean;
  quiet: Load[];
  attacked: Load[];
  scans: Record<string, number>;
  peakServe: number;
  peakWorker: number;
  /** Where the CPU went in the last quiet and the last attacked window. */
  cpu: { quiet?: CpuWindow; attacked?: CpuWindow };
}

async function main(): Promise<void> {
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root });
  const dir = mkdtempSync(join(tmpdir(), "bench-attack-"));
  const sup = new ProcessSupervisor(dir);
  sup.startReaper(true);
  const kubectlPath = findTool("kubectl");
  if (!kubectlPath) throw new Error("kubectl not found; run `npm run env:setup` as root");
  let serve: ChildProcess | undefined;
  /** The split layout's controller+indexer process. */
  let others: ChildProcess[] = [];
  // Drops the test database startPostgres made on the machine's server.
  let stopPg: (() => Promise<void>) | undefined;
  try {
    const { service: kube } = await startKube(sup);
    const kubectl = (...a: string[]) => run(kubectlPath, ["--kubeconfig", kube.kubeconfig, ...a]);
    await kubectl("apply", "-f", join(root, "crds"));
    for (const crd of ["imagescans", "imagepolicies", "clusterimagepolicies", "imagerepositories"]) await kubectl("wait", "--for=condition=Established", "--timeout=60s", `crd/${crd}.portcullis.dev`);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    for (const n of ["portcullis-system", ns, attackNs]) await core.createNamespace({ body: { metadata: { name: n, labels: { "portcullis.dev/bench": "on" } } } });

    // Indexed ImageScans for the reviews' digests, as the controller writes them (its scanner set, this
    // generation: nothing for the controller to do).
    const scannerSet = scannerSetHash(defaultScanners().map((s) => ({ name: s.name, version: s.version, kind: s.kind })));
    const host = "registry.bench.invalid";
    for (let i = 0; i < DIGESTS; i++) {
      const hex = createHash("sha256").update(`attack-${i}`).digest("hex");
      const name = `app-${i}-${hex.slice(0, 12)}`;
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [DIGEST_LABEL]: hex.slice(0, 63) } }, spec: { image: `${host}/bench/app-${i}@sha256:${hex}` } } });
      await custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name, body: { status: { phase: "Indexed", digest: `sha256:${hex}`, message: "indexed", observedGeneration: 1, scannerSet } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
    }
    const bodiesFile = join(dir, "bodies.json");
    writeFileSync(bodiesFile, JSON.stringify(Array.from({ length: 1000 }, (_, i) => podReview(i, ns, DIGESTS, (k) => `${host}/bench/app-${k}@sha256:${createHash("sha256").update(`attack-${k}`).digest("hex")}`))));

    // The hostile images, made before anything is measured (the bench's own CPU stays out of the windows).
    const { service: reg } = await startRegistry(sup, { name: "attack", auth: "none" });
    const pusher = new RegistryPusher(reg);
    const images: string[] = [];
    const per = quick ? 4 : 10;
    for (let k = 0; k < per * 2; k++) {
      for (const kind of ["hungry", "zstd", "zip"] as const) {
        if (kind !== "hungry" && k >= per) continue;
        await pusher.pushImage(`attack/${kind}-${k}`, "v1", [await hostileLayer(kind, k)]);
        images.push(`${reg.host}/attack/${kind}-${k}:v1`);
      }
    }
    await pusher.close();

    const variants: Variant[] = [];
    let nextImage = 0;
    let scanSeq = 0;
    // The cluster's layout (PostgreSQL: index jobs, the store's work in the database server), then the embedded
    // store (its SQL in the serve process), with workers and without.
    const { service: pgS, stop: stopPostgres } = await startPostgres(sup, `attack${Date.now().toString(36)}`);
    stopPg = stopPostgres;
    const runs: Array<{ workers: number; store: "postgres" | "embedded"; split: boolean; nice?: number }> = VARIANTS.flatMap(([workers, store, split]) => (workers && NICES.length ? NICES.map((nice) => ({ workers, store, split, nice })) : [{ workers, store, split }]));
    for (const { workers, store, split, nice } of runs) {
      const port = await freePort();
      const lines: string[] = [];
      const storeArgs = store === "postgres" ? ["--database-url", pgS.url] : ["--store-path", join(dir, `store-${workers}`)];
      // One process with every role, or (split) the webhook's process, then the controller and indexer's.
      const start = async (roles: string | undefined): Promise<ChildProcess> => {
        const health = await freePort();
        const child = spawn(process.execPath, [...(values.profile ? ["--cpu-prof", "--cpu-prof-dir", values.profile] : []), join(root, "dist/cli/bin.js"), "serve", ...(roles ? ["--roles", roles] : []), ...storeArgs, "--namespace", "portcullis-system",
          "--health-addr", `127.0.0.1:${health}`, "--webhook-addr", `127.0.0.1:${port}`, "--webhook-url", `https://127.0.0.1:${port}`, "--webhook-namespace-label", LABEL,
          "--no-pods", "--leader-elect", "false", "--advisory-update-interval", "0", "--concurrency", "2", "--index-workers", String(workers), ...(nice === undefined ? [] : ["--worker-nice", String(nice)]), "--log-level", process.env.BENCH_SERVE_LOG_LEVEL ?? "warn"],
        { env: { ...process.env, KUBECONFIG: kube.kubeconfig }, stdio: ["ignore", "ignore", "pipe"] });
        child.stderr!.on("data", (c: Buffer) => lines.push(...c.toString().split("\n").filter(Boolean).map((l) => (roles ? `[${roles}] ${l}` : l))));
        let ready = false;
        for (let i = 0; i < 600 && !ready; i++) {
          ready = await fetch(`http://127.0.0.1:${health}/readyz`).then((r) => r.status === 200, () => false);
          if (!ready) await new Promise((r) => setTimeout(r, 200));
        }
        console.error(`serve${roles ? ` --roles ${roles}` : ""} pid ${child.pid} health 127.0.0.1:${health}`);
        if (!ready) throw new Error(`serve${roles ? ` --roles ${roles}` : ""} did not become ready:\n${lines.slice(-20).join("\n")}`);
        return child;
      };
      // The controller registers the webhook (with the serving certificate's CA) before the webhook's process is asked.
      others = split ? [await start("controller,indexer")] : [];
      serve = await start(split ? "webhook" : undefined);
      const pid = serve.pid!;
      const indexerPid = split ? others[0]!.pid! : pid;
      const { stdout } = await kubectl("get", "validatingwebhookconfiguration", "portcullis", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}");
      const ca = Buffer.from(stdout.trim(), "base64").toString();
      const url = `https://127.0.0.1:${port}/validate`;
      await load(url, ca, bodiesFile, 200, 2);

      const v: Variant = { label: `${split ? "split: webhook process; controller+indexer process, " : ""}${workers ? `layers parsed in ${workers} worker processes` : "layers parsed in the serve process"}, ${store === "postgres" ? "PostgreSQL (index jobs)" : "embedded store"}${nice === undefined ? "" : `, workers at nice ${nice}`}`, workers, split, quiet: [], attacked: [], scans: {}, peakServe: 0, peakWorker: 0, cpu: {} };
      for (let r = 0; r < RUNS; r++) {
        const quietCpu = cpuWindow([pgS.database]);
        v.quiet.push(await load(url, ca, bodiesFile, RATE, SECONDS));
        v.cpu.quiet = quietCpu.stop();
        // Two attackers, each creating an ImageScan of the next hostile image as soon as its last one ended.
        const stop = new AbortController();
        const attacker = async () => {
          while (!stop.signal.aborted) {
            const image = images[nextImage++ % images.length]!;
            const name = `attack-${++scanSeq}`;
            await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: attackNs, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name }, spec: { image } } });
            const created = Date.now();
            for (;;) {
              await new Promise((res) => setTimeout(res, 250));
              const s = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: attackNs, plural: "imagescans", name })) as ImageScan;
              const phase = s.status?.phase;
              if (phase === "Indexed" || phase === "Failed") {
                const reason = phase === "Indexed" ? "Indexed" : s.status?.conditions?.find((c) => c.type === "Indexed")?.reason ?? "Failed";
                v.scans[reason] = (v.scans[reason] ?? 0) + 1;
                break;
              }
              // No break on stop: the scan under way runs to its end, so the next quiet window starts with idle workers.
              if (Date.now() - created > 300_000) throw new Error(`ImageScan ${name} of ${image} did not end in 5 minutes (phase ${phase ?? "none"}); serve's last lines:\n${lines.slice(-30).join("\n")}`);
            }
          }
        };
        const sampler = setInterval(() => {
          const t = rssTree(pid);
          const ix = indexerPid === pid ? t : rssTree(indexerPid);
          v.peakServe = Math.max(v.peakServe, t.self);
          v.peakWorker = Math.max(v.peakWorker, ...ix.children, 0);
        }, 100);
        const attackers = [attacker(), attacker()];
        await new Promise((res) => setTimeout(res, 1000)); // the first scans under way
        const attackCpu = cpuWindow([pgS.database]);
        v.attacked.push(await load(url, ca, bodiesFile, RATE, SECONDS));
        v.cpu.attacked = attackCpu.stop();
        stop.abort();
        await Promise.all(attackers);
        clearInterval(sampler);
      }
      for (const p of [serve, ...others]) {
        p.kill("SIGTERM");
        await new Promise((res) => p.once("exit", res));
      }
      serve = undefined;
      others = [];
      await kubectl("delete", "imagescans", "--all", "-n", attackNs, "--wait=false");
      variants.push(v);
    }

    const p99 = (rs: Load[]) => median(rs.map((r) => pct(r.lat, 99)));
    const line = (label: string, rs: Load[]) => `  ${label.padEnd(28)} p50 ${ms(median(rs.map((r) => pct(r.lat, 50)))).padStart(9)}  p99 ${ms(p99(rs)).padStart(10)} (runs: ${rs.map((r) => pct(r.lat, 99).toFixed(1)).join(", ")})  max ${ms(Math.max(...rs.map((r) => Math.max(...r.lat)))).padStart(10)}  errors ${rs.reduce((n, r) => n + r.errors, 0)}`;
    console.log(`\nAdmissionReviews to \`portcullis serve\` (every role in one process, unless split), open loop at ${RATE}/s for ${SECONDS} s per window, ${RUNS} quiet and ${RUNS} attacked window(s) each; p99 is the median of the windows' p99s:`);
    for (const v of variants) {
      console.log(`${v.label}:`);
      console.log(line("without scans", v.quiet));
      console.log(line("while hostile images scan", v.attacked));
      console.log(`    p99 ratio attacked/quiet: ${(p99(v.attacked) / p99(v.quiet)).toFixed(2)}${v.workers ? "  (target <= 2)" : ""}`);
      console.log(`    hostile scans ended: ${Object.entries(v.scans).map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`);
      console.log(`    peak resident memory during the attacks: ${v.split ? "webhook process" : "serve process"} ${v.peakServe.toFixed(0)} MiB${v.workers ? `, largest worker ${v.peakWorker.toFixed(0)} MiB` : ""}`);
      for (const [k, w] of Object.entries(v.cpu)) console.log(`    CPU in the last ${k} window:\n${formatCpu(w, cpus().length)}`);
    }
    if (variants.some((v) => [...v.quiet, ...v.attacked].some((r) => r.errors > 0))) process.exitCode = 1;
  } finally {
    serve?.kill("SIGKILL");
    for (const p of others) p.kill("SIGKILL");
    await stopPg?.();
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
