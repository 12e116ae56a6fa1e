// `db import` of upstream files as published (the real fixture tree), and the bundle round trip:
// export → import into a fresh store answers the same; a changed byte changes nothing.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDecompressor } from "../layers/decompress.js";
import { openStore } from "../store/open.js";
import type { PackageKey } from "../store/advisory-types.js";
import type { Store } from "../store/types.js";
import { BundleError, readBundle, writeBundle } from "./bundle.js";
import { defaultCatalogue } from "./catalogue.js";
import { importBundle, importPlans, planImport, reparseSources, type SourceCatalogue } from "./import.js";
import { zstdCompress } from "./zstd.js";

const dir = (p: string) => fileURLToPath(new URL(`../../../shared/fixtures/advisories/${p}`, import.meta.url));

/** Package keys the fixtures speak about, across sources. */
const KEYS: PackageKey[] = [
  { ecosystem: "Debian:12", name: "sope" }, { ecosystem: "Debian:12", name: "chromium" }, { ecosystem: "Debian:12", name: "gnutls28" },
  { ecosystem: "Alpine:v3.18", name: "openssl" }, { ecosystem: "Alpine:v3.18", name: "busybox" }, { ecosystem: "RHEL:8", name: "util-linux" },
  { ecosystem: "npm", name: "lodash" }, { ecosystem: "PyPI", name: "jinja2" }, { ecosystem: "Go", name: "stdlib" },
  { ecosystem: "Ubuntu:18.04:LTS", name: "gzip" }, { ecosystem: "Node.js", name: "node" },
];

/** A bundle written by writeBundle to a file, and its bytes. */
async function exportBundle(store: Store["advisories"], o: { sources?: string[]; generator: string }) {
  const d = mkdtempSync(join(tmpdir(), "portcullis-bundle-test-"));
  try {
    const w = await writeBundle(store, join(d, "b.tar.zst"), o);
    return { ...w, bytes: readFileSync(join(d, "b.tar.zst")) };
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

async function tarEntries(bundle: Buffer): Promise<Array<{ name: string; data: Buffer }>> {
  const out: Array<{ name: string; data: Buffer }> = [];
  const ex = tar.extract();
  ex.on("entry", (h, s, next) => {
    const parts: Buffer[] = [];
    s.on("data", (c: Buffer) => parts.push(c));
    s.on("end", () => (out.push({ name: h.name, data: Buffer.concat(parts) }), next()));
  });
  await pipeline(Readable.from([bundle]), createDecompressor("zstd"), ex);
  return out;
}

async function tarBytes(entries: Array<{ name: string; data: Buffer }>): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: Buffer) => chunks.push(c));
  for (const e of entries) p.entry({ name: e.name, size: e.data.length }, e.data);
  p.finalize();
  await new Promise((r) => p.on("end", r));
  return Buffer.concat(chunks);
}

/** A bundle as the earlier exporter wrote it: the whole tar as one zstd frame. */
async function packZstd(entries: Array<{ name: string; data: Buffer }>): Promise<Buffer> {
  return zstdCompress(await tarBytes(entries), 3);
}

