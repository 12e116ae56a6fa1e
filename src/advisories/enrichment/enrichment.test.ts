import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { AdvisoryInputError } from "../input.js";
import type { RawFile } from "../../model/advisory.js";
import { detectEpss, detectKev, detectNvd, detectNvdMeta, parseEpss, parseKev, parseNvd, parseNvdMeta } from "./index.js";

const FIXTURES = new URL("../../../../shared/fixtures/advisories/", import.meta.url);

function fixture(path: string): RawFile {
  return { path, bytes: readFileSync(new URL(path, FIXTURES)) };
}

const EPSS = fixture("enrichment/epss/data.csv");
const KEV = fixture("enrichment/kev/known_exploited_vulnerabilities.json");
const NVD = fixture("enrichment/nvd/feed.json");
const OTHERS = ["osv/ghsa/GHSA-c2qf-rxjj-qqgw.json", "osv/pypi/PYSEC-2019-217.yaml", "nodejs/core/index.json", "ubuntu/UBUNTU-CVE-2023-4911.json"];

function text(path: string, s: string): RawFile {
  return { path, bytes: Buffer.from(s) };
}

describe("EPSS", () => {
  it("reads the 29 rows with the score date and model of the comment line", () => {
    const r = parseEpss(EPSS);
    expect(r.skipped).toEqual([]);
    expect(r.date).toBe("2024-10-25");
    expect(r.model).toBe("v2023.03.01");
    expect(r.epss).toHaveLength(29);
    expect(r.epss[0]).toEqual({ cve: "CVE-1999-0005", epss: 0.91963, percentile: 0.9903, date: "2024-10-25" });
    expect(r.epss[28]).toEqual({ cve: "CVE-2024-9987", epss: 0.00043, percentile: 0.09778, date: "2024-10-25" });
    expect(r.epss.every((e) => e.date === "2024-10-25")).toBe(true);
  });

  it("reads the gzipped download the same way", () => {
    const gz = { path: "epss_scores-current.csv.gz", bytes: gzipSync(EPSS.bytes) };
    expect(detectEpss(gz)).toBe(true);
    expect(parseEpss(gz).epss).toEqual(parseEpss(EPSS).epss);
  });

  it("skips bad rows with the line number, and repeated CVEs", () => {
    const csv = "#model_version:v1,score_date:2025-01-02T00:00:00+0000\ncve,epss,percentile\nCVE-2024-0001,0.5,0.9\nnot-a-cve,0.1,0.1\nCVE-2024-0002,1.5,0.1\nCVE-2024-0003,0.1,\nCVE-2024-0001,0.2,0.2\n\n";
    const r = parseEpss(text("e.csv", csv));
    expect(r.epss).toEqual([{ cve: "CVE-2024-0001", epss: 0.5, percentile: 0.9, date: "2025-01-02" }]);
    expect(r.skipped.map((s) => [s.record, s.reason])).toEqual([
      ["line 4", 'not a CVE id: "not-a-cve"'],
      ["line 5", 'epss is not a probability: "1.5"'],
      ["line 6", 'percentile is not within 0-1: ""'],
      ["line 7", "CVE-2024-0001 repeated"],
    ]);
  });

  it("needs the header and a score date (from the file or the caller)", () => {
    expect(() => parseEpss(text("e.csv", "cve,score\nCVE-2024-0001,0.1\n"))).toThrow(/^file e\.csv: no cve,epss,percentile header/);
    expect(() => parseEpss(text("e.csv", "cve,epss,percentile\nCVE-2024-0001,0.1,0.2\n"))).toThrow(AdvisoryInputError);
    expect(parseEpss(text("e.csv", "cve,epss,percentile\nCVE-2024-0001,0.1,0.2\n"), { date: "2021-04-14" }).epss[0]?.date).toBe("2021-04-14");
    expect(() => parseEpss(EPSS, { maxBytes: 100 })).toThrow(/over the limit of 100/);
    expect(() => parseEpss({ path: "bomb.csv.gz", bytes: gzipSync(Buffer.alloc(10_000_000)) }, { maxBytes: 1_000_000 })).toThrow(
      /^file bomb\.csv\.gz: decompresses to more than 1000000 bytes/,
    );
  });

  it("is detected by its first lines only", () => {
    expect(detectEpss(EPSS)).toBe(true);
    expect(detectEpss(text("x.csv", "cve,epss,percentile\n"))).toBe(true);
    for (const f of OTHERS) expect(detectEpss(fixture(f)), f).toBe(false);
    expect(detectEpss(KEV)).toBe(false);
    expect(detectEpss(NVD)).toBe(false);
  });
});

