// Re-matching without re-indexing: after advisory operations land (serve's own updates, or `portcullis db
// import|update|pull` run against the same database by anyone), match again only the stored manifests whose
// package keys the changed records touch (the reverse index of manifest_advisory_key), plus the manifests
// never matched, plus, when a source lands its first operation, those whose coverage was incomplete. No
// layer is read: the stored IndexReports are enough. A cursor in the store says which operations are done,
// so a leader that restarts (or a new one) carries on where the last stopped; an interrupted round is redone.
import type { IndexReport } from "../model/index-report.js";
import { reportLookupKeys } from "../matcher/index.js";
import type { Candidate, EnrichmentRow, Operation, PackageKey } from "../store/advisory-types.js";
import type { Store } from "../store/types.js";
import { matchManifest } from "./findings.js";
import type { StoreMatchOptions } from "./match.js";
import type { Finding, StoredFindings } from "../model/findings.js";

/** Operations taken per round; more wait for the next (a cursor never skips). */
const OPERATIONS_PER_ROUND = 200;
/** Reports matched from one prefetch (bounds the candidates held in memory). */
const CHUNK = 250;

export interface ManifestChange {
  manifest: string;
  findings: StoredFindings;
  previous?: StoredFindings;
}

export interface RematchResult {
  /** Advisory operations applied. */
  operations: number;
  /** Manifests matched again. */
  manifests: number;
  /** Manifests whose summary or findings changed (each one matched). */
  changed: ManifestChange[];
  failed: Array<{ manifest: string; error: string }>;
  durationMs: number;
}

export interface RematchOptions {
  now?: Date;
  /** Called with each manifest matched again (for a caller that applies changes as they come). */
  onChange?(c: ManifestChange): Promise<void> | void;
}

/** Applies the operations recorded since the store's cursor. Idempotent; run by one process (the leader). */
export async function rematchPending(store: Store, opts: RematchOptions = {}): Promise<RematchResult> {
  const t0 = performance.now();
  const cursor = await store.findings.cursor();
  const ops = (await store.advisories.operations({ after: cursor, limit: OPERATIONS_PER_ROUND })).reverse();
  const result: RematchResult = { operations: ops.length, manifests: 0, changed: [], failed: [], durationMs: 0 };
  if (!ops.length) {
    result.durationMs = performance.now() - t0;
    return result;
  }
  const manifests = new Set<string>(await store.findings.unmatched());
  const keys = new Map<string, PackageKey>();
  let firstOfSource = false;
  for (const op of ops) {
    const { packages } = await store.advisories.changes(op.ref);
    for (const k of packages) keys.set(`${k.ecosystem}\0${k.name}`, k);
    if (op.kind !== "enrichment" && (await isFirstOfSource(store, op))) firstOfSource = true;
  }
  for (const m of await store.findings.manifestsForKeys([...keys.values()])) manifests.add(m);
  if (firstOfSource) for (const m of await store.findings.notCovered()) manifests.add(m);

  const sources = await store.advisories.status();
  const ecosystemsWithData = await store.advisories.ecosystems();
  const list = [...manifests].sort();
  // In chunks: the reports of a chunk are read, their keys looked up in one query and their CVEs enriched
  // once, then each is matched from memory (images share most packages, so this is most of the work saved).
  for (let i = 0; i < list.length; i += CHUNK) {
    const chunk: Array<{ manifest: string; report: IndexReport }> = [];
    for (const manifest of list.slice(i, i + CHUNK)) {
      try {
        const stored = await store.indexReport(manifest);
        if (stored?.report.state === "IndexFinished") chunk.push({ manifest, report: stored.report });
      } catch (e) {
        result.failed.push({ manifest, error: (e as Error).message });
      }
    }
    const prefetched = await prefetch(store, chunk.map((c) => c.report), ecosystemsWithData);
    for (const { manifest, report } of chunk) {
      try {
        const r = await matchManifest(store, manifest, { sources, report, rematch: true, prefetched, ...(opts.now ? { now: opts.now } : {}) });
        if (r.state !== "matched") continue;
        result.manifests++;
        if (r.unchanged) continue;
        const change: ManifestChange = { manifest, findings: r.findings, ...(r.previous ? { previous: r.previous } : {}) };
        result.changed.push(change);
        await opts.onChange?.(change);
      } catch (e) {
        result.failed.push({ manifest, error: (e as Error).message });
      }
    }
  }
  // A manifest that failed is tried again by the next round only if new operations touch it: say so in
  // the result (the caller logs it) rather than holding every later operation back behind one bad report.
  await store.findings.setCursor(ops[ops.length - 1]!.id);
  result.durationMs = performance.now() - t0;
  return result;
}