describe("db import and the bundle", () => {
  const catalogue = defaultCatalogue();
  let store: Store;
  beforeAll(async () => {
    store = await openStore("memory:");
  });
  afterAll(async () => store?.close());

  it("recognises each upstream format in the fixture tree and imports each source as one operation", async () => {
    const plan = await planImport([dir(".")], catalogue);
    const bySource = Object.fromEntries(plan.plans.map((p) => [p.source.name, p.files.map((f) => f.path).sort()]));
    expect(Object.keys(bySource).sort()).toEqual(["alpine", "debian", "epss", "kev", "nodejs", "nvd", "osv", "redhat"]);
    expect(bySource.debian).toEqual(["debian/tracker/CVE/list", "debian/tracker/DLA/list", "debian/tracker/DSA/list", "debian/trivy-db/CVE-2023-5981.json", "debian/vunnel/DSA", "debian/vunnel/debian.json"]);
    expect(bySource.osv).toHaveLength(10);
    // Version vectors, CVSS score lists, READMEs and attribution notices are not advisory data: listed, not imported.
    expect(plan.unrecognised.some((p) => p.endsWith("versions/debian-versions.txt"))).toBe(true);
    expect(plan.unrecognised.some((p) => p.endsWith("README.md"))).toBe(true);
    const results = await importPlans(store.advisories, plan.plans);
    expect(results.filter((r) => r.status !== "imported")).toEqual([]);
    const st = Object.fromEntries((await store.advisories.status()).map((s) => [s.source, s.advisories]));
    expect(st).toMatchObject({ osv: 10, nodejs: 170, redhat: 1 });
    expect((await store.advisories.candidates([{ ecosystem: "RHEL:8", name: "util-linux" }]))[0]!.affected.fixState).toBe("not_affected");
    // Importing the same files again writes nothing.
    const again = await importPlans(store.advisories, (await planImport([dir(".")], catalogue)).plans);
    expect(again.every((r) => r.status === "unchanged")).toBe(true);
  });

  it("parses the stored raw files again when a parser changed, without the files or a download", async () => {
    const same = await reparseSources(store.advisories, catalogue, ["nodejs", "alpine"]);
    expect(same.map((r) => [r.source, r.status])).toEqual([["alpine", "unchanged"], ["nodejs", "unchanged"]]);
    // The same build with the Node.js parser at a new version: only that source is parsed again.
    const nodejs = catalogue.get("nodejs")!;
    const newer: SourceCatalogue = { all: () => catalogue.all().map((s) => (s === nodejs ? { ...nodejs, parserVersion: "2" } : s)), get: (n) => (n === "nodejs" ? { ...nodejs, parserVersion: "2" } : catalogue.get(n)) };
    const before = await store.advisories.latestOperation("nodejs");
    const r = await reparseSources(store.advisories, newer);
    expect(r.filter((x) => x.status !== "unchanged").map((x) => [x.source, x.status])).toEqual([["nodejs", "imported"]]);
    const after = await store.advisories.latestOperation("nodejs");
    expect(after).toMatchObject({ parserVersion: "2", origin: `reparse of ${before!.origin}`, files: before!.files });
    expect(after!.stats).toMatchObject({ advisories: 170, added: 0, removed: 0, modified: 0 });
    expect((await store.advisories.candidates([{ ecosystem: "Node.js", name: "node" }])).length).toBe(170);
  });

  it("names a one-ecosystem OSV import after its ecosystem, and honours --kind", async () => {
    const go = await planImport([dir("osv/go")], catalogue);
    expect(go.plans.map((p) => p.source.name)).toEqual(["osv-go"]);
    await expect(planImport([dir("osv/go")], catalogue, { kind: "nope" })).rejects.toThrow(/unknown --kind "nope"/);
    await expect(planImport([dir("no-such-dir")], catalogue)).rejects.toThrow(/no such file or directory/);
  });

  it("exports a bundle that imports into a fresh store with the same answers", async () => {
    const { bytes, manifest } = await exportBundle(store.advisories, { generator: "test" });
    expect(manifest.sources.map((s) => s.name).sort()).toEqual(["alpine", "debian", "epss", "kev", "nodejs", "nvd", "osv", "redhat"]);
    const fresh = await openStore("memory:");
    try {
      const results = await importBundle(fresh.advisories, catalogue, bytes, "bundle test");
      expect(results.every((r) => r.status === "imported")).toBe(true);
      const strip = (s: Awaited<ReturnType<Store["advisories"]["status"]>>) => s.map((x) => ({ source: x.source, advisories: x.advisories, affected: x.affected, files: x.latest.files }));
      expect(strip(await fresh.advisories.status())).toEqual(strip(await store.advisories.status()));
      const norm = (cs: Awaited<ReturnType<Store["advisories"]["candidates"]>>) => cs.map((c) => ({ source: c.source, advisory: c.advisory, affected: c.affected }));
      expect(norm(await fresh.advisories.candidates(KEYS))).toEqual(norm(await store.advisories.candidates(KEYS)));
      expect((await fresh.advisories.enrichment(["CVE-2021-44228"])).get("CVE-2021-44228")?.kev).toBeDefined();
    } finally {
      await fresh.close();
    }
  }, 60_000);

  it("changes nothing when a bundle was tampered with, truncated, or carries extra files", async () => {
    const { bytes } = await exportBundle(store.advisories, { sources: ["alpine", "nodejs"], generator: "test" });
    const entries = await tarEntries(bytes);
    const target = entries.find((e) => e.name.startsWith("sources/nodejs/"))!;
    const flipped = entries.map((e) => (e === target ? { ...e, data: Buffer.from(e.data.toString().replace("CVE-2026-21717", "CVE-2026-21718")) } : e));
    const fresh = await openStore("memory:");
    try {
      await expect(importBundle(fresh.advisories, catalogue, await packZstd(flipped), "t")).rejects.toThrow(/sources\/nodejs\/nodejs\/core\/index\.json has sha256 \w+, manifest\.json says \w+/);
      await expect(readBundle(await packZstd(entries.filter((e) => e !== target)))).rejects.toThrow(/named in manifest\.json but missing/);
      await expect(readBundle(await packZstd([...entries, { name: "sources/nodejs/extra.json", data: Buffer.from("{}") }]))).rejects.toThrow(/does not name: sources\/nodejs\/extra\.json/);
      await expect(readBundle(await packZstd(entries.slice(1)))).rejects.toThrow(BundleError);
      await expect(readBundle(bytes.subarray(0, bytes.length >> 1))).rejects.toThrow(/cannot be read/);
      const badPath = entries.map((e) => (e.name === "manifest.json" ? { ...e, data: Buffer.from(e.data.toString().replace('"path": "nodejs/core/index.json"', '"path": "../../etc/passwd"')) } : e));
      await expect(readBundle(await packZstd(badPath))).rejects.toThrow(/must be a relative path/);
      await expect(readBundle(bytes, { maxBytes: 1000, maxFiles: 10 })).rejects.toThrow(/larger than 1000 bytes/);
      await expect(readBundle(bytes, { maxBytes: 1 << 30, maxFiles: 1 })).rejects.toThrow(/more than 1 files/);
      // A source's files apart (one of alpine's after nodejs's): refused, as a streamed import could not take them.
      const alpine = entries.filter((e) => e.name.startsWith("sources/alpine/"));
      expect(alpine.length).toBeGreaterThan(1);
      const apart = [...entries.filter((e) => e !== alpine[0]), alpine[0]!];
      await expect(readBundle(await packZstd(apart))).rejects.toThrow(/^the files of source alpine do not come together in the bundle/);
      const twice = entries.map((e) => (e.name === "manifest.json" ? { ...e, data: Buffer.from(JSON.stringify({ ...JSON.parse(e.data.toString()), sources: [...JSON.parse(e.data.toString()).sources, JSON.parse(e.data.toString()).sources[0]] })) } : e));
      await expect(readBundle(await packZstd(twice))).rejects.toThrow(/names source alpine twice/);
      // gzip and plain tar bundles are read too, with the same checks and caps.
      const plain = await tarBytes(entries);
      expect((await readBundle(gzipSync(plain))).manifest.sources.map((s) => s.name)).toEqual(["alpine", "nodejs"]);
      expect((await readBundle(plain)).files.get("nodejs")).toHaveLength(1);
      await expect(readBundle(gzipSync(plain), { maxBytes: 1000, maxFiles: 10 })).rejects.toThrow(/larger than 1000 bytes/);
      expect(await fresh.advisories.status()).toEqual([]);
    } finally {
      await fresh.close();
    }
  }, 60_000);
});
