// Partial layer reads against full reads, same run, same registry (a real one on loopback): the two-layer
// Debian test image and, when bench/toc-image.sh has built it, a one-layer Debian with clang-14 and
// llvm-14-dev (1.1 GB uncompressed), both recompressed by skopeo as zstd:chunked and rebuilt as eStargz by
// containerd's estargz package (test/env/estargz), and as they are (gzip) with SOCI zTOCs every 4 MiB (SOCI's
// default span) in a v2 SOCI index (test/env/soci.ts: gztool's checkpoints, tarfile's entries, flatc; no
// SOCI producer is packaged here). For each: compressed bytes
// downloaded and wall time of Indexer.index() on a fresh store, partial and full, median of the runs; the
// partial figures are printed as ratios of the full ones. Loopback has no latency to speak of: across a real
// network, where each range request costs a round trip, the time ratio is worse for many small files and
// better for big layers.
//
// --sweep GAP:CONC[:BUDGET[:TAIL]],...: only the large layer, zstd:chunked and eStargz, partially with each
// tuning (the widest gap fetched between two ranges, requests at once, the gap bytes allowed as a fraction of
// the bytes wanted, the compressed bytes of an executable's end fetched with its start) against the gzip full
// read, interleaved, median of --big-runs: what the defaults (DEFAULT_TOC_WALK_TUNING) were chosen by.
//
//   npm run bench:toc [-- --runs N] [--big-runs N] [--no-full-chunked] [--full-big-chunked] [--only-soci] [--sweep 0:4,16384:8,...] [--sweep-formats zstd:chunked,estargz]
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseReference } from "../src/image/reference.js";
import { Indexer, type IndexerOptions, type IndexResult } from "../src/indexer/indexer.js";
import { DEFAULT_TOC_WALK_TUNING } from "../src/layers/toc/walk.js";
import { openRegistryImage } from "../src/indexer/sources/registry.js";
import { RegistryClient } from "../src/registry/client.js";
import { defaultScanners } from "../src/scanners/index.js";
import { openStore } from "../src/store/open.js";
import { estargzLayout, imagesDir, ociBookworm, skopeoPush, zstdChunkedLayout } from "../test/env/images.js";
import { RegistryPusher } from "../test/env/oci-push.js";
import type { RegistryService } from "../test/env/services.js";
import { pushSociImage, pushSociIndex, pushZtocs } from "../test/env/soci.js";
import { median, withRegistry } from "./env.js";

