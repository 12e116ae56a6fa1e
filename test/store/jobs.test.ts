// The index job queue on the real PostgreSQL service: claims that never hand one job to two processes (many
// concurrent claimers, as many replicas would be), the priority lane, leases that expire into a takeover
// (the old owner then can neither renew nor finish), retries after their backoff, attempts counted and
// bounded, a finished job started over when asked again.
import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore } from "../../src/store/open.js";
import type { IndexJobInput, Store } from "../../src/store/types.js";
import { describeWith, scratchDatabases } from "../env/index.js";

const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const input = (n: number, o: Partial<IndexJobInput> = {}): IndexJobInput => ({
  manifest: `sha256:${String(n).padStart(64, "0")}`, scannerSet: "set-1", reference: `registry.test/app@sha256:${String(n).padStart(64, "0")}`,
  namespace: "team-a", pullSecrets: ["regcred"], priority: false, maxAttempts: 3, ...o,
});

describeWith(["postgres"], "index jobs on PostgreSQL", () => {
  let stores: Store[];
  beforeAll(async () => {
    const url = await databases.create("jobs");
    // Four processes' stores on one database.
    stores = await Promise.all(Array.from({ length: 4 }, () => openStore(url)));
  });
  afterAll(async () => {
    for (const s of stores ?? []) await s.close();
  });
  const jobs = (i = 0) => stores[i]!.jobs!;

  it("hands each job to exactly one of many concurrent claimers, the priority lane first", async () => {
    for (let n = 1; n <= 40; n++) await jobs().enqueue(input(n, { priority: n > 36 }));
    // Asking again joins the job (one row per manifest and scanner set); priority is kept once given.
    const again = await jobs(1).enqueue(input(3, { priority: true }));
    expect(again.state).toBe("queued");
    expect((await jobs().stats()).queued).toBe(40);

    // Another version's runner (another scanner set) takes none of them.
    expect(await jobs(0).claim("other-version", 30_000, "set-2")).toBeUndefined();
    // The priority lane first, oldest first.
    const claimed: string[] = [];
    for (let i = 0; i < 5; i++) claimed.push((await jobs(0).claim("worker-0", 30_000, "set-1"))!.manifest);
    expect(claimed).toEqual([3, 37, 38, 39, 40].map((n) => input(n).manifest));
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (;;) {
        const j = await jobs(w % 4).claim(`worker-${w}`, 30_000, "set-1");
        if (!j) return;
        claimed.push(j.manifest);
        expect(j.owner).toBe(`worker-${w}`);
        expect(j.priority).toBe(false);
        expect(j.attempts).toBe(1);
      }
    }));
    expect(claimed).toHaveLength(40);
    expect(new Set(claimed).size).toBe(40);
    expect(await jobs().stats()).toMatchObject({ queued: 0, running: 40 });
    for (const m of claimed) {
      const j = (await jobs().get(m, "set-1"))!;
      expect(await jobs().finish(j.id, j.owner!, { state: "done", stats: { layers: 1, layersFetched: 1, layersReused: 0, bytesFetched: 10, durationMs: 5 } })).toBe(true);
    }
    expect(await jobs().stats()).toMatchObject({ queued: 0, running: 0, done: 40, failed: 0 });
  });

  it("gives a job whose owner stopped renewing its lease to the next claimer; the old owner can neither renew nor finish it", async () => {
    await jobs().enqueue(input(100));
    const a = (await jobs(0).claim("pod-a", 1000, "set-1"))!;
    expect(a.manifest).toBe(input(100).manifest);
    expect(await jobs(1).claim("pod-b", 1000, "set-1")).toBeUndefined();
    expect(await jobs(0).heartbeat(a.id, "pod-a", 1000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1300)); // pod-a is gone: no heartbeat
    const b = (await jobs(1).claim("pod-b", 30_000, "set-1"))!;
    expect(b).toMatchObject({ id: a.id, owner: "pod-b", attempts: 2 });
    expect(await jobs(0).heartbeat(a.id, "pod-a", 1000)).toBe(false);
    expect(await jobs(0).finish(a.id, "pod-a", { state: "failed", code: "X", message: "late" })).toBe(false);
    expect(await jobs(1).finish(b.id, "pod-b", { state: "done", stats: { layers: 1, layersFetched: 1, layersReused: 0, bytesFetched: 1, durationMs: 1 } })).toBe(true);
    expect((await jobs().get(input(100).manifest, "set-1"))!.state).toBe("done");
  });

  it("queues a retry after its backoff, gives a released job back without counting it, and starts a failed job over when asked again", async () => {
    await jobs().enqueue(input(200, { maxAttempts: 2 }));
    let j = (await jobs().claim("pod-a", 30_000, "set-1"))!;
    expect(await jobs().finish(j.id, "pod-a", { state: "retry", code: "WORKER_MEMORY_LIMIT", message: "over 1024 MiB", afterMs: 800 })).toBe(true);
    expect(await jobs().claim("pod-a", 30_000, "set-1")).toBeUndefined(); // not before its backoff
    await new Promise((r) => setTimeout(r, 900));
    j = (await jobs().claim("pod-b", 30_000, "set-1"))!;
    expect(j).toMatchObject({ attempts: 2, code: "WORKER_MEMORY_LIMIT" });
    // Released (the pod is stopping): queued at once, the attempt not counted.
    expect(await jobs().finish(j.id, "pod-b", { state: "release" })).toBe(true);
    j = (await jobs().claim("pod-c", 30_000, "set-1"))!;
    expect(j.attempts).toBe(2);
    expect(await jobs().finish(j.id, "pod-c", { state: "failed", code: "WORKER_MEMORY_LIMIT", message: "over 1024 MiB (attempt 2 of 2)" })).toBe(true);
    expect(await jobs().get(input(200).manifest, "set-1")).toMatchObject({ state: "failed", code: "WORKER_MEMORY_LIMIT", attempts: 2 });
    // A new generation of the scan asks again: the job starts over.
    const again = await jobs().enqueue(input(200, { maxAttempts: 2 }));
    expect(again).toMatchObject({ state: "queued", attempts: 0 });
    expect(again.code).toBeUndefined();
  });
});
