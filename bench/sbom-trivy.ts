// Our CycloneDX SBOM against Trivy's, for the Debian test images (test/env/images.sh): Trivy reads the
// unpacked root filesystem (`trivy rootfs --format cyclonedx`, offline), Portcullis the OCI layout of the
// same image. Prints, per image, the component sets' difference by purl, normalised so that spelling is not
// a difference: percent-decoded, qualifiers dropped but `arch` (Trivy's `distro` carries the point release,
// debian-12.x, ours the VERSION_ID, debian-12), PyPI names PEP 503-normalised. Then how many components
// carry licences in each, and where the licence sets differ for the same purl.
// Not a benchmark and not a test: a report for a reader. Usage: npx tsx bench/sbom-trivy.ts
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Indexer } from "../src/indexer/indexer.js";
import { openLocalImage } from "../src/indexer/sources/local.js";
import { cyclonedx } from "../src/sbom/cyclonedx.js";
import { defaultScanners } from "../src/scanners/index.js";
import { openStore } from "../src/store/open.js";
import { findTool } from "../src/cli/tools.js";
import { imagesDir, ociBookworm } from "../test/env/images.js";

interface Component {
  type: string;
  name: string;
  version?: string;
  purl?: string;
  licenses?: Array<{ license?: { id?: string; name?: string }; expression?: string }>;
}

/** A purl without spelling differences: decoded, `arch` the only qualifier, PyPI names PEP 503-normalised. */
export function normalisePurl(p: string): string {
  const [head, query = ""] = p.split("?");
  const arch = new URLSearchParams(query).get("arch");
  let h = decodeURIComponent(head!);
  if (h.startsWith("pkg:pypi/")) {
    const at = h.lastIndexOf("@");
    h = `pkg:pypi/${h.slice(9, at).toLowerCase().replace(/[-_.]+/g, "-")}${h.slice(at)}`;
  }
  return arch ? `${h}?arch=${arch}` : h;
}

function licences(c: Component): string {
  return (c.licenses ?? []).map((l) => l.expression ?? l.license?.id ?? l.license?.name ?? "").sort().join(", ");
}

const trivy = findTool("trivy");
if (!trivy) throw new Error("trivy not found: run `npm run env:setup` (test/env/setup.sh)");
const work = mkdtempSync(join(tmpdir(), "sbom-trivy-"));
const store = await openStore("memory:");
try {
  const indexer = new Indexer({ store, scanners: defaultScanners() });
  for (const [tag, rootfs] of [["base", "rootfs-bookworm"], ["two", "rootfs-bookworm-two"], ["lang", "rootfs-bookworm-lang"]] as const) {
    const out = join(work, `${tag}.json`);
    execFileSync(trivy, ["rootfs", "-q", "--offline-scan", "--skip-db-update", "--format", "cyclonedx", "--output", out, join(imagesDir(), rootfs)], { env: { ...process.env, TRIVY_CACHE_DIR: join(work, "cache") }, maxBuffer: 64 << 20 });
    const theirs = (JSON.parse(readFileSync(out, "utf8")) as { components?: Component[] }).components ?? [];
    const img = (await openLocalImage(`oci:${ociBookworm()}:${tag}`, { os: "linux", architecture: "amd64" }))!;
    const r = await indexer.index(img.manifest, img.source);
    if (r.report.state !== "IndexFinished") throw new Error(`${tag}: ${r.report.err}`);
    const inv = await indexer.inventory(img.manifest.digest);
    const doc = cyclonedx({ image: { name: tag, manifest: inv.manifest, layers: inv.layers }, packages: inv.packages, distribution: inv.distribution, tool: { name: "portcullis", version: "bench" }, timestamp: "2026-01-01T00:00:00Z", uuid: "00000000-0000-4000-8000-000000000000" });
    const ours = doc.components as Component[];
    const index = (cs: Component[]) => new Map(cs.filter((c) => c.purl).map((c) => [normalisePurl(c.purl!), c]));
    const a = index(ours);
    const b = index(theirs);
    const onlyOurs = [...a.keys()].filter((k) => !b.has(k)).sort();
    const onlyTheirs = [...b.keys()].filter((k) => !a.has(k)).sort();
    console.log(`\n== oci-bookworm:${tag}  (Portcullis ${a.size} components with purls, Trivy ${b.size}; in both ${[...a.keys()].filter((k) => b.has(k)).length})`);
    console.log(`   without purl: Portcullis ${ours.filter((c) => !c.purl).map((c) => `${c.type} ${c.name}`).join(", ") || "none"}; Trivy ${theirs.filter((c) => !c.purl).map((c) => `${c.type} ${c.name}`).join(", ") || "none"}`);
    for (const k of onlyOurs) console.log(`   only Portcullis: ${k}`);
    for (const k of onlyTheirs) console.log(`   only Trivy:      ${k}`);
    const licensed = (m: Map<string, Component>) => [...m.values()].filter((c) => c.licenses?.length).length;
    console.log(`   with licences: Portcullis ${licensed(a)}, Trivy ${licensed(b)}`);
    let same = 0;
    const differ: string[] = [];
    for (const [k, c] of a) {
      const t = b.get(k);
      if (!t) continue;
      if (licences(c) === licences(t)) same++;
      else differ.push(`   licences differ: ${k}: Portcullis [${licences(c)}] Trivy [${licences(t)}]`);
    }
    console.log(`   same licence set for the same purl: ${same}; different: ${differ.length}`);
    for (const d of differ.slice(0, 15)) console.log(d);
    if (differ.length > 15) console.log(`   … and ${differ.length - 15} more`);
  }
} finally {
  await store.close();
  rmSync(work, { recursive: true, force: true });
}
