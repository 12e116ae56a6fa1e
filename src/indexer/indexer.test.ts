import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digestOf, gzip, makeTar, type TarEntry } from "../layers/testing.js";
import type { LayerFiles, Scanner } from "../model/scanner.js";
import { DpkgScanner } from "../scanners/dpkg/dpkg.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/types.js";
import { coalesce } from "./coalesce.js";
import { Indexer } from "./indexer.js";
import { MemorySource } from "./testing.js";
import type { ManifestToIndex } from "../model/image.js";

/** A minimal package scanner: each line `name version` of `pkgs/db` (or `pkgs/db2`) is a package. */
function lineScanner(version = "1"): Scanner & { calls: string[] } {
  const calls: string[] = [];
  return {
    name: "lines", version, kind: "package", calls,
    wants: (e) => e.path === "pkgs/db" || e.path === "pkgs/db2",
    scan: async (files: LayerFiles) => {
      calls.push(files.digest);
      const packages = [];
      for (const db of ["pkgs/db", "pkgs/db2"]) {
        for (const line of (files.get(db)?.toString() ?? "").split("\n").filter(Boolean)) {
          const [name, v] = line.split(" ") as [string, string];
          packages.push({ name, version: v, package_db: db, kind: "binary" as const, source: { name: `${name}-src`, version: v, kind: "source" as const } });
        }
      }
      return { packages };
    },
  };
}

const distScanner: Scanner = {
  name: "dist", version: "1", kind: "distribution",
  wants: (e) => e.path === "etc/os-release",
  scan: async (files) => {
    const t = files.get("etc/os-release")?.toString();
    if (!t) return {};
    const id = /^ID=(.*)$/m.exec(t)?.[1] ?? "";
    return { distributions: [{ did: id, name: id, version: "", version_code_name: "", version_id: /^VERSION_ID=(.*)$/m.exec(t)?.[1] ?? "", arch: "", cpe: "", pretty_name: "" }] };
  },
};

