import { readFileSync } from "node:fs";
import { strToU8, zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { AdvisoryInputError } from "../../input.js";
import type { Advisory, RawFile } from "../../../model/advisory.js";
import { detectOsv, mapOsvRecord, normaliseName, parseOsv } from "./index.js";

const FIXTURES = new URL("../../../../../shared/fixtures/advisories/", import.meta.url);

function fixture(path: string): RawFile {
  return { path, bytes: readFileSync(new URL(path, FIXTURES)) };
}

const OSV_FILES = [
  "osv/go/GO-2023-1752.json",
  "osv/go/GO-2022-0969.json",
  "osv/go/GO-2022-0907.json",
  "osv/pypi/PYSEC-2019-217.yaml",
  "osv/ghsa/GHSA-35jh-r3h4-6jhm.json",
  "osv/ghsa/GHSA-c2qf-rxjj-qqgw.json",
  "osv/ghsa/GHSA-jfh8-c2jp-5v3q.json",
  "osv/ghsa/GHSA-h5c8-rqwp-cp95.json",
  "ubuntu/UBUNTU-CVE-2022-1271.json",
  "ubuntu/UBUNTU-CVE-2023-4911.json",
];

function one(path: string): Advisory {
  const r = parseOsv([fixture(path)]);
  expect(r.skipped).toEqual([]);
  expect(r.advisories).toHaveLength(1);
  const a = r.advisories[0];
  if (!a) throw new Error("no advisory");
  return a;
}

function json(value: unknown, path = "rec.json"): RawFile {
  return { path, bytes: Buffer.from(JSON.stringify(value)) };
}

function record(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: "1.6.0",
    id: "GHSA-aaaa-bbbb-cccc",
    modified: "2024-01-01T00:00:00Z",
    aliases: ["CVE-2024-0001"],
    affected: [{ package: { ecosystem: "npm", name: "left-pad" }, ranges: [{ type: "SEMVER", events: [{ introduced: "0" }, { fixed: "1.3.0" }] }] }],
    ...over,
  };
}

function catchError(fn: () => unknown): AdvisoryInputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AdvisoryInputError) return e;
    throw e;
  }
  throw new Error("expected an AdvisoryInputError");
}

describe("golang/vulndb records", () => {
  it("GO-2023-1752: stdlib, two intervals with the 1.20.0-0 sentinel, symbols kept", () => {
    const a = one("osv/go/GO-2023-1752.json");
    expect(a.id).toBe("GO-2023-1752");
    expect(a.aliases).toEqual(["CVE-2023-24540"]);
    expect(a.advisoryIds).toEqual([]);
    expect(a.summary).toBe("Improper handling of JavaScript whitespace in html/template");
    // golang/vulndb's placeholder zero time is not a date.
    expect(a.published).toBeUndefined();
    expect(a.modified).toBeUndefined();
    expect(a.severity).toBe("Unknown");
    expect(a.cvss).toEqual([]);
    expect(a.references.map((r) => r.type)).toEqual(["REPORT", "FIX", "WEB"]);
    expect(a.origin).toEqual({ file: "osv/go/GO-2023-1752.json", record: "GO-2023-1752" });
    expect(a.affected).toEqual([
      {
        ecosystem: "Go",
        name: "stdlib",
        nameKind: "binary",
        fixState: "affected",
        fixedVersions: ["1.19.9", "1.20.4"],
        ranges: [{ type: "SEMVER", events: [{ introduced: "0" }, { fixed: "1.19.9" }, { introduced: "1.20.0-0" }, { fixed: "1.20.4" }] }],
        detail: { imports: [{ path: "html/template", symbols: ["Template.Execute", "Template.ExecuteTemplate", "nextJSCtx"] }] },
      },
    ]);
  });

  it("GO-2022-0969: stdlib and golang.org/x/net with a pseudo-version fix; the GHSA alias is an advisory id", () => {
    const a = one("osv/go/GO-2022-0969.json");
    expect(a.aliases).toEqual(["CVE-2022-27664", "GHSA-69cg-p879-7622"]);
    expect(a.advisoryIds).toEqual(["GHSA-69cg-p879-7622"]);
    expect(a.published).toBe("2022-09-12T20:23:06Z");
    expect(a.affected.map((p) => p.name)).toEqual(["stdlib", "golang.org/x/net"]);
    const [std, net] = a.affected;
    expect(std?.ranges[0]?.events).toEqual([{ introduced: "0" }, { fixed: "1.18.6" }, { introduced: "1.19.0-0" }, { fixed: "1.19.1" }]);
    expect(net?.ranges).toEqual([{ type: "SEMVER", events: [{ introduced: "0" }, { fixed: "0.0.0-20220906165146-f3363e06e74c" }] }]);
    expect(net?.fixedVersions).toEqual(["0.0.0-20220906165146-f3363e06e74c"]);
    expect(net?.detail).toEqual({ imports: [{ path: "golang.org/x/net/http2", symbols: ["Server.ServeConn", "serverConn.goAway"] }] });
  });

  it("GO-2022-0907: k8s.io/kubernetes, three intervals, no symbols", () => {
    const a = one("osv/go/GO-2022-0907.json");
    expect(a.aliases).toEqual(["CVE-2021-25735", "GHSA-g42g-737j-qx6j"]);
    expect(a.affected).toHaveLength(1);
    expect(a.affected[0]?.name).toBe("k8s.io/kubernetes");
    expect(a.affected[0]?.fixedVersions).toEqual(["1.18.18", "1.19.10", "1.20.6"]);
    expect(a.affected[0]?.detail).toBeUndefined();
  });
});

