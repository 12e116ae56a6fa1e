// IndexReport + advisory candidates → matches, coverage, and what could not be matched. Pure: the store is
// asked by the caller (matchReportWith does it with any lookup function), and nothing here does I/O.
//
// Per package (keys.ts says which keys and which version), every candidate row of its keys whose name kind
// (source/binary) and module fit is evaluated with affects(). Rows of the same vulnerability (a GHSA and a
// PYSEC aliasing one CVE, a GO record and its GHSA, Debian's tracker and an OSV DEBIAN- record) on the same
// package become one Match: records are merged when their id ∪ aliases intersect.
import { type Cvss, type FixState, SEVERITIES, type Severity } from "../model/advisory.js";
import { urgencySeverity } from "../advisories/sources/debian/index.js";
import { impactSeverity } from "../advisories/sources/redhat/index.js";
import type { IndexReport } from "../model/index-report.js";
import type { Candidate, PackageKey } from "../store/advisory-types.js";
import { UnmatchableVersionError } from "../versions/index.js";
import { affects } from "./affects.js";
import { distributionCoverage, type ReportDistribution } from "./distribution.js";
import { compareIds, lookupKeys, packageKeys, type MatchTarget, type PackageKeys } from "./keys.js";
import { ownershipFromReport } from "./ownership.js";
import { defaultEndOfLife, type EndOfLifeLookup } from "./lifecycle.js";
import type { Coverage, CoverageState, EcosystemCoverage, Governed, Match, MatchedBy, MatchResult, Ownership, SkippedRow, Unmatchable } from "../model/match.js";

export { affects, lowestFixAbove, type AffectsResult } from "./affects.js";

export interface MatchOptions {
  /**
   * Which ecosystems the store holds advisory rows for (`Debian:12`, `Alpine:v3.18`, `npm`, `Node.js`): a
   * set or a predicate. An ecosystem without data is `no_data` in the coverage, never "clean".
   */
  ecosystemsWithData: ReadonlySet<string> | ((ecosystem: string) => boolean);
  /** The image has Ubuntu Pro (ESM) sources: `Ubuntu:Pro:<release>:LTS` rows apply too. */
  ubuntuPro?: boolean;
  /**
   * Files owned by OS packages (ownership.ts). Default: what the indexer recorded in the report
   * (ownershipFromReport); a report without it has no OS-owned language package.
   */
  ownership?: Ownership;
  /** For end-of-life decisions; default now. */
  now?: Date;
  endOfLife?: EndOfLifeLookup;
}

/** Fetches the candidate rows of some package keys (AdvisoryStore.candidates). */
export type CandidateLookup = (keys: readonly PackageKey[]) => Promise<readonly Candidate[]>;

/** Looks the report's keys up with `lookup` (e.g. `(k) => store.candidates(k)`), then matches. */
export async function matchReportWith(report: IndexReport, lookup: CandidateLookup, opts: MatchOptions): Promise<MatchResult> {
  const { keys } = prepare(report, opts);
  const wanted = lookupKeys(keys);
  const candidates = wanted.length ? await lookup(wanted) : [];
  return matchReport(report, candidates, opts);
}

/** The keys matchReport will look up for this report, for a caller that fetches candidates itself. */
export function reportLookupKeys(report: IndexReport, opts: MatchOptions): PackageKey[] {
  return lookupKeys(prepare(report, opts).keys);
}

function hasDataFn(opts: MatchOptions): (e: string) => boolean {
  const d = opts.ecosystemsWithData;
  return typeof d === "function" ? d : (e) => d.has(e);
}

/** The distribution OS packages refer to (the indexer records at most one). */
function reportDistribution(report: IndexReport): ReportDistribution | undefined {
  const all = report.distributions ?? {};
  for (const envs of Object.values(report.environments ?? {})) {
    const id = envs[0]?.distribution_id;
    if (id && all[id]) return all[id];
  }
  return Object.values(all)[0];
}

