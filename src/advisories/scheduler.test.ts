import { expect, it } from "vitest";
import type { AdvisoryStore, SourceStatus } from "../store/advisory-types.js";
import { AdvisoryScheduler, type SchedulerResult } from "./scheduler.js";

const storeWith = (createdAt?: string) => ({ status: async () => (createdAt ? [{ latest: { createdAt } } as SourceStatus] : []) }) as unknown as AdvisoryStore;

it("runs a round soon after the start when the data is stale, then every interval, and stops on abort", async () => {
  const rounds: number[] = [];
  const t0 = Date.now();
  const ac = new AbortController();
  const s = new AdvisoryScheduler({
    store: storeWith(), intervalMs: 60, firstDelayMs: 10, random: () => 0.5,
    runOnce: async (): Promise<SchedulerResult[]> => {
      rounds.push(Date.now() - t0);
      if (rounds.length === 3) ac.abort();
      return [{ source: "debian", status: "unchanged" }];
    },
  });
  await s.run(ac.signal);
  expect(rounds).toHaveLength(3);
  expect(rounds[0]).toBeLessThan(50);
  expect(rounds[1]! - rounds[0]!).toBeGreaterThanOrEqual(55);
});

it("waits out the interval when the store's data is fresh, and a failing round does not stop it", async () => {
  const ac = new AbortController();
  let calls = 0;
  const logged: string[] = [];
  const fresh = new AdvisoryScheduler({
    store: storeWith(new Date().toISOString()), intervalMs: 10_000, firstDelayMs: 10,
    runOnce: async () => (calls++, []),
  });
  setTimeout(() => ac.abort(), 100);
  await fresh.run(ac.signal);
  expect(calls).toBe(0);

  const ac2 = new AbortController();
  const failing = new AdvisoryScheduler({
    store: storeWith(), intervalMs: 20, firstDelayMs: 1, random: () => 0,
    log: (level, msg) => logged.push(`${level} ${msg}`),
    runOnce: async () => {
      calls++;
      if (calls === 1) throw new Error("store down");
      if (calls === 2) return [{ source: "alpine", status: "failed", error: "GET … answered 500" }];
      ac2.abort();
      return [];
    },
  });
  await failing.run(ac2.signal);
  expect(calls).toBe(3);
  expect(logged.slice(0, 2)).toEqual(["error advisory update: store down", "warn advisory update"]);
});