describe("CISA KEV", () => {
  it("reads both entries with their dates and ransomware use", () => {
    const r = parseKev(KEV);
    expect(r.skipped).toEqual([]);
    expect(r.catalogVersion).toBe("2025.02.24");
    expect(r.dateReleased).toBe("2025-02-24T17:55:31.6365Z");
    expect(r.kev).toEqual([
      {
        cve: "CVE-2017-3066",
        dateAdded: "2025-02-24",
        dueDate: "2025-03-17",
        ransomware: "Unknown",
        vendor: "Adobe",
        product: "ColdFusion",
        name: "Adobe ColdFusion Deserialization Vulnerability",
      },
      {
        cve: "CVE-2021-44228",
        dateAdded: "2021-12-10",
        dueDate: "2021-12-24",
        ransomware: "Known",
        vendor: "Apache",
        product: "Log4j2",
        name: "Apache Log4j2 Remote Code Execution Vulnerability",
      },
    ]);
  });

  it("skips entries of the wrong shape; refuses a file that is not the catalogue", () => {
    const doc = {
      catalogVersion: "1",
      vulnerabilities: [{ cveID: "CVE-2024-0001", dateAdded: "2024-02-30" }, { cveID: "nope", dateAdded: "2024-01-01" }, { cveID: "CVE-2024-0002", dateAdded: "2024-01-01" }, 7],
    };
    const r = parseKev(text("k.json", JSON.stringify(doc)));
    expect(r.kev).toEqual([{ cve: "CVE-2024-0002", dateAdded: "2024-01-01" }]);
    expect(r.skipped.map((s) => [s.record, s.reason])).toEqual([
      ["CVE-2024-0001", "invalid entry: dateAdded: not a YYYY-MM-DD date"],
      ["vulnerabilities[1]", "invalid entry: cveID: not a CVE id"],
      ["vulnerabilities[3]", "invalid entry: (record): Invalid input: expected object, received number"],
    ]);
    expect(() => parseKev(NVD)).toThrow(/^file enrichment\/nvd\/feed\.json: not the KEV catalogue/);
    expect(() => parseKev(text("k.json", "[1,"))).toThrow(/invalid JSON/);
  });

  it("is detected by catalogVersion", () => {
    expect(detectKev(KEV)).toBe(true);
    for (const f of OTHERS) expect(detectKev(fixture(f)), f).toBe(false);
    expect(detectKev(NVD)).toBe(false);
    expect(detectKev(EPSS)).toBe(false);
  });
});

describe("NVD CVE API 2.0", () => {
  it("reads the 3 records: Primary before Secondary, newest version first, the one without metrics empty", () => {
    const r = parseNvd(NVD);
    expect(r.skipped).toEqual([]);
    expect(r.cvss.map((c) => c.cve)).toEqual(["CVE-2016-2781", "CVE-2016-3197", "CVE-2016-3674"]);
    expect(r.cvss[0]?.cvss).toEqual([
      { version: "3.1", vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N", score: 4.6, source: "134c704f-9b21-4f2e-91b3-4a467353bcc0" },
      { version: "3.0", vector: "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:C/C:N/I:H/A:N", score: 6.5, source: "nvd" },
      { version: "2.0", vector: "AV:L/AC:L/Au:N/C:N/I:P/A:N", score: 2.1, source: "nvd" },
    ]);
    expect(r.cvss[1]).toEqual({ cve: "CVE-2016-3197", cvss: [] });
    expect(r.cvss[2]?.cvss.map((c) => `${c.version} ${c.score} ${c.source}`)).toEqual(["3.1 7.5 nvd", "2.0 5 nvd"]);
  });

  it("reads a gzipped feed; skips metrics it cannot use", () => {
    expect(parseNvd({ path: "nvdcve-2.0-2016.json.gz", bytes: gzipSync(NVD.bytes) }).cvss).toHaveLength(3);
    const doc = {
      vulnerabilities: [
        {
          cve: {
            id: "CVE-2024-0001",
            metrics: {
              cvssMetricV31: [
                { source: "nvd@nist.gov", type: "Primary", cvssData: { version: "3.1", vectorString: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" } },
                { source: "x", type: "Secondary", cvssData: { version: "3.1", vectorString: "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", baseScore: 9.8 } },
                { source: "y", type: "Secondary", cvssData: { version: "3.1" } },
              ],
              cvssMetricV2: "nope",
            },
          },
        },
        { cve: { id: "not-a-cve" } },
        { cve: { id: "CVE-2024-0001" } },
      ],
    };
    const r = parseNvd(text("page.json", JSON.stringify(doc)));
    expect(r.cvss).toEqual([{ cve: "CVE-2024-0001", cvss: [{ version: "3.1", vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", score: 9.8, source: "nvd" }] }]);
    expect(r.skipped.map((s) => s.record)).toEqual([
      "CVE-2024-0001#cvssMetricV31[1]",
      "CVE-2024-0001#cvssMetricV31[2]",
      "CVE-2024-0001#cvssMetricV2",
      "vulnerabilities[1]",
      "CVE-2024-0001",
    ]);
    expect(r.skipped[0]?.reason).toContain("cvssMetricV31 with version 3.1 holds a CVSS 3.0 vector");
    expect(() => parseNvd(KEV)).toThrow(AdvisoryInputError);
    expect(() => parseNvd(fixture("redhat/cve-2024-28085.json"))).toThrow(/not an NVD CVE API 2\.0 document/);
  });

  it("is detected by format or the shape of its first record", () => {
    expect(detectNvd(NVD)).toBe(true);
    expect(detectNvd({ path: "f.json.gz", bytes: gzipSync(NVD.bytes) })).toBe(true);
    expect(detectNvd(text("p.json", '{"vulnerabilities": [{"cve": {"id": "CVE-2024-0001"}}]}'))).toBe(true);
    for (const f of OTHERS) expect(detectNvd(fixture(f)), f).toBe(false);
    expect(detectNvd(KEV)).toBe(false);
    expect(detectNvd(EPSS)).toBe(false);
  });
});

describe("NVD feed .meta", () => {
  it("reads the fingerprint fields", () => {
    const meta = fixture("enrichment/nvd/feed.meta");
    expect(detectNvdMeta(meta)).toBe(true);
    expect(parseNvdMeta(meta)).toEqual({
      lastModifiedDate: "2025-08-07T03:01:41-04:00",
      size: 66078439,
      zipSize: 4924668,
      gzSize: 4924532,
      sha256: "d165e29d8d911f3f1e0919a5c1e8c423b14af1c38f57847dd0a8cc9dbd027618",
    });
    expect(detectNvdMeta(NVD)).toBe(false);
    expect(() => parseNvdMeta(text("x.meta", "lastModifiedDate:yesterday\nsha256:00\n"))).toThrow(/^file x\.meta: not an NVD feed \.meta file/);
  });
});