function prepare(report: IndexReport, opts: MatchOptions) {
  const dist = reportDistribution(report);
  const { coverage, key } = distributionCoverage(dist, { hasData: hasDataFn(opts), ubuntuPro: opts.ubuntuPro, now: opts.now, endOfLife: opts.endOfLife });
  const keys = packageKeys(report, { distribution: key, ownership: opts.ownership ?? ownershipFromReport(report) });
  return { dist, distCoverage: coverage, distKey: key, keys };
}

/** One affected row hit on one package. */
interface Hit {
  candidate: Candidate;
  target: MatchTarget;
  via: MatchedBy["via"];
  fixedIn?: string;
  ids: string[];
}

const CVE = /^CVE-(\d{4})-(\d{4,})$/;
const SEVERITY_RANK: ReadonlyMap<Severity, number> = new Map(SEVERITIES.map((s, i) => [s, SEVERITIES.length - i]));
const UBUNTU_PRIORITY: Readonly<Record<string, Severity>> = { negligible: "Negligible", low: "Low", medium: "Medium", high: "High", critical: "Critical" };

function compareCves(a: string, b: string): number {
  const x = CVE.exec(a)!;
  const y = CVE.exec(b)!;
  return Number(x[1]) - Number(y[1]) || x[2]!.length - y[2]!.length || (x[2]! < y[2]! ? -1 : x[2]! > y[2]! ? 1 : 0);
}

/** The severity of a row: the release's own word when the row has one (Debian urgency, Ubuntu priority, Red Hat impact), else the record's. */
export function rowSeverity(c: Candidate): { severity: Severity; vendorSeverity?: string } {
  const vs = c.affected.vendorSeverity;
  const eco = c.affected.ecosystem;
  if (vs) {
    let s: Severity = "Unknown";
    if (eco.startsWith("Debian:")) s = urgencySeverity(vs);
    else if (eco.startsWith("Ubuntu:")) s = UBUNTU_PRIORITY[vs.trim().toLowerCase()] ?? "Unknown";
    else if (eco.startsWith("RHEL:") || eco.startsWith("Red Hat")) s = impactSeverity(vs);
    if (s !== "Unknown") return { severity: s, vendorSeverity: vs };
  }
  const out: { severity: Severity; vendorSeverity?: string } = { severity: c.advisory.severity };
  if (c.advisory.vendorSeverity) out.vendorSeverity = c.advisory.vendorSeverity;
  return out;
}

/** Vendor advisory ids of a row: the row's own (Debian, Red Hat rows name the DSA/RHSA of their release), else the record's. */
function rowAdvisoryIds(c: Candidate): string[] {
  const own = c.affected.detail?.advisories;
  if (Array.isArray(own)) return own.filter((x): x is string => typeof x === "string");
  const eco = c.affected.ecosystem;
  // A Debian or Red Hat record's advisoryIds cover every release; a row without its own names none.
  if (eco.startsWith("Debian:") || eco.startsWith("RHEL:") || eco.startsWith("Red Hat")) return [];
  return [...c.advisory.advisoryIds, ...(c.advisory.id.startsWith("GHSA-") ? [c.advisory.id] : [])];
}

const STATE_ORDER: readonly FixState[] = ["not_fixed", "deferred", "wont_fix", "end_of_life", "under_investigation"];

function mergedState(hits: readonly Hit[], fixedIn: string | undefined): FixState {
  if (fixedIn !== undefined) return "fixed";
  let best: FixState | undefined;
  for (const h of hits) {
    const s: FixState = h.candidate.affected.fixState === "fixed" || h.candidate.affected.fixState === "affected" ? "not_fixed" : h.candidate.affected.fixState;
    if (best === undefined || STATE_ORDER.indexOf(s) < STATE_ORDER.indexOf(best)) best = s;
  }
  return best ?? "not_fixed";
}

/** The sorted, distinct strings of `xs` (few: no set built for none or one). */
function sortedDistinct(xs: readonly string[]): string[] {
  if (xs.length < 2) return xs.slice();
  return [...new Set(xs)].sort();
}

/** The lowest CVE id among `ids`, in CVE order, or undefined. */
function lowestCve(ids: Iterable<string>): string | undefined {
  let id: string | undefined;
  for (const i of ids) if (CVE.test(i) && (id === undefined || compareCves(i, id) < 0)) id = i;
  return id;
}

