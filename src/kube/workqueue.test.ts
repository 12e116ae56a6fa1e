import { describe, expect, it } from "vitest";
import { runWorker, WorkQueue } from "./workqueue.js";

describe("WorkQueue", () => {
  it("de-duplicates waiting keys and hands them out in order, priority first", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    q.add("a");
    q.add("c", { priority: true });
    q.add("b", { priority: true });
    expect(q.length).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(["c", "b", "a"]);
  });

  it("never hands out a key twice at once, and re-runs it once if it was added while processing", async () => {
    const q = new WorkQueue();
    q.add("a");
    const k = await q.get();
    q.add("a");
    q.add("a");
    expect(q.length).toBe(0);
    q.done(k!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe("a");
  });

  it("backs off per key exponentially and forgets on success", async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 40 });
    expect([q.addRateLimited("x"), q.addRateLimited("x"), q.addRateLimited("x"), q.addRateLimited("x")]).toEqual([10, 20, 40, 40]);
    const t0 = Date.now();
    expect(await q.get()).toBe("x");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(8);
    q.forget("x");
    expect(q.failuresOf("x")).toBe(0);
  });

  it("wakes a waiting getter, and returns undefined after shutdown", async () => {
    const q = new WorkQueue();
    const p = q.get();
    q.add("late");
    expect(await p).toBe("late");
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.add("ignored");
    expect(q.length).toBe(0);
  });

  it("runWorker retries a failing key with backoff, forgets it once it succeeds, and stops at shutdown", async () => {
    const q = new WorkQueue({ baseDelayMs: 5, maxDelayMs: 20 });
    const seen: string[] = [];
    const errors: Array<[string, number]> = [];
    let failures = 2;
    const worker = runWorker(q, async (key) => {
      seen.push(key);
      if (key === "flaky" && failures-- > 0) throw new Error("not yet");
    }, (key, _e, delay) => errors.push([key, delay]));
    q.add("flaky");
    q.add("ok");
    for (let i = 0; i < 100 && seen.filter((k) => k === "flaky").length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    expect(errors).toEqual([["flaky", 5], ["flaky", 10]]);
    expect(seen.filter((k) => k === "flaky")).toHaveLength(3);
    expect(seen).toContain("ok");
    expect(q.failuresOf("flaky")).toBe(0);
    q.shutDown();
    await worker;
  });
});
