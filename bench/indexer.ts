// Indexer benchmarks (figures for the closing note; ratios measured in the same run):
//   1. cold index of a one-layer bookworm image from the local registry vs `curl blob | gzip -dc | tar -t`;
//   2. cold index of the two-layer image vs Trivy's route (skopeo copy, umoci unpack, trivy rootfs);
//   3. re-index of an indexed manifest; a second image sharing the base layer (bytes downloaded);
//   4. peak RSS while indexing a layer that decompresses to 1 GB (skipped with --quick).
// Usage: npx tsx bench/indexer.ts [--runs N] [--quick]   (BENCH_ONLY_RSS=1: only the RSS figure)
import { execFileSync, spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { parseArgs } from "node:util";
import { pack } from "tar-stream";
import { parseReference } from "../src/image/reference.js";
import { Indexer } from "../src/indexer/indexer.js";
import { openRegistryImage } from "../src/indexer/sources/registry.js";
import { RegistryClient } from "../src/registry/client.js";
import { defaultScanners } from "../src/scanners/index.js";
import { openStore } from "../src/store/open.js";
import { findTool } from "../src/cli/tools.js";
import { ociBookworm, skopeoPush } from "../test/env/images.js";
import { fmt, median, timeIt, withRegistry } from "./env.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, quick: { type: "boolean", default: false } } });
const runs = Number(values.runs);
const tool = (n: string) => findTool(n) ?? n;

if (process.env.BENCH_ONLY_RSS !== "1") await withRegistry(async (reg) => {
  await skopeoPush(`oci:${ociBookworm()}:base`, reg, "bench/debian:base");
  await skopeoPush(`oci:${ociBookworm()}:two`, reg, "bench/debian:two");
  const client = new RegistryClient();
  const base = await openRegistryImage(client, parseReference(`${reg.host}/bench/debian:base`));
  const layer = base.manifest.layers[0]!;
  const url = `${reg.url}/v2/bench/debian/blobs/${layer.digest}`;

  // 1. cold single layer vs the naive pipeline
  const naive: number[] = [];
  const cold: number[] = [];
  for (let i = 0; i < runs; i++) {
    naive.push(await timeIt(async () => execFileSync("sh", ["-c", `curl -sf '${url}' | gzip -dc | tar -t > /dev/null`])));
    const store = await openStore("memory:");
    const ix = new Indexer({ store, scanners: defaultScanners() });
    cold.push(await timeIt(async () => {
      const img = await openRegistryImage(client, parseReference(`${reg.host}/bench/debian:base`));
      const r = await ix.index(img.manifest, img.source);
      if (r.report.state !== "IndexFinished") throw new Error(r.report.err);
    }));
    await store.close();
  }
  console.log(`1. cold index, one layer (${(layer.size / 1e6).toFixed(1)} MB gzip), median of ${runs}`);
  console.log(`   curl | gzip -dc | tar -t: ${fmt(median(naive))}`);
  console.log(`   portcullis (resolve + fetch + verify + walk + scan + store): ${fmt(median(cold))}`);
  console.log(`   ratio portcullis/naive: ${(median(cold) / median(naive)).toFixed(2)}  (target <= 1.1)`);

  // 2. two layers vs Trivy's route
  const trivyTimes: number[] = [];
  const ours: number[] = [];
  for (let i = 0; i < runs; i++) {
    const work = mkdtempSync(join(tmpdir(), "trivy-route-"));
    trivyTimes.push(await timeIt(async () => {
      execFileSync(tool("skopeo"), ["copy", "--quiet", "--src-tls-verify=false", `docker://${reg.host}/bench/debian:two`, `oci:${work}/oci:two`]);
      execFileSync(tool("umoci"), ["unpack", "--image", `${work}/oci:two`, `${work}/bundle`], { stdio: "ignore" });
      execFileSync(tool("trivy"), ["rootfs", "-q", "--offline-scan", "--skip-db-update", "--format", "cyclonedx", "--output", `${work}/sbom.json`, `${work}/bundle/rootfs`], { env: { ...process.env, TRIVY_CACHE_DIR: join(work, "cache") } });
    }));
    rmSync(work, { recursive: true, force: true });
    const store = await openStore("memory:");
    const ix = new Indexer({ store, scanners: defaultScanners() });
    ours.push(await timeIt(async () => {
      const img = await openRegistryImage(client, parseReference(`${reg.host}/bench/debian:two`));
      const r = await ix.index(img.manifest, img.source);
      if (r.report.state !== "IndexFinished") throw new Error(r.report.err);
    }));
    await store.close();
  }
  console.log(`2. cold index, two layers, median of ${runs}`);
  console.log(`   Trivy route (skopeo copy + umoci unpack + trivy rootfs): ${fmt(median(trivyTimes))}`);
  console.log(`   portcullis: ${fmt(median(ours))}`);
  console.log(`   speed-up: ${(median(trivyTimes) / median(ours)).toFixed(1)}x  (target >= 3x)`);

  // 3. re-index, and an image sharing the base layer
  const store = await openStore("memory:");
  const ix = new Indexer({ store, scanners: defaultScanners() });
  const b = await ix.index(base.manifest, base.source);
  const again: number[] = [];
  for (let i = 0; i < 20; i++) {
    again.push(await timeIt(async () => {
      const r = await ix.index(base.manifest, base.source);
      if (!r.stats.cached) throw new Error("not cached");
    }));
  }
  console.log(`3. re-index of an indexed manifest (store lookup, no download): median ${median(again).toFixed(2)} ms of 20  (target < 50 ms)`);
  const two = await openRegistryImage(client, parseReference(`${reg.host}/bench/debian:two`));
  const r2 = await ix.index(two.manifest, two.source);
  const newLayer = two.manifest.layers[1]!;
  console.log(`   second image sharing the base: downloaded ${r2.stats.bytesFetched} bytes = its new layer ${newLayer.size} bytes: ${r2.stats.bytesFetched === newLayer.size ? "yes" : "NO"} (base was ${b.stats.bytesFetched} bytes, not fetched again: ${r2.stats.layersReused === 1 ? "yes" : "NO"})`);
  await store.close();
  await client.close();
});

// 4. peak RSS on a layer that decompresses to 1 GB (plus Node's own, printed beside it)
if (!values.quick) {
  const dir = mkdtempSync(join(tmpdir(), "rss-"));
  const blob = join(dir, "layer.tar.gz");
  const p = pack();
  const out = pipeline(p, createGzip({ level: 1 }), createWriteStream(blob));
  const chunk = Buffer.alloc(1 << 20);
  let seed = 1;
  for (let f = 0; f < 1024; f++) {
    // Text-like data: compresses a few times, nothing like a bomb.
    for (let i = 0; i < chunk.length; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      chunk[i] = 97 + (seed >> 16) % 16;
    }
    await new Promise<void>((resolve, reject) => p.entry({ name: `data/file${f}`, size: chunk.length }, chunk, (e) => (e ? reject(e) : resolve())));
  }
  await new Promise<void>((resolve, reject) => p.entry({ name: "var/lib/dpkg/status", size: 0 }, Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
  p.finalize();
  await out;
  const script = `
    import { createReadStream, readFileSync, statSync } from "node:fs";
    import { createHash } from "node:crypto";
    import { walkLayer } from "${new URL("../dist/layers/walk.js", import.meta.url).pathname}";
    import { defaultScanners } from "${new URL("../dist/scanners/index.js", import.meta.url).pathname}";
    const h = createHash("sha256");
    for await (const c of createReadStream("${blob}")) h.update(c);
    const t0 = performance.now();
    const r = await walkLayer(createReadStream("${blob}", { highWaterMark: 1 << 20 }), { digest: "sha256:" + h.digest("hex"), size: statSync("${blob}").size, scanners: defaultScanners() });
    // VmHWM, not getrusage's maxRSS: Linux carries ru_maxrss over fork and exec from the parent.
    const hwm = Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]);
    console.log(JSON.stringify({ ms: performance.now() - t0, out: r.uncompressedBytes, inBytes: r.compressedBytes, maxRssKb: hwm }));
  `;
  // The built JavaScript, as the product runs (tsx alone adds some 30 MB).
  execFileSync("npm", ["run", "--silent", "build"]);
  const res = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(res.stderr);
  const m = JSON.parse(res.stdout.trim().split("\n").pop()!) as { ms: number; out: number; inBytes: number; maxRssKb: number };
  console.log(`4. layer of ${(m.inBytes / 1e6).toFixed(0)} MB gzip -> ${(m.out / 1e9).toFixed(2)} GB: walked in ${fmt(m.ms)}, peak RSS ${(m.maxRssKb / 1024).toFixed(0)} MB  (target < 200 MB)`);
  // The same layer through the serve's worker pool: the worker's peak and the serve side's (which only streams
  // the blob to it), as two processes.
  const pooled = `
    import { createReadStream, readFileSync, statSync } from "node:fs";
    import { createHash } from "node:crypto";
    import { WorkerPool } from "${new URL("../dist/indexer/workers/pool.js", import.meta.url).pathname}";
    import { defaultScanners } from "${new URL("../dist/scanners/index.js", import.meta.url).pathname}";
    const h = createHash("sha256");
    for await (const c of createReadStream("${blob}")) h.update(c);
    const hwm = (pid) => Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/" + pid + "/status", "utf8"))[1]);
    const pool = new WorkerPool({ size: 1, heapMb: 512, memoryMb: 1024 });
    const layer = { digest: "sha256:" + h.digest("hex"), size: statSync("${blob}").size, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" };
    const source = { verifiesDigests: false, open: async () => createReadStream("${blob}", { highWaterMark: 1 << 20 }) };
    const t0 = performance.now();
    const r = await pool.scan({ layer, scanners: defaultScanners(), source, signal: new AbortController().signal });
    const worker = hwm(pool.pids()[0]);
    console.log(JSON.stringify({ ms: performance.now() - t0, out: r.uncompressedBytes, workerKb: worker, selfKb: hwm("self") }));
    await pool.stop();
  `;
  const pr = spawnSync(process.execPath, ["--input-type=module", "-e", pooled], { encoding: "utf8" });
  if (pr.status !== 0) throw new Error(pr.stderr);
  const pm = JSON.parse(pr.stdout.trim().split("\n").pop()!) as { ms: number; out: number; workerKb: number; selfKb: number };
  console.log(`   the same layer in a worker process (serve's indexer role): ${fmt(pm.ms)}, worker peak RSS ${(pm.workerKb / 1024).toFixed(0)} MB, the process feeding it ${(pm.selfKb / 1024).toFixed(0)} MB`);
  const idle = spawnSync(process.execPath, ["--input-type=module", "-e", `import { readFileSync } from "node:fs"; import "${new URL("../dist/layers/walk.js", import.meta.url).pathname}"; console.log(/VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1])`], { encoding: "utf8" });
  console.log(`   node with the walker loaded and idle: ${(Number(idle.stdout.trim()) / 1024).toFixed(0)} MB`);
  rmSync(dir, { recursive: true, force: true });
}
