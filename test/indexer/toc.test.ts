// Partial layer reads on a real registry: the two-layer Debian test image recompressed by skopeo as
// zstd:chunked, and rebuilt as eStargz by containerd's estargz package (the producers write the tables of
// contents; nothing here does), indexed by byte ranges, must give
// exactly what dpkg-query says of the same root filesystem and exactly what a full read gives. A table that
// fails its checksum, a file tampered in the registry's storage, and a proxy that ignores Range each end
// in a full read (or the full read's own refusal), never in a partial answer.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseReference } from "../../src/image/reference.js";
import { Indexer, type IndexerOptions, type IndexResult } from "../../src/indexer/indexer.js";
import { openRegistryImage } from "../../src/indexer/sources/registry.js";
import { RegistryClient } from "../../src/registry/client.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { describeWith } from "../env/index.js";
import { estargzLayout, ociBookworm, rootfsBookwormTwo, skopeoPush, zstdChunkedLayout } from "../env/images.js";
import { dpkgQuery, expectSameLayers, pkgs, rangeRefusingProxy } from "./partial-reads.js";
import { ProcessSupervisor } from "../env/process.js";
import { startRegistry, type RegistryService } from "../env/services.js";

const run = promisify(execFile);
/**
 * Tests that read a zstd:chunked layer in full as well (the whole file: 69 s on two quiet cores; it was 24
 * minutes before the bounded decoder held small frames whole instead of streaming each through its 32 MiB window).
 */
const SLOW = 300_000;



interface Layout {
  dir: string;
  manifest: { layers: Array<{ digest: string; size: number; annotations?: Record<string, string> }> };
}

function readLayout(dir: string): Layout {
  const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(readFileSync(join(dir, "blobs/sha256", index.manifests[0]!.digest.slice(7)), "utf8")) as Layout["manifest"];
  return { dir, manifest };
}

/** The table of contents of a zstd:chunked blob, read with the zstd command (not with the code under test). */
async function tocOf(blob: Buffer, annotations: Record<string, string>): Promise<{ entries: Array<{ name: string; type: string; offset?: number; endOffset?: number }> }> {
  const [offset, length] = annotations["io.containers.zstd-chunked.manifest-position"]!.split(":").map(Number) as [number, number];
  const dir = mkdtempSync(join(tmpdir(), "toc-"));
  writeFileSync(join(dir, "toc.zst"), blob.subarray(offset, offset + length));
  await run("zstd", ["-q", "-d", join(dir, "toc.zst"), "-o", join(dir, "toc.json")]);
  const toc = JSON.parse(readFileSync(join(dir, "toc.json"), "utf8")) as { entries: Array<{ name: string; type: string; offset?: number; endOffset?: number }> };
  rmSync(dir, { recursive: true, force: true });
  return toc;
}


/** A copy of `layout` whose manifest gives the top layer's `annotation` another value, pushed as `repoTag`. */
async function pushWithAnnotation(layout: Layout, dest: string, annotation: string, value: string, reg: RegistryService, repoTag: string): Promise<Layout["manifest"]> {
  cpSync(layout.dir, dest, { recursive: true });
  const manifest = structuredClone(layout.manifest);
  manifest.layers[1]!.annotations![annotation] = value;
  const raw = Buffer.from(JSON.stringify(manifest));
  const digest = createHash("sha256").update(raw).digest("hex");
  writeFileSync(join(dest, "blobs/sha256", digest), raw);
  const layoutIndex = JSON.parse(readFileSync(join(dest, "index.json"), "utf8")) as { manifests: Array<{ digest: string; size: number }> };
  layoutIndex.manifests[0]!.digest = `sha256:${digest}`;
  layoutIndex.manifests[0]!.size = raw.length;
  writeFileSync(join(dest, "index.json"), JSON.stringify(layoutIndex));
  await skopeoPush(`oci:${dest}`, reg, repoTag);
  return manifest;
}


