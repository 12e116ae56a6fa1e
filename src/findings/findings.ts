// A match → what the cluster keeps of it: the status summary and the compact finding list (types.ts), and the
// one sequence that matches a stored manifest and stores its findings (the controller after indexing, and
// re-matching after an update, both call matchManifest).
import { SEVERITIES, type Severity } from "../model/advisory.js";
import { summarize } from "../matcher/index.js";
import type { Coverage, Match } from "../model/match.js";
import type { SourceStatus } from "../store/advisory-types.js";
import type { IndexReport } from "../model/index-report.js";
import type { Store } from "../store/types.js";
import { matchWithStore, type StoreMatchOptions } from "./match.js";
import type { Finding, FindingsSummary, StoredFindings, SummaryCoverage } from "../model/findings.js";

const RANK = new Map<Severity, number>(SEVERITIES.map((s, i) => [s, i]));
const STATE_WORDS: Record<string, string> = { supported: "supported", no_data: "no data", unsupported: "unsupported", end_of_life: "end of life" };
/** The coverage line is for `kubectl describe`; the report API has the whole story. */
const COVERAGE_MESSAGE_MAX = 200;

/** The image's coverage in one word (types.ts, SummaryCoverage). */
export function summaryCoverage(c: Coverage): SummaryCoverage {
  const d = c.distribution;
  if (d && d.state !== "supported") return d.state;
  const others = c.ecosystems.filter((e) => e.ecosystem !== d?.ecosystem);
  if (others.some((e) => e.state !== "supported")) return d || others.some((e) => e.state === "supported") ? "partial" : others[0]!.state;
  if (!d && !others.length) return "unsupported";
  return "supported";
}

function coverageMessage(c: Coverage): string {
  const d = c.distribution;
  const parts = [d ? `${d.ecosystem ?? (d.prettyName || d.did || "distribution")} ${STATE_WORDS[d.state] ?? d.state}` : "no distribution"];
  for (const e of c.ecosystems) if (e.ecosystem !== d?.ecosystem) parts.push(`${e.ecosystem} ${STATE_WORDS[e.state] ?? e.state}`);
  let s = parts.join(", ");
  if (c.unmatchable) s += `; ${c.unmatchable} package${c.unmatchable === 1 ? "" : "s"} unmatchable`;
  return s.length > COVERAGE_MESSAGE_MAX ? `${s.slice(0, COVERAGE_MESSAGE_MAX - 3)}...` : s;
}

/** When the vulnerability data was last known current: the stalest source's newest operation or unchanged check. */
export function databaseUpdatedAt(sources: readonly SourceStatus[]): string | undefined {
  let oldest: string | undefined;
  for (const s of sources) {
    if (s.kind === "enrichment") continue;
    const t = s.latest.checkedAt && s.latest.checkedAt > s.latest.createdAt ? s.latest.checkedAt : s.latest.createdAt;
    if (oldest === undefined || t < oldest) oldest = t;
  }
  return oldest;
}

/** Matches (enriched) → the stored form. Flagged (under investigation) matches are neither counted nor kept. */
export function toStoredFindings(matches: readonly Match[], coverage: Coverage, o: { matchedAt: Date; databaseUpdatedAt?: string }): StoredFindings {
  const kept = matches.filter((m) => !m.flagged);
  const summary: FindingsSummary = {
    ...summarize(kept),
    coverage: summaryCoverage(coverage),
    coverageMessage: coverageMessage(coverage),
    matchedAt: o.matchedAt.toISOString(),
    ...(o.databaseUpdatedAt ? { databaseUpdatedAt: o.databaseUpdatedAt } : {}),
  };
  const findings = kept.map((m): Finding => ({
    id: m.id,
    ...(m.aliases.length || m.advisoryIds.length ? { aliases: [...new Set([...m.aliases, ...m.advisoryIds])].sort() } : {}),
    severity: m.severity,
    package: m.package.name,
    version: m.package.version,
    fixState: m.fixState,
    ...(m.fixedIn !== undefined ? { fixedIn: m.fixedIn } : {}),
    ...(m.kev ? { kev: true as const } : {}),
  }));
  findings.sort((a, b) => RANK.get(a.severity)! - RANK.get(b.severity)! || cmp(a.id, b.id) || cmp(a.package, b.package) || cmp(a.version, b.version));
  return { summary, findings };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export type ManifestMatch =
  | { state: "matched"; findings: StoredFindings; previous?: StoredFindings; unchanged?: true }
  /** The store has no advisory data at all: nothing was written. */
  | { state: "no_data" }
  /** The manifest has no finished IndexReport. */
  | { state: "not_indexed" };

/**
 * Matches a finished manifest's stored IndexReport against the store's advisory data and stores the
 * findings (replacing the previous ones, which are returned for diffs). No layer is read.
 */
export async function matchManifest(store: Store, manifest: string, opts: MatchManifestOptions = {}): Promise<ManifestMatch> {
  const { sources: given, report: known, rematch, ...matchOpts } = opts;
  const report = known ?? (await store.indexReport(manifest))?.report;
  if (!report || report.state !== "IndexFinished") return { state: "not_indexed" };
  const found = await matchWithStore(store.advisories, report, matchOpts);
  if (!found) return { state: "no_data" };
  const sources = given ?? (await store.advisories.status());
  const updated = databaseUpdatedAt(sources);
  const findings = toStoredFindings(found.matches, found.result.coverage, { matchedAt: opts.now ?? new Date(), ...(updated ? { databaseUpdatedAt: updated } : {}) });
  const previous = await store.findings.get(manifest);
  // Re-matching a stored report: its keys are those it was stored with, and an unchanged answer is not rewritten.
  if (rematch && previous) {
    if (findingsDiffer(previous, findings)) await store.findings.put(manifest, findings);
    else return { state: "matched", findings: previous, previous, unchanged: true };
  } else await store.findings.put(manifest, findings, found.keys);
  return { state: "matched", findings, ...(previous ? { previous } : {}) };
}

export interface MatchManifestOptions extends StoreMatchOptions {
  /** The advisory sources' status, when the caller has it (re-matching asks once for many manifests). */
  sources?: readonly SourceStatus[];
  /** The manifest's stored report, when the caller has read it. */
  report?: IndexReport;
  /** A re-match of a stored report: keep its package keys, and write nothing when the answer is the same. */
  rematch?: boolean;
}

/** Whether what a user or policy sees changed (counts, coverage, or the finding list); the times aside. */
export function findingsDiffer(a: StoredFindings, b: StoredFindings): boolean {
  const { matchedAt: _a, databaseUpdatedAt: _c, ...sa } = a.summary;
  const { matchedAt: _b, databaseUpdatedAt: _d, ...sb } = b.summary;
  return JSON.stringify(sa) !== JSON.stringify(sb) || JSON.stringify(a.findings) !== JSON.stringify(b.findings);
}