describe("PyPA YAML", () => {
  it("PYSEC-2019-217: versions stay strings ('2.10' is not 2.1), the name is normalised", () => {
    const a = one("osv/pypi/PYSEC-2019-217.yaml");
    expect(a.id).toBe("PYSEC-2019-217");
    expect(a.aliases).toEqual(["CVE-2019-10906", "GHSA-462w-v97r-4m45"]);
    expect(a.advisoryIds).toEqual(["GHSA-462w-v97r-4m45"]);
    expect(a.modified).toBe("2021-11-22T04:57:52.862665Z");
    expect(a.published).toBe("2019-04-07T00:29:00Z");
    expect(a.details).toBe("In Pallets Jinja before 2.10.1, str.format_map allows a sandbox escape.");
    expect(a.summary).toBeUndefined();
    expect(a.severity).toBe("Unknown");
    expect(a.references).toHaveLength(20);
    const p = a.affected[0];
    expect(p?.ecosystem).toBe("PyPI");
    expect(p?.name).toBe("jinja2");
    expect(p?.ranges).toEqual([{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "2.10.1" }] }]);
    expect(p?.versions).toHaveLength(31);
    expect(p?.versions?.every((v) => typeof v === "string")).toBe(true);
    expect(p?.versions).toContain("2.10");
    expect(p?.versions).toContain("2.0");
    expect(p?.versions).toContain("2.0rc1");
    expect(p?.versions).not.toContain("2.1.0");
    expect(p?.versions).not.toContain("2.10.1");
    expect(p?.versions?.slice(0, 5)).toEqual(["2.0", "2.0rc1", "2.1", "2.1.1", "2.10"]);
    expect(p?.detail).toEqual({ purl: "pkg:pypi/jinja2" });
  });

  it("normalises PyPI names by PEP 503 and leaves other ecosystems alone", () => {
    expect(normaliseName("PyPI", "Foo.Bar__baz-Qux")).toBe("foo-bar-baz-qux");
    expect(normaliseName("PyPI", "Jinja2")).toBe("jinja2");
    expect(normaliseName("npm", "@Scope/Name")).toBe("@Scope/Name");
    expect(normaliseName("Maven", "org.apache.logging.log4j:log4j-core")).toBe("org.apache.logging.log4j:log4j-core");
    expect(normaliseName("Go", "github.com/Foo/bar")).toBe("github.com/Foo/bar");
  });
});