async function isFirstOfSource(store: Store, op: Operation): Promise<boolean> {
  const before = await store.advisories.operations({ source: op.source, limit: 2 });
  return !before.some((o) => o.id < op.id);
}

/** Keys per candidates query when prefetching. */
const KEYS_PER_QUERY = 2000;

/** The candidates of every key of these reports (one query per 2,000 keys) and a memoised enrichment. */
async function prefetch(store: Store, reports: readonly IndexReport[], ecosystemsWithData: ReadonlySet<string>): Promise<NonNullable<StoreMatchOptions["prefetched"]>> {
  const keys = new Map<string, PackageKey>();
  for (const r of reports) for (const k of reportLookupKeys(r, { ecosystemsWithData })) keys.set(`${k.ecosystem}\0${k.name}`, k);
  const byKey = new Map<string, Candidate[]>();
  const all = [...keys.values()];
  for (let i = 0; i < all.length; i += KEYS_PER_QUERY) {
    for (const c of await store.advisories.candidates(all.slice(i, i + KEYS_PER_QUERY))) {
      const k = `${c.affected.ecosystem}\0${c.affected.name}`;
      const list = byKey.get(k);
      if (list) list.push(c);
      else byKey.set(k, [c]);
    }
  }
  const enriched = new Map<string, EnrichmentRow | null>();
  return {
    ecosystemsWithData,
    candidates: async (ks) => ks.flatMap((k) => byKey.get(`${k.ecosystem}\0${k.name}`) ?? []),
    enrichment: async (cves) => {
      const missing = cves.filter((c) => !enriched.has(c));
      if (missing.length) {
        const got = await store.advisories.enrichment(missing);
        for (const c of missing) enriched.set(c, got.get(c) ?? null);
      }
      const out = new Map<string, EnrichmentRow>();
      for (const c of cves) {
        const row = enriched.get(c);
        if (row) out.set(c, row);
      }
      return out;
    },
  };
}

const SERIOUS = new Set(["Critical", "High"]);

/**
 * The Critical and High vulnerabilities one finding list has and the other has not, by id: every finding
 * (one per affected package) of each such id, in list order.
 */
export function seriousDiff(previous: readonly Finding[] | undefined, current: readonly Finding[]): { gained: Finding[]; lost: Finding[] } {
  const ids = (list: readonly Finding[]) => new Set(list.filter((f) => SERIOUS.has(f.severity)).map((f) => f.id));
  const before = ids(previous ?? []);
  const after = ids(current);
  return {
    gained: current.filter((f) => after.has(f.id) && !before.has(f.id)),
    lost: (previous ?? []).filter((f) => before.has(f.id) && !after.has(f.id)),
  };
}

export interface RematcherOptions extends Omit<RematchOptions, "now"> {
  store: Store;
  /** How often the store is polled for operations other processes recorded (default 30 s). */
  intervalMs?: number;
  log?: (level: "info" | "warn", msg: string, fields?: Record<string, unknown>) => void;
  onRound?(r: RematchResult): void;
}

/**
 * Runs rematchPending on a timer and whenever nudged (after serve's own advisory round), one round at a time,
 * until the signal aborts. Run it on the leader only.
 */
export class Rematcher {
  private wake?: () => void;
  private pending = false;

  constructor(private readonly options: RematcherOptions) {}

  /** Asks for a round as soon as the current one (if any) ends. */
  nudge(): void {
    this.pending = true;
    this.wake?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    const interval = this.options.intervalMs ?? 30_000;
    while (!signal.aborted) {
      this.pending = false;
      let more = false;
      try {
        const r = await rematchPending(this.options.store, { onChange: this.options.onChange });
        if (r.operations) {
          this.options.log?.(r.failed.length ? "warn" : "info", `re-matched ${r.manifests} images after ${r.operations} advisory operations: ${r.changed.length} changed${r.failed.length ? `, ${r.failed.length} failed (${r.failed[0]!.manifest}: ${r.failed[0]!.error})` : ""}`,
            { operations: r.operations, manifests: r.manifests, changed: r.changed.length, failed: r.failed.length, durationMs: Math.round(r.durationMs) });
        }
        this.options.onRound?.(r);
        more = r.operations >= OPERATIONS_PER_ROUND;
      } catch (e) {
        this.options.log?.("warn", `re-matching failed: ${(e as Error).message}; retrying in ${Math.round(interval / 1000)} s`);
      }
      if (this.pending || more) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, interval);
        function done() {
          clearTimeout(t);
          signal.removeEventListener("abort", done);
          resolve();
        }
        this.wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
      this.wake = undefined;
    }
  }
}
