import { describe, expect, it } from "vitest";
import type { Match } from "../model/match.js";
import { filterMatches, vulnTable, type VulnScan } from "./scan-vulns.js";

const match = (i: number, over: Partial<Match> = {}): Match => ({
  id: `CVE-2024-${String(i).padStart(4, "0")}`, aliases: [], advisoryIds: [], cvss: [], references: [], matchedBy: [],
  package: { id: String(i), name: `pkg${i}`, version: "1.0", kind: "binary", packageDb: "var/lib/dpkg/status" },
  installedVersionCompared: "1.0", fixState: "fixed", fixedIn: "1.1", severity: "High", ...over,
});

function scanOf(matches: Match[]): VulnScan {
  return {
    data: true, matches, sources: [],
    summary: { critical: 0, high: matches.length, medium: 0, low: 0, negligible: 0, unknown: 0, total: matches.length, fixable: matches.length, unfixed: 0 },
    result: { matches, unmatchable: [], governed: [], withoutAdvisoryData: [], skippedRows: [], coverage: { ecosystems: [], packages: 0, matched: 0, unmatchable: 2, governedByOs: 0, withoutAdvisoryData: 0, skippedRows: 0 } },
  };
}

describe("scan's vulnerability table", () => {
  it("lists at most the limit, then says how many more and where to see them", () => {
    const out = vulnTable(scanOf(Array.from({ length: 53 }, (_, i) => match(i))), { ignoreUnfixed: false }, 50);
    expect(out.split("\n").filter((l) => l.startsWith("    CVE-"))).toHaveLength(50);
    expect(out).toContain("  … and 3 more (--format vuln-json for all)\n");
    expect(out).toMatch(/^coverage: +no distribution; 2 packages unmatchable$/m);
  });

  it("filters by severity and fix, and leaves out under-investigation findings", () => {
    const ms = [match(1), match(2, { severity: "Low", fixedIn: undefined, fixState: "not_fixed" }), match(3, { flagged: "under_investigation" })];
    expect(filterMatches(ms, { ignoreUnfixed: false }).map((m) => m.id)).toEqual(["CVE-2024-0001", "CVE-2024-0002"]);
    expect(filterMatches(ms, { ignoreUnfixed: true }).map((m) => m.id)).toEqual(["CVE-2024-0001"]);
    expect(filterMatches(ms, { ignoreUnfixed: false, severities: new Set(["Low"]) }).map((m) => m.id)).toEqual(["CVE-2024-0002"]);
  });
});
