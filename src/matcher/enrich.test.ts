import { describe, expect, it } from "vitest";
import { parse as parseDebian } from "../advisories/sources/debian/index.js";
import { parseEpss, parseKev, parseNvd } from "../advisories/enrichment/index.js";
import { parseOsv } from "../advisories/sources/osv/index.js";
import type { EnrichmentRow } from "../store/advisory-types.js";
import { enrichMatches, enrichmentKeys } from "./enrich.js";
import { matchReport } from "./match.js";
import { advisoryFile, candidatesOf, indexImage, OS_RELEASE } from "./testing.js";
import { vulnerabilityReport, type VulnerabilityDetail, PORTCULLIS_VULNERABILITY_ENRICHMENT } from "./vulnerability-report.js";

/** The store's merge of the enrichment sources, by CVE, over the real EPSS, KEV and NVD fixture files. */
function enrichment(): Map<string, EnrichmentRow> {
  const out = new Map<string, EnrichmentRow>();
  const row = (cve: string) => {
    let r = out.get(cve);
    if (!r) out.set(cve, (r = {}));
    return r;
  };
  for (const e of parseEpss(advisoryFile("enrichment/epss/data.csv")).epss) row(e.cve).epss = { epss: e.epss, percentile: e.percentile, date: e.date };
  for (const k of parseKev(advisoryFile("enrichment/kev/known_exploited_vulnerabilities.json")).kev) {
    const kev: NonNullable<EnrichmentRow["kev"]> = { dateAdded: k.dateAdded };
    if (k.dueDate) kev.dueDate = k.dueDate;
    if (k.ransomware) kev.ransomware = k.ransomware;
    row(k.cve).kev = kev;
  }
  for (const c of parseNvd(advisoryFile("enrichment/nvd/feed.json")).cvss) row(c.cve).cvss = c.cvss;
  return out;
}

describe("enrichment on matches", async () => {
  const rows = enrichment();
  // coreutils CVE-2016-2781 (in the NVD fixture) and CVE-1999-0005 (in the EPSS fixture), as Debian rows with no urgency yet.
  const tracker = {
    coreutils: { "CVE-2016-2781": { releases: { bookworm: { status: "open", urgency: "not yet assigned" } } } },
    foo: { "CVE-1999-0005": { releases: { bookworm: { status: "open", urgency: "low" } } } },
  };
  const status = "Package: coreutils\nStatus: install ok installed\nMaintainer: M <m@example.org>\nVersion: 9.1-1\n\nPackage: foo\nStatus: install ok installed\nMaintainer: M <m@example.org>\nVersion: 1.0-1\n";
  const { zipSync } = await import("fflate");
  const jar = Buffer.from(zipSync({ "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties": Buffer.from("groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n") }));
  const index = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.debian12 }, { name: "var/lib/dpkg/status", content: status }, { name: "opt/log4j-core-2.14.1.jar", content: jar }]]);
  const candidates = [
    ...candidatesOf("debian", parseDebian([{ path: "debian.json", bytes: Buffer.from(JSON.stringify(tracker)) }]).advisories),
    ...candidatesOf("osv-maven", parseOsv([advisoryFile("osv/ghsa/GHSA-jfh8-c2jp-5v3q.json")]).advisories),
  ];
  const { matches } = matchReport(index, candidates, { ecosystemsWithData: () => true, now: new Date("2025-01-01T00:00:00Z") });

  it("the CVEs to ask for", () => {
    expect(enrichmentKeys(matches)).toEqual(["CVE-1999-0005", "CVE-2016-2781", "CVE-2021-44228"]);
  });

  it("a record without severity takes NVD's CVSS v3.1; one with a severity keeps it; EPSS and KEV are attached", () => {
    const before = new Map(matches.map((m) => [m.id, m]));
    expect(before.get("CVE-2016-2781")!.severity).toBe("Unknown");
    const after = new Map(enrichMatches(matches, rows).map((m) => [m.id, m]));
    const coreutils = after.get("CVE-2016-2781")!;
    const nvd = rows.get("CVE-2016-2781")!.cvss!.find((c) => c.version === "3.1")!;
    expect(coreutils).toMatchObject({ severity: "Medium", severityFrom: `CVSS 3.1 ${nvd.score} (${nvd.source})` });
    expect(coreutils.cvss).toEqual([nvd]);
    expect(after.get("CVE-1999-0005")).toMatchObject({ severity: "Low", epss: { epss: 0.91963, percentile: 0.9903, date: "2024-10-25" } });
    expect(after.get("CVE-1999-0005")!.severityFrom).toBeUndefined();
    expect(after.get("CVE-2021-44228")).toMatchObject({ severity: "Critical", kev: { dateAdded: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) } });
    expect(before.get("CVE-2016-2781")!.severity).toBe("Unknown"); // copies, not edits
  });

  it("the VulnerabilityReport applies it and says where the severity came from", () => {
    const report = vulnerabilityReport(index, matches, { enrichment: rows });
    const details = report.enrichments![PORTCULLIS_VULNERABILITY_ENRICHMENT]![0] as Record<string, VulnerabilityDetail[]>;
    expect(report.vulnerabilities["CVE-2016-2781/Debian:12/coreutils"]!.normalized_severity).toBe("Medium");
    expect(details["CVE-2016-2781/Debian:12/coreutils"]![0]!.severity_from).toMatch(/^CVSS 3\.1 /);
    expect(details["CVE-2021-44228/Maven/org.apache.logging.log4j:log4j-core"]![0]!.kev).toBeDefined();
  });
});
