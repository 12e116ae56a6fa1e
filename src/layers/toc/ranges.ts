// Byte ranges of a blob fetched in few requests: ranges are merged across the gaps between them (the bytes
// between are cheaper than a round trip), smallest gaps first, until the gaps fetched would add more than a
// share of the bytes wanted; never across a gap wider than maxGap, never into a request over maxRequest; a few
// requests run at once. A registry serving ranges from its own disk reads ahead for every request (the
// distribution registry: 4 MiB), so a request costs far more than the bytes a small gap adds.
import { setMaxListeners } from "node:events";
import type { RangeReader } from "./types.js";

export interface Range {
  start: number;
  end: number;
}

export interface RangeTuning {
  /** Ranges further apart than this are never fetched in one request. */
  maxGap: number;
  /**
   * The gaps fetched (bytes no file needs) add at most this fraction of the bytes the ranges want; the
   * smallest gaps are merged first. Infinity: every gap up to maxGap.
   */
  gapBudget: number;
  /** The most bytes one merged request may span (a single range bigger than this is still one request). */
  maxRequest: number;
  /** Requests in flight at once. */
  concurrency: number;
}

/**
 * Chosen by `npm run bench:toc -- --sweep` on the large layer (docs/partial-reads.md): a gap budget of 15% of
 * the wanted bytes keeps a partial read under 5% of that layer's blob with about 200 requests; gaps of up to
 * 64 KiB bridged whatever they cost took 8.3% in 196 requests, no bridging 2.9% in 1,194.
 */
export const DEFAULT_RANGE_TUNING: RangeTuning = { maxGap: 1024 * 1024, gapBudget: 0.15, maxRequest: 16 * 1024 * 1024, concurrency: 4 };

/** Merged requests for `ranges`, each with the input ranges it serves (by index). */
export function coalesce(ranges: readonly Range[], t: Pick<RangeTuning, "maxGap" | "maxRequest"> & Partial<Pick<RangeTuning, "gapBudget">>): Array<Range & { parts: number[] }> {
  const order = ranges.map((_, i) => i).sort((a, b) => ranges[a]!.start - ranges[b]!.start || ranges[a]!.end - ranges[b]!.end);
  // Overlapping and touching ranges first: one request, no gap.
  const runs: Array<Range & { parts: number[] }> = [];
  for (const i of order) {
    const r = ranges[i]!;
    const last = runs[runs.length - 1];
    if (last && r.start <= last.end && Math.max(last.end, r.end) - last.start <= t.maxRequest) {
      last.end = Math.max(last.end, r.end);
      last.parts.push(i);
    } else {
      runs.push({ start: r.start, end: r.end, parts: [i] });
    }
  }
  // The gaps worth a request's cost: up to maxGap, smallest first while the budget lasts.
  const budget = (t.gapBudget ?? Infinity) * runs.reduce((n, r) => n + r.end - r.start, 0);
  const gaps = runs.slice(1).map((r, k) => ({ k, size: r.start - runs[k]!.end })).filter((g) => g.size <= t.maxGap);
  if (Number.isFinite(budget)) gaps.sort((a, b) => a.size - b.size || a.k - b.k);
  const bridged = new Uint8Array(runs.length);
  let spent = 0;
  for (const g of gaps) {
    if (spent + g.size > budget) break;
    spent += g.size;
    bridged[g.k] = 1;
  }
  const out: Array<Range & { parts: number[] }> = [];
  for (const [k, r] of runs.entries()) {
    const last = out[out.length - 1];
    if (last && bridged[k - 1] && r.end - last.start <= t.maxRequest) {
      last.end = r.end;
      last.parts.push(...r.parts);
    } else {
      out.push(r);
    }
  }
  return out;
}

/**
 * The bytes of every range, in the order given; `fetched` counts every byte downloaded, gaps included. With
 * `onPart`, each range is handed to it as its request arrives instead (and not kept): the request's worker
 * takes its next request once onPart is done, the others go on meanwhile; the first error ends all.
 */
export async function fetchRanges(reader: RangeReader, ranges: readonly Range[], t: RangeTuning, signal?: AbortSignal, onPart?: (i: number, part: Buffer) => Promise<void>): Promise<{ parts: Buffer[]; fetched: number; requests: number }> {
  const requests = coalesce(ranges, t);
  const parts: Buffer[] = new Array<Buffer>(ranges.length);
  let fetched = 0;
  let next = 0;
  let failed = false;
  // The requests' own signal: ended with the caller's, and at the first error (the requests under way are
  // not waited for); one listener per request in flight, however many the caller's signal has already.
  const own = new AbortController();
  setMaxListeners(Math.max(10, t.concurrency + 2), own.signal);
  const forward = () => own.abort(signal!.reason);
  if (signal?.aborted) forward();
  else signal?.addEventListener("abort", forward, { once: true });
  const fail = (e: unknown): never => {
    // The other workers take no new request; the first error is the answer.
    failed = true;
    own.abort(e);
    throw e;
  };
  const worker = async () => {
    while (next < requests.length && !failed) {
      const req = requests[next++]!;
      const buf = await reader.read(req.start, req.end, own.signal).catch(fail);
      fetched += buf.length;
      for (const i of req.parts) {
        const r = ranges[i]!;
        const part = buf.subarray(r.start - req.start, r.end - req.start);
        if (!onPart) parts[i] = part;
        else if (!failed) await onPart(i, part).catch(fail);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(Math.max(1, t.concurrency), requests.length) }, worker));
  } finally {
    signal?.removeEventListener("abort", forward);
  }
  return { parts, fetched, requests: requests.length };
}
