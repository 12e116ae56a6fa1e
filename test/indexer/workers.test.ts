// Layers parsed in worker processes (src/indexer/workers/): the same answers as in process on a real Debian
// image (dpkg-query is the oracle), and what a hostile or broken layer can do ends with its worker: killed at
// its memory limit, at its scan's deadline (a stopped process stands for a blocked loop), or by `kill -9`;
// each fails that layer with a coded error naming it, the pool starts another worker, and the next layer is
// scanned. The worker process holds none of the operator's environment.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Indexer } from "../../src/indexer/indexer.js";
import type { LayerSource } from "../../src/indexer/scan-layer.js";
import { openLocalImage } from "../../src/indexer/sources/local.js";
import type { LayerDescriptor } from "../../src/model/image.js";
import { WorkerPool } from "../../src/indexer/workers/pool.js";
import { digestOf, gzip, makeTar, wantedFilesTar } from "../../src/layers/testing.js";
import { MemorySource } from "../../src/indexer/testing.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { describeWith, tool } from "../env/index.js";
import { ociBookworm, rootfsBookworm } from "../env/images.js";

const run = promisify(execFile);
const platform = { os: "linux", architecture: "amd64" };
const scanners = defaultScanners();
const MT = "application/vnd.oci.image.layer.v1.tar+gzip";

/** Blobs by digest; `stall` makes a blob's stream give its first half and then nothing (a registry that stops). */
class BlobSource implements LayerSource {
  readonly verifiesDigests = false;
  constructor(private readonly blobs: Map<string, Buffer>, private readonly stall = new Set<string>()) {}
  async open(l: LayerDescriptor): Promise<Readable> {
    const b = this.blobs.get(l.digest)!;
    if (!this.stall.has(l.digest)) return Readable.from([b]);
    const p = new PassThrough();
    p.write(b.subarray(0, b.length >> 1));
    return p;
  }
}

async function layerOf(entries: Parameters<typeof makeTar>[0]) {
  const blob = gzip(await makeTar(entries));
  return { blob, desc: { digest: digestOf(blob), size: blob.length, mediaType: MT } satisfies LayerDescriptor };
}