async function layer(entries: TarEntry[]) {
  const blob = gzip(await makeTar(entries));
  return { blob, desc: { digest: digestOf(blob), size: blob.length, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" } };
}

describe("Indexer", () => {
  let store: Store;
  beforeAll(async () => {
    store = await openStore("memory:");
  });
  afterAll(async () => store.close());

  it("writes the stored progress at most once a second: a quick index its first state and the final report, a slow one the state entered a second on", async () => {
    const states: string[] = [];
    const watched: Store = Object.create(store) as Store;
    watched.setIndexReport = async (r, set) => (states.push(r.state), store.setIndexReport(r, set));
    watched.setIndexFinished = async (r, set, rows) => (states.push(r.state), store.setIndexFinished(r, set, rows));
    const quick = await layer([{ name: "pkgs/db", content: "a 1\n" }]);
    const ix = new Indexer({ store: watched, scanners: [lineScanner()] });
    const r = await ix.index({ digest: digestOf(Buffer.from("progress-quick")), layers: [quick.desc] }, new MemorySource(new Map([[quick.desc.digest, quick.blob]])));
    expect(r.report.state).toBe("IndexFinished");
    expect(states).toEqual(["CheckManifest", "IndexFinished"]);
    // A layer that takes 1.5 s to open: FetchLayers comes too soon after CheckManifest, Coalesce after it is written.
    states.length = 0;
    const slow = await layer([{ name: "pkgs/db", content: "b 1\n" }]);
    const r2 = await ix.index({ digest: digestOf(Buffer.from("progress-slow")), layers: [slow.desc] }, new MemorySource(new Map([[slow.desc.digest, slow.blob]]), 1500));
    expect(r2.report.state).toBe("IndexFinished");
    expect(states).toEqual(["CheckManifest", "Coalesce", "IndexFinished"]);
    // A failed index: its error is the last write.
    states.length = 0;
    const e = await ix.index({ digest: digestOf(Buffer.from("progress-error")), layers: [{ ...slow.desc, digest: digestOf(Buffer.from("absent")) }] }, new MemorySource(new Map()));
    expect(e.report.state).toBe("IndexError");
    await new Promise((res) => setTimeout(res, 1100));
    expect(states).toEqual(["CheckManifest", "IndexError"]);
  }, 20_000);

  it("coalesces layers: later databases replace earlier ones, whiteouts remove them, introduced_in is the first layer", async () => {
    const base = await layer([{ name: "etc/os-release", content: "ID=debian\nVERSION_ID=12\n" }, { name: "pkgs/db", content: "libc 1\nbash 5\n" }, { name: "pkgs/db2", content: "old 1\n" }]);
    const top = await layer([{ name: "pkgs/db", content: "libc 1\nbash 5\njq 1.6\n" }, { name: "pkgs/.wh.db2", content: "" }]);
    const blobs = new Map([[base.desc.digest, base.blob], [top.desc.digest, top.blob]]);
    const m: ManifestToIndex = { digest: digestOf(Buffer.from("manifest-1")), layers: [base.desc, top.desc] };
    const scanner = lineScanner();
    const ix = new Indexer({ store, scanners: [scanner, distScanner] });
    const source = new MemorySource(blobs);
    const { report, stats } = await ix.index(m, source);
    expect(report.state).toBe("IndexFinished");
    expect(report.success).toBe(true);
    const pkgs = Object.values(report.packages!).map((p) => `${p.name}=${p.version}`).sort();
    expect(pkgs).toEqual(["bash=5", "jq=1.6", "libc=1"]);
    const byName = Object.fromEntries(Object.values(report.packages!).map((p) => [p.name, p]));
    expect(report.environments![byName.libc!.id]![0]).toEqual({ package_db: "pkgs/db", introduced_in: base.desc.digest, distribution_id: "1" });
    expect(report.environments![byName.jq!.id]![0]!.introduced_in).toBe(top.desc.digest);
    expect(byName.jq!.source).toMatchObject({ name: "jq-src", version: "1.6", kind: "SOURCE" });
    expect(Object.values(report.distributions!)[0]).toMatchObject({ did: "debian", version_id: "12" });
    expect(stats).toMatchObject({ layers: 2, layersFetched: 2, layersReused: 0, cached: false });

    // Again: the stored report, no layer opened.
    source.opened.length = 0;
    const again = await ix.index(m, source);
    expect(again.stats.cached).toBe(true);
    expect(again.report).toEqual(report);
    expect(source.opened).toEqual([]);

    // A second image sharing the base layer fetches only its new layer.
    const other = await layer([{ name: "pkgs/db", content: "libc 1\n" }]);
    blobs.set(other.desc.digest, other.blob);
    const m2 = { digest: digestOf(Buffer.from("manifest-2")), layers: [base.desc, other.desc] };
    const r2 = await ix.index(m2, source);
    expect(source.opened).toEqual([other.desc.digest]);
    expect(r2.stats).toMatchObject({ layersFetched: 1, layersReused: 1 });
    // pkgs/db2 of the base layer is still there: only the first image deleted it.
    expect(Object.values(r2.report.packages!).map((p) => p.name)).toEqual(["libc", "old"]);
    expect(await store.affectedManifests({ name: "jq" })).toEqual([m.digest]);
    // Source packages are rows too (kind "source", the source's version), as in claircore's manifest_index.
    expect(await store.affectedManifests({ name: "jq-src", version: "1.6" })).toEqual([m.digest]);
    expect((await store.manifestPackages({ names: ["jq-src"] }, 10)).map((r) => ({ ...r }))).toEqual([
      { manifest: m.digest, name: "jq-src", version: "1.6", kind: "source", package_db: "pkgs/db", dist_did: "debian", dist_version_id: "12" },
    ]);

    // A new version of one scanner re-reads layers for that scanner only.
    source.opened.length = 0;
    const v2 = lineScanner("2");
    const ix2 = new Indexer({ store, scanners: [v2, distScanner] });
    const r3 = await ix2.index(m, source);
    expect(r3.stats.cached).toBe(false);
    expect(v2.calls.sort()).toEqual([base.desc.digest, top.desc.digest].sort());
    expect(Object.keys(r3.report.packages!).length).toBe(3);
  });

  it("records an IndexError with the layer's problem and stores nothing of that layer", async () => {
    const good = await layer([{ name: "pkgs/db", content: "a 1\n" }]);
    const lying = { ...good.desc, digest: digestOf(Buffer.from("not the content")) };
    const m = { digest: digestOf(Buffer.from("manifest-bad")), layers: [lying] };
    const ix = new Indexer({ store, scanners: [lineScanner()] });
    const res = await ix.index(m, new MemorySource(new Map([[lying.digest, good.blob]])));
    expect(res.report).toMatchObject({ state: "IndexError", success: false });
    expect(res.report.err).toMatch(/content has digest/);
    expect(res.error).toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(await ix.indexReport(m.digest)).toMatchObject({ state: "IndexError" });
    expect((await store.scannedLayers([lying.digest], [{ name: "lines", version: "1", kind: "package" }])).size).toBe(0);
  });

  it("fails a layer whose package database the scanner refuses with SCANNER_ERROR, the code the controllers branch on", async () => {
    const bad = await layer([{ name: "var/lib/dpkg/status", content: Buffer.from("Package: a\0\0\0") }]);
    const m = { digest: digestOf(Buffer.from("manifest-scanner-error")), layers: [bad.desc] };
    const ix = new Indexer({ store, scanners: [new DpkgScanner()] });
    const res = await ix.index(m, new MemorySource(new Map([[bad.desc.digest, bad.blob]])));
    expect(res.report).toMatchObject({ state: "IndexError", success: false });
    expect(res.report.err).toMatch(/var\/lib\/dpkg\/status: binary data/);
    expect(res.error).toMatchObject({ name: "ScannerError", code: "SCANNER_ERROR", qualifiedCode: "scanner/SCANNER_ERROR" });
  });

  it("indexes one manifest once when asked twice at the same time", async () => {
    const l = await layer([{ name: "pkgs/db", content: "z 1\n" }]);
    const src = new MemorySource(new Map([[l.desc.digest, l.blob]]));
    const ix = new Indexer({ store, scanners: [lineScanner()] });
    const m = { digest: digestOf(Buffer.from("manifest-concurrent")), layers: [l.desc] };
    const [a, b] = await Promise.all([ix.index(m, src), ix.index(m, src)]);
    expect(src.opened).toEqual([l.desc.digest]);
    expect(a.report).toEqual(b.report);
  });
});

describe("coalesce", () => {
  const pkg = (name: string, version: string, db = "db") => ({ name, version, package_db: db });
  it("an emptied database replaces the lower one; a re-added package is introduced where it came back", () => {
    const c = coalesce([
      { digest: "L0", whiteouts: [], opaqueDirs: [], files: ["db"], outputs: [{ packages: [pkg("a", "1"), pkg("b", "1")] }] },
      { digest: "L1", whiteouts: [], opaqueDirs: [], files: ["db"], outputs: [{ packages: [] }] },
      { digest: "L2", whiteouts: [], opaqueDirs: [], files: ["db"], outputs: [{ packages: [pkg("a", "1")] }] },
    ]);
    expect(c.packages.map((p) => `${p.pkg.name}@${p.introducedIn}`)).toEqual(["a@L2"]);
  });

  it("an opaque directory hides databases below it, and the top-most distribution wins", () => {
    const dist = (did: string) => ({ did, name: did, version: "", version_code_name: "", version_id: "", arch: "", cpe: "", pretty_name: "" });
    const c = coalesce([
      { digest: "L0", whiteouts: [], opaqueDirs: [], files: ["usr/lib/x/db"], outputs: [{ packages: [pkg("a", "1", "usr/lib/x/db")] }, { distributions: [dist("debian")] }] },
      { digest: "L1", whiteouts: [], opaqueDirs: ["usr/lib/x"], files: [], outputs: [{ distributions: [dist("ubuntu")] }] },
    ]);
    expect(c.packages).toEqual([]);
    expect(c.distribution?.did).toBe("ubuntu");
  });
});

describe("the report's wire format", () => {
  it("validates against Clair's index_report schema, and a broken one does not", async () => {
    const { clairValidator } = await import("./clair-schema.js");
    const validate = clairValidator("index_report.schema.json");
    const store = await openStore("memory:");
    const base = await layer([{ name: "etc/os-release", content: "ID=debian\nVERSION_ID=12\n" }, { name: "pkgs/db", content: "libc 1\n" }]);
    const ix = new Indexer({ store, scanners: [lineScanner(), distScanner] });
    const { report } = await ix.index({ digest: digestOf(Buffer.from("wire")), layers: [base.desc] }, new MemorySource(new Map([[base.desc.digest, base.blob]])));
    expect(validate(report)).toEqual([]);
    expect(validate({ ...report, extra: 1 })).not.toEqual([]);
    expect(validate({ ...report, manifest_hash: "nope" })).not.toEqual([]);
    await store.close();
  });
});

describe("coalesce with language package databases", () => {
  it("a whiteout of the file behind an ecosystem-prefixed database removes its packages", () => {
    const c = coalesce([
      { digest: "L0", whiteouts: [], opaqueDirs: [], files: ["app/node_modules/a/package.json"], outputs: [{ packages: [{ name: "a", version: "1", package_db: "nodejs:app/node_modules/a/package.json" }] }] },
      { digest: "L1", whiteouts: ["app/node_modules"], opaqueDirs: [], files: [], outputs: [] },
    ]);
    expect(c.packages).toEqual([]);
  });
});
