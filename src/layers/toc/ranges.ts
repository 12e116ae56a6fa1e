// Byte ranges of a blob fetched in few requests: ranges closer than a gap are merged into one request (the
// bytes between are cheaper than a round trip), up to a size per request, and a few requests run at once.
import type { RangeReader } from "./types.js";

export interface Range {
  start: number;
  end: number;
}

export interface RangeTuning {
  /** Ranges at most this far apart are fetched in one request. */
  maxGap: number;
  /** The most bytes one merged request may span (a single range bigger than this is still one request). */
  maxRequest: number;
  /** Requests in flight at once. */
  concurrency: number;
}

export const DEFAULT_RANGE_TUNING: RangeTuning = { maxGap: 64 * 1024, maxRequest: 16 * 1024 * 1024, concurrency: 4 };

/** Merged requests for `ranges`, each with the input ranges it serves (by index). */
export function coalesce(ranges: readonly Range[], t: Pick<RangeTuning, "maxGap" | "maxRequest">): Array<Range & { parts: number[] }> {
  const order = ranges.map((_, i) => i).sort((a, b) => ranges[a]!.start - ranges[b]!.start || ranges[a]!.end - ranges[b]!.end);
  const out: Array<Range & { parts: number[] }> = [];
  for (const i of order) {
    const r = ranges[i]!;
    const last = out[out.length - 1];
    if (last && r.start - last.end <= t.maxGap && Math.max(last.end, r.end) - last.start <= t.maxRequest) {
      last.end = Math.max(last.end, r.end);
      last.parts.push(i);
    } else {
      out.push({ start: r.start, end: r.end, parts: [i] });
    }
  }
  return out;
}

/** The bytes of every range, in the order given; `fetched` counts every byte downloaded, gaps included. */
export async function fetchRanges(reader: RangeReader, ranges: readonly Range[], t: RangeTuning, signal?: AbortSignal): Promise<{ parts: Buffer[]; fetched: number; requests: number }> {
  const requests = coalesce(ranges, t);
  const parts: Buffer[] = new Array<Buffer>(ranges.length);
  let fetched = 0;
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < requests.length && !failed) {
      const req = requests[next++]!;
      const buf = await reader.read(req.start, req.end, signal).catch((e: unknown) => {
        // The other workers take no new request; the first error is the answer.
        failed = true;
        throw e;
      });
      fetched += buf.length;
      for (const i of req.parts) {
        const r = ranges[i]!;
        parts[i] = buf.subarray(r.start - req.start, r.end - req.start);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, t.concurrency), requests.length) }, worker));
  return { parts, fetched, requests: requests.length };
}
