// Which byte ranges go in one request: gaps bridged smallest first within the budget, never over maxGap or
// maxRequest; every range served by exactly one request that covers it.
import { describe, expect, it } from "vitest";
import { coalesce, fetchRanges, type Range } from "./ranges.js";

const covers = (reqs: ReturnType<typeof coalesce>, ranges: Range[]) => {
  const served = new Map<number, number>();
  for (const q of reqs) for (const i of q.parts) {
    served.set(i, (served.get(i) ?? 0) + 1);
    expect(q.start <= ranges[i]!.start && ranges[i]!.end <= q.end).toBe(true);
  }
  expect([...served.keys()].sort((a, b) => a - b)).toEqual(ranges.map((_, i) => i));
  expect([...served.values()].every((n) => n === 1)).toBe(true);
};

describe("coalesce", () => {
  // Wanted: 4 ranges of 100 bytes (400), gaps of 10, 1000, 50 and touching.
  const ranges: Range[] = [{ start: 1410, end: 1510 }, { start: 0, end: 100 }, { start: 110, end: 210 }, { start: 1210, end: 1310 }, { start: 1510, end: 1610 }];

  it("without a budget, bridges every gap up to maxGap", () => {
    const r = coalesce(ranges, { maxGap: 100, maxRequest: 1 << 20 });
    covers(r, ranges);
    expect(r.map((q) => [q.start, q.end])).toEqual([[0, 210], [1210, 1610]]);
  });

  it("with a budget, bridges the smallest gaps first and stops where the next would pass it", () => {
    // 500 bytes wanted; 0.1 of them is 50: the 10-byte gap fits, the 100-byte one (1310 to 1410) does not.
    const small = coalesce(ranges, { maxGap: 10_000, maxRequest: 1 << 20, gapBudget: 0.1 });
    covers(small, ranges);
    expect(small.map((q) => [q.start, q.end])).toEqual([[0, 210], [1210, 1310], [1410, 1610]]);
    // 0.25 is 125: the 10 and the 100 fit (110), the 1000 does not.
    const more = coalesce(ranges, { maxGap: 10_000, maxRequest: 1 << 20, gapBudget: 0.25 });
    expect(more.map((q) => [q.start, q.end])).toEqual([[0, 210], [1210, 1610]]);
    const all = coalesce(ranges, { maxGap: 10_000, maxRequest: 1 << 20, gapBudget: 10 });
    expect(all.map((q) => [q.start, q.end])).toEqual([[0, 1610]]);
    // maxGap still holds with budget to spare.
    expect(coalesce(ranges, { maxGap: 50, maxRequest: 1 << 20, gapBudget: 10 }).map((q) => [q.start, q.end])).toEqual([[0, 210], [1210, 1310], [1410, 1610]]);
  });

  it("never makes a request over maxRequest across a gap", () => {
    const r = coalesce(ranges, { maxGap: 10_000, maxRequest: 300, gapBudget: 10 });
    covers(r, ranges);
    expect(r.every((q) => q.end - q.start <= 300)).toBe(true);
  });
});

describe("fetchRanges", () => {
  const blob = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 251));
  const ranges: Range[] = [{ start: 100, end: 200 }, { start: 3000, end: 3100 }, { start: 210, end: 300 }];
  const reader = (log: Array<[number, number]>) => ({ read: async (s: number, e: number) => (log.push([s, e]), blob.subarray(s, e)) });

  it("gives each range its bytes, in order or to onPart as each request arrives", async () => {
    const log: Array<[number, number]> = [];
    const got = await fetchRanges(reader(log), ranges, { maxGap: 64, gapBudget: Infinity, maxRequest: 1 << 20, concurrency: 2 });
    expect(got.parts.map((p) => [...p])).toEqual(ranges.map((r) => [...blob.subarray(r.start, r.end)]));
    expect(got.requests).toBe(2);
    expect(got.fetched).toBe(200 + 100);
    const handed = new Map<number, Buffer>();
    await fetchRanges(reader([]), ranges, { maxGap: 64, gapBudget: Infinity, maxRequest: 1 << 20, concurrency: 2 }, undefined, async (i, part) => void handed.set(i, Buffer.from(part)));
    expect([...handed.keys()].sort()).toEqual([0, 1, 2]);
    for (const [i, p] of handed) expect([...p]).toEqual([...blob.subarray(ranges[i]!.start, ranges[i]!.end)]);
  });

  it("ends at the first error of onPart: no request is started after it", async () => {
    const log: Array<[number, number]> = [];
    const many: Range[] = Array.from({ length: 20 }, (_, i) => ({ start: i * 200, end: i * 200 + 10 }));
    await expect(fetchRanges(reader(log), many, { maxGap: 0, gapBudget: Infinity, maxRequest: 1 << 20, concurrency: 1 }, undefined, async (i) => {
      if (i === 3) throw new Error("bad piece");
    })).rejects.toThrow("bad piece");
    expect(log.length).toBe(4);
  });

  it("aborts the requests under way at the first error, and follows the caller's signal", async () => {
    const seen: AbortSignal[] = [];
    const many: Range[] = Array.from({ length: 8 }, (_, i) => ({ start: i * 200, end: i * 200 + 10 }));
    const slow = { read: (s: number, e: number, sig?: AbortSignal) => {
      seen.push(sig!);
      if (s === 0) return Promise.reject(new Error("registry said no"));
      return new Promise<Buffer>((res, rej) => {
        const t = setTimeout(() => res(blob.subarray(s, e)), 5000);
        sig!.addEventListener("abort", () => (clearTimeout(t), rej(sig!.reason as Error)), { once: true });
      });
    } };
    await expect(fetchRanges(slow, many, { maxGap: 0, gapBudget: Infinity, maxRequest: 1 << 20, concurrency: 3 })).rejects.toThrow("registry said no");
    expect(seen.length).toBe(3);
    expect(seen.every((x) => x.aborted)).toBe(true);
    const caller = new AbortController();
    const run = fetchRanges(slow, many.slice(1), { maxGap: 0, gapBudget: Infinity, maxRequest: 1 << 20, concurrency: 2 }, caller.signal);
    caller.abort(new Error("scan deadline"));
    await expect(run).rejects.toThrow("scan deadline");
  });
});
