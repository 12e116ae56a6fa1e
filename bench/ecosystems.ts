// What the cargo-auditable scanner adds to the layer walk: it streams every executable (as the Go scanner
// does) looking for the `.dep-v0` section past the loaded segments. "without" is the default scanner set
// minus cargo-auditable, "with" the default set, on
//   1. the Debian test images (two layers; the language layer with direnv, a Go program);
//   2. one layer of big executables of this machine (node, etcd, gcc's lto-dump: 150 MB, none of them Rust),
//      the worst case: every byte is an executable the scanner reads to the end.
// Interleaved rounds, medians, ratios against the baseline of the same run.
// Usage: npx tsx bench/ecosystems.ts [--runs N]
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { openLocalImage } from "../src/indexer/sources/local.js";
import { digestOf } from "../src/layers/testing.js";
import { walkLayer } from "../src/layers/walk.js";
import { defaultScanners } from "../src/scanners/index.js";
import type { Scanner } from "../src/model/scanner.js";
import { ociBookworm } from "../test/env/images.js";
import { fmt, median, timeIt } from "./env.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const runs = Number(values.runs);
const without = () => defaultScanners().filter((s) => s.name !== "cargo-auditable");
const withCargo = () => defaultScanners();
const r = (a: number[], b: number[]) => (median(a) / median(b)).toFixed(3);

async function compare(label: string, walk: (scanners: Scanner[]) => Promise<unknown>): Promise<void> {
  const t = { without: [] as number[], with: [] as number[] };
  for (let i = 0; i < runs; i++) {
    t.without.push(await timeIt(() => walk(without())));
    t.with.push(await timeIt(() => walk(withCargo())));
  }
  console.log(`${label}, median of ${runs}: without ${fmt(median(t.without))}  with ${fmt(median(t.with))}  ratio ${r(t.with, t.without)}`);
}

for (const tag of ["two", "lang"]) {
  const img = (await openLocalImage(`oci:${ociBookworm()}:${tag}`, { os: "linux", architecture: "amd64" }))!;
  await compare(`bookworm ${tag} (${img.manifest.layers.length} layers) walk + scan`, async (scanners) => {
    for (const l of img.manifest.layers) {
      const w = await walkLayer(await img.source.open(l), { digest: l.digest, size: l.size, mediaType: l.mediaType, scanners });
      for (const s of scanners) await s.scan(w.files);
    }
  });
}

const bins = ["/usr/bin/node", "/usr/bin/etcd", "/usr/bin/x86_64-linux-gnu-lto-dump-12"].filter((p) => existsSync(p));
const tar = execFileSync("tar", ["-C", "/", "-cf", "-", ...bins.map((p) => p.slice(1))], { maxBuffer: 1 << 30 });
const chunks = Array.from({ length: Math.ceil(tar.length / 65536) }, (_, i) => tar.subarray(i * 65536, (i + 1) * 65536));
await compare(`executables layer (${bins.length} files, ${(tar.length / 1e6).toFixed(0)} MB) walk + scan`, async (scanners) => {
  const w = await walkLayer(Readable.from(chunks), { digest: digestOf(tar), scanners });
  for (const s of scanners) await s.scan(w.files);
});
