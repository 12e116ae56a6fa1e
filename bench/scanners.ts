// Scanner benchmarks (issue: language ecosystems):
//   1. files per second through the one-pass walk, all default scanners on, for a layer of 50,000 small
//      files, vs `gzip -dc | tar -t` of the same layer (target: at most 1.5x slower);
//   2. the time each scanner adds to walking the real Debian test image with language packages;
//   3. packages found vs each ecosystem's own tool (dpkg-query, go version -m, pip metadata, unzip of the
//      jars, RubyGems, npm ls) on the Debian test images lang and inventory (issue 18: 100%); a count, not
//      a timing (test/scanners/oracles.ts).
// Usage: npx tsx bench/scanners.ts [--runs N] [--coverage-only]
import { execFileSync } from "node:child_process";
import { createReadStream, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { openLocalImage } from "../src/indexer/sources/local.js";
import { makeTar } from "../src/layers/testing.js";
import { walkLayer } from "../src/layers/walk.js";
import { defaultScanners } from "../src/scanners/index.js";
import type { Scanner } from "../src/model/scanner.js";
import { ociBookworm, rootfsBookworm } from "../test/env/images.js";
import { coverage, coverageLines } from "../test/scanners/oracles.js";
import { fmt, median, timeIt } from "./env.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, "coverage-only": { type: "boolean", default: false } } });
const runs = Number(values.runs);
if (!values["coverage-only"]) {
const dir = mkdtempSync(join(tmpdir(), "bench-scanners-"));

// 1. many small files: a node_modules-like tree, every 20th file a package.json some scanner wants.
const entries = [];
for (let i = 0; i < 50_000; i++) {
  const pkg = `app/node_modules/pkg${Math.floor(i / 20)}`;
  entries.push(i % 20 === 0
    ? { name: `${pkg}/package.json`, content: JSON.stringify({ name: `pkg${i / 20}`, version: "1.0.0", description: "x".repeat(150) }) }
    : { name: `${pkg}/lib/file${i}.js`, content: `module.exports = ${i}; // ${"y".repeat(180)}\n` });
}
const blob = gzipSync(await makeTar(entries), { level: 6 });
const blobFile = join(dir, "small-files.tar.gz");
writeFileSync(blobFile, blob);
const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
const naive: number[] = [];
const walked: number[] = [];
let found = 0;
for (let i = 0; i < runs; i++) {
  naive.push(await timeIt(async () => execFileSync("sh", ["-c", `gzip -dc '${blobFile}' | tar -t > /dev/null`])));
  walked.push(await timeIt(async () => {
    const scanners = defaultScanners();
    const w = await walkLayer(createReadStream(blobFile, { highWaterMark: 1 << 20 }), { digest, size: blob.length, scanners });
    found = 0;
    for (const s of scanners) found += (await s.scan(w.files)).packages?.length ?? 0;
  }));
}
const n = entries.length;
console.log(`1. layer of ${n} small files (${(blob.length / 1e6).toFixed(1)} MB gzip), median of ${runs}`);
console.log(`   gzip -dc | tar -t: ${fmt(median(naive))}  ${Math.round(n / (median(naive) / 1000))} files/s`);
console.log(`   walk + all ${defaultScanners().length} scanners: ${fmt(median(walked))}  ${Math.round(n / (median(walked) / 1000))} files/s  (${found} npm packages found)`);
console.log(`   ratio walk/tar: ${(median(walked) / median(naive)).toFixed(2)}  (target <= 1.5)`);

// 2. the time each scanner adds on the real image (its layers walked from the OCI layout)
const img = (await openLocalImage(`oci:${ociBookworm()}:lang`, { os: "linux", architecture: "amd64" }))!;
async function walkImage(scanners: Scanner[]): Promise<void> {
  for (const l of img.manifest.layers) {
    const w = await walkLayer(await img.source.open(l), { digest: l.digest, size: l.size, mediaType: l.mediaType, scanners });
    for (const s of scanners) await s.scan(w.files);
  }
}
// Interleaved rounds (baseline, then each scanner alone, then all), so drift on a noisy machine hits all alike.
const scannerNames = defaultScanners().map((s) => s.name);
const times = new Map<string, number[]>([["(none)", []], ["(all)", []], ...scannerNames.map((n): [string, number[]] => [n, []])]);
for (let i = 0; i < runs; i++) {
  times.get("(none)")!.push(await timeIt(() => walkImage([])));
  for (const s of defaultScanners()) times.get(s.name)!.push(await timeIt(() => walkImage([s])));
  times.get("(all)")!.push(await timeIt(() => walkImage(defaultScanners())));
}
const baseline = median(times.get("(none)")!);
console.log(`2. the Debian image with language packages (${img.manifest.layers.length} layers), median of ${runs}: walk with no scanner ${fmt(baseline)}`);
for (const n of scannerNames) console.log(`   + ${n.padEnd(18)} ${(median(times.get(n)!) - baseline).toFixed(0).padStart(5)} ms`);
console.log(`   all scanners together: ${fmt(median(times.get("(all)")!))} (+${(median(times.get("(all)")!) - baseline).toFixed(0)} ms)`);
rmSync(dir, { recursive: true, force: true });
}

// 3. packages found vs the ecosystems' own tools
for (const tag of ["lang", "inventory"]) {
  const root = `${rootfsBookworm()}-${tag}`;
  if (!existsSync(root)) {
    console.log(`3. ${tag}: no ${root} (run test/env/images.sh)`);
    continue;
  }
  console.log(`3. packages found vs the tools, image ${tag}`);
  for (const line of coverageLines(await coverage(ociBookworm(), tag, root))) console.log(`   ${line}`);
}

