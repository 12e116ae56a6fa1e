// What reading Debian's copyright files costs (the dpkg-copyright scanner, for SBOM licences) on the real
// Debian test images: the one-pass walk + scan of every layer with the default scanners and without that
// scanner, interleaved rounds, medians, as a ratio measured in the same run; and what it keeps.
// The machine is shared (2 cores): figures are noisy, compare the ratio, not the times.
// Usage: npx tsx bench/licences.ts [--runs N]
import { parseArgs } from "node:util";
import { openLocalImage } from "../src/indexer/sources/local.js";
import { walkLayer } from "../src/layers/walk.js";
import { defaultScanners } from "../src/scanners/index.js";
import type { Scanner, ScanOutput } from "../src/model/scanner.js";
import { ociBookworm } from "../test/env/images.js";
import { fmt, median, timeIt } from "./env.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const runs = Number(values.runs);
const without = () => defaultScanners().filter((s) => s.name !== "dpkg-copyright");

for (const tag of ["base", "lang"]) {
  const img = (await openLocalImage(`oci:${ociBookworm()}:${tag}`, { os: "linux", architecture: "amd64" }))!;
  const walkImage = async (scanners: Scanner[]): Promise<ScanOutput[]> => {
    const outs: ScanOutput[] = [];
    for (const l of img.manifest.layers) {
      const w = await walkLayer(await img.source.open(l), { digest: l.digest, size: l.size, mediaType: l.mediaType, scanners });
      for (const s of scanners) outs.push(await s.scan(w.files));
    }
    return outs;
  };
  const t = { without: [] as number[], with: [] as number[] };
  for (let i = 0; i < runs; i++) {
    t.without.push(await timeIt(() => walkImage(without())));
    t.with.push(await timeIt(() => walkImage(defaultScanners())));
  }
  const files = (await walkImage(defaultScanners())).flatMap((o) => o.licenseFiles ?? []);
  console.log(`${tag} (${img.manifest.layers.length} layers), median of ${runs}:`);
  console.log(`  walk + scan   without ${fmt(median(t.without))}  with ${fmt(median(t.with))}  ratio ${(median(t.with) / median(t.without)).toFixed(3)}`);
  console.log(`  kept: ${files.length} copyright files, ${files.filter((f) => f.licenses.length).length} with licences, ${JSON.stringify(files).length} bytes of JSON`);
}
