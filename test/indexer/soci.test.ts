// Partial layer reads through SOCI zTOCs on a real registry: the two-layer Debian test image's gzip layers, with
// zTOCs built from real tools (test/env/soci.ts: gztool's checkpoints every 4 MiB, SOCI's default span;
// Python's tarfile's entries; flatc's encoding) in a SOCI index pushed beside the image, v2 (named by the
// image manifest's annotation) and v1 (a referrer, found through the referrers tag schema: the test registry,
// distribution 2.8.2, has no referrers API). The packages must be what dpkg-query lists and the stored
// layers what a full read stores; a zTOC tampered in the registry, a missing SOCI index, and a proxy that
// ignores Range each end in a full read that says why.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseReference } from "../../src/image/reference.js";
import { Indexer, type IndexerOptions, type IndexResult } from "../../src/indexer/indexer.js";
import { openRegistryImage } from "../../src/indexer/sources/registry.js";
import { findSociZtocs, SOCI_INDEX_DIGEST } from "../../src/indexer/sources/soci.js";
import { WorkerPool } from "../../src/indexer/workers/pool.js";
import type { ImageManifest } from "../../src/image/manifest.js";
import { RegistryClient } from "../../src/registry/client.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { describeWith } from "../env/index.js";
import { ociBookworm, rootfsBookwormTwo, skopeoPush } from "../env/images.js";
import { RegistryPusher, sha256 } from "../env/oci-push.js";
import { ProcessSupervisor } from "../env/process.js";
import { startRegistry, type RegistryService } from "../env/services.js";
import { pushReferrersTag, pushSociImage, pushSociIndex, pushZtocs } from "../env/soci.js";
import { dpkgQuery, expectSameLayers, pkgs, rangeRefusingProxy } from "./partial-reads.js";

const SLOW = 300_000;

interface Layer {
  digest: string;
  size: number;
  mediaType: string;
}

