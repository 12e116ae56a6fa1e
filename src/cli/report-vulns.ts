// `portcullis report DIGEST --vulns`: a Clair VulnerabilityReport from the report API, as scan's table
// (./vuln-table.ts) or as JSON, with scan's filters. Works on any Clair v4 VulnerabilityReport: the findings
// come from `package_vulnerabilities` and `vulnerabilities`; Portcullis' enrichments add the fix state,
// under-investigation flags, the coverage and the advisory data's age when the server sent them.
import type { Severity } from "../model/advisory.js";
import {
  PORTCULLIS_COVERAGE_ENRICHMENT as COVERAGE_ENRICHMENT,
  PORTCULLIS_PACKAGE_ENRICHMENT as PACKAGE_ENRICHMENT,
  PORTCULLIS_VULNERABILITY_ENRICHMENT as VULNERABILITY_ENRICHMENT,
  summarize,
  type CoverageEnrichment,
  type PackageVulnerabilityDetail,
  type VulnerabilityDetail,
  type VulnerabilityReport,
} from "../matcher/vulnerability-report.js";
import { filterMatches, vulnTable, type TableInput, type TableMatch, type VulnFilter } from "./vuln-table.js";

const SEVERITIES = new Set<string>(["Critical", "High", "Medium", "Low", "Negligible", "Unknown"]);

type Finding = TableMatch & { key: string; packageId: string };

function details(report: VulnerabilityReport): Record<string, VulnerabilityDetail[] | undefined> {
  const e = report.enrichments?.[VULNERABILITY_ENRICHMENT]?.[0];
  return e && typeof e === "object" ? (e as Record<string, VulnerabilityDetail[]>) : {};
}

/** One finding per (package, vulnerability) of the report. */
export function findings(report: VulnerabilityReport): Finding[] {
  const d = details(report);
  const out: Finding[] = [];
  for (const [packageId, keys] of Object.entries(report.package_vulnerabilities ?? {})) {
    const pkg = report.packages?.[packageId];
    for (const key of keys) {
      const v = report.vulnerabilities?.[key];
      if (!v) continue;
      const detail = d[key]?.[0];
      const fixedIn = v.fixed_in_version ? v.fixed_in_version : undefined;
      const f: Finding = {
        key, packageId,
        id: v.name || key,
        severity: (SEVERITIES.has(v.normalized_severity) ? v.normalized_severity : "Unknown") as Severity,
        fixState: detail?.fix_state ?? (fixedIn !== undefined ? "fixed" : "not_fixed"),
        package: { name: pkg?.name ?? packageId, version: pkg?.version ?? "" },
      };
      if (fixedIn !== undefined) f.fixedIn = fixedIn;
      if (detail?.flagged) f.flagged = detail.flagged;
      out.push(f);
    }
  }
  return out;
}

/** The table block of a report, filtered. */
export function reportTable(report: VulnerabilityReport, filter: VulnFilter, limit?: number): string {
  const matches = filterMatches(findings(report), filter);
  const c = report.enrichments?.[COVERAGE_ENRICHMENT]?.[0] as CoverageEnrichment | undefined;
  const input: TableInput = {
    data: true, matches, summary: summarize(matches),
    sources: (c?.advisory_data ?? []).map((s) => ({ source: s.source, latest: { createdAt: s.updated_at } })),
    ...(c?.coverage ? { result: { coverage: c.coverage } } : {}),
  };
  const packages = Object.keys(report.packages ?? {}).length;
  return `manifest:      ${report.manifest_hash}\npackages:      ${packages}\n${vulnTable(input, filter, limit, "--format json")}`;
}

/** The report with only what the filters keep: vulnerabilities, package lists and Portcullis' details. */
export function filterReport(report: VulnerabilityReport, filter: VulnFilter): VulnerabilityReport {
  const kept = filterMatches(findings(report), filter);
  const keys = new Set(kept.map((f) => f.key));
  const perPackage: Record<string, string[]> = {};
  for (const f of kept) {
    const list = (perPackage[f.packageId] ??= []);
    if (!list.includes(f.key)) list.push(f.key);
  }
  const out: VulnerabilityReport = {
    ...report,
    vulnerabilities: Object.fromEntries(Object.entries(report.vulnerabilities ?? {}).filter(([k]) => keys.has(k))),
    package_vulnerabilities: perPackage,
  };
  if (report.enrichments) {
    out.enrichments = { ...report.enrichments };
    const d = details(report);
    if (report.enrichments[VULNERABILITY_ENRICHMENT]) out.enrichments[VULNERABILITY_ENRICHMENT] = [Object.fromEntries(Object.entries(d).filter(([k]) => keys.has(k)))];
    const pd = report.enrichments[PACKAGE_ENRICHMENT]?.[0] as Record<string, PackageVulnerabilityDetail[]> | undefined;
    if (pd) {
      out.enrichments[PACKAGE_ENRICHMENT] = [Object.fromEntries(Object.entries(pd).flatMap(([id, list]) => {
        const left = list.filter((x) => keys.has(x.vulnerability));
        return left.length ? [[id, left]] : [];
      }))];
    }
  }
  return out;
}