describe("GitHub advisories", () => {
  it("GHSA-c2qf-rxjj-qqgw: semver as three affected entries; MODERATE → Medium; CVSS 3.1 scored", () => {
    const a = one("osv/ghsa/GHSA-c2qf-rxjj-qqgw.json");
    expect(a.aliases).toEqual(["CVE-2022-25883"]);
    expect(a.advisoryIds).toEqual([]);
    expect(a.severity).toBe("Medium");
    expect(a.vendorSeverity).toBe("MODERATE");
    expect(a.cvss).toEqual([{ version: "3.1", vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", score: 5.3, source: "ghsa" }]);
    expect(a.affected.map((p) => [p.ecosystem, p.name, p.ranges[0]?.events])).toEqual([
      ["npm", "semver", [{ introduced: "7.0.0" }, { fixed: "7.5.2" }]],
      ["npm", "semver", [{ introduced: "6.0.0" }, { fixed: "6.3.1" }]],
      ["npm", "semver", [{ introduced: "0" }, { fixed: "5.7.2" }]],
    ]);
    expect(a.affected.every((p) => p.fixState === "affected" && p.nameKind === "binary")).toBe(true);
  });

  it("GHSA-35jh-r3h4-6jhm: lodash and lodash-es, HIGH, affected functions kept", () => {
    const a = one("osv/ghsa/GHSA-35jh-r3h4-6jhm.json");
    expect(a.severity).toBe("High");
    expect(a.vendorSeverity).toBe("HIGH");
    expect(a.cvss[0]?.score).toBe(7.2);
    expect(a.affected.map((p) => p.name)).toEqual(["lodash", "lodash-es"]);
    expect(a.affected.map((p) => p.fixedVersions)).toEqual([["4.17.21"], ["4.17.21"]]);
    expect(a.affected[0]?.detail).toEqual({ affectedFunctions: ["lodash.template"] });
  });

  it("GHSA-jfh8-c2jp-5v3q: Log4Shell Maven ranges, CRITICAL, 62 references", () => {
    const a = one("osv/ghsa/GHSA-jfh8-c2jp-5v3q.json");
    expect(a.aliases).toEqual(["CVE-2021-44228"]);
    expect(a.severity).toBe("Critical");
    expect(a.cvss[0]?.score).toBe(10);
    expect(a.references).toHaveLength(62);
    expect(a.details).toContain("JNDI");
    expect(a.affected.map((p) => [p.ecosystem, p.name, p.ranges[0]?.events])).toEqual([
      ["Maven", "org.apache.logging.log4j:log4j-core", [{ introduced: "2.13.0" }, { fixed: "2.15.0" }]],
      ["Maven", "org.apache.logging.log4j:log4j-core", [{ introduced: "0" }, { fixed: "2.3.1" }]],
      ["Maven", "org.apache.logging.log4j:log4j-core", [{ introduced: "2.4" }, { fixed: "2.12.2" }]],
    ]);
  });

  it("GHSA-h5c8-rqwp-cp95: PyPI jinja2 before 3.1.3", () => {
    const a = one("osv/ghsa/GHSA-h5c8-rqwp-cp95.json");
    expect(a.aliases).toEqual(["CVE-2024-22195"]);
    expect(a.severity).toBe("Medium");
    expect(a.cvss[0]?.score).toBe(5.4);
    expect(a.affected).toEqual([
      {
        ecosystem: "PyPI",
        name: "jinja2",
        nameKind: "binary",
        fixState: "affected",
        fixedVersions: ["3.1.3"],
        ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "3.1.3" }] }],
      },
    ]);
  });
});

