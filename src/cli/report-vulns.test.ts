// `report --vulns` reads findings back out of a VulnerabilityReport: the C1 Alpine 3.18 case of the fixture
// README (33 matches, 14 CVEs), matched by the real matcher, turned into Clair's report by the real
// vulnerabilityReport(), must give the same table as scan prints from the matches themselves, and the same
// findings after the filters.
import { describe, expect, it } from "vitest";
import { parse as parseAlpine } from "../advisories/sources/alpine/index.js";
import { matchReport, summarize, vulnerabilityReport } from "../matcher/index.js";
import type { Match } from "../model/match.js";
import { advisoryFile, candidatesOf, indexImage, OS_RELEASE, packageFixture } from "../matcher/testing.js";
import { filterReport, findings, reportTable } from "./report-vulns.js";
import { filterMatches, vulnTable, type VulnFilter } from "./vuln-table.js";

describe("report --vulns: findings from Clair's VulnerabilityReport", async () => {
  const index = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.alpine318 }, { name: "lib/apk/db/installed", content: packageFixture("apk/alpine-3.18/installed") }]]);
  const parsed = parseAlpine(["openssl", "busybox", "musl", "zlib", "apk-tools"].map((p) => advisoryFile(`alpine/vuln-list/3.18/main/${p}.json`, `3.18/main/${p}.json`)));
  const result = matchReport(index, candidatesOf("alpine", parsed.advisories), { ecosystemsWithData: new Set(["Alpine:v3.18"]), now: new Date("2024-01-01T00:00:00Z") });
  const report = vulnerabilityReport(index, result.matches);
  const line = (m: Pick<Match, "id" | "fixedIn"> & { package: { name: string } }) => `${m.package.name} ${m.id} ${m.fixedIn ?? "-"}`;

  it("reads every (package, vulnerability) back, as the matcher found them (C1: 33 over 14 CVEs)", () => {
    const back = findings(report);
    expect(back).toHaveLength(33);
    expect(new Set(back.map((f) => f.id)).size).toBe(14);
    expect(back.map(line).sort()).toEqual(result.matches.map(line).sort());
    expect(back.find((f) => f.package.name === "libssl3" && f.id === "CVE-2023-6237")).toMatchObject({ severity: result.matches.find((m) => m.package.name === "libssl3" && m.id === "CVE-2023-6237")!.severity, fixedIn: "3.1.4-r4", fixState: "fixed", package: { version: "3.1.0-r4" } });
  });

  it("prints scan's table, with --severity and --ignore-unfixed as scan applies them", () => {
    for (const filter of [{ ignoreUnfixed: false }, { ignoreUnfixed: true }, { ignoreUnfixed: false, severities: new Set(["High", "Critical"]) }] as VulnFilter[]) {
      const kept = filterMatches(result.matches, filter);
      const scanBlock = vulnTable({ data: true, matches: kept, summary: summarize(kept), sources: [], result }, filter, 10, "--format json");
      const reportBlock = reportTable(report, filter, 10);
      expect(reportBlock).toBe(`manifest:      ${index.manifest_hash}\npackages:      15\n${scanBlock.replace(/^coverage:.*\n/m, "")}`);
      expect(filterReport(report, filter).package_vulnerabilities).toEqual(
        Object.fromEntries(Object.entries(report.package_vulnerabilities).flatMap(([id, keys]) => {
          const left = keys.filter((k) => kept.some((m) => m.package.id === id && report.vulnerabilities[k]!.name === m.id));
          return left.length ? [[id, left]] : [];
        })),
      );
    }
    expect(reportTable(report, { ignoreUnfixed: false }, 50)).toMatch(/^vulnerabilities: 14 \(/m);
  });

  it("reads a report from another Clair (no Portcullis enrichments): fix state from fixed_in_version", () => {
    const plain = { ...report, enrichments: undefined };
    const back = findings(plain);
    expect(back).toHaveLength(33);
    expect(back.every((f) => f.fixState === "fixed")).toBe(true);
    expect(reportTable(plain, { ignoreUnfixed: false })).not.toMatch(/^coverage:/m);
  });
});