const osRelease = { name: "etc/os-release", content: 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' };

describeWith([], "indexer worker processes", () => {
  let dir: string;
  let store: Store;
  let pool: WorkerPool;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-workers-"));
    store = await openStore(join(dir, "store"));
    pool = new WorkerPool({ size: 2, heapMb: 256, memoryMb: 400 });
  });
  afterAll(async () => {
    await pool?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("indexes a real Debian image to exactly what dpkg-query lists, as the in-process indexer does", async () => {
    const img = (await openLocalImage(`oci:${ociBookworm()}:base`, platform))!;
    const isolated = await new Indexer({ store, scanners, scanning: pool }).index(img.manifest, img.source);
    expect(isolated.report.state).toBe("IndexFinished");
    const { stdout } = await run(tool("dpkg-query"), ["--admindir", join(rootfsBookworm(), "var/lib/dpkg"), "-W", "-f", "${db:Status-Abbrev}\\t${Package}\\t${Version}\\n"]);
    const want = stdout.split("\n").filter((l) => l.startsWith("ii")).map((l) => l.split("\t").slice(1).join("\t")).sort();
    const got = Object.values(isolated.report.packages ?? {}).map((p) => `${p.name}\t${p.version}`).sort();
    expect(got).toEqual(want);
    expect(isolated.stats.layersFetched).toBe(img.manifest.layers.length);

    const other = await openStore(join(dir, "in-process"));
    try {
      const inProcess = await new Indexer({ store: other, scanners }).index(img.manifest, img.source);
      expect(isolated.report.packages).toEqual(inProcess.report.packages);
      expect(isolated.report.environments).toEqual(inProcess.report.environments);
      expect(isolated.report.distributions).toEqual(inProcess.report.distributions);
      expect(isolated.stats.bytesDecompressed).toBe(inProcess.stats.bytesDecompressed);
    } finally {
      await other.close();
    }
  });

  it("carries a layer's coded error across the process boundary (a blob whose digest does not match)", async () => {
    const good = await layerOf([osRelease]);
    const desc = { ...good.desc, digest: digestOf(Buffer.from("something else")) };
    const err = await pool.scan({ layer: desc, scanners, source: new BlobSource(new Map([[desc.digest, good.blob]])), signal: new AbortController().signal }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DIGEST_MISMATCH" });
    expect((err as Error).message).toContain(desc.digest);
  });

  it("a scan that stops reading its layer before the end (a tar's end, then 3 MiB of padding) does not hold up the worker's next scan", async () => {
    // The walk stops at the tar's end; the frames after it fill the worker's stream, which pauses the pipe
    // they come through. Without the worker resuming it when the scan ends, the next scan's frames waited
    // behind the pause (3 runs of 3 hung within 20 rounds before the fix).
    const one = new WorkerPool({ size: 1, heapMb: 256, memoryMb: 600 });
    const tar = await makeTar([osRelease]);
    const padded = gzipSync(Buffer.concat([tar, Buffer.alloc(3 << 20)]), { level: 0 });
    const small = gzip(tar);
    // A source that verifies digests itself (as the registry client does), so the walk need not read to the end.
    const verified = (b: Buffer): LayerSource => ({ verifiesDigests: true, open: async () => Readable.from([b]) });
    const scanOf = (b: Buffer) => one.scan({ layer: { digest: digestOf(b), size: b.length, mediaType: MT }, scanners, source: verified(b), signal: new AbortController().signal });
    try {
      for (let i = 0; i < 20; i++) {
        await scanOf(padded);
        const next = await Promise.race([scanOf(small).then(() => "scanned"), new Promise((r) => setTimeout(() => r("still waiting after 10 s"), 10_000))]);
        expect(next, `round ${i}`).toBe("scanned");
      }
    } finally {
      await one.stop();
    }
  }, 120_000);

  it("kills a worker over its memory limit: the layer fails naming it and the limit, the next layer is scanned", async () => {
    // Files the dpkg scanner reads whole (distroless status.d), 30 MiB each (the cap is 32 MiB): 480 MiB held,
    // under the walk's 512 MiB per layer but over the worker's 400 MiB of resident memory.
    const big = Buffer.alloc(30 << 20, 0x41);
    const hungry = await layerOf(Array.from({ length: 16 }, (_, i) => ({ name: `var/lib/dpkg/status.d/p${i}`, content: big })));
    const fine = await layerOf([osRelease]);
    const source = new BlobSource(new Map([[hungry.desc.digest, hungry.blob], [fine.desc.digest, fine.blob]]));
    const before = pool.stats().restarts;
    const err = await pool.scan({ layer: hungry.desc, scanners, source, signal: new AbortController().signal }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "WORKER_MEMORY_LIMIT", layer: hungry.desc.digest });
    expect((err as Error).message).toMatch(/over its limit of 400 MiB/);
    const ok = await pool.scan({ layer: fine.desc, scanners, source, signal: new AbortController().signal });
    expect(ok.results.find((r) => r.scanner.name === "os-release")?.output.distributions?.[0]?.did).toBe("debian");
    expect(pool.stats().restarts).toBe(before + 1);
  }, 60_000);

  it("kills a worker that does not answer by its scan's deadline (a stopped process), and one killed with -9", async () => {
    const slow = await layerOf([osRelease, { name: "usr/share/doc/x", content: Buffer.alloc(1 << 20, 1) }]);
    const source = new BlobSource(new Map([[slow.desc.digest, slow.blob]]), new Set([slow.desc.digest]));
    const before = pool.stats().restarts;

    // The deadline: the worker is stopped (SIGSTOP), as a worker whose loop is blocked would be.
    const deadline = AbortSignal.timeout(1500);
    const scanning = pool.scan({ layer: slow.desc, scanners, source, signal: deadline }).catch((e: unknown) => e);
    await until(() => pool.stats().busy === 1);
    const [stopped] = busyPids(pool);
    process.kill(stopped!, "SIGSTOP");
    const timedOut = await scanning;
    expect((timedOut as Error).name).toBe("TimeoutError");
    await until(() => !alive(stopped!));

    // kill -9 in the middle of the layer (its blob stalls half way).
    const killed = pool.scan({ layer: slow.desc, scanners, source, signal: new AbortController().signal }).catch((e: unknown) => e);
    await until(() => pool.stats().busy === 1);
    const [victim] = busyPids(pool);
    process.kill(victim!, "SIGKILL");
    expect(await killed).toMatchObject({ code: "WORKER_CRASHED", layer: slow.desc.digest });
    expect(pool.stats().restarts).toBe(before + 2);
    await until(() => pool.pids().length === 2);
  }, 30_000);

  it("bounds the wanted files of a whole scan across worker processes: each layer walks under its share of the budget", async () => {
    const p = new WorkerPool({ size: 2, heapMb: 256, memoryMb: 600, tuning: { limits: { maxCapturedBytes: 8 << 20 } } });
    try {
      // Two layers of 7 MiB of package.json files each (npm reads them whole): under the per-layer cap of 8 MiB.
      const layers = await Promise.all([0, 1].map(async (k) => {
        const blob = gzip(await wantedFilesTar(7, 1 << 20, (i) => `usr/lib/node_modules/l${k}p${i}/package.json`));
        return { blob, desc: { digest: digestOf(blob), size: blob.length, mediaType: MT } };
      }));
      const source = new MemorySource(new Map(layers.map((l) => [l.desc.digest, l.blob])));
      const manifest = (n: number) => ({ digest: `sha256:${String(n).padStart(64, "b")}`, layers: layers.map((l) => l.desc) });
      const s = await openStore(join(dir, "budget"));
      try {
        // 12 MiB for the scan: the layers cannot both hold theirs.
        const tight = await new Indexer({ store: s, scanners, scanning: p, maxScanCapturedBytes: 12 << 20 }).index(manifest(1), source);
        expect(tight.report.state).toBe("IndexError");
        expect(tight.error).toMatchObject({ code: "CAPTURED_TOO_LARGE" });
        // 20 MiB: both fit.
        const roomy = await new Indexer({ store: s, scanners, scanning: p, maxScanCapturedBytes: 20 << 20 }).index(manifest(2), source);
        expect(roomy.report.state).toBe("IndexFinished");
      } finally {
        await s.close();
      }
    } finally {
      await p.stop();
    }
  }, 60_000);

  it("gives workers none of the operator's environment (database URL, cloud credentials), and a lower CPU priority", async () => {
    process.env.PORTCULLIS_DATABASE_URL = "postgres://portcullis:secret@db/portcullis";
    const p = new WorkerPool({ size: 1, heapMb: 128, memoryMb: 300 });
    try {
      await until(() => p.pids().length === 1);
      const env = readFileSync(`/proc/${p.pids()[0]}/environ`, "utf8").split("\0");
      expect(env.some((e) => e.startsWith("PORTCULLIS_DATABASE_URL="))).toBe(false);
      expect(env.some((e) => e.startsWith("PATH="))).toBe(true);
      // /proc/PID/stat: the 19th field is the niceness (after the command in parentheses, it is the 17th).
      const stat = readFileSync(`/proc/${p.pids()[0]}/stat`, "utf8");
      expect(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])).toBe(19);
    } finally {
      delete process.env.PORTCULLIS_DATABASE_URL;
      await p.stop();
    }
  });
});

function busyPids(p: WorkerPool): number[] {
  return p.busyPids();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}
