import { describe, expect, it } from "vitest";
import { runWorker, TerminalError } from "./reconcile.js";
import { WorkQueue } from "./workqueue.js";

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe("runWorker", () => {
  it("retries a failing key with backoff, forgets it once it succeeds, and stops at shutdown", async () => {
    const q = new WorkQueue({ baseDelayMs: 5, maxDelayMs: 20 });
    const seen: string[] = [];
    const errors: Array<[string, number]> = [];
    let failures = 2;
    const worker = runWorker(q, async (key) => {
      seen.push(key);
      if (key === "flaky" && failures-- > 0) throw new Error("not yet");
    }, { onError: (key, _e, delay) => errors.push([key, delay]) });
    q.add("flaky");
    q.add("ok");
    await until(() => seen.filter((k) => k === "flaky").length >= 3);
    expect(errors).toEqual([["flaky", 5], ["flaky", 10]]);
    expect(seen.filter((k) => k === "flaky")).toHaveLength(3);
    expect(seen).toContain("ok");
    expect(q.failuresOf("flaky")).toBe(0);
    q.shutDown();
    await worker;
  });

  it("requeues after the delay a reconcile asks for, with its failures forgotten", async () => {
    const q = new WorkQueue({ baseDelayMs: 5 });
    const at: number[] = [];
    let fail = true;
    const worker = runWorker(q, async () => {
      at.push(performance.now());
      if (fail) {
        fail = false;
        throw new Error("once");
      }
      return at.length < 3 ? { requeueAfterMs: 40 } : undefined;
    }, { onError: () => undefined });
    q.add("k");
    await until(() => at.length >= 3);
    expect(at).toHaveLength(3);
    // The second run came after the 5 ms backoff, the third after the 40 ms asked for.
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(38);
    expect(q.failuresOf("k")).toBe(0);
    await new Promise((r) => setTimeout(r, 80));
    expect(at).toHaveLength(3);
    q.shutDown();
    await worker;
  });

  it("drops a key whose reconcile throws a TerminalError, until it is added again", async () => {
    const q = new WorkQueue({ baseDelayMs: 5 });
    let runs = 0;
    const terminal: string[] = [];
    const worker = runWorker(q, async () => {
      runs++;
      throw new TerminalError("the API server refuses this object as it is");
    }, { onError: () => expect.fail("not a retry"), onTerminal: (key, e) => terminal.push(`${key}: ${e.message}`) });
    q.add("bad");
    await until(() => terminal.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toBe(1);
    expect(terminal).toEqual(["bad: the API server refuses this object as it is"]);
    expect(q.failuresOf("bad")).toBe(0);
    q.add("bad");
    await until(() => runs === 2);
    expect(runs).toBe(2);
    q.shutDown();
    await worker;
  });

  it("passes the signal it was given to every reconcile", async () => {
    const q = new WorkQueue();
    const stop = new AbortController();
    const signals: AbortSignal[] = [];
    const worker = runWorker(q, async (_key, signal) => void signals.push(signal), { signal: stop.signal, onError: () => undefined });
    q.add("a");
    await until(() => signals.length > 0);
    stop.abort();
    expect(signals[0]!.aborted).toBe(true);
    q.shutDown();
    await worker;
  });
});
