// The advisory updater of `portcullis serve`: runs on the leader only (the controller role), once soon
// after it starts leading when the data is older than the interval, then every interval with ±10%
// jitter so replicas of many clusters do not hit the upstreams in step. Each source is updated under
// its own advisory lock in the store, so an overlapping `portcullis db update` is safe too.
import { setTimeout as sleep } from "node:timers/promises";
import type { AdvisoryStore } from "../store/advisory-types.js";

export interface SchedulerResult {
  source: string;
  status: "updated" | "unchanged" | "failed" | "imported";
  error?: string;
}

export interface AdvisorySchedulerOptions {
  store: AdvisoryStore;
  intervalMs: number;
  /** One round: downloads (or pulls a bundle) and records; never throws for one source. */
  runOnce: (signal: AbortSignal) => Promise<SchedulerResult[]>;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  onRound?: (results: SchedulerResult[]) => void;
  random?: () => number;
  /** The least wait before the first round after the start (default 5 s). */
  firstDelayMs?: number;
}

export class AdvisoryScheduler {
  constructor(private readonly opts: AdvisorySchedulerOptions) {}

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const o = this.opts;
    const rand = o.random ?? Math.random;
    const newest = (await o.store.status().catch(() => [])).reduce((t, s) => Math.max(t, Date.parse(s.latest.createdAt)), 0);
    let wait = Math.max(0, newest + o.intervalMs - Date.now());
    // A fresh leader waits a little even when the data is stale, so a flapping Lease does not hammer upstreams.
    wait = Math.max(wait, o.firstDelayMs ?? 5_000);
    while (!signal.aborted) {
      try {
        await sleep(wait, undefined, { signal });
      } catch {
        return;
      }
      try {
        const results = await o.runOnce(signal);
        o.onRound?.(results);
        const failed = results.filter((r) => r.status === "failed");
        o.log?.(failed.length ? "warn" : "info", "advisory update", {
          updated: results.filter((r) => r.status === "updated" || r.status === "imported").map((r) => r.source),
          unchanged: results.filter((r) => r.status === "unchanged").length,
          failed: failed.map((r) => `${r.source}: ${r.error}`),
        });
      } catch (e) {
        if (signal.aborted) return;
        o.log?.("error", `advisory update: ${(e as Error).message}`);
      }
      wait = Math.round(o.intervalMs * (0.9 + 0.2 * rand()));
    }
  }
}