describeWith(["registryBasic"], "partial layer reads from SOCI zTOCs", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-soci-"));
  const sup = new ProcessSupervisor(dir);
  let reg: RegistryService;
  let stopRegistry: () => Promise<void>;
  let client: RegistryClient;
  let pusher: RegistryPusher;
  let layers: Layer[];
  let imageDigest: string;
  let imageManifest: Record<string, unknown>;
  let imageSize: number;
  const ztocs = new Map<string, { digest: string; size: number }>();
  let want: string[];
  const stores: Store[] = [];

  async function index(host: string, repoTag: string, o: Partial<IndexerOptions> & { v1?: boolean } = {}): Promise<IndexResult & { store: Store }> {
    const c = host === reg.host ? client : new RegistryClient({ keyring: { lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] } });
    const img = await openRegistryImage(c, parseReference(`${host}/${repoTag}`), o.v1 ? { soci: { v1: true } } : {});
    const store = await openStore("memory:");
    stores.push(store);
    const result = await new Indexer({ store, scanners: defaultScanners(), ...o }).index(img.manifest, img.source);
    if (c !== client) await c.close();
    return { ...result, store };
  }

  const pushIndex = (version: "v1" | "v2", zt: Map<string, { digest: string; size: number }>) => pushSociIndex(pusher, "debian", version, layers, zt, { digest: imageDigest, size: imageSize });
  const pushImage = (tag: string, indexDigest: string) => pushSociImage(pusher, "debian", tag, imageManifest, indexDigest);

  beforeAll(async () => {
    const r = await startRegistry(sup, { name: "soci", auth: "basic", username: "soci", password: "soci-secret" });
    reg = r.service;
    stopRegistry = r.stop;
    client = new RegistryClient({ keyring: { lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] } });
    pusher = new RegistryPusher(reg);
    await skopeoPush(`oci:${ociBookworm()}:two`, reg, "debian:two");
    // The manifest as the registry holds it (its bytes and digest).
    const fetched = await client.getManifest(parseReference(`${reg.host}/debian:two`), "two");
    imageDigest = fetched.digest;
    imageSize = fetched.raw.length;
    imageManifest = JSON.parse(fetched.raw.toString("utf8")) as Record<string, unknown>;
    layers = (imageManifest as { layers: Layer[] }).layers;
    expect(layers.map((l) => l.mediaType)).toEqual([expect.stringMatching(/gzip$/), expect.stringMatching(/gzip$/)]);
    for (const [k, v] of await pushZtocs(pusher, "debian", ociBookworm(), layers, 4)) ztocs.set(k, v);
    const v2 = await pushIndex("v2", ztocs);
    await pushImage("two-soci", v2.digest);
    want = await dpkgQuery(rootfsBookwormTwo());
  }, 600_000);

  afterAll(async () => {
    await client?.close();
    await pusher?.close();
    for (const s of stores) await s.close();
    await stopRegistry?.();
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads both layers partially through a v2 SOCI index: the packages dpkg-query lists, and what a full read stores", async () => {
    const partial = await index(reg.host, "debian:two-soci");
    expect(partial.report.state).toBe("IndexFinished");
    expect(partial.stats.layerReads!.map((r) => [r.mode, r.toc, r.fallback])).toEqual([["partial", "soci", undefined], ["partial", "soci", undefined]]);
    expect(want.length).toBeGreaterThan(80);
    expect(pkgs(partial.report)).toEqual(want);

    const full = await index(reg.host, "debian:two-soci", { partialReads: false });
    expect(full.stats.layerReads!.map((r) => [r.mode, r.toc])).toEqual([["full", undefined], ["full", undefined]]);
    expect(partial.report).toEqual(full.report);
    const digests = layers.map((l) => l.digest);
    const a = await expectSameLayers(partial, full, digests);
    // The second layer purged gpgv: its whiteouts came from the zTOC's names.
    expect(a.get(digests[1]!)!.whiteouts.some((w) => w.includes("gpgv"))).toBe(true);
    const total = layers.reduce((n, l) => n + l.size, 0);
    expect(full.stats.bytesFetched).toBe(total);
    const zt = [...ztocs.values()].reduce((n, z) => n + z.size, 0);
    // Figures for the report: bytes (zTOCs included) and time, partial against full, same run.
    console.log(`SOCI two-layer Debian: full ${full.stats.bytesFetched} bytes in ${full.stats.durationMs.toFixed(0)} ms; partial ${partial.stats.bytesFetched} bytes (zTOCs ${zt}) in ${partial.stats.durationMs.toFixed(0)} ms, ${partial.stats.layerReads!.map((r) => r.requests).join("+")} range requests: ${((100 * partial.stats.bytesFetched) / total).toFixed(1)}% of the bytes`);
    // Whole 4 MiB spans (each checked against its digest) for every file wanted, executables' first bytes
    // included: most of this image's spans (see docs/partial-reads.md). A layer whose files would take more
    // than 80% of its blob is read in full instead.
    expect(partial.stats.bytesFetched).toBeLessThan(0.8 * total + zt);
    expect(partial.stats.bytesFetched).toBeGreaterThan(zt);
  }, SLOW);

  it("reads partially in the indexer's worker processes too (the zTOC travels with the descriptor)", async () => {
    const pool = new WorkerPool({ size: 1, heapMb: 512, memoryMb: 900 });
    try {
      const r = await index(reg.host, "debian:two-soci", { scanning: pool });
      expect(r.report.state).toBe("IndexFinished");
      expect(r.stats.layerReads!.map((x) => [x.mode, x.toc, x.fallback])).toEqual([["partial", "soci", undefined], ["partial", "soci", undefined]]);
      expect(pkgs(r.report)).toEqual(want);
    } finally {
      await pool.stop();
    }
  }, SLOW);

  it("reads a layer in full when its zTOC was tampered with in the registry, and says so", async () => {
    const top = layers[1]!;
    const z = ztocs.get(top.digest)!;
    const data = join(dir, "registry-soci/storage/docker/registry/v2/blobs/sha256", z.digest.slice(7, 9), z.digest.slice(7), "data");
    const original = readFileSync(data);
    const tampered = Buffer.from(original);
    tampered[tampered.length >> 1] = tampered[tampered.length >> 1]! ^ 0x55;
    writeFileSync(data, tampered);
    try {
      const logged: string[] = [];
      const r = await index(reg.host, "debian:two-soci", { log: (_level, msg, f) => logged.push(`${msg}: ${String(f?.reason)}`) });
      expect(r.report.state).toBe("IndexFinished");
      expect(pkgs(r.report)).toEqual(want);
      const reads = new Map(r.stats.layerReads!.map((x) => [x.digest, x]));
      expect(reads.get(layers[0]!.digest)).toMatchObject({ mode: "partial", toc: "soci" });
      expect(reads.get(top.digest)).toMatchObject({ mode: "full", toc: "soci", fallback: expect.stringMatching(new RegExp(`SOCI zTOC ${z.digest}: .* content has digest sha256:`)) });
      expect(reads.get(top.digest)!.bytes).toBeGreaterThanOrEqual(top.size);
      expect(logged).toEqual([expect.stringMatching(/^partial layer read failed; reading the layer in full: layer sha256:[0-9a-f]{64}: SOCI zTOC/)]);
    } finally {
      writeFileSync(data, original);
    }
  }, SLOW);

  it("reads in full when the image names a SOCI index the registry does not have", async () => {
    await pushImage("two-soci-missing", sha256("no such index"));
    const r = await index(reg.host, "debian:two-soci-missing");
    expect(r.report.state).toBe("IndexFinished");
    expect(pkgs(r.report)).toEqual(want);
    for (const x of r.stats.layerReads!) expect(x).toMatchObject({ mode: "full", toc: "soci", fallback: expect.stringMatching(/SOCI index sha256:[0-9a-f]{64}: .*manifest unknown/) });
  }, SLOW);

  it("reads in full behind a proxy that ignores Range, and the answer is the same", async () => {
    const proxy = await rangeRefusingProxy(reg.host);
    try {
      const r = await index(proxy.host, "debian:two-soci");
      expect(r.report.state).toBe("IndexFinished");
      expect(pkgs(r.report)).toEqual(want);
      expect(r.stats.layerReads!.map((x) => [x.mode, x.toc])).toEqual([["full", "soci"], ["full", "soci"]]);
      for (const x of r.stats.layerReads!) expect(x.fallback).toMatch(/answered 200 \(it does not serve byte ranges\)/);
      expect(proxy.ranged()).toBeGreaterThanOrEqual(2);
    } finally {
      await new Promise((resolve) => proxy.server.close(resolve));
    }
  }, SLOW);

  it("reads a v1 SOCI index (a referrer of the image) only when asked to", async () => {
    const v1 = await pushIndex("v1", ztocs);
    // The referrers tag schema (distribution 2.8.2 has no referrers API): an index at sha256-<hex> listing it.
    await pushReferrersTag(pusher, "debian", imageDigest, v1);

    const off = await index(reg.host, "debian:two");
    expect(off.stats.layerReads!.map((x) => [x.mode, x.toc])).toEqual([["full", undefined], ["full", undefined]]);
    const on = await index(reg.host, "debian:two", { v1: true });
    expect(on.stats.layerReads!.map((x) => [x.mode, x.toc, x.fallback])).toEqual([["partial", "soci", undefined], ["partial", "soci", undefined]]);
    expect(pkgs(on.report)).toEqual(want);
    expect(on.report).toEqual(off.report);
  }, SLOW);

  it("refuses a SOCI index of the wrong version or for another image, and a layer given two zTOCs", async () => {
    const ref = parseReference(`${reg.host}/debian:two`);
    const parsed = (await client.getManifest(ref, imageDigest)).manifest as ImageManifest;
    const find = (manifest: ImageManifest, v1 = false) => findSociZtocs(client, ref, { digest: imageDigest, manifest }, layers, { v1 });
    // v2's annotation naming a v1 index
    const v1 = await pushIndex("v1", ztocs);
    for (const x of (await find({ ...parsed, annotations: { [SOCI_INDEX_DIGEST]: v1.digest } })).values()) expect(x).toEqual({ index: v1.digest, error: expect.stringMatching(/has type "application\/vnd.amazon.soci.index.v1\+json", not application\/vnd.amazon.soci.index.v2\+json/) });
    // a v1 referrer whose subject is another manifest
    const other = await pushSociIndex(pusher, "debian", "v1", layers, ztocs, { digest: sha256("another image"), size: 100 });
    await pushReferrersTag(pusher, "debian", imageDigest, other);
    for (const x of (await find(parsed, true)).values()) expect(x).toEqual({ index: other.digest, error: expect.stringMatching(/refers to sha256:[0-9a-f]{64}, not the image/) });
    // two zTOCs for the top layer
    const twice = new Map(ztocs);
    const doubled = await pushIndex("v2", twice);
    const raw = (await client.getManifest(ref, doubled.digest)).raw.toString("utf8");
    const body = JSON.parse(raw) as { layers: unknown[] };
    body.layers.push(body.layers[1]);
    const bad = JSON.stringify(body);
    const badDigest = await pusher.pushManifest("debian", sha256(bad), bad, "application/vnd.oci.image.manifest.v1+json");
    const found = await find({ ...parsed, annotations: { [SOCI_INDEX_DIGEST]: badDigest } });
    expect(found.get(layers[0]!.digest)).toMatchObject({ index: badDigest, ztoc: ztocs.get(layers[0]!.digest)!.digest });
    expect(found.get(layers[1]!.digest)).toEqual({ index: badDigest, error: expect.stringMatching(/gives layer sha256:[0-9a-f]{64} 2 zTOCs/) });
  }, SLOW);
});
