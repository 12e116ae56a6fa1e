// The indexer on real Debian images (debootstrap + umoci, test/env/images.sh), from every source, against
// oracles no one here wrote: dpkg-query on the same root filesystem, and Trivy's SBOM of it.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseReference } from "../../src/image/reference.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { clairValidator } from "../../src/indexer/clair-schema.js";
import type { IndexReport } from "../../src/model/index-report.js";
import { openLocalImage } from "../../src/indexer/sources/local.js";
import { openRegistryImage } from "../../src/indexer/sources/registry.js";
import { RegistryClient } from "../../src/registry/client.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { describeWith, service, tool } from "../env/index.js";
import { layoutDigest, ociBookworm, rootfsBookworm, rootfsBookwormTwo, skopeoPush, zstdLayout } from "../env/images.js";

const run = promisify(execFile);
const platform = { os: "linux", architecture: "amd64" };

async function dpkgQuery(rootfs: string): Promise<string[]> {
  const { stdout } = await run(tool("dpkg-query"), ["--admindir", join(rootfs, "var/lib/dpkg"), "-W", "-f", "${db:Status-Abbrev}\\t${Package}\\t${Version}\\n"]);
  return stdout.split("\n").filter((l) => l.startsWith("ii")).map((l) => l.split("\t").slice(1).join("\t")).sort();
}

async function trivyPackages(rootfs: string): Promise<string[]> {
  const out = join(mkdtempSync(join(tmpdir(), "trivy-")), "sbom.json");
  await run(tool("trivy"), ["rootfs", "-q", "--offline-scan", "--skip-db-update", "--format", "cyclonedx", "--output", out, rootfs], { maxBuffer: 64 << 20, env: { ...process.env, TRIVY_CACHE_DIR: join(tmpdir(), "trivy-cache") } });
  const sbom = JSON.parse(readFileSync(out, "utf8")) as { components?: Array<{ name: string; version: string; purl?: string }> };
  return (sbom.components ?? []).filter((c) => c.purl?.startsWith("pkg:deb/")).map((c) => `${c.name}\t${c.version}`).sort();
}

function pkgs(r: IndexReport): string[] {
  return Object.values(r.packages ?? {}).map((p) => `${p.name}\t${p.version}`).sort();
}

const validate = clairValidator("index_report.schema.json");

describeWith(["registryBasic"], "indexing real Debian images", () => {
  let store: Store;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-ix-"));
    store = await openStore(join(dir, "store"));
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("finds exactly what dpkg-query and Trivy find in a one-layer image (OCI layout)", async () => {
    const img = (await openLocalImage(`oci:${ociBookworm()}:base`, platform))!;
    const { report, stats } = await new Indexer({ store, scanners: defaultScanners() }).index(img.manifest, img.source);
    expect(report.state).toBe("IndexFinished");
    expect(validate(report)).toEqual([]);
    const want = await dpkgQuery(rootfsBookworm());
    expect(want.length).toBeGreaterThan(80);
    expect(pkgs(report)).toEqual(want);
    expect(pkgs(report)).toEqual(await trivyPackages(rootfsBookworm()));
    expect(Object.values(report.distributions!)[0]).toMatchObject({ did: "debian", version_id: "12", version_code_name: "bookworm" });
    expect(stats).toMatchObject({ layers: 1, layersFetched: 1 });
  });

  it("applies the second layer: jq installed, gpgv purged, introduced_in on the right layer", async () => {
    const img = (await openLocalImage(`oci:${ociBookworm()}:two`, platform))!;
    expect(img.manifest.layers).toHaveLength(2);
    const { report, stats } = await new Indexer({ store, scanners: defaultScanners() }).index(img.manifest, img.source);
    expect(stats).toMatchObject({ layers: 2, layersFetched: 1, layersReused: 1 });
    const want = await dpkgQuery(rootfsBookwormTwo());
    expect(pkgs(report)).toEqual(want);
    expect(want.some((p) => p.startsWith("jq\t"))).toBe(true);
    expect(want.some((p) => p.startsWith("gpgv\t"))).toBe(false);
    const byName = new Map(Object.values(report.packages!).map((p) => [p.name, p.id]));
    const [bottom, top] = img.manifest.layers.map((l) => l.digest);
    // The second layer rewrote the status file; packages that were already there keep the first layer.
    expect(report.environments![byName.get("jq")!]![0]!.introduced_in).toBe(top);
    expect(report.environments![byName.get("libc6")!]![0]!.introduced_in).toBe(bottom);
  });

  it("reads the same image from a docker-archive and an oci-archive", async () => {
    const archives = mkdtempSync(join(tmpdir(), "archives-"));
    await run(tool("skopeo"), ["copy", "--quiet", `oci:${ociBookworm()}:base`, `docker-archive:${archives}/d.tar:debian:base`]);
    await run(tool("skopeo"), ["copy", "--quiet", `oci:${ociBookworm()}:base`, `oci-archive:${archives}/o.tar:base`]);
    const want = await dpkgQuery(rootfsBookworm());
    for (const spec of [`docker-archive:${archives}/d.tar`, `oci-archive:${archives}/o.tar:base`]) {
      const img = (await openLocalImage(spec, platform))!;
      const { report } = await new Indexer({ store: await openStore("memory:"), scanners: defaultScanners() }).index(img.manifest, img.source);
      expect(report.state, spec).toBe("IndexFinished");
      expect(pkgs(report), spec).toEqual(want);
    }
    rmSync(archives, { recursive: true, force: true });
  });

  it("indexes from the registry, gzip and zstd, and a second index downloads nothing", async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:two`, reg, "debian:two");
    const zdir = join(mkdtempSync(join(tmpdir(), "zstd-")), "l");
    await zstdLayout(`oci:${ociBookworm()}:two`, zdir);
    await skopeoPush(`oci:${zdir}`, reg, "debian:two-zstd");
    const client = new RegistryClient({ keyring: { lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] } });
    const fresh = await openStore("memory:");
    const want = await dpkgQuery(rootfsBookwormTwo());
    for (const tag of ["two", "two-zstd"]) {
      const img = await openRegistryImage(client, parseReference(`${reg.host}/debian:${tag}`));
      const ix = new Indexer({ store: fresh, scanners: defaultScanners() });
      const first = await ix.index(img.manifest, img.source);
      expect(first.report.state, tag).toBe("IndexFinished");
      expect(pkgs(first.report), tag).toEqual(want);
      const again = await ix.index(img.manifest, img.source);
      expect(again.stats).toMatchObject({ cached: true, bytesFetched: 0 });
    }
    expect(layoutDigest(ociBookworm(), "two")).toBe((await client.resolve(parseReference(`${reg.host}/debian:two`))).digest);
    await client.close();
    await fresh.close();
  });
});
