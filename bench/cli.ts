// The CLI as users run it: whole `node dist/cli/bin.js …` processes against baselines that are processes
// too, in the same run (the other benchmarks time the internals in-process, with modules loaded and the
// store open; this one counts start-up, the store and everything else a user waits for).
//   1. `portcullis --version` and `portcullis scan --help` vs `node -e 0`;
//   2. `portcullis scan` of an image already in the store vs `node -e 0` (the difference);
//   3. cold scan of the two-layer Debian image from a local registry with a fresh store vs
//      `curl | gzip -dc | tar -t` for each layer, and vs Trivy's route (skopeo copy to an OCI folder,
//      umoci unpack, `trivy rootfs`: the Trivy build installed here has only `rootfs`);
//   4. the cold scan's peak RSS (the child's own VmHWM, read as it exits).
// Medians of --runs (default 3), each portcullis run next to its baseline.
// Usage: npm run bench:cli [-- --runs N] [--no-build]   (builds dist/ first when a source is newer)
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { findTool } from "../src/cli/tools.js";
import { ociBookworm, skopeoPush } from "../test/env/images.js";
import { median, withRegistry } from "./env.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, "no-build": { type: "boolean", default: false } } });
const runs = Number(values.runs);
const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "dist", "cli", "bin.js");
const tool = (n: string) => findTool(n) ?? n;

/** The newest modification time of the build's inputs (src/ without tests, package.json, tsconfigs). */
function newestSource(dir = join(root, "src")): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}
const built = (() => {
  try {
    return statSync(bin).mtimeMs;
  } catch {
    return 0;
  }
})();
const inputs = Math.max(newestSource(), ...["package.json", "tsconfig.json", "tsconfig.build.json"].map((f) => statSync(join(root, f)).mtimeMs));
if (built < inputs) {
  if (values["no-build"]) throw new Error(`${bin} is older than the sources: run \`npm run build\` (or drop --no-build)`);
  console.log("dist/ is older than src/: npm run build");
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
}

// Each portcullis process gets a preload that writes its VmHWM to a file as it exits (VmHWM, not
// getrusage's maxRSS: Linux carries ru_maxrss over fork and exec from the parent). It costs well under a ms.
const hwmPreload = `data:text/javascript,${encodeURIComponent(
  'import{readFileSync,writeFileSync}from"node:fs";process.on("exit",()=>{const f=process.env.BENCH_HWM_FILE;if(f)writeFileSync(f,/VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/self/status","utf8"))[1])})',
)}`;

const work = mkdtempSync(join(tmpdir(), "portcullis-bench-cli-"));
const hwmFile = join(work, "hwm");
// No Docker config of the user's, no cloud helpers: the same conditions every run.
const env = { ...process.env, DOCKER_CONFIG: join(work, "docker"), PORTCULLIS_CREDENTIAL_HELPERS: "", BENCH_HWM_FILE: hwmFile };

/** Wall time of one process (ms) from spawn to exit; throws unless it exits 0. */
function time(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`${cmd} ${args.join(" ")}: exit ${code ?? signal}\n${stderr}`));
    });
  });
}
const portcullis = async (...args: string[]) => {
  rmSync(hwmFile, { force: true });
  const ms = await time(process.execPath, ["--import", hwmPreload, bin, ...args]);
  return { ms, hwmKb: Number(readFileSync(hwmFile, "utf8")) };
};
const node0 = () => time(process.execPath, ["-e", "0"]);
const sh = (script: string) => time("sh", ["-c", script]);

interface Row { what: string; ours: number; baseline: string; base: number; compare: string; target: string }
const rows: Row[] = [];
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ratio = (what: string, ours: number[], baseline: string, base: number[], target: string) =>
  rows.push({ what, ours: median(ours), baseline, base: median(base), compare: `${(median(ours) / median(base)).toFixed(1)}×`, target });
let peakRssKb: number[] = [];