describe("Ubuntu OSV", () => {
  it("UBUNTU-CVE-2022-1271: the CVE is an alias, USNs are advisory ids, related is kept apart; Pro ecosystems", () => {
    const a = one("ubuntu/UBUNTU-CVE-2022-1271.json");
    expect(a.aliases).toEqual(["CVE-2022-1271"]);
    expect(a.related).toEqual(["CVE-2022-1271", "USN-5378-1", "USN-5378-2", "USN-5378-3", "USN-5378-4"]);
    expect(a.advisoryIds).toEqual(["USN-5378-1", "USN-5378-2", "USN-5378-3", "USN-5378-4"]);
    expect(a.severity).toBe("Medium");
    expect(a.vendorSeverity).toBe("medium");
    expect(a.cvss[0]).toEqual({ version: "3.1", vector: "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", score: 8.8, source: "ubuntu" });
    expect(a.affected.map((p) => `${p.ecosystem} ${p.name}`)).toEqual([
      "Ubuntu:Pro:14.04:LTS gzip",
      "Ubuntu:Pro:14.04:LTS xz-utils",
      "Ubuntu:Pro:16.04:LTS gzip",
      "Ubuntu:Pro:16.04:LTS xz-utils",
      "Ubuntu:18.04:LTS gzip",
      "Ubuntu:18.04:LTS xz-utils",
      "Ubuntu:20.04:LTS gzip",
      "Ubuntu:20.04:LTS xz-utils",
      "Ubuntu:22.04:LTS gzip",
      "Ubuntu:22.04:LTS xz-utils",
    ]);
    expect(a.affected.every((p) => p.nameKind === "source" && p.fixState === "fixed" && p.vendorSeverity === "medium")).toBe(true);
    const gzip = a.affected.find((p) => p.ecosystem === "Ubuntu:18.04:LTS" && p.name === "gzip");
    expect(gzip?.fixedVersions).toEqual(["1.6-5ubuntu1.2"]);
    expect(gzip?.versions).toEqual(["1.6-5ubuntu1", "1.6-5ubuntu1.1"]);
    expect(gzip?.detail?.availability).toBe("No subscription required");
    // The purl has two `?`: kept verbatim for display, never parsed.
    expect(gzip?.detail?.purl).toBe("pkg:deb/ubuntu/gzip?arch=src?distro=bionic");
    const xz = a.affected.find((p) => p.ecosystem === "Ubuntu:18.04:LTS" && p.name === "xz-utils");
    expect(xz?.fixedVersions).toEqual(["5.2.2-1.3ubuntu0.1"]);
    expect(xz?.versions).toEqual(["5.2.2-1.3"]);
    expect(xz?.detail?.binaries).toContainEqual({ name: "liblzma5", version: "5.2.2-1.3ubuntu0.1" });
    const pro = a.affected.find((p) => p.ecosystem === "Ubuntu:Pro:14.04:LTS" && p.name === "gzip");
    expect(pro?.detail?.availability).toBe("Available with Ubuntu Pro (Infra-only): https://ubuntu.com/pro");
  });

  it("UBUNTU-CVE-2023-4911: 22.04 and 24.04 only (no 18.04), 24.04 with an empty versions list", () => {
    const a = one("ubuntu/UBUNTU-CVE-2023-4911.json");
    expect(a.aliases).toEqual(["CVE-2023-4911"]);
    expect(a.advisoryIds).toEqual(["USN-6409-1"]);
    expect(a.severity).toBe("High");
    expect(a.vendorSeverity).toBe("high");
    expect(a.affected.map((p) => p.ecosystem)).toEqual(["Ubuntu:22.04:LTS", "Ubuntu:24.04:LTS"]);
    expect(a.affected.some((p) => p.ecosystem.includes("18.04"))).toBe(false);
    const noble = a.affected[1];
    expect(noble?.name).toBe("glibc");
    expect(noble?.versions).toEqual([]);
    expect(noble?.fixState).toBe("fixed");
    expect(noble?.fixedVersions).toEqual(["2.38-1ubuntu6"]);
    expect(a.affected[0]?.versions).toEqual(["2.34-0ubuntu3", "2.35-0ubuntu1", "2.35-0ubuntu3", "2.35-0ubuntu3.1", "2.35-0ubuntu3.3"]);
    expect(a.affected[0]?.detail?.binaries).toHaveLength(28);
  });

  it("newer Ubuntu records: severity type Ubuntu, upstream CVEs, a range without a fix → not_fixed", () => {
    const { advisory, skipped } = mapOsvRecord(
      {
        schema_version: "1.7.0",
        id: "UBUNTU-CVE-2025-0001",
        modified: "2025-01-02T00:00:00Z",
        upstream: ["CVE-2025-0001"],
        related: ["USN-7000-1"],
        severity: [
          { type: "Ubuntu", score: "low" },
          { type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" },
        ],
        affected: [
          { package: { ecosystem: "Ubuntu:24.04:LTS", name: "openssl" }, ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }] }], versions: ["3.0.13-0ubuntu3"] },
        ],
      },
      { file: "u.json", record: "UBUNTU-CVE-2025-0001" },
    );
    expect(skipped).toEqual([]);
    expect(advisory?.aliases).toEqual(["CVE-2025-0001"]);
    expect(advisory?.upstream).toEqual(["CVE-2025-0001"]);
    expect(advisory?.advisoryIds).toEqual(["USN-7000-1"]);
    // The distribution's own priority wins over the CVSS score (9.8).
    expect(advisory?.severity).toBe("Low");
    expect(advisory?.vendorSeverity).toBe("low");
    expect(advisory?.affected[0]?.fixState).toBe("not_fixed");
    expect(advisory?.affected[0]?.fixedVersions).toEqual([]);
  });
});