/** Appends the CVSS entries of `list` not yet in `out` (by source and vector). */
function addCvss(out: Cvss[], seen: Set<string>, list: readonly Cvss[]): void {
  for (const c of list) {
    const key = `${c.source ?? ""}\0${c.vector}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(c);
    }
  }
}

function matchedBy(h: Hit): MatchedBy {
  const mb: MatchedBy = {
    source: h.candidate.source,
    operationRef: h.candidate.operationRef,
    ecosystem: h.candidate.affected.ecosystem,
    record: h.candidate.advisory.id,
    origin: h.candidate.advisory.origin,
    name: h.candidate.affected.name,
    nameKind: h.candidate.affected.nameKind,
    fixState: h.candidate.affected.fixState,
    via: h.via,
  };
  if (h.fixedIn !== undefined) mb.fixedIn = h.fixedIn;
  return mb;
}

// A dense report has one hit per match almost always (12,765 matches of a 2,000-package report): the
// merging below builds no set, closure or intermediate array for what one record gives.
function buildMatch(k: PackageKeys, hits: Hit[]): Match {
  const flagged = hits.every((h) => h.candidate.affected.fixState === "under_investigation");
  const counted = flagged ? hits : hits.filter((h) => h.candidate.affected.fixState !== "under_investigation");
  // The ids of the merged records: the record's own (id first, then its aliases) when there is one.
  const one = hits.length === 1 ? hits[0]!.candidate.advisory : undefined;
  const ids: readonly string[] = one ? (one.aliases.length ? [...new Set(hits[0]!.ids)] : hits[0]!.ids) : [...new Set(hits.flatMap((h) => h.ids))];
  let id = lowestCve(ids);
  if (id === undefined) for (const h of hits) if (id === undefined || h.candidate.advisory.id < id) id = h.candidate.advisory.id;
  // The highest fix any counted row asks for: below it, some source still calls the version affected.
  let fixedIn: string | undefined;
  let fixHit: Hit | undefined;
  for (const h of counted) {
    if (h.fixedIn === undefined) continue;
    if (fixedIn === undefined || h.target.scheme.compare(h.fixedIn, fixedIn) > 0) {
      fixedIn = h.fixedIn;
      fixHit = h;
    }
  }
  let sev: { severity: Severity; vendorSeverity?: string } = { severity: "Unknown" };
  for (const h of counted) {
    const s = rowSeverity(h.candidate);
    if ((SEVERITY_RANK.get(s.severity) ?? 0) > (SEVERITY_RANK.get(sev.severity) ?? 0) || (sev.vendorSeverity === undefined && s.severity === sev.severity && s.vendorSeverity)) sev = s;
  }
  const cvss: Cvss[] = [];
  let seenCvss: Set<string> | undefined;
  const references: string[] = [];
  let summary: string | undefined;
  let published: string | undefined;
  for (const h of hits) {
    const rowCvss = h.candidate.affected.detail?.cvss;
    const extra = Array.isArray(rowCvss) ? (rowCvss as Cvss[]).filter((c) => c && typeof c.vector === "string") : [];
    if (h.candidate.advisory.cvss.length || extra.length) {
      seenCvss ??= new Set();
      addCvss(cvss, seenCvss, h.candidate.advisory.cvss);
      addCvss(cvss, seenCvss, extra);
    }
    for (const r of h.candidate.advisory.references) if (!references.includes(r.url)) references.push(r.url);
    summary ??= h.candidate.advisory.summary;
    const p = h.candidate.advisory.published;
    if (p && (published === undefined || p < published)) published = p;
  }
  // The version compared: a source row's when one matched (the version the advisories speak about).
  const shown = counted.find((h) => h.target.nameKind === "source") ?? counted[0]!;
  const aliases: string[] = [];
  for (const i of ids) if (i !== id) aliases.push(i);
  const m: Match = {
    id: id!,
    aliases: aliases.length > 1 ? aliases.sort() : aliases,
    advisoryIds: sortedDistinct(counted.length === 1 ? rowAdvisoryIds(counted[0]!.candidate) : counted.flatMap((h) => rowAdvisoryIds(h.candidate))),
    package: k.package,
    installedVersionCompared: shown.target.version,
    fixState: mergedState(counted, fixedIn),
    severity: sev.severity,
    cvss,
    references,
    matchedBy: hits.length === 1 ? [matchedBy(hits[0]!)] : hits.map(matchedBy),
  };
  if (fixedIn !== undefined) m.fixedIn = fixedIn;
  const at = fixHit?.candidate.affected.fixAvailableAt;
  if (at) m.fixAvailableAt = at;
  if (sev.vendorSeverity) m.vendorSeverity = sev.vendorSeverity;
  if (summary) m.summary = summary;
  if (published) m.published = published;
  if (k.introducedIn) m.introducedIn = k.introducedIn;
  if (flagged) m.flagged = "under_investigation";
  return m;
}

/** Groups a package's hits into vulnerabilities: hits whose id sets intersect are one (union-find). */
function groupHits(hits: readonly Hit[]): Hit[][] {
  if (hits.length < 2) return hits.length ? [[hits[0]!]] : [];
  const parent = hits.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  const byId = new Map<string, number>();
  hits.forEach((h, i) => {
    for (const id of h.ids) {
      const j = byId.get(id);
      if (j === undefined) byId.set(id, i);
      else parent[find(i)] = find(j);
    }
  });
  const groups = new Map<number, Hit[]>();
  hits.forEach((h, i) => {
    const r = find(i);
    const g = groups.get(r);
    if (g) g.push(h);
    else groups.set(r, [h]);
  });
  return [...groups.values()];
}

/** Matches every package of the report against the candidates (the affected rows of its keys). */
export function matchReport(report: IndexReport, candidates: readonly Candidate[], opts: MatchOptions): MatchResult {
  const { distCoverage, distKey, keys } = prepare(report, opts);
  const hasData = hasDataFn(opts);
  // Ecosystem, then name: no key string built per candidate and per lookup.
  const byKey = new Map<string, Map<string, Candidate[]>>();
  for (const c of candidates) {
    let names = byKey.get(c.affected.ecosystem);
    if (!names) byKey.set(c.affected.ecosystem, (names = new Map()));
    const list = names.get(c.affected.name);
    if (list) list.push(c);
    else names.set(c.affected.name, [c]);
  }

  const matches: Match[] = [];
  const unmatchable: Unmatchable[] = [];
  const governed: Governed[] = [];
  const withoutAdvisoryData: MatchResult["withoutAdvisoryData"] = [];
  const skipped = new Map<string, SkippedRow>();
  const ecosystems = new Map<string, EcosystemCoverage>();
  const countEcosystem = (ecosystem: string) => {
    const e = ecosystems.get(ecosystem);
    if (e) e.packages++;
    else ecosystems.set(ecosystem, { ecosystem, state: hasData(ecosystem) ? "supported" : "no_data", packages: 1 });
  };
  let matched = 0;

  for (const k of keys) {
    if (k.governedBy) {
      const o = k.governedBy;
      const src = o.source && o.source.name !== o.name ? ` (source ${o.source.name} ${o.source.version})` : "";
      governed.push({ package: k.package, owner: o, reason: `governed by the OS advisory for ${o.type} package ${o.name} ${o.version}${src}` });
      continue;
    }
    if (k.unmatchable) {
      unmatchable.push({ package: k.package, reason: k.unmatchable });
      if (k.unsupportedEcosystem) {
        const e = ecosystems.get(k.unsupportedEcosystem);
        if (e) e.packages++;
        else ecosystems.set(k.unsupportedEcosystem, { ecosystem: k.unsupportedEcosystem, state: "unsupported", packages: 1, reason: k.unmatchable });
      }
      continue;
    }
    if (k.targets.length === 0) continue; // an OS package of an unsupported distribution: the distribution's coverage says so
    matched++;
    if (k.targets.length === 1) countEcosystem(k.targets[0]!.ecosystem);
    else for (const e of new Set(k.targets.map((t) => t.ecosystem))) countEcosystem(e);

    const hits: Hit[] = [];
    let rows = 0;
    let broken: string | undefined;
    for (const t of k.targets) {
      for (const c of byKey.get(t.ecosystem)?.get(t.name) ?? []) {
        if (c.affected.nameKind !== t.nameKind) continue;
        if ((c.affected.module ?? "") !== (t.module ?? "")) continue;
        if (c.advisory.withdrawn) continue;
        rows++;
        let r: ReturnType<typeof affects>;
        try {
          r = affects(t.version, c.affected, t.scheme);
        } catch (e) {
          if (!(e instanceof UnmatchableVersionError)) throw e;
          broken = e.message;
          break;
        }
        if ("skipped" in r) {
          const row: SkippedRow = { source: c.source, record: c.advisory.id, ecosystem: c.affected.ecosystem, name: c.affected.name, reason: r.skipped };
          skipped.set(`${row.source}\0${row.record}\0${row.ecosystem}\0${row.name}\0${row.reason}`, row);
          continue;
        }
        if (!r.affected) continue;
        const hit: Hit = { candidate: c, target: t, via: r.via, ids: [c.advisory.id, ...c.advisory.aliases] };
        if (r.fixedIn !== undefined) hit.fixedIn = r.fixedIn;
        hits.push(hit);
      }
      if (broken) break;
    }
    if (broken) {
      matched--;
      unmatchable.push({ package: k.package, reason: broken });
      continue;
    }
    if (rows === 0) withoutAdvisoryData.push({ package: k.package, keys: [...new Set(k.targets.map((t) => `${t.ecosystem} ${t.name}`))] });
    for (const g of groupHits(hits)) matches.push(buildMatch(k, g));
  }

  // Node.js release lines past their end of life: the runtime's advisories stop naming them.
  const now = opts.now ?? new Date();
  const eolOf = opts.endOfLife ?? defaultEndOfLife;
  for (const k of keys) {
    if (k.package.type !== "node" || k.targets.length === 0) continue;
    const major = /^(\d+)\./.exec(k.targets[0]!.version)?.[1];
    const eol = major === undefined ? undefined : eolOf("nodejs", major, { now });
    const e = ecosystems.get("Node.js");
    if (e && eol?.ended && e.state === "supported") {
      e.state = "end_of_life";
      e.reason = `node ${k.package.version}: the ${major}.x line is past its end of life${eol.date ? ` (${eol.date})` : ""}`;
      if (eol.date) e.endOfLife = eol.date;
    }
  }
  // The OS ecosystems take the distribution's state (end of life, approximation notes).
  if (distKey) {
    for (const eco of [distKey.ecosystem, ...distKey.extra]) {
      const e = ecosystems.get(eco);
      if (!e) continue;
      if (e.state === "supported" && distCoverage.state === "end_of_life") e.state = "end_of_life";
      if (distCoverage.reason) e.reason = distCoverage.reason;
      if (distCoverage.endOfLife) e.endOfLife = distCoverage.endOfLife;
    }
  }

  const hasOsPackages = keys.some((k) => k.package.type === "dpkg" || k.package.type === "apk" || k.package.type === "rpm");
  const coverage: Coverage = {
    ecosystems: [...ecosystems.values()].sort((a, b) => (a.ecosystem < b.ecosystem ? -1 : a.ecosystem > b.ecosystem ? 1 : 0)),
    packages: keys.length,
    matched,
    unmatchable: unmatchable.length,
    governedByOs: governed.length,
    withoutAdvisoryData: withoutAdvisoryData.length,
    skippedRows: skipped.size,
  };
  if (hasOsPackages || reportDistribution(report)) {
    coverage.distribution = distCoverage;
    if (!distKey && hasOsPackages) {
      const n = keys.filter((k) => k.unsupported).length;
      coverage.distribution = { ...distCoverage, reason: `${distCoverage.reason ?? "unsupported"}; ${n} OS packages not matched` };
    }
  }

  matches.sort((a, b) => compareIds(a.package.id, b.package.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { matches, coverage, unmatchable, governed, withoutAdvisoryData, skippedRows: [...skipped.values()] };
}

/** The coverage state words, for callers that print them. */
export const COVERAGE_STATES: readonly CoverageState[] = ["supported", "no_data", "unsupported", "end_of_life"];