const run = promisify(execFile);
const args = process.argv.slice(2);
const opt = (name: string, d: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const runs = opt("--runs", 3);
const bigRuns = opt("--big-runs", 2);
const onlySoci = args.includes("--only-soci");
const sweepAt = args.indexOf("--sweep");
const sweep = sweepAt >= 0 ? args[sweepAt + 1]!.split(",").map((t) => {
  const [gap, conc, budget, tail] = t.split(":").map(Number);
  if (!Number.isSafeInteger(gap) || !Number.isSafeInteger(conc) || conc! < 1) throw new Error(`--sweep: ${JSON.stringify(t)} is not GAP:CONCURRENCY[:GAP_BUDGET[:TAIL_BYTES]]`);
  return { maxGap: gap!, concurrency: conc!, gapBudget: budget ?? DEFAULT_TOC_WALK_TUNING.gapBudget, tailBytes: tail ?? DEFAULT_TOC_WALK_TUNING.tailBytes };
}) : undefined;

interface Sample {
  ms: number;
  bytes: number;
  requests: number;
  packages: string;
  modes: string;
}

async function indexOnce(host: string, repoTag: string, partial: boolean, tocTuning?: IndexerOptions["tocTuning"]): Promise<Sample> {
  const client = new RegistryClient();
  const store = await openStore("memory:");
  try {
    const img = await openRegistryImage(client, parseReference(`${host}/${repoTag}`));
    const ix = new Indexer({ store, scanners: defaultScanners(), partialReads: partial, ...(tocTuning ? { tocTuning } : {}) });
    const t0 = performance.now();
    const r: IndexResult = await ix.index(img.manifest, img.source);
    const ms = performance.now() - t0;
    if (r.report.state !== "IndexFinished") throw new Error(`${repoTag}: ${r.report.err}`);
    const packages = Object.values(r.report.packages ?? {}).map((p) => `${p.name} ${p.version}`).sort().join("\n");
    return { ms, bytes: r.stats.bytesFetched, requests: r.stats.layerReads!.reduce((n, l) => n + (l.requests ?? 0), 0), packages, modes: r.stats.layerReads!.map((l) => l.mode + (l.fallback ? ` (${l.fallback})` : "")).join(", ") };
  } finally {
    await store.close();
    await client.close();
  }
}

type Format = "zstd:chunked" | "estargz" | "soci";

async function tocLayout(src: string, name: string, format: Format): Promise<string> {
  const dest = join(imagesDir(), name);
  if (!existsSync(join(dest, "index.json"))) {
    process.stderr.write(`converting ${src} to ${format} (${name}) ...\n`);
    await (format === "zstd:chunked" ? zstdChunkedLayout(src, dest) : estargzLayout(src, dest));
  }
  return dest;
}

/**
 * Partial reads of the converted image against full reads: of the same converted image (what the bytes are
 * compared with; skipped with fullToc false, its size then stands for its bytes, which test/indexer/toc.test.ts
 * shows equal) and of the original gzip image (a second time baseline: fzstd decodes zstd:chunked's big
 * frames about 20 times slower than gzip, which would flatter the partial read's time).
 */
async function compare(host: string, label: string, format: Format, chunkedTag: string, gzipTag: string, n: number, chunkedBytes: number, fullChunked: boolean): Promise<void> {
  const partial: Sample[] = [];
  const gzip: Sample[] = [];
  const full: Sample[] = [];
  for (let i = 0; i < n; i++) {
    gzip.push(await indexOnce(host, gzipTag, false));
    partial.push(await indexOnce(host, chunkedTag, true));
  }
  if (fullChunked) full.push(await indexOnce(host, chunkedTag, false));
  // The bytes the scanners need: ranges not merged across gaps (many more requests; the default merges
  // ranges up to 64 KiB apart, trading bytes for round trips over a real network).
  const exact = await indexOnce(host, chunkedTag, true, { maxGap: 0, tailBytes: 0 });
  const p = partial[0]!;
  for (const other of [gzip[0]!, exact, ...full]) if (other.packages !== p.packages) throw new Error(`${label}: the partial read found other packages than a full read`);
  const pb = median(partial.map((s) => s.bytes));
  const pm = median(partial.map((s) => s.ms));
  const gb = median(gzip.map((s) => s.bytes));
  const gm = median(gzip.map((s) => s.ms));
  const count = p.packages.split("\n").length;
  const mb = (b: number) => `${(b / 1e6).toFixed(2).padStart(8)} MB`;
  const sec = (ms: number) => `${(ms / 1000).toFixed(2).padStart(7)} s`;
  const f14 = (x: string) => x.padEnd(14);
  console.log(`${label}, ${format}: ${count} packages, the same every way; layers read: ${p.modes}`);
  if (fullChunked) {
    const f = full[0]!;
    console.log(`  full, ${f14(format)}${mb(f.bytes)} ${sec(f.ms)}   (1 run)`);
  } else {
    console.log(`  full, ${f14(format)}${mb(chunkedBytes)}   (not timed: the blobs' size, what a full read downloads)`);
  }
  console.log(`  full, ${f14("gzip")}${mb(gb)} ${sec(gm)}   (median of ${n})`);
  const fb = fullChunked ? full[0]!.bytes : chunkedBytes;
  const timeVsChunked = fullChunked ? `, ${((100 * pm) / full[0]!.ms).toFixed(1)}% of the ${format} full read's time` : "";
  console.log(`  partial, unmerged   ${mb(exact.bytes)} ${sec(exact.ms)}   (1 run, ${exact.requests} range requests) bytes ${((100 * exact.bytes) / fb).toFixed(2)}% of the ${format} full read`);
  console.log(`  partial             ${mb(pb)} ${sec(pm)}   (median of ${n}, ${p.requests} range requests) bytes ${((100 * pb) / fb).toFixed(2)}% of the ${format} full read, ${((100 * pb) / gb).toFixed(2)}% of the gzip one; time ${((100 * pm) / gm).toFixed(1)}% of the gzip full read's${timeVsChunked}`);
}

function layoutManifest(dir: string, tag?: string): { layers: Array<{ digest: string; size: number; mediaType: string }> } & Record<string, unknown> {
  const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const d = tag ? index.manifests.find((x) => x.annotations?.["org.opencontainers.image.ref.name"] === tag)! : index.manifests[0]!;
  return JSON.parse(readFileSync(join(dir, "blobs/sha256", d.digest.slice(7)), "utf8")) as ReturnType<typeof layoutManifest>;
}

function layoutBytes(dir: string, tag?: string): number {
  return layoutManifest(dir, tag).layers.reduce((n, l) => n + l.size, 0);
}

/** The gzip image `dir:tag`, already pushed as `repo:tag`, with SOCI zTOCs in a v2 SOCI index, pushed as `repo:tag-soci`. */
async function pushSoci(reg: RegistryService, dir: string, tag: string, repo: string): Promise<void> {
  const pusher = new RegistryPusher(reg);
  try {
    const m = layoutManifest(dir, tag);
    process.stderr.write(`building SOCI zTOCs of ${dir}:${tag} (gztool, tarfile, flatc) ...\n`);
    const index = await pushSociIndex(pusher, repo, "v2", m.layers, await pushZtocs(pusher, repo, dir, m.layers, 4));
    await pushSociImage(pusher, repo, `${tag}-soci`, m, index.digest);
  } finally {
    await pusher.close();
  }
}

/** Each tuning against the gzip full read, runs interleaved so that drift hits all alike. */
async function sweepTunings(host: string, label: string, format: Format, tag: string, gzipTag: string, bytes: number, n: number, tunings: NonNullable<typeof sweep>): Promise<void> {
  const gzip: Sample[] = [];
  const by = tunings.map(() => [] as Sample[]);
  for (let i = 0; i < n; i++) {
    gzip.push(await indexOnce(host, gzipTag, false));
    for (const [k, t] of tunings.entries()) by[k]!.push(await indexOnce(host, tag, true, t));
  }
  const gm = median(gzip.map((s) => s.ms));
  console.log(`${label}, ${format} (${(bytes / 1e6).toFixed(2)} MB), partial reads by range tuning; full gzip read ${(gm / 1000).toFixed(2)} s (median of ${n}):`);
  for (const [k, t] of tunings.entries()) {
    const ss = by[k]!;
    if (ss.some((s) => s.packages !== gzip[0]!.packages)) throw new Error(`${label}: a partial read found other packages than the full read`);
    const pm = median(ss.map((s) => s.ms));
    console.log(`  gap ${String(t.maxGap).padStart(7)} budget ${String(t.gapBudget).padStart(8)} tail ${String(t.tailBytes).padStart(6)} concurrency ${String(t.concurrency).padStart(2)}: ${(ss[0]!.bytes / 1e6).toFixed(2).padStart(6)} MB (${((100 * ss[0]!.bytes) / bytes).toFixed(2)}% of the blob), ${String(ss[0]!.requests).padStart(4)} requests, ${(pm / 1000).toFixed(2)} s (${((100 * pm) / gm).toFixed(1)}% of the gzip full read's)`);
  }
}

await withRegistry(async (reg) => {
  if (sweep) {
    const big = (await run("bash", [join(import.meta.dirname, "toc-image.sh"), "--print"])).stdout.trim();
    if (!existsSync(join(big, ".complete"))) throw new Error(`--sweep: ${big} missing; build it with \`bash bench/toc-image.sh\``);
    await skopeoPush(`oci:${big}:big`, reg, "toolchain:big");
    const bigLabel = "one layer: Debian + clang-14 + llvm-14-dev (1.1 GB uncompressed)";
    const formats = (args.includes("--sweep-formats") ? args[args.indexOf("--sweep-formats") + 1]!.split(",") : ["zstd:chunked", "estargz"]) as Format[];
    for (const format of formats) {
      const layout = await tocLayout(`oci:${big}:big`, format === "estargz" ? "oci-toolchain-estargz" : "oci-toolchain-chunked", format);
      await skopeoPush(`oci:${layout}`, reg, `toolchain:big-${format === "estargz" ? "estargz" : "chunked"}`);
      await sweepTunings(reg.host, bigLabel, format, `toolchain:big-${format === "estargz" ? "estargz" : "chunked"}`, "toolchain:big", layoutBytes(layout), bigRuns, sweep);
    }
    return;
  }
  await skopeoPush(`oci:${ociBookworm()}:two`, reg, "debian:two");
  const label = "two-layer Debian (debootstrap, then jq installed and gpgv purged)";
  if (!onlySoci) {
    const two = await tocLayout(`oci:${ociBookworm()}:two`, "oci-bookworm-chunked", "zstd:chunked");
    await skopeoPush(`oci:${two}`, reg, "debian:two-chunked");
    const twoEsgz = await tocLayout(`oci:${ociBookworm()}:two`, "oci-bookworm-estargz", "estargz");
    await skopeoPush(`oci:${twoEsgz}`, reg, "debian:two-estargz");
    await compare(reg.host, label, "zstd:chunked", "debian:two-chunked", "debian:two", runs, layoutBytes(two), !args.includes("--no-full-chunked"));
    await compare(reg.host, label, "estargz", "debian:two-estargz", "debian:two", runs, layoutBytes(twoEsgz), true);
  }
  // SOCI: the same gzip blobs, so the gzip full read is its full read.
  await pushSoci(reg, ociBookworm(), "two", "debian");
  await compare(reg.host, label, "soci", "debian:two-soci", "debian:two", runs, layoutBytes(ociBookworm(), "two"), false);

  const big = (await run("bash", [join(import.meta.dirname, "toc-image.sh"), "--print"])).stdout.trim();
  if (!existsSync(join(big, ".complete"))) {
    console.log(`large layer: skipped: ${big} missing; build it with \`bash bench/toc-image.sh\` (debootstrap + clang-14 + llvm-14-dev, a few minutes)`);
    return;
  }
  await skopeoPush(`oci:${big}:big`, reg, "toolchain:big");
  const bigLabel = "one layer: Debian + clang-14 + llvm-14-dev (1.1 GB uncompressed)";
  if (!onlySoci) {
    const bigChunked = await tocLayout(`oci:${big}:big`, "oci-toolchain-chunked", "zstd:chunked");
    await skopeoPush(`oci:${bigChunked}`, reg, "toolchain:big-chunked");
    const bigEsgz = await tocLayout(`oci:${big}:big`, "oci-toolchain-estargz", "estargz");
    await skopeoPush(`oci:${bigEsgz}`, reg, "toolchain:big-estargz");
    // The full read of the 1 GB zstd:chunked layer is long with fzstd: not timed unless asked.
    await compare(reg.host, bigLabel, "zstd:chunked", "toolchain:big-chunked", "toolchain:big", bigRuns, layoutBytes(bigChunked), args.includes("--full-big-chunked"));
    await compare(reg.host, bigLabel, "estargz", "toolchain:big-estargz", "toolchain:big", bigRuns, layoutBytes(bigEsgz), true);
  }
  await pushSoci(reg, big, "big", "toolchain");
  await compare(reg.host, bigLabel, "soci", "toolchain:big-soci", "toolchain:big", bigRuns, layoutBytes(big, "big"), false);
});
console.log("(2 shared cores, other work running: figures are noisy; ratios are from the same run)");
