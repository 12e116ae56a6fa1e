// Many indexes at once on the real PostgreSQL, with the store's default pool (10 connections): every manifest
// lock used to keep a pooled connection for the whole index while the index needed others for its queries,
// so 10 manifests being indexed at once took every connection and none could finish.
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Indexer } from "../../src/indexer/indexer.js";
import { MemorySource } from "../../src/indexer/testing.js";
import type { LayerDescriptor, ManifestToIndex } from "../../src/model/image.js";
import { digestOf, gzip, makeTar } from "../../src/layers/testing.js";
import type { Scanner } from "../../src/model/scanner.js";
import { openStore } from "../../src/store/open.js";
import { PostgresDb } from "../../src/store/postgres.js";
import { SqlStore } from "../../src/store/sql-store.js";
import type { Store } from "../../src/store/types.js";
import { describeWith, scratchDatabases } from "../env/index.js";

/** Reads `pkgs/db` (`name version` lines) and counts the layers it scanned, by digest, over every indexer that shares it. */
function countingScanner(scans: Map<string, number>): Scanner {
  return {
    name: "lines", version: "1", kind: "package",
    wants: (e) => e.path === "pkgs/db",
    scan: async (files) => {
      scans.set(files.digest, (scans.get(files.digest) ?? 0) + 1);
      const text = files.get("pkgs/db")?.toString() ?? "";
      return { packages: text.split("\n").filter(Boolean).map((l) => ({ name: l.split(" ")[0]!, version: l.split(" ")[1]!, kind: "binary" as const, package_db: "pkgs/db" })) };
    },
  };
}