try {
  // 1. start-up
  const version: number[] = [];
  const help: number[] = [];
  const nodeStart: number[] = [];
  for (let i = 0; i < runs; i++) {
    nodeStart.push(await node0());
    version.push((await portcullis("--version")).ms);
    help.push((await portcullis("scan", "--help")).ms);
  }
  ratio("`portcullis --version`", version, "`node -e 0`", nodeStart, "≤ 3×");
  ratio("`portcullis scan --help`", help, "`node -e 0`", nodeStart, "");

  await withRegistry(async (reg) => {
    await skopeoPush(`oci:${ociBookworm()}:two`, reg, "bench/debian:two");
    const image = `${reg.host}/bench/debian:two`;
    const manifest = JSON.parse(execFileSync(tool("skopeo"), ["inspect", "--raw", "--tls-verify=false", `docker://${image}`], { encoding: "utf8" })) as { layers: Array<{ digest: string; size: number }> };
    const naive = manifest.layers.map((l) => `curl -sf '${reg.url}/v2/bench/debian/blobs/${l.digest}' | gzip -dc | tar -t > /dev/null`).join(" && ");
    const layersMb = manifest.layers.reduce((n, l) => n + l.size, 0) / 1e6;

    // 2. warm: the image is in the store
    const warmStore = join(work, "warm-store");
    await portcullis("scan", image, "--store", warmStore);
    const warm: number[] = [];
    const nodeWarm: number[] = [];
    for (let i = 0; i < runs; i++) {
      nodeWarm.push(await node0());
      warm.push((await portcullis("scan", image, "--store", warmStore)).ms);
    }
    rows.push({ what: "`portcullis scan` of an image in the store", ours: median(warm), baseline: "`node -e 0`", base: median(nodeWarm), compare: `+${s(median(warm) - median(nodeWarm))}`, target: "≤ +0.3 s" });

    // 3. cold: a fresh store each run
    const cold: number[] = [];
    const pipe: number[] = [];
    const trivy: number[] = [];
    peakRssKb = [];
    for (let i = 0; i < runs; i++) {
      pipe.push(await sh(naive));
      const store = join(work, `cold-store-${i}`);
      const r = await portcullis("scan", image, "--store", store);
      cold.push(r.ms);
      peakRssKb.push(r.hwmKb);
      rmSync(store, { recursive: true, force: true });
      const t = mkdtempSync(join(work, "trivy-route-"));
      trivy.push(await time("sh", ["-c", [
        `'${tool("skopeo")}' copy --quiet --src-tls-verify=false 'docker://${image}' 'oci:${t}/oci:two'`,
        `'${tool("umoci")}' unpack --image '${t}/oci:two' '${t}/bundle' > /dev/null 2>&1`,
        `TRIVY_CACHE_DIR='${t}/cache' '${tool("trivy")}' rootfs -q --offline-scan --skip-db-update --format cyclonedx --output '${t}/sbom.json' '${t}/bundle/rootfs'`,
      ].join(" && ")]));
      rmSync(t, { recursive: true, force: true });
    }
    ratio(`cold scan, fresh store (${manifest.layers.length} layers, ${layersMb.toFixed(0)} MB gzip)`, cold, "`curl \\| gzip -dc \\| tar -t` per layer", pipe, "≤ 1.0×");
    rows.push({ what: "cold scan, fresh store", ours: median(cold), baseline: "skopeo copy + umoci unpack + `trivy rootfs`", base: median(trivy), compare: `${(median(trivy) / median(cold)).toFixed(2)}× as fast as Trivy's route`, target: "≥ 2× as fast" });
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`\nportcullis as users run it (node ${process.version}, ${bin.replace(root, "")}), medians of ${runs} in one run\n`);
console.log("| what (whole processes) | portcullis | baseline in the same run | | comparison | target |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.what} | ${s(r.ours)} | ${r.baseline} | ${s(r.base)} | ${r.compare} | ${r.target} |`);
console.log(`| peak RSS of the cold scan (VmHWM) | ${(median(peakRssKb) / 1024).toFixed(0)} MB | | | max ${(Math.max(...peakRssKb) / 1024).toFixed(0)} MB | ≤ 200 MB |`);