describe("all OSV fixtures together", () => {
  it("parses 10 advisories, skips nothing, knows every ecosystem", () => {
    const r = parseOsv(OSV_FILES.map(fixture));
    expect(r.skipped).toEqual([]);
    expect(r.advisories.map((a) => a.id)).toEqual([
      "GO-2023-1752",
      "GO-2022-0969",
      "GO-2022-0907",
      "PYSEC-2019-217",
      "GHSA-35jh-r3h4-6jhm",
      "GHSA-c2qf-rxjj-qqgw",
      "GHSA-jfh8-c2jp-5v3q",
      "GHSA-h5c8-rqwp-cp95",
      "UBUNTU-CVE-2022-1271",
      "UBUNTU-CVE-2023-4911",
    ]);
    expect(r.unknownEcosystems.size).toBe(0);
    expect(Object.fromEntries(r.ecosystems)).toEqual({
      Go: 4,
      PyPI: 2,
      npm: 5,
      Maven: 3,
      "Ubuntu:Pro:14.04:LTS": 2,
      "Ubuntu:Pro:16.04:LTS": 2,
      "Ubuntu:18.04:LTS": 2,
      "Ubuntu:20.04:LTS": 2,
      "Ubuntu:22.04:LTS": 3,
      "Ubuntu:24.04:LTS": 1,
    });
  });

  it("detects every fixture as OSV, and nothing else", () => {
    for (const f of OSV_FILES) expect(detectOsv(fixture(f)), f).toBe(true);
    for (const f of [
      "nodejs/core/index.json",
      "enrichment/nvd/feed.json",
      "enrichment/kev/known_exploited_vulnerabilities.json",
      "enrichment/epss/data.csv",
      "debian/vunnel/debian.json",
      "alpine/secdb/v3.15/main.yaml",
      "redhat/cve-2024-28085.json",
    ]) {
      expect(detectOsv(fixture(f)), f).toBe(false);
    }
  });
});

