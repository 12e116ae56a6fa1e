import { describe, expect, it } from "vitest";
import { WorkQueue } from "./workqueue.js";

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
});