describeWith(["registryBasic"], "partial layer reads from zstd:chunked tables of contents", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-toc-"));
  const sup = new ProcessSupervisor(dir);
  let reg: RegistryService;
  let stopRegistry: () => Promise<void>;
  let client: RegistryClient;
  let chunked: Layout;
  let want: string[];
  const stores: Store[] = [];

  async function index(host: string, repoTag: string, o: Partial<IndexerOptions> = {}): Promise<IndexResult & { store: Store }> {
    const c = host === reg.host ? client : new RegistryClient({ keyring: { lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] } });
    const img = await openRegistryImage(c, parseReference(`${host}/${repoTag}`));
    const store = await openStore("memory:");
    stores.push(store);
    const result = await new Indexer({ store, scanners: defaultScanners(), ...o }).index(img.manifest, img.source);
    if (c !== client) await c.close();
    return { ...result, store };
  }

  beforeAll(async () => {
    const r = await startRegistry(sup, { name: "toc", auth: "basic", username: "toc", password: "toc-secret" });
    reg = r.service;
    stopRegistry = r.stop;
    client = new RegistryClient({ keyring: { lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] } });
    await zstdChunkedLayout(`oci:${ociBookworm()}:two`, join(dir, "chunked"));
    chunked = readLayout(join(dir, "chunked"));
    await skopeoPush(`oci:${chunked.dir}`, reg, "debian:two-chunked");
    want = await dpkgQuery(rootfsBookwormTwo());
  }, 600_000);

  afterAll(async () => {
    await client?.close();
    for (const s of stores) await s.close();
    await stopRegistry?.();
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads both layers partially: the packages dpkg-query lists, the report and the stored layers of a full read", async () => {
    expect(chunked.manifest.layers.every((l) => l.annotations?.["io.containers.zstd-chunked.manifest-checksum"])).toBe(true);
    const partial = await index(reg.host, "debian:two-chunked");
    expect(partial.report.state).toBe("IndexFinished");
    expect(partial.stats.layerReads!.map((r) => [r.mode, r.toc])).toEqual([["partial", "zstd:chunked"], ["partial", "zstd:chunked"]]);
    expect(want.length).toBeGreaterThan(80);
    expect(pkgs(partial.report)).toEqual(want);

    const full = await index(reg.host, "debian:two-chunked", { partialReads: false });
    expect(full.stats.layerReads!.map((r) => r.mode)).toEqual(["full", "full"]);
    expect(partial.report).toEqual(full.report);
    const layers = chunked.manifest.layers.map((l) => l.digest);
    const a = await expectSameLayers(partial, full, layers);
    // The second layer purged gpgv: its whiteouts came from the table of contents.
    expect(a.get(layers[1]!)!.whiteouts.some((w) => w.includes("gpgv"))).toBe(true);
    const total = chunked.manifest.layers.reduce((n, l) => n + l.size, 0);
    expect(full.stats.bytesFetched).toBe(total);
    expect(partial.stats.bytesFetched).toBeLessThan(total / 4);
  }, SLOW);

  it("reads a layer in full when its table of contents does not match the manifest's checksum", async () => {
    // The same blobs under a manifest whose checksum annotation names other bytes.
    const manifest = await pushWithAnnotation(chunked, join(dir, "bad-checksum"), "io.containers.zstd-chunked.manifest-checksum", `sha256:${createHash("sha256").update("not the table").digest("hex")}`, reg, "debian:two-bad-checksum");
    const top = manifest.layers[1]!;

    const r = await index(reg.host, "debian:two-bad-checksum");
    expect(r.report.state).toBe("IndexFinished");
    expect(pkgs(r.report)).toEqual(want);
    const reads = new Map(r.stats.layerReads!.map((x) => [x.digest, x]));
    expect(reads.get(manifest.layers[0]!.digest)).toMatchObject({ mode: "partial" });
    expect(reads.get(top.digest)).toMatchObject({ mode: "full", toc: "zstd:chunked", fallback: expect.stringMatching(/table of contents has digest sha256:[0-9a-f]{64}, but the manifest says/) });
    expect(reads.get(top.digest)!.bytes).toBeGreaterThan(top.size);
  }, SLOW);

  it("reads in full behind a proxy that ignores Range, and the answer is the same", async () => {
    const proxy = await rangeRefusingProxy(reg.host);
    try {
      const r = await index(proxy.host, "debian:two-chunked");
      expect(r.report.state).toBe("IndexFinished");
      expect(pkgs(r.report)).toEqual(want);
      expect(r.stats.layerReads!.map((x) => x.mode)).toEqual(["full", "full"]);
      for (const x of r.stats.layerReads!) expect(x.fallback).toMatch(/answered 200 \(it does not serve byte ranges\)/);
      expect(proxy.ranged()).toBeGreaterThanOrEqual(2);
    } finally {
      await new Promise((resolve) => proxy.server.close(resolve));
    }
  }, SLOW);

  it("never keeps a partial answer from a blob tampered in the registry: the full read refuses it too", async () => {
    const top = chunked.manifest.layers[1]!;
    const data = join(dir, "registry-toc/storage/docker/registry/v2/blobs/sha256", top.digest.slice(7, 9), top.digest.slice(7), "data");
    const original = readFileSync(data);
    const status = (await tocOf(original, top.annotations!)).entries.find((e) => e.name === "var/lib/dpkg/status")!;
    expect(status.offset).toBeGreaterThan(0);
    const tampered = Buffer.from(original);
    // The last bytes of the file's frames: the content changes, or the frame no longer decodes.
    for (let i = status.endOffset! - 8; i < status.endOffset!; i++) tampered[i] = tampered[i]! ^ 0x55;
    writeFileSync(data, tampered);
    try {
      const logged: string[] = [];
      const r = await index(reg.host, "debian:two-chunked", { log: (_level, msg, f) => logged.push(`${msg}: ${String(f?.reason)}`) });
      expect(logged).toEqual([expect.stringMatching(/^partial layer read failed; reading the layer in full: .*var\/lib\/dpkg\/status/)]);
      expect(r.report.state).toBe("IndexError");
      // The full read refuses the blob: its digest at the end, or the tar or zstd stream broken before it.
      expect(["DIGEST_MISMATCH", "BAD_TAR", "BAD_COMPRESSION"]).toContain((r.error as { code?: string }).code);
      const done = await r.store.scannedLayers([top.digest], defaultScanners().map((s) => ({ name: s.name, version: s.version, kind: s.kind })));
      expect(done.size).toBe(0);
    } finally {
      writeFileSync(data, original);
    }
  }, SLOW);
});