describe("robustness (C10, records edited inside the test)", () => {
  it("a withdrawn copy is parsed with withdrawn set", () => {
    const raw = JSON.parse(readFileSync(new URL("osv/ghsa/GHSA-c2qf-rxjj-qqgw.json", FIXTURES), "utf8")) as Record<string, unknown>;
    raw.withdrawn = "2024-02-01T00:00:00Z";
    const r = parseOsv([json(raw, "GHSA-c2qf-rxjj-qqgw.json")]);
    expect(r.advisories[0]?.withdrawn).toBe("2024-02-01T00:00:00Z");
    expect(r.advisories[0]?.affected).toHaveLength(3);
  });

  it("an unknown ecosystem is parsed and counted", () => {
    const r = parseOsv([json(record({ affected: [{ package: { ecosystem: "Foo", name: "bar" }, versions: ["1.0"] }] }))]);
    expect(r.skipped).toEqual([]);
    expect(r.advisories[0]?.affected[0]).toMatchObject({ ecosystem: "Foo", name: "bar", versions: ["1.0"], fixState: "affected" });
    expect(Object.fromEntries(r.unknownEcosystems)).toEqual({ Foo: 1 });
  });

  it("GIT ranges are kept (they never match: commits are not versions), with the repository; no package → skipped", () => {
    const r = parseOsv([
      json(
        record({
          affected: [
            {
              package: { ecosystem: "OSS-Fuzz", name: "libfoo" },
              ranges: [{ type: "GIT", repo: "https://example.org/libfoo.git", events: [{ introduced: "0" }, { fixed: "a".repeat(40) }] }],
            },
            { ranges: [{ type: "GIT", repo: "https://example.org/libbar.git", events: [{ introduced: "0" }, { fixed: "b".repeat(40) }] }] },
          ],
        }),
      ),
    ]);
    const p = r.advisories[0]?.affected;
    expect(p).toHaveLength(1);
    expect(p?.[0]?.ranges[0]?.type).toBe("GIT");
    expect(p?.[0]?.fixedVersions).toEqual([]);
    expect(p?.[0]?.detail?.repos).toEqual(["https://example.org/libfoo.git"]);
    expect(r.skipped).toEqual([
      {
        file: "rec.json",
        record: "GHSA-aaaa-bbbb-cccc#affected[1]",
        reason: "no package: a GIT-only entry (commit ranges need the repository), nothing to match by name and version",
      },
    ]);
  });

  it("an empty affected list gives an advisory with no packages", () => {
    const r = parseOsv([json(record({ affected: [] }))]);
    expect(r.skipped).toEqual([]);
    expect(r.advisories[0]?.affected).toEqual([]);
  });

  it("reads an OSV export archive with several records, skipping what is not a usable record", () => {
    const rec = (id: string, name: string) => strToU8(JSON.stringify(record({ id, affected: [{ package: { ecosystem: "npm", name }, versions: ["1.0.0"] }] })));
    const zip = zipSync({
      "GHSA-1111-1111-1111.json": rec("GHSA-1111-1111-1111", "a"),
      "GHSA-2222-2222-2222.json": rec("GHSA-2222-2222-2222", "b"),
      "MAL-2024-1.json": rec("MAL-2024-1", "c"),
      "README.txt": strToU8("not a record"),
      "broken.json": strToU8("{ nope"),
      "shape.json": strToU8(JSON.stringify({ id: "GHSA-3333-3333-3333" })),
    });
    const file = { path: "npm/all.zip", bytes: Buffer.from(zip) };
    expect(detectOsv(file)).toBe(true);
    const r = parseOsv([file]);
    expect(r.advisories.map((a) => [a.id, a.origin])).toEqual([
      ["GHSA-1111-1111-1111", { file: "npm/all.zip", record: "GHSA-1111-1111-1111.json" }],
      ["GHSA-2222-2222-2222", { file: "npm/all.zip", record: "GHSA-2222-2222-2222.json" }],
      ["MAL-2024-1", { file: "npm/all.zip", record: "MAL-2024-1.json" }],
    ]);
    expect(r.skipped.map((s) => s.record)).toEqual(["README.txt", "broken.json", "shape.json"]);
    expect(r.skipped[1]?.reason).toMatch(/^archive npm\/all\.zip, entry broken\.json: invalid JSON/);
    expect(r.skipped[2]?.reason).toBe("invalid OSV record: modified: Invalid input: expected string, received undefined");
  });

  it("refuses an archive with a `..` entry, naming archive and entry", () => {
    const zip = zipSync({ "ok.json": strToU8(JSON.stringify(record())), "../../etc/evil.json": strToU8("{}") });
    const e = catchError(() => parseOsv([{ path: "PyPI/all.zip", bytes: Buffer.from(zip) }]));
    expect(e.code).toBe("ZIP_PATH");
    expect(e.message).toContain("archive PyPI/all.zip, entry ../../etc/evil.json");
  });

  it("records of the wrong shape are skipped with the reason, never a crash", () => {
    const cases: Array<[unknown, string]> = [
      [[1, 2], "not an OSV record: expected a JSON object"],
      [record({ id: undefined }), "invalid OSV record: id: Invalid input: expected string, received undefined"],
      [record({ id: "GHSA has spaces" }), "invalid OSV record: id: not an advisory id"],
      [record({ id: "X".repeat(200) }), "invalid OSV record: id: not an advisory id"],
      [record({ modified: "yesterday" }), "invalid OSV record: modified: not an RFC 3339 timestamp"],
      [record({ aliases: "CVE-2024-1" }), "invalid OSV record: aliases: Invalid input: expected array, received string"],
      [record({ affected: { package: {} } }), "invalid OSV record: affected: Invalid input: expected array, received object"],
      [record({ summary: 42 }), "invalid OSV record: summary: Invalid input: expected string, received number"],
    ];
    for (const [value, reason] of cases) {
      const { advisory, skipped } = mapOsvRecord(value, { file: "f.json", record: "r" });
      expect(advisory, reason).toBeUndefined();
      expect(skipped[0]?.reason.startsWith(reason), `${skipped[0]?.reason} vs ${reason}`).toBe(true);
    }
  });

  it("an unusable affected entry or severity is skipped alone; the rest of the record stays", () => {
    const good = { package: { ecosystem: "npm", name: "ok" }, ranges: [{ type: "SEMVER", events: [{ introduced: "0" }, { fixed: "2.0.0" }] }] };
    const r = parseOsv([
      json(
        record({
          severity: [{ type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:L" }, { type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }],
          affected: [
            good,
            { package: { ecosystem: "npm", name: "a" }, ranges: [{ type: "SEMVER", events: [{ introduced: "0", fixed: "1" }] }] },
            { package: { ecosystem: "npm", name: "b" }, versions: [1.5] },
            { package: { ecosystem: "npm", name: "c" }, ranges: [{ type: "SEMVER", events: [{ fixed: "1.0.0" }] }] },
            { package: { ecosystem: "npm", name: "d" }, ranges: [{ type: "WHATEVER", events: [{ introduced: "0" }] }] },
            { package: { ecosystem: "npm", name: "e" } },
            { package: { ecosystem: "npm", name: "f" }, versions: ["x".repeat(300)] },
            { package: { ecosystem: "npm", name: "g" }, ranges: [{ type: "SEMVER", events: [{ introduced: "0" }, { fixed: "1" }, { last_affected: "2" }] }] },
          ],
        }),
      ),
    ]);
    const a = r.advisories[0];
    expect(a?.affected.map((p) => p.name)).toEqual(["ok"]);
    expect(a?.cvss.map((c) => c.score)).toEqual([9.8]);
    expect(a?.severity).toBe("Critical");
    expect(r.skipped.map((s) => [s.record, s.reason])).toEqual([
      ["GHSA-aaaa-bbbb-cccc#severity[0]", 'CVSS vector "CVSS:3.1/AV:N/AC:L": Base metrics PR, UI, S, C, I, A missing'],
      ["GHSA-aaaa-bbbb-cccc#affected[1]", "invalid affected entry: ranges[0].events[0]: an event must have exactly one of introduced, fixed, last_affected, limit"],
      ["GHSA-aaaa-bbbb-cccc#affected[2]", "invalid affected entry: versions[0]: Invalid input: expected string, received number"],
      ["GHSA-aaaa-bbbb-cccc#affected[3]", "ranges[0]: no introduced event"],
      ["GHSA-aaaa-bbbb-cccc#affected[4]", 'ranges[0]: unknown range type "WHATEVER"'],
      ["GHSA-aaaa-bbbb-cccc#affected[5]", "neither ranges nor versions: under OSV's rules no version is affected"],
      ["GHSA-aaaa-bbbb-cccc#affected[6]", "invalid affected entry: versions[0]: version longer than 256 characters"],
      ["GHSA-aaaa-bbbb-cccc#affected[7]", "ranges[0]: both fixed and last_affected events (the schema allows one kind)"],
    ]);
  });

  it("keeps only http(s) references and valid alias ids", () => {
    const r = parseOsv([
      json(
        record({
          aliases: ["CVE-2024-0001", "not an id", "GHSA-aaaa-bbbb-cccc", "CVE-2024-0001"],
          references: [{ type: "WEB", url: "javascript:alert(1)" }, { type: "WEB", url: "https://example.org/a" }, { url: "file:///etc/passwd" }, "junk", { type: "weird type", url: "http://example.org/b" }],
        }),
      ),
    ]);
    expect(r.advisories[0]?.aliases).toEqual(["CVE-2024-0001"]);
    expect(r.advisories[0]?.references).toEqual([{ type: "WEB", url: "https://example.org/a" }, { url: "http://example.org/b" }]);
  });

  it("no prototype pollution from JSON or YAML", () => {
    const text = `{"__proto__":{"polluted":1},"id":"GHSA-aaaa-bbbb-cccc","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x","__proto__":{"polluted":2}},"versions":["1"],"database_specific":{"__proto__":{"polluted":3}},"ecosystem_specific":{"__proto__":{"polluted":4},"affected_functions":["f"]}}]}`;
    const r = parseOsv([{ path: "p.json", bytes: Buffer.from(text) }]);
    // The same key written with \u escapes, which JSON.parse decodes to __proto__.
    const escaped = text.replace('{"__proto__"', '{"\\u005f\\u005fproto\\u005f\\u005f"');
    expect(escaped).toContain("u005fproto");
    const e = parseOsv([{ path: "e.json", bytes: Buffer.from(escaped) }]);
    expect(e.advisories).toHaveLength(1);
    const yaml = "id: GHSA-aaaa-bbbb-cccc\nmodified: '2024-01-01T00:00:00Z'\n__proto__:\n  polluted: 5\naffected: []\n";
    const y = parseOsv([{ path: "p.yaml", bytes: Buffer.from(yaml) }]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(r.advisories[0]) === Object.prototype).toBe(true);
    expect(r.advisories[0]?.affected[0]?.detail).toEqual({ affectedFunctions: ["f"] });
    expect(y.advisories).toHaveLength(1);
  });

  it("reads a JSON array of records", () => {
    const r = parseOsv([json([record({ id: "GHSA-1111-1111-1111" }), record({ id: "GHSA-2222-2222-2222" }), "junk"], "list.json")]);
    expect(r.advisories.map((a) => a.origin)).toEqual([
      { file: "list.json", record: "[0]" },
      { file: "list.json", record: "[1]" },
    ]);
    expect(r.skipped).toEqual([{ file: "list.json", record: "[2]", reason: "not an OSV record: expected a JSON object" }]);
  });

  it("a file that cannot be read at all is an error naming the file", () => {
    const badJson = catchError(() => parseOsv([{ path: "npm/GHSA-x.json", bytes: Buffer.from('{"id": "GHSA-x",') }]));
    expect(badJson.code).toBe("BAD_JSON");
    expect(badJson.message).toMatch(/^file npm\/GHSA-x\.json: invalid JSON/);
    const badYaml = catchError(() => parseOsv([{ path: "vulns/x/PYSEC-1.yaml", bytes: Buffer.from("id: [unclosed\n") }]));
    expect(badYaml.code).toBe("BAD_YAML");
    expect(badYaml.message).toMatch(/^file vulns\/x\/PYSEC-1\.yaml: invalid YAML/);
    const aliases = catchError(() => parseOsv([{ path: "a.yaml", bytes: Buffer.from("a: &x [1]\nb: *x\n") }]));
    expect(aliases.code).toBe("BAD_YAML");
    const big = catchError(() => parseOsv([json(record({ details: "x".repeat(2000) }), "big.json")], { limits: { maxRecordFileBytes: 1000 } }));
    expect(big.code).toBe("FILE_TOO_LARGE");
    expect(big.message).toMatch(/^file big\.json: \d+ bytes, over the limit of 1000/);
    const text = catchError(() => parseOsv([{ path: "notes.txt", bytes: Buffer.from("hello") }]));
    expect(text.code).toBe("UNRECOGNISED");
    const utf = catchError(() => parseOsv([{ path: "x.json", bytes: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }]));
    expect(utf.code).toBe("BAD_ENCODING");
  });

  it("YAML scalars that look like numbers stay strings; null and booleans keep their meaning", () => {
    const yaml = [
      "id: PYSEC-2024-1",
      "modified: '2024-01-01T00:00:00Z'",
      "summary: null",
      "affected:",
      "- package: {ecosystem: PyPI, name: Foo_Bar}",
      "  versions: [2.10, 1.0, 010, 1e3, 0x1F, '2.10']",
      "  database_specific: {reviewed: true}",
    ].join("\n");
    const r = parseOsv([{ path: "x.yaml", bytes: Buffer.from(yaml) }]);
    expect(r.skipped).toEqual([]);
    expect(r.advisories[0]?.summary).toBeUndefined();
    expect(r.advisories[0]?.affected[0]?.name).toBe("foo-bar");
    expect(r.advisories[0]?.affected[0]?.versions).toEqual(["2.10", "1.0", "010", "1e3", "0x1F", "2.10"]);
  });
});

describe("NuGet names", () => {
  it("are lower-cased, as NuGet ids are case-insensitive", () => {
    expect(normaliseName("NuGet", "Newtonsoft.Json")).toBe("newtonsoft.json");
    expect(normaliseName("npm", "JSONStream")).toBe("JSONStream");
  });
});