async function layer(name: string): Promise<{ blob: Buffer; desc: LayerDescriptor }> {
  const blob = gzip(await makeTar([{ name: "pkgs/db", content: `${name} 1.0\n` }]));
  return { blob, desc: { digest: digestOf(blob), size: blob.length, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" } };
}

describeWith(["postgres"], "PostgreSQL store under many concurrent indexes", () => {
  const dbs = scratchDatabases();
  let url = "";
  const stores: Store[] = [];
  const blobs = new Map<string, Buffer>();
  let base: LayerDescriptor;
  let shared: LayerDescriptor[];
  let own: LayerDescriptor[];

  beforeAll(async () => {
    url = await dbs.create("pool");
    const b = await layer("base");
    base = b.desc;
    blobs.set(b.desc.digest, b.blob);
    shared = [];
    for (let i = 0; i < 4; i++) {
      const l = await layer(`shared${i}`);
      shared.push(l.desc);
      blobs.set(l.desc.digest, l.blob);
    }
    own = [];
    for (let i = 0; i < 32; i++) {
      const l = await layer(`own${i}`);
      own.push(l.desc);
      blobs.set(l.desc.digest, l.blob);
    }
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await dbs.dropAll();
  });

  async function count(store: Store, sql: string): Promise<number> {
    const { rows } = await (store as SqlStore).sql.query<{ n: string }>(sql);
    return Number(rows[0]!.n);
  }

  it("indexes 32 distinct manifests at once through one Indexer on the default pool, each layer once", async () => {
    const store = await openStore(url);
    stores.push(store);
    const scans = new Map<string, number>();
    const indexer = new Indexer({ store, scanners: [countingScanner(scans)] });
    // Each open waits a little, so that all 32 hold their manifest lock at the same time.
    const source = new MemorySource(blobs, 100);
    const manifests: ManifestToIndex[] = own.map((l, i) => ({ digest: digestOf(Buffer.from(`distinct-${i}`)), layers: [base, shared[i % 4]!, l] }));
    const results = await Promise.all(manifests.map((m) => indexer.index(m, source)));
    expect(results.map((r) => r.error?.message ?? r.report.state)).toEqual(manifests.map(() => "IndexFinished"));
    // The top layer's database replaces the ones below it.
    expect(results.map((r) => Object.values(r.report.packages ?? {}).map((p) => p.name))).toEqual(manifests.map((_, i) => [`own${i}`]));
    // 1 base + 4 shared + 32 own layers, each scanned once and fetched once.
    expect(scans.size).toBe(37);
    expect([...scans.values()].every((n) => n === 1)).toBe(true);
    expect(source.opened.length).toBe(37);
    expect(await count(store, "SELECT count(*) AS n FROM index_report WHERE state = 'IndexFinished'")).toBe(32);
    expect(await count(store, "SELECT count(*) AS n FROM scanned_layer")).toBe(37);
    // No statement of the pool waits for a row lock for ever.
    expect((await (store as SqlStore).sql.query<{ lock_timeout: string }>("SHOW lock_timeout")).rows[0]!.lock_timeout).toBe("2min");
  }, 120_000);

  it("indexes one manifest asked for 32 times at once exactly once; the other calls get the stored report", async () => {
    const store = await openStore(url);
    stores.push(store);
    const scans = new Map<string, number>();
    const indexer = new Indexer({ store, scanners: [countingScanner(scans)] });
    const source = new MemorySource(blobs, 100);
    const top = await layer("identical-top");
    blobs.set(top.desc.digest, top.blob);
    const m: ManifestToIndex = { digest: digestOf(Buffer.from("identical")), layers: [base, top.desc] };
    const results = await Promise.all(Array.from({ length: 32 }, () => indexer.index(m, source)));
    expect(results.map((r) => r.report.state)).toEqual(results.map(() => "IndexFinished"));
    // Only the new top layer is scanned (the base is in the store from the test before), once.
    expect([...scans.entries()]).toEqual([[top.desc.digest, 1]]);
    expect(results.filter((r) => !r.stats.cached)).toHaveLength(1);
    expect(source.opened).toEqual([top.desc.digest]);
  }, 120_000);

  it("scans a layer shared by manifests indexed in two processes at once only once (the layer lock)", async () => {
    // Two stores, each with its own pool and lock session, as two indexer processes would have.
    const a = await openStore(url);
    const b = await openStore(url);
    stores.push(a, b);
    const scans = new Map<string, number>();
    const scanner = countingScanner(scans);
    const ia = new Indexer({ store: a, scanners: [scanner] });
    const ib = new Indexer({ store: b, scanners: [scanner] });
    const sa = new MemorySource(blobs, 100);
    const sb = new MemorySource(blobs, 100);
    const common: LayerDescriptor[] = [];
    for (let i = 0; i < 3; i++) {
      const l = await layer(`two-process-common${i}`);
      common.push(l.desc);
      blobs.set(l.desc.digest, l.blob);
    }
    const manifests: ManifestToIndex[] = [];
    for (let i = 0; i < 32; i++) {
      const top = await layer(`two-process-top${i}`);
      blobs.set(top.desc.digest, top.blob);
      manifests.push({ digest: digestOf(Buffer.from(`two-process-${i}`)), layers: [common[i % 3]!, top.desc] });
    }
    // Every manifest asked of both processes at once.
    const results = await Promise.all(manifests.flatMap((m) => [ia.index(m, sa), ib.index(m, sb)]));
    expect(results.map((r) => r.error?.message ?? r.report.state)).toEqual(results.map(() => "IndexFinished"));
    expect(scans.size).toBe(35);
    expect([...scans.values()].every((n) => n === 1)).toBe(true);
    // Each layer was fetched by one process only.
    expect(sa.opened.length + sb.opened.length).toBe(35);
    expect(new Set([...sa.opened, ...sb.opened]).size).toBe(35);
  }, 120_000);

  it("gives up on a lock held too long with LOCK_TIMEOUT naming the manifest, in this process and across processes", async () => {
    const holder = await openStore(url);
    const waiter = await SqlStore.open(new PostgresDb({ url, lockWaitMs: 300 }));
    stores.push(holder, waiter);
    const top = await layer("held");
    blobs.set(top.desc.digest, top.blob);
    const m: ManifestToIndex = { digest: digestOf(Buffer.from("held")), layers: [top.desc] };
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held!: () => void;
    const holding = new Promise<void>((r) => (held = r));
    const hold = holder.withManifestLock(m.digest, async () => {
      held();
      await released;
    });
    await holding;
    const scans = new Map<string, number>();
    const indexer = new Indexer({ store: waiter, scanners: [countingScanner(scans)] });
    const t0 = Date.now();
    await expect(indexer.index(m, new MemorySource(blobs))).rejects.toMatchObject({
      code: "LOCK_TIMEOUT",
      message: expect.stringMatching(new RegExp(`^gave up waiting for the lock of manifest ${m.digest} \\(being indexed by another indexer\\) after 0\\.\\d s: another PostgreSQL session`)),
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    // In one process: the second caller queues in the process and gives up the same way.
    const inner = waiter.withManifestLock("sha256:same-process", () => new Promise((r) => setTimeout(r, 1000)));
    await expect(waiter.withManifestLock("sha256:same-process", async () => undefined)).rejects.toMatchObject({
      code: "LOCK_TIMEOUT",
      message: expect.stringMatching(/^gave up waiting for the lock of manifest sha256:same-process .* another task of this process held it/),
    });
    await inner;
    release();
    await hold;
    // Once released, the waiter's store takes it and indexes.
    expect((await indexer.index(m, new MemorySource(blobs))).report.state).toBe("IndexFinished");
    expect(scans.get(top.desc.digest)).toBe(1);
  }, 60_000);

  it("replaces a lock session that breaks; the locks it held went with it, as PostgreSQL releases them", async () => {
    const a = await openStore(url);
    const b = await SqlStore.open(new PostgresDb({ url, lockWaitMs: 5_000 }));
    stores.push(a, b);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const sessions = async () => (await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'portcullis-locks' AND datname = current_database()")).rows[0]!.n;
    try {
      let bTook = false;
      let before = 0;
      await a.withManifestLock("sha256:broken", async () => {
        before = await sessions();
        const { rows } = await admin.query<{ n: number }>(
          "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'portcullis-locks' AND datname = current_database() AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')",
        );
        expect(rows[0]!.n).toBe(1);
        // ...and once a's session is gone, so is its lock: b takes it while a's work still runs.
        await b.withManifestLock("sha256:broken", async () => {
          bTook = true;
        });
      });
      expect(bTook).toBe(true);
      // a's next lock opens a new session (b's stays): as many lock sessions as before.
      expect(await a.withManifestLock("sha256:after", async () => "ran")).toBe("ran");
      expect(await sessions()).toBe(before);
    } finally {
      await admin.end();
    }
  }, 60_000);
});