/** An eStargz blob's table of contents, read with tar (the blob is one gzip stream of a tar that ends with it). */
async function estargzTocOf(blobFile: string): Promise<{ entries: Array<{ name: string; type: string; offset?: number; size?: number }> }> {
  const { stdout } = await run("tar", ["-xOzf", blobFile, "stargz.index.json"], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as { entries: Array<{ name: string; type: string; offset?: number; size?: number }> };
}

describeWith(["registryBasic"], "partial layer reads from eStargz tables of contents", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-estargz-"));
  const sup = new ProcessSupervisor(dir);
  let reg: RegistryService;
  let stopRegistry: () => Promise<void>;
  let client: RegistryClient;
  let esgz: Layout;
  let want: string[];
  const stores: Store[] = [];

  async function index(repoTag: string, o: Partial<IndexerOptions> = {}): Promise<IndexResult & { store: Store }> {
    const img = await openRegistryImage(client, parseReference(`${reg.host}/${repoTag}`));
    const store = await openStore("memory:");
    stores.push(store);
    return { ...(await new Indexer({ store, scanners: defaultScanners(), ...o }).index(img.manifest, img.source)), store };
  }

  beforeAll(async () => {
    const r = await startRegistry(sup, { name: "estargz", auth: "basic", username: "esgz", password: "esgz-secret" });
    reg = r.service;
    stopRegistry = r.stop;
    client = new RegistryClient({ keyring: { lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] } });
    await estargzLayout(`oci:${ociBookworm()}:two`, join(dir, "esgz"));
    esgz = readLayout(join(dir, "esgz"));
    await skopeoPush(`oci:${esgz.dir}`, reg, "debian:two-estargz");
    want = await dpkgQuery(rootfsBookwormTwo());
  }, 600_000);

  afterAll(async () => {
    await client?.close();
    for (const s of stores) await s.close();
    await stopRegistry?.();
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads both layers partially: the packages dpkg-query lists, and what a full read stores", async () => {
    expect(esgz.manifest.layers.every((l) => /^sha256:[0-9a-f]{64}$/.test(l.annotations?.["containerd.io/snapshot/stargz/toc.digest"] ?? ""))).toBe(true);
    const partial = await index("debian:two-estargz");
    expect(partial.report.state).toBe("IndexFinished");
    expect(partial.stats.layerReads!.map((r) => [r.mode, r.toc])).toEqual([["partial", "estargz"], ["partial", "estargz"]]);
    expect(want.length).toBeGreaterThan(80);
    expect(pkgs(partial.report)).toEqual(want);

    const full = await index("debian:two-estargz", { partialReads: false });
    expect(full.stats.layerReads!.map((r) => r.mode)).toEqual(["full", "full"]);
    expect(partial.report).toEqual(full.report);
    const layers = esgz.manifest.layers.map((l) => l.digest);
    const a = await expectSameLayers(partial, full, layers);
    expect(a.get(layers[1]!)!.whiteouts.some((w) => w.includes("gpgv"))).toBe(true);
    const total = esgz.manifest.layers.reduce((n, l) => n + l.size, 0);
    expect(full.stats.bytesFetched).toBe(total);
    expect(partial.stats.bytesFetched).toBeLessThan(total / 4);
  }, SLOW);

  it("reads a layer in full when its table of contents does not hash to the manifest's digest", async () => {
    const manifest = await pushWithAnnotation(esgz, join(dir, "bad-toc"), "containerd.io/snapshot/stargz/toc.digest", `sha256:${createHash("sha256").update("not the table").digest("hex")}`, reg, "debian:two-estargz-bad-toc");
    const top = manifest.layers[1]!;

    const r = await index("debian:two-estargz-bad-toc");
    expect(r.report.state).toBe("IndexFinished");
    expect(pkgs(r.report)).toEqual(want);
    const reads = new Map(r.stats.layerReads!.map((x) => [x.digest, x]));
    expect(reads.get(manifest.layers[0]!.digest)).toMatchObject({ mode: "partial", toc: "estargz" });
    expect(reads.get(top.digest)).toMatchObject({ mode: "full", toc: "estargz", fallback: expect.stringMatching(/eStargz table of contents has digest sha256:[0-9a-f]{64}, but the manifest says/) });
  }, SLOW);

  it("never keeps a partial answer from a file tampered in the registry: the full read refuses the blob", async () => {
    const top = esgz.manifest.layers[1]!;
    const data = join(dir, "registry-estargz/storage/docker/registry/v2/blobs/sha256", top.digest.slice(7, 9), top.digest.slice(7), "data");
    const original = readFileSync(data);
    const entries = (await estargzTocOf(data)).entries;
    const at = entries.findIndex((e) => e.name === "var/lib/dpkg/status");
    expect(entries[at]!.offset).toBeGreaterThan(0);
    const next = entries.slice(at + 1).find((e) => e.offset)!.offset!;
    const tampered = Buffer.from(original);
    // The middle of the file's member: the deflate stream breaks or the content changes.
    const mid = Math.floor((entries[at]!.offset! + next) / 2);
    for (let i = mid; i < mid + 16; i++) tampered[i] = tampered[i]! ^ 0x55;
    writeFileSync(data, tampered);
    try {
      const logged: string[] = [];
      const r = await index("debian:two-estargz", { log: (_level, msg, f) => logged.push(`${msg}: ${String(f?.reason)}`) });
      expect(logged).toEqual([expect.stringMatching(/^partial layer read failed; reading the layer in full: .*var\/lib\/dpkg\/status/)]);
      expect(r.report.state).toBe("IndexError");
      expect(["DIGEST_MISMATCH", "BAD_TAR", "BAD_COMPRESSION"]).toContain((r.error as { code?: string }).code);
      const done = await r.store.scannedLayers([top.digest], defaultScanners().map((s) => ({ name: s.name, version: s.version, kind: s.kind })));
      expect(done.size).toBe(0);
    } finally {
      writeFileSync(data, original);
    }
  }, SLOW);
});
