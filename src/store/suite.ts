// The store test suite, run against both backends (embedded here in the unit project, PostgreSQL in
// test/store/). Every test uses digests of its own, so suites may share a database.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IndexReport } from "../model/index-report.js";
import type { ScannerInfo } from "../model/scanner.js";
import { scannedKey, type Store } from "./types.js";

const d = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

export function storeSuite(title: string, open: () => Promise<Store>): void {
  describe(title, () => {
    let store: Store;
    const run = randomBytes(4).toString("hex");
    const dg = (s: string) => d(`${run}:${s}`);
    const dpkg1: ScannerInfo = { name: "dpkg", version: "1", kind: "package" };
    const dpkg2: ScannerInfo = { name: "dpkg", version: "2", kind: "package" };
    const osr: ScannerInfo = { name: "os-release", version: "1", kind: "distribution" };

    // PGlite's first open in a process compiles its WebAssembly: over 10 s on a loaded machine.
    beforeAll(async () => {
      store = await open();
      await store.registerScanners([dpkg1, dpkg2, osr]);
    }, 120_000);
    afterAll(async () => store?.close());

    it("remembers which layers each scanner version has scanned, across manifests", async () => {
      const base = dg("base");
      const top = dg("top");
      await store.persistManifest({ digest: dg("m1"), layers: [{ digest: base, size: 1, mediaType: "x" }, { digest: top, size: 1, mediaType: "x" }] });
      expect(await store.scannedLayers([base, top], [dpkg1, osr])).toEqual(new Set());
      await store.setLayerScanned(base, { whiteouts: [], opaqueDirs: [], files: [] }, [
        { scanner: dpkg1, output: { packages: [{ name: "libc6", version: "2.36", package_db: "var/lib/dpkg/status" }] } },
        { scanner: osr, output: { distributions: [] } },
      ]);
      const scanned = await store.scannedLayers([base, top], [dpkg1, osr]);
      expect(scanned).toEqual(new Set([scannedKey(base, dpkg1), scannedKey(base, osr)]));
      // A new scanner version makes the layer eligible again.
      expect(await store.scannedLayers([base], [dpkg2])).toEqual(new Set());
      // Another manifest sharing the base layer sees it scanned.
      await store.persistManifest({ digest: dg("m2"), layers: [{ digest: base, size: 1, mediaType: "x" }] });
      expect((await store.scannedLayers([base], [dpkg1])).size).toBe(1);
    });

    it("gives a manifest's layers bottom to top (a layer twice, twice), and nothing for an unknown manifest", async () => {
      const [a, b] = [dg("ml-a"), dg("ml-b")];
      await store.persistManifest({ digest: dg("m-layers"), layers: [b, a, b].map((digest) => ({ digest, size: 1, mediaType: "x" })) });
      expect(await store.manifestLayers(dg("m-layers"))).toEqual([b, a, b]);
      // Written again with another list (a store written by an older version, or one cut short): replaced.
      const c = dg("ml-c");
      await store.persistManifest({ digest: dg("m-layers"), layers: [c, b].map((digest) => ({ digest, size: 1, mediaType: "x" })) });
      expect(await store.manifestLayers(dg("m-layers"))).toEqual([c, b]);
      await store.persistManifest({ digest: dg("m-layers"), layers: [a, b, c, a].map((digest) => ({ digest, size: 1, mediaType: "x" })) });
      expect(await store.manifestLayers(dg("m-layers"))).toEqual([a, b, c, a]);
      await store.persistManifest({ digest: dg("m-empty"), layers: [] });
      expect(await store.manifestLayers(dg("m-empty"))).toEqual([]);
      expect(await store.manifestLayers(dg("m-unknown"))).toBeUndefined();
    });

    it("returns layer artifacts with whiteouts, per scanner version", async () => {
      const l = dg("layer-art");
      await store.persistManifest({ digest: dg("m-art"), layers: [{ digest: l, size: 1, mediaType: "x" }] });
      await store.setLayerScanned(l, { whiteouts: ["var/lib/dpkg/status"], opaqueDirs: ["opt"], files: ["etc/os-release"] }, [{ scanner: dpkg2, output: { packages: [] } }]);
      const arts = await store.layerArtifacts([l], [dpkg1, dpkg2]);
      expect(arts.get(l)?.whiteouts).toEqual(["var/lib/dpkg/status"]);
      expect(arts.get(l)?.opaqueDirs).toEqual(["opt"]);
      expect(arts.get(l)?.files).toEqual(["etc/os-release"]);
      // A later walk for another scanner adds its files to the layer's, never drops the others, and the
      // write answers the facts as stored.
      expect(await store.setLayerScanned(l, { whiteouts: ["var/lib/dpkg/status"], opaqueDirs: ["opt"], files: ["var/lib/dpkg/status", "var/lib/dpkg/status"] }, [{ scanner: osr, output: {} }]))
        .toEqual({ whiteouts: ["var/lib/dpkg/status"], opaqueDirs: ["opt"], files: ["etc/os-release", "var/lib/dpkg/status"] });
      expect((await store.layerArtifacts([l], [dpkg2]))?.get(l)?.files).toEqual(["etc/os-release", "var/lib/dpkg/status"]);
      expect([...arts.get(l)!.outputs.keys()]).toEqual(["dpkg"]);
      expect(arts.get(l)!.outputs.get("dpkg")).toEqual({ packages: [] });
    });

    it("stores reports through their states and answers AffectedManifests", async () => {
      const m = dg("m-report");
      const progress: IndexReport = { manifest_hash: m, state: "ScanLayers", success: false };
      await store.setIndexReport(progress, "set-a");
      expect(await store.indexReport(m)).toEqual({ report: progress, scannerSet: "set-a" });
      const done: IndexReport = { manifest_hash: m, state: "IndexFinished", success: true, packages: { "1": { id: "1", name: `pkg-${run}`, version: "1.0" } } };
      await store.setIndexFinished(done, "set-a", [{ name: `pkg-${run}`, version: "1.0", kind: "binary", package_db: "var/lib/dpkg/status", dist_did: "debian" }]);
      expect((await store.indexReport(m))?.report).toEqual(done);
      expect(await store.affectedManifests({ name: `pkg-${run}` })).toEqual([m]);
      expect(await store.affectedManifests({ name: `pkg-${run}`, version: "2.0" })).toEqual([]);
      expect(await store.affectedManifests({ name: `pkg-${run}`, dist_did: "debian" })).toEqual([m]);
      expect(await store.indexReport(dg("never"))).toBeUndefined();
    });

    it("answers the package rows of finished manifests by binary or source name", async () => {
      const fin = dg("m-rows-finished");
      const err = dg("m-rows-error");
      const rows = [
        { name: `libssl3-${run}`, version: "3.1.0-r4", kind: "binary", package_db: "lib/apk/db/installed", dist_did: "alpine", dist_version_id: "3.18.4" },
        { name: `openssl-${run}`, version: "3.1.0-r4", kind: "source", package_db: "lib/apk/db/installed", dist_did: "alpine", dist_version_id: "3.18.4" },
      ];
      await store.setIndexFinished({ manifest_hash: fin, state: "IndexFinished", success: true }, "s", rows);
      // A manifest indexed once, then indexed again and failed: its old rows are not an answer.
      await store.setIndexFinished({ manifest_hash: err, state: "IndexFinished", success: true }, "s", [{ ...rows[1]!, version: "1.0" }]);
      await store.setIndexReport({ manifest_hash: err, state: "IndexError", success: false, err: "boom" }, "s");
      expect(await store.manifestPackages({ names: [`openssl-${run}`, `libssl3-${run}`, `nothing-${run}`] }, 10)).toEqual(
        expect.arrayContaining([{ manifest: fin, ...rows[0] }, { manifest: fin, ...rows[1] }]),
      );
      expect(await store.manifestPackages({ names: [`openssl-${run}`, `libssl3-${run}`] }, 10)).toHaveLength(2);
      expect(await store.manifestPackages({ names: [`openssl-${run}`, `libssl3-${run}`] }, 1)).toHaveLength(1);
      expect(await store.manifestPackages({ names: [] }, 10)).toEqual([]);
      const noDist = dg("m-rows-nodist");
      await store.setIndexFinished({ manifest_hash: noDist, state: "IndexFinished", success: true }, "s", [{ name: `lodash-${run}`, version: "4.17.15", kind: "binary", package_db: "nodejs:app/node_modules/lodash/package.json" }]);
      expect(await store.manifestPackages({ names: [`lodash-${run}`] }, 10)).toEqual([{ manifest: noDist, name: `lodash-${run}`, version: "4.17.15", kind: "binary", package_db: "nodejs:app/node_modules/lodash/package.json" }]);
      // Python names compare PEP 503-normalised, on Python rows only.
      const py = dg("m-rows-python");
      const wheel = { name: `Jinja_2.${run}`, version: "3.1.2", kind: "binary", package_db: "python:usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info" };
      await store.setIndexFinished({ manifest_hash: py, state: "IndexFinished", success: true }, "s", [wheel, { ...wheel, package_db: "var/lib/dpkg/status" }]);
      expect(await store.manifestPackages({ names: [], pypiNames: [`jinja-2-${run}`] }, 10)).toEqual([{ manifest: py, ...wheel }]);
      expect(await store.manifestPackages({ names: [`lodash-${run}`], pypiNames: [`jinja-2-${run}`] }, 10)).toHaveLength(2);
    });

    it("writes many packages in one go", async () => {
      const m = dg("m-big");
      const rows = Array.from({ length: 1234 }, (_, i) => ({ name: `big-${run}-${i % 7}`, version: String(i), kind: "binary", package_db: "p" }));
      await store.setIndexFinished({ manifest_hash: m, state: "IndexFinished", success: true }, "s", rows);
      expect(await store.affectedManifests({ name: `big-${run}-3`, version: "3" })).toEqual([m]);
    });

    it("deletes manifests, ignores unknown digests, and drops layers nothing uses", async () => {
      const shared = dg("shared");
      const only = dg("only-in-a");
      const a = dg("del-a");
      const b = dg("del-b");
      await store.persistManifest({ digest: a, layers: [{ digest: shared, size: 1, mediaType: "x" }, { digest: only, size: 1, mediaType: "x" }] });
      await store.persistManifest({ digest: b, layers: [{ digest: shared, size: 1, mediaType: "x" }] });
      await store.setLayerScanned(only, { whiteouts: [], opaqueDirs: [], files: [] }, [{ scanner: dpkg1, output: {} }]);
      await store.setLayerScanned(shared, { whiteouts: [], opaqueDirs: [], files: [] }, [{ scanner: dpkg1, output: {} }]);
      await store.setIndexReport({ manifest_hash: a, state: "IndexFinished", success: true }, "s");
      expect(await store.deleteManifests([a, dg("unknown")])).toEqual([a]);
      expect(await store.indexReport(a)).toBeUndefined();
      expect(await store.scannedLayers([shared, only], [dpkg1])).toEqual(new Set([scannedKey(shared, dpkg1)]));
      expect(await store.deleteManifests([])).toEqual([]);
    });

    it("serialises work on one manifest under its lock", async () => {
      const order: string[] = [];
      const m = dg("locked");
      const job = (name: string) => store.withManifestLock(m, async () => {
        order.push(`${name}:start`);
        await new Promise((r) => setTimeout(r, 30));
        order.push(`${name}:end`);
      });
      await Promise.all([job("a"), job("b")]);
      // Either may go first; they never overlap.
      expect(order.join(" ")).toMatch(/^(a:start a:end b:start b:end|b:start b:end a:start a:end)$/);
    });

    it("refuses to write results for a scanner it was not told about", async () => {
      await expect(store.setLayerScanned(dg("x"), { whiteouts: [], opaqueDirs: [], files: [] }, [{ scanner: { name: "nope", version: "9", kind: "package" }, output: {} }])).rejects.toThrow(/not registered/);
    });

    it("keeps what watched repositories' listings learned: tags, digests, creation times, and starts over for another image", async () => {
      const key = `team/${run}`;
      expect(await store.repositories.get(key)).toBeUndefined();
      const tags = Array.from({ length: 2500 }, (_, i) => ({ tag: `1.0.${i}` }));
      await store.repositories.record(key, "r.example/app", { listedAt: "2026-01-02T03:04:05.000Z", upsert: tags });
      await store.repositories.record(key, "r.example/app", { upsert: [{ tag: "1.0.7", digest: dg("d7"), created: "2025-12-31T23:00:00Z", checkedAt: "2026-01-02T03:04:06Z" }], remove: ["1.0.8", "1.0.9"] });
      const got = (await store.repositories.get(key))!;
      expect(got.listedAt).toBe("2026-01-02T03:04:05.000Z");
      expect(got.tags).toHaveLength(2498);
      expect(got.tags.find((t) => t.tag === "1.0.7")).toEqual({ tag: "1.0.7", digest: dg("d7"), created: "2025-12-31T23:00:00.000Z", checkedAt: "2026-01-02T03:04:06.000Z" });
      expect(got.tags.find((t) => t.tag === "1.0.8")).toBeUndefined();
      expect(got.tags.find((t) => t.tag === "1.0.6")).toEqual({ tag: "1.0.6" });
      expect(await store.repositories.keys()).toContain(key);
      await store.repositories.record(key, "r.example/other", { upsert: [{ tag: "v1" }] });
      expect(await store.repositories.get(key)).toEqual({ key, image: "r.example/other", tags: [{ tag: "v1" }] });
      await store.repositories.delete(key);
      expect(await store.repositories.get(key)).toBeUndefined();
    });
  });
}
