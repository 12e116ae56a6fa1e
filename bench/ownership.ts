// File ownership's cost on the real Debian test images (issue 18's figure: time added to the walk, target
// under 10%). "without" is the default scanner set minus the dpkg-files scanner, which is what the scanners
// did before ownership on a Debian image (rpm and apk owners cost nothing there); "with" is the default set.
//   1. walk + scan of every layer (the one-pass walk the indexer does), interleaved rounds, medians;
//   2. a cold index through the Indexer into the embedded store (scan, store, coalesce, report);
//   3. what is kept: owner paths and their JSON bytes vs the bytes of the dpkg lists they come from.
// Usage: npx tsx bench/ownership.ts [--runs N]
import { parseArgs } from "node:util";
import { Indexer } from "../src/indexer/indexer.js";
import { openLocalImage } from "../src/indexer/sources/local.js";
import { walkLayer } from "../src/layers/walk.js";
import { defaultScanners } from "../src/scanners/index.js";
import type { Scanner, ScanOutput } from "../src/model/scanner.js";
import { openStore } from "../src/store/open.js";
import { ociBookworm } from "../test/env/images.js";
import { fmt, median, timeIt } from "./env.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const runs = Number(values.runs);
const without = () => defaultScanners().filter((s) => s.name !== "dpkg-files");
const withOwners = () => defaultScanners();

for (const tag of ["two", "lang"]) {
  const img = (await openLocalImage(`oci:${ociBookworm()}:${tag}`, { os: "linux", architecture: "amd64" }))!;
  const walkImage = async (scanners: Scanner[]): Promise<ScanOutput[]> => {
    const outs: ScanOutput[] = [];
    for (const l of img.manifest.layers) {
      const w = await walkLayer(await img.source.open(l), { digest: l.digest, size: l.size, mediaType: l.mediaType, scanners });
      for (const s of scanners) outs.push(await s.scan(w.files));
    }
    return outs;
  };
  const t = { without: [] as number[], with: [] as number[], indexWithout: [] as number[], indexWith: [] as number[] };
  for (let i = 0; i < runs; i++) {
    t.without.push(await timeIt(() => walkImage(without())));
    t.with.push(await timeIt(() => walkImage(withOwners())));
  }
  for (let i = 0; i < Math.max(1, Math.ceil(runs / 2)); i++) {
    for (const [k, set] of [["indexWithout", without], ["indexWith", withOwners]] as const) {
      const store = await openStore("memory:");
      t[k].push(await timeIt(() => new Indexer({ store, scanners: set() }).index(img.manifest, img.source)));
      await store.close();
    }
  }
  const outs = await walkImage(withOwners());
  const owners = outs.flatMap((o) => o.owners ?? []);
  const paths = owners.reduce((n, o) => n + o.paths.length, 0);
  // The lists' own size, for comparison: what buffering them whole would have held.
  let listBytes = 0;
  for (const l of img.manifest.layers) {
    const probe: Scanner = { name: "probe", version: "1", kind: "package", wants: (e) => /^var\/lib\/dpkg\/info\/[^/]+\.list$/.test(e.path), scan: async () => ({}) };
    const w = await walkLayer(await img.source.open(l), { digest: l.digest, size: l.size, mediaType: l.mediaType, scanners: [probe] });
    for (const p of w.files.paths()) listBytes += w.files.get(p)!.length;
  }
  const r = (a: number[], b: number[]) => (median(a) / median(b)).toFixed(3);
  console.log(`${tag} (${img.manifest.layers.length} layers), median of ${runs}:`);
  console.log(`  walk + scan   without ${fmt(median(t.without))}  with ${fmt(median(t.with))}  ratio ${r(t.with, t.without)}  (target < 1.10)`);
  console.log(`  cold index    without ${fmt(median(t.indexWithout))}  with ${fmt(median(t.indexWith))}  ratio ${r(t.indexWith, t.indexWithout)}`);
  console.log(`  kept: ${owners.length} lists, ${paths} owner paths, ${JSON.stringify(owners).length} bytes of JSON, from ${(listBytes / 1e6).toFixed(2)} MB of .list files`);
}
