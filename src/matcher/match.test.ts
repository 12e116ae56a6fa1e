// The fixture README's expected matches (C1-C11), end to end: inventories indexed by the real scanners,
// advisories parsed by the real parsers from the real fixture files, candidates served in memory with the
// store's contract.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseAlpine } from "../advisories/sources/alpine/index.js";
import { parse as parseDebian } from "../advisories/sources/debian/index.js";
import { parseNodejsCore } from "../advisories/sources/nodejs/index.js";
import { parseOsv } from "../advisories/sources/osv/index.js";
import { parse as parseRedhat } from "../advisories/sources/redhat/index.js";
import type { Advisory, RawFile } from "../model/advisory.js";
import { buildReport, coalesce } from "../indexer/coalesce.js";
import type { IndexReport } from "../model/index-report.js";
import type { Candidate } from "../store/advisory-types.js";
import { matchReport, matchReportWith, type MatchOptions } from "./match.js";
import { ownershipFromDpkgLists } from "./ownership.js";
import { advisoryFile, candidatesOf, goBinary, indexImage, inMemoryLookup, OS_RELEASE, packageFixture } from "./testing.js";
import { fixturesDir } from "../scanners/testing.js";
import type { Match } from "../model/match.js";

const BEFORE_EOL = new Date("2025-01-01T00:00:00Z");
const NOW = new Date("2026-12-04T00:00:00Z");
const raw = (path: string, text: string): RawFile => ({ path, bytes: Buffer.from(text) });
const all = (): MatchOptions => ({ ecosystemsWithData: () => true, now: BEFORE_EOL });
/** (package name, vulnerability id, fixed in) triples, sorted. */
const triples = (ms: readonly Match[]) => ms.map((m) => `${m.package.name} ${m.id} ${m.fixedIn ?? "-"}`).sort();
const dpkg = (paragraphs: Array<{ name: string; version: string; source?: string }>) =>
  paragraphs.map((p) => `Package: ${p.name}\nStatus: install ok installed\nMaintainer: M <m@example.org>\nArchitecture: amd64\n${p.source ? `Source: ${p.source}\n` : ""}Version: ${p.version}\n`).join("\n");

function osvRecords(files: Array<[string, RawFile]>): Candidate[] {
  return files.flatMap(([source, f]) => {
    const r = parseOsv([f]);
    expect(r.skipped).toEqual([]);
    return candidatesOf(source, r.advisories);
  });
}

describe("C1 Alpine 3.18 (apk installed × vuln-list secdb files, by origin)", async () => {
  const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.alpine318 }, { name: "lib/apk/db/installed", content: packageFixture("apk/alpine-3.18/installed") }]]);
  const parsed = parseAlpine(["openssl", "busybox", "musl", "zlib", "apk-tools"].map((p) => advisoryFile(`alpine/vuln-list/3.18/main/${p}.json`, `3.18/main/${p}.json`)));
  const candidates = candidatesOf("alpine", parsed.advisories);
  const result = matchReport(report, candidates, { ecosystemsWithData: new Set(["Alpine:v3.18"]), now: BEFORE_EOL });

  const openssl: Array<[string, string]> = [
    ["CVE-2023-2650", "3.1.1-r0"], ["CVE-2023-2975", "3.1.1-r2"], ["CVE-2023-3446", "3.1.1-r3"], ["CVE-2023-3817", "3.1.2-r0"],
    ["CVE-2023-5363", "3.1.4-r0"], ["CVE-2023-5678", "3.1.4-r1"], ["CVE-2023-6129", "3.1.4-r3"], ["CVE-2023-6237", "3.1.4-r4"],
  ]; // prettier-ignore
  const busybox: Array<[string, string]> = [["CVE-2022-48174", "1.36.1-r1"], ["CVE-2023-42363", "1.36.1-r7"], ["CVE-2023-42364", "1.36.1-r7"], ["CVE-2023-42365", "1.36.1-r7"], ["CVE-2023-42366", "1.36.1-r6"]];
  const expected = [
    ...["libcrypto3", "libssl3"].flatMap((p) => openssl.map(([id, fix]) => `${p} ${id} ${fix}`)),
    ...["busybox", "busybox-binsh", "ssl_client"].flatMap((p) => busybox.map(([id, fix]) => `${p} ${id} ${fix}`)),
    ...["musl", "musl-utils"].map((p) => `${p} CVE-2025-26519 1.2.4-r3`),
  ].sort();

  it("exactly the 33 (package, CVE) matches of the README, each with its fix", () => {
    expect(parsed.skipped).toEqual([]);
    expect(result.matches).toHaveLength(33);
    expect(triples(result.matches)).toEqual(expected);
    expect(new Set(result.matches.map((m) => m.id)).size).toBe(14);
    expect(new Set(result.matches.map((m) => m.package.name)).size).toBe(7);
  });

  it("none of the must-not-match ids: the fix at the installed version, JSON key order, '0' entries, old fixes", () => {
    const ids = new Set(result.matches.map((m) => m.id));
    for (const id of [
      "CVE-2023-1255", "CVE-2022-30065", "ALPINE-13661", "CVE-2022-1292", "CVE-2022-2068", "CVE-2022-2274", "CVE-2023-0466", "CVE-2023-4807",
      "CVE-2021-42373", "CVE-2021-42376", "CVE-2021-42377", "CVE-2023-45853", "CVE-2023-6992", "CVE-2020-28928", "CVE-2021-30139", "CVE-2021-36159",
    ]) expect(ids.has(id), id).toBe(false); // prettier-ignore
  });

  it("each match says what was compared, with what, and where the package came from", () => {
    const m = result.matches.find((x) => x.package.name === "libssl3" && x.id === "CVE-2023-2650")!;
    expect(m).toMatchObject({
      aliases: [],
      package: { name: "libssl3", version: "3.1.0-r4", type: "apk", source: { name: "openssl", version: "3.1.0-r4" }, packageDb: "lib/apk/db/installed" },
      installedVersionCompared: "3.1.0-r4",
      fixState: "fixed",
      fixedIn: "3.1.1-r0",
      severity: "Unknown",
      introducedIn: expect.stringMatching(/^sha256:/),
      matchedBy: [{ source: "alpine", operationRef: "alpine-op-1", ecosystem: "Alpine:v3.18", record: "CVE-2023-2650", origin: { file: "3.18/main/openssl.json", record: "CVE-2023-2650" }, name: "openssl", nameKind: "source", fixState: "fixed", fixedIn: "3.1.1-r0", via: "range" }],
    });
    expect(m.introducedIn).toBe(report.environments![m.package.id]![0]!.introduced_in);
  });

  it("packages whose origins have no secdb entry are 'no advisory data', not clean; zlib and apk-tools have data and no finding", () => {
    expect(result.withoutAdvisoryData.map((w) => w.package.name).sort()).toEqual(["alpine-baselayout", "alpine-baselayout-data", "alpine-keys", "ca-certificates-bundle", "libc-utils", "scanelf"]);
    expect(result.coverage).toMatchObject({ packages: 15, matched: 15, unmatchable: 0, governedByOs: 0, withoutAdvisoryData: 6, skippedRows: 0 });
    expect(result.coverage.distribution).toMatchObject({ state: "supported", ecosystem: "Alpine:v3.18" });
  });

  it("after 3.18's end of support the same matches come with end_of_life coverage", () => {
    const late = matchReport(report, candidates, { ecosystemsWithData: new Set(["Alpine:v3.18"]), now: NOW });
    expect(late.matches).toHaveLength(33);
    expect(late.coverage.distribution).toMatchObject({ state: "end_of_life", endOfLife: "2025-05-09" });
    expect(late.coverage.ecosystems).toEqual([{ ecosystem: "Alpine:v3.18", state: "end_of_life", packages: 15, reason: expect.stringContaining("end of support"), endOfLife: "2025-05-09" }]);
  });

  it("with a lookup function: the store is asked for the origin keys (and binary names), once", async () => {
    const lookup = inMemoryLookup(candidates);
    const viaLookup = await matchReportWith(report, lookup, { ecosystemsWithData: new Set(["Alpine:v3.18"]), now: BEFORE_EOL });
    expect(viaLookup).toEqual(result);
    expect(lookup.asked).toHaveLength(1);
    expect(lookup.asked[0]).toEqual(expect.arrayContaining([{ ecosystem: "Alpine:v3.18", name: "openssl" }, { ecosystem: "Alpine:v3.18", name: "busybox" }, { ecosystem: "Alpine:v3.18", name: "pax-utils" }]));
  });

  it("with no data for Alpine:v3.18 the distribution says so", () => {
    const none = matchReport(report, [], { ecosystemsWithData: () => false, now: BEFORE_EOL });
    expect(none.matches).toEqual([]);
    expect(none.coverage.distribution).toMatchObject({ state: "no_data", reason: "no advisory data for Alpine:v3.18 in the store" });
    expect(none.withoutAdvisoryData).toHaveLength(15);
  });
});

describe("C2 Ubuntu 18.04 (dpkg status × Ubuntu OSV)", async () => {
  const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.ubuntu1804 }, { name: "var/lib/dpkg/status", content: packageFixture("dpkg/ubuntu18.04-trivy/status") }]]);
  const candidates = osvRecords([
    ["ubuntu", advisoryFile("ubuntu/UBUNTU-CVE-2022-1271.json", "osv/cve/2022/UBUNTU-CVE-2022-1271.json")],
    ["ubuntu", advisoryFile("ubuntu/UBUNTU-CVE-2023-4911.json", "osv/cve/2023/UBUNTU-CVE-2023-4911.json")],
  ]);
  const result = matchReport(report, candidates, { ecosystemsWithData: (e) => e.startsWith("Ubuntu:"), now: NOW });

  it("gzip (no Source: field) and liblzma5 (through xz-utils) are affected; glibc has no 18.04 row", () => {
    expect(triples(result.matches)).toEqual(["gzip CVE-2022-1271 1.6-5ubuntu1.2", "liblzma5 CVE-2022-1271 5.2.2-1.3ubuntu0.1"]);
    expect(result.matches.some((m) => m.package.name === "libc6" || m.package.name === "libc-bin")).toBe(false);
  });

  it("liblzma5 is compared as its source version 5.1.1alpha+20120614-2, not a published 18.04 version: the range decides", () => {
    const m = result.matches.find((x) => x.package.name === "liblzma5")!;
    expect(m).toMatchObject({ installedVersionCompared: "5.1.1alpha+20120614-2", package: { version: "5.1.1alpha+20120614-2+b3", source: { name: "xz-utils" } } });
    expect(m.matchedBy).toMatchObject([{ record: "UBUNTU-CVE-2022-1271", ecosystem: "Ubuntu:18.04:LTS", name: "xz-utils", via: "range" }]);
  });

  it("gzip 1.6-5ubuntu1 is a listed 18.04 version; Ubuntu's priority is the severity; the USNs are the advisory ids", () => {
    const m = result.matches.find((x) => x.package.name === "gzip")!;
    expect(m).toMatchObject({ id: "CVE-2022-1271", aliases: ["UBUNTU-CVE-2022-1271"], severity: "Medium", vendorSeverity: "medium", fixState: "fixed", installedVersionCompared: "1.6-5ubuntu1" });
    expect(m.advisoryIds).toEqual(["USN-5378-1", "USN-5378-2", "USN-5378-3", "USN-5378-4"]);
    expect(m.matchedBy[0]!.via).toBe("versions");
  });

  it("glibc has advisory rows, but none for 18.04: 'no advisory data', not 'fixed'", () => {
    expect(result.withoutAdvisoryData.map((w) => w.package.name)).toEqual(expect.arrayContaining(["libc6", "libc-bin"]));
  });

  it("18.04 is past standard support; with Ubuntu Pro sources it is covered (and Pro rows would apply)", () => {
    expect(result.coverage.distribution).toMatchObject({ state: "end_of_life", ecosystem: "Ubuntu:18.04:LTS", endOfLife: "2023-05-31" });
    const pro = matchReport(report, candidates, { ecosystemsWithData: (e) => e.startsWith("Ubuntu:"), now: NOW, ubuntuPro: true });
    expect(pro.coverage.distribution?.state).toBe("supported");
    expect(triples(pro.matches)).toEqual(triples(result.matches));
  });
});

describe("C3 source version, not binary version (postgresql-common, DSA-4568-1)", async () => {
  const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.debian10 }, { name: "var/lib/dpkg/status", content: packageFixture("dpkg/postgresql-source-versions/status") }]]);
  // The tracker row and DSA-4568-1 as Debian publishes them (the DSA list date is written for this test).
  const tracker = (fixed: string) => JSON.stringify({ "postgresql-common": { "CVE-2019-3466": { releases: { buster: { status: "resolved", fixed_version: fixed, urgency: "high" } } } } });
  const dsa = "[13 Nov 2019] DSA-4568-1 postgresql-common - security update\n\t{CVE-2019-3466}\n\t[buster] - postgresql-common 200+deb10u3\n";

  it("200+deb10u5 ≥ 200+deb10u3: not affected, although the binary version 11+200+deb10u5 is below the fix", () => {
    const parsed = parseDebian([raw("debian.json", tracker("200+deb10u3")), raw("DSA/list", dsa)]);
    expect(parsed.skipped).toEqual([]);
    const result = matchReport(report, candidatesOf("debian", parsed.advisories), all());
    expect(result.matches).toEqual([]);
    expect(result.withoutAdvisoryData.map((w) => w.package.name)).toEqual(["postgresql-client-11"]);
  });

  it("the version compared is the source's: with a later fix (hypothetical 200+deb10u6) both binaries match as 200+deb10u5", () => {
    const parsed = parseDebian([raw("debian.json", tracker("200+deb10u6"))]);
    const result = matchReport(report, candidatesOf("debian", parsed.advisories), all());
    expect(result.matches.map((m) => [m.package.name, m.installedVersionCompared, m.fixedIn, m.severity, m.vendorSeverity])).toEqual([
      ["postgresql-client", "200+deb10u5", "200+deb10u6", "High", "high"],
      ["postgresql-client-common", "200+deb10u5", "200+deb10u6", "High", "high"],
    ]);
  });
});

describe("C4 Debian (offline part)", async () => {
  const debian12 = async (pkgs: Parameters<typeof dpkg>[0]) => indexImage([[{ name: "etc/os-release", content: OS_RELEASE.debian12 }, { name: "var/lib/dpkg/status", content: dpkg(pkgs) }]]);
  const gnutls = candidatesOf("debian", parseDebian([advisoryFile("debian/trivy-db/CVE-2023-5981.json", "CVE/CVE-2023-5981.json")]).advisories);
  const tracker = parseDebian([advisoryFile("debian/vunnel/debian.json", "debian.json"), advisoryFile("debian/vunnel/DSA", "DSA/list")]);
  const vunnel = candidatesOf("debian", tracker.advisories);

  it("libgnutls30 (source gnutls28) 3.7.9-2 is affected by CVE-2023-5981, fixed in 3.7.9-2+deb12u1; the fixed build is not", async () => {
    const before = matchReport(await debian12([{ name: "libgnutls30", version: "3.7.9-2", source: "gnutls28" }]), gnutls, all());
    expect(triples(before.matches)).toEqual(["libgnutls30 CVE-2023-5981 3.7.9-2+deb12u1"]);
    expect(before.matches[0]!.advisoryIds).toEqual([]); // the DLA names bullseye's row, not bookworm's
    const after = matchReport(await debian12([{ name: "libgnutls30", version: "3.7.9-2+deb12u1", source: "gnutls28" }]), gnutls, all());
    expect(after.matches).toEqual([]);
  });

  it("bookworm: sope 5.8.0-1 is affected by CVE-2025-53603 (DSA-5970-1); chromium 98.0.4758.80-1 is not affected by CVE-2022-0456", async () => {
    const r = matchReport(await debian12([{ name: "libsope1", version: "5.8.0-1", source: "sope" }, { name: "chromium", version: "98.0.4758.80-1" }]), vunnel, all());
    expect(triples(r.matches)).toEqual(["libsope1 CVE-2025-53603 5.8.0-1+deb12u1"]);
    expect(r.matches[0]!.advisoryIds).toEqual(["DSA-5970-1"]);
  });

  it("buster: prototypejs CVE-2007-2383 (fixed_version 0) never matches; chromium's open end-of-life row is affected, end_of_life, no fix", async () => {
    const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.debian10 }, { name: "var/lib/dpkg/status", content: dpkg([{ name: "libjs-prototype", version: "1.7.1-3.1", source: "prototypejs" }, { name: "chromium", version: "90.0.4430.212-1~deb10u1" }]) }]]);
    const r = matchReport(report, vunnel, all());
    expect(triples(r.matches)).toEqual(["chromium CVE-2022-0456 -"]);
    expect(r.matches[0]).toMatchObject({ fixState: "end_of_life", matchedBy: [{ fixState: "end_of_life", via: "range" }] });
    const old = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.debian10 }, { name: "var/lib/dpkg/status", content: dpkg([{ name: "libjs-prototype", version: "1.5.0-1", source: "prototypejs" }]) }]]);
    expect(triples(matchReport(old, vunnel, all()).matches)).toEqual(["libjs-prototype CVE-2008-7220 1.6.0.2-1"]);
  });

  describe("the OS-owned Jinja2: python3-jinja2's egg-info is governed by Debian's advisory, a pip-installed Jinja2 is not", async () => {
    const egg = "usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info";
    const report = await indexImage([
      [
        { name: "etc/os-release", content: OS_RELEASE.debian12 },
        { name: "var/lib/dpkg/status", content: dpkg([{ name: "python3-jinja2", version: "3.1.2-1+deb12u3", source: "jinja2" }]) },
        { name: `${egg}/PKG-INFO`, content: "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n" },
      ],
      [{ name: "usr/local/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA", content: "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n" }],
    ]);
    const list = ["/.", "/usr", "/usr/lib", "/usr/lib/python3", "/usr/lib/python3/dist-packages", `/${egg}`, `/${egg}/PKG-INFO`, "/usr/lib/python3/dist-packages/jinja2", "/usr/lib/python3/dist-packages/jinja2/__init__.py"].join("\n");
    const ownership = ownershipFromDpkgLists(report, new Map([["var/lib/dpkg/info/python3-jinja2.list", list]]));
    const ghsa = osvRecords([["osv-pypi", advisoryFile("osv/ghsa/GHSA-h5c8-rqwp-cp95.json")]]);
    // Debian's row for CVE-2024-22195 (fixed in 3.1.2-1+deb12u1, the changelog's answer), inline: the fixture tracker has no jinja2.
    const deb = candidatesOf("debian", parseDebian([raw("debian.json", JSON.stringify({ jinja2: { "CVE-2024-22195": { releases: { bookworm: { status: "resolved", fixed_version: "3.1.2-1+deb12u1", urgency: "low" } } } } }))]).advisories);
    const result = matchReport(report, [...ghsa, ...deb], { ...all(), ownership });

    it("no GHSA-h5c8-rqwp-cp95 match for the egg-info; Debian's row says the OS package is fixed", () => {
      expect(triples(result.matches)).toEqual(["Jinja2 CVE-2024-22195 3.1.3"]);
      expect(result.matches[0]!.package.packageDb).toBe("python:usr/local/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA");
    });

    it("the governed package is listed with its owner and the reason", () => {
      expect(result.governed).toEqual([
        {
          package: expect.objectContaining({ name: "Jinja2", packageDb: `python:${egg}/PKG-INFO` }),
          owner: { type: "dpkg", name: "python3-jinja2", version: "3.1.2-1+deb12u3", source: { name: "jinja2", version: "3.1.2-1+deb12u3" } },
          reason: "governed by the OS advisory for dpkg package python3-jinja2 3.1.2-1+deb12u3 (source jinja2 3.1.2-1+deb12u3)",
        },
      ]);
      expect(result.coverage.governedByOs).toBe(1);
    });

    it("with the .list in the image, the report itself carries the ownership: no option needed", async () => {
      const withList = await indexImage([
        [
          { name: "etc/os-release", content: OS_RELEASE.debian12 },
          { name: "var/lib/dpkg/status", content: dpkg([{ name: "python3-jinja2", version: "3.1.2-1+deb12u3", source: "jinja2" }]) },
          { name: "var/lib/dpkg/info/python3-jinja2.list", content: `${list}\n` },
          { name: `${egg}/PKG-INFO`, content: "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n" },
        ],
        [{ name: "usr/local/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA", content: "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n" }],
      ]);
      const r = matchReport(withList, [...ghsa, ...deb], all());
      expect(triples(r.matches)).toEqual(["Jinja2 CVE-2024-22195 3.1.3"]);
      expect(r.matches[0]!.package.packageDb).toBe("python:usr/local/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA");
      expect(r.governed.map((g) => `${g.package.packageDb} ${g.owner.name} ${g.owner.version}`)).toEqual([`python:${egg}/PKG-INFO python3-jinja2 3.1.2-1+deb12u3`]);
    });

    it("without ownership data the egg-info would be a false positive (why the input is needed)", () => {
      const naive = matchReport(report, [...ghsa, ...deb], all());
      expect(naive.matches.filter((m) => m.id === "CVE-2024-22195")).toHaveLength(2);
    });
  });
});

describe("C5 RHEL 8 (UBI 8 libuuid × Red Hat VEX: known_not_affected)", async () => {
  const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.ubi8 }, { name: "var/lib/rpm/Packages", content: packageFixture("rpm/ubi8-libuuid/Packages") }]]);
  const parsed = parseRedhat([advisoryFile("redhat/cve-2024-28085.json", "2024/cve-2024-28085.json")]);
  const result = matchReport(report, candidatesOf("redhat", parsed.advisories), { ecosystemsWithData: new Set(["RHEL:8"]), now: NOW });

  it("libuuid (source util-linux) is not affected by CVE-2024-28085, and that is data, not its absence", () => {
    expect(result.matches).toEqual([]);
    expect(result.withoutAdvisoryData).toEqual([]);
    expect(result.coverage).toMatchObject({ packages: 1, matched: 1, distribution: { state: "supported", ecosystem: "RHEL:8" } });
  });
});

describe("C6-C9 language packages in one image (npm, Go, PyPI, Maven) × the OSV records", async () => {
  const { zipSync } = await import("fflate");
  const jar = Buffer.from(zipSync({ "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties": Buffer.from("groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n") }));
  const report = await indexImage([
    [
      { name: "app/node_modules/lodash/package.json", content: JSON.stringify({ name: "lodash", version: "4.17.15" }) },
      { name: "app/node_modules/semver/package.json", content: JSON.stringify({ name: "semver", version: "7.5.1" }) },
      { name: "usr/local/bin/gofmt", mode: 0o755, content: goBinary("go1.19.8", { path: "cmd/gofmt", version: "" }, [{ path: "golang.org/x/net", version: "v0.0.0-20220722155237-a158d28d115b" }, { path: "k8s.io/kubernetes", version: "v1.20.6" }]) },
      { name: "usr/local/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA", content: "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n" },
      { name: "opt/app/log4j-core-2.14.1.jar", content: jar },
    ],
  ]);
  const sourceOf: Record<string, string> = { ghsa: "osv-ghsa", go: "osv-go", pypi: "osv-pypi" };
  const files = ["go/GO-2023-1752.json", "go/GO-2022-0969.json", "go/GO-2022-0907.json", "pypi/PYSEC-2019-217.yaml", "ghsa/GHSA-35jh-r3h4-6jhm.json", "ghsa/GHSA-c2qf-rxjj-qqgw.json", "ghsa/GHSA-jfh8-c2jp-5v3q.json", "ghsa/GHSA-h5c8-rqwp-cp95.json"];
  const candidates = osvRecords(files.map((f) => [sourceOf[f.split("/")[0]!]!, advisoryFile(`osv/${f}`)]));
  const result = matchReport(report, candidates, all());

  it("lodash, semver, stdlib go1.19.8, golang.org/x/net, Jinja2, log4j-core: one match each, nothing else", () => {
    expect(triples(result.matches)).toEqual([
      "Jinja2 CVE-2024-22195 3.1.3",
      "golang.org/x/net CVE-2022-27664 0.0.0-20220906165146-f3363e06e74c",
      "lodash CVE-2021-23337 4.17.21",
      "org.apache.logging.log4j:log4j-core CVE-2021-44228 2.15.0",
      "semver CVE-2022-25883 7.5.2",
      "stdlib CVE-2023-24540 1.19.9",
    ]);
    expect(result.unmatchable.map((u) => u.package.name)).toEqual(["cmd/gofmt"]); // no module version: built in GOROOT
  });

  it("the Go stdlib is compared as v1.19.8; records keep their ids as aliases", () => {
    const m = result.matches.find((x) => x.package.name === "stdlib")!;
    expect(m).toMatchObject({ installedVersionCompared: "v1.19.8", aliases: ["GO-2023-1752"], matchedBy: [{ source: "osv-go", record: "GO-2023-1752" }] });
    const net = result.matches.find((x) => x.package.name === "golang.org/x/net")!;
    expect(net).toMatchObject({ aliases: ["GHSA-69cg-p879-7622", "GO-2022-0969"], advisoryIds: ["GHSA-69cg-p879-7622"] });
  });

  it("GHSA severity is the record's (GHSA's word kept)", () => {
    expect(result.matches.find((x) => x.package.name === "org.apache.logging.log4j:log4j-core")).toMatchObject({ severity: "Critical", vendorSeverity: "CRITICAL", advisoryIds: ["GHSA-jfh8-c2jp-5v3q"] });
  });

  it("the same vulnerability through two records on one package is one match with both (GO + GHSA by id, GHSA + PYSEC by the CVE alone)", () => {
    const go = JSON.parse(advisoryFile("osv/go/GO-2022-0969.json").bytes.toString()) as { id: string; aliases: string[] };
    const ghsaCopy = { ...go, id: "GHSA-69cg-p879-7622", aliases: ["CVE-2022-27664"] };
    const pysecCopy = { ...(JSON.parse(advisoryFile("osv/ghsa/GHSA-h5c8-rqwp-cp95.json").bytes.toString()) as object), id: "PYSEC-2024-0", aliases: ["CVE-2024-22195"] };
    const extra = osvRecords([["osv-ghsa", raw("GHSA-69cg-p879-7622.json", JSON.stringify(ghsaCopy))], ["osv-pypi", raw("PYSEC-2024-0.json", JSON.stringify(pysecCopy))]]);
    const merged = matchReport(report, [...candidates, ...extra], all());
    expect(triples(merged.matches)).toEqual(triples(result.matches));
    const net = merged.matches.find((x) => x.package.name === "golang.org/x/net")!;
    expect(net.matchedBy.map((b) => `${b.source} ${b.record}`).sort()).toEqual(["osv-ghsa GHSA-69cg-p879-7622", "osv-go GO-2022-0969"]);
    const jinja = merged.matches.find((x) => x.package.name === "Jinja2")!;
    expect(jinja).toMatchObject({ id: "CVE-2024-22195", aliases: ["GHSA-h5c8-rqwp-cp95", "PYSEC-2024-0"] });
    expect(jinja.matchedBy).toHaveLength(2);
  });
});

describe("Ubuntu Pro rows apply only to images with ESM sources", async () => {
  const xenial = 'NAME="Ubuntu"\nVERSION_ID="16.04"\nID=ubuntu\nPRETTY_NAME="Ubuntu 16.04.7 LTS"\nVERSION_CODENAME=xenial\n';
  const report = await indexImage([[{ name: "etc/os-release", content: xenial }, { name: "var/lib/dpkg/status", content: dpkg([{ name: "gzip", version: "1.6-4ubuntu1" }]) }]]);
  const candidates = osvRecords([["ubuntu", advisoryFile("ubuntu/UBUNTU-CVE-2022-1271.json", "osv/cve/2022/UBUNTU-CVE-2022-1271.json")]]);
  it("16.04 has only a Pro row for gzip: matched with ESM sources, not without", () => {
    expect(matchReport(report, candidates, all()).matches).toEqual([]);
    const pro = matchReport(report, candidates, { ...all(), ubuntuPro: true });
    expect(triples(pro.matches)).toEqual(["gzip CVE-2022-1271 1.6-4ubuntu1+esm1"]);
    expect(pro.matches[0]!.matchedBy[0]!.ecosystem).toBe("Ubuntu:Pro:16.04:LTS");
  });
});

describe("RHEL module streams", () => {
  const rhel = (module?: string): IndexReport => ({
    manifest_hash: `sha256:${"b".repeat(64)}`, state: "IndexFinished", success: true,
    packages: { "1": { id: "1", name: "nodejs", version: "1:18.19.0-1.module+el8.9.0+20473+c4e3d824", ...(module ? { module } : {}), source: { id: "s1", name: "nodejs", version: "1:18.19.0-1.module+el8.9.0+20473+c4e3d824", kind: "SOURCE" } } },
    distributions: { "1": { id: "1", did: "rhel", name: "Red Hat Enterprise Linux", version: "8.9 (Ootpa)", version_code_name: "", version_id: "8.9", arch: "", pretty_name: "Red Hat Enterprise Linux 8.9 (Ootpa)" } },
    environments: { "1": [{ package_db: "var/lib/rpm/rpmdb.sqlite", introduced_in: `sha256:${"c".repeat(64)}`, distribution_id: "1" }] },
  }); // prettier-ignore
  const row = (module: string | undefined, fixed: string): Candidate => ({
    source: "redhat", operationRef: "redhat-op-1",
    advisory: { id: `CVE-2099-${module ?? "plain"}`, aliases: [], advisoryIds: [], severity: "High", cvss: [], references: [], origin: { file: "x.json", record: "x" } },
    affected: { ecosystem: "RHEL:8", name: "nodejs", nameKind: "source", ...(module ? { module } : {}), fixState: "fixed", fixedVersions: [fixed], ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed }] }] },
  }); // prettier-ignore
  const rows = [row("nodejs:18", "1:18.20.2-1.module+el8.10.0+21318+5ea197f8"), row("nodejs:20", "1:20.12.2-1.module+el8.10.0+21321+5b8b5b7a"), row(undefined, "1:20.0.0-1.el8")];

  it("a modular package matches only rows of its stream; a non-modular row does not apply to it", () => {
    expect(matchReport(rhel("nodejs:18"), rows, all()).matches.map((m) => m.id)).toEqual(["CVE-2099-nodejs:18"]);
    expect(matchReport(rhel(), rows, all()).matches.map((m) => m.id)).toEqual(["CVE-2099-plain"]);
  });
});

describe("C10 robustness", async () => {
  const lodashImage = await indexImage([[{ name: "app/node_modules/lodash/package.json", content: JSON.stringify({ name: "lodash", version: "4.17.15" }) }]]);
  const lodash = JSON.parse(advisoryFile("osv/ghsa/GHSA-35jh-r3h4-6jhm.json").bytes.toString()) as Record<string, unknown> & { affected: Array<Record<string, unknown>> };
  const record = (o: Record<string, unknown>, name = "x.json") => osvRecords([["osv-ghsa", raw(name, JSON.stringify({ ...lodash, ...o }))]]);

  it("a withdrawn record never matches, even when the store hands it over", () => {
    expect(matchReport(lodashImage, record({ withdrawn: "2024-01-01T00:00:00Z" }), all()).matches).toEqual([]);
  });

  it("rows of an unknown ecosystem are never asked for, and never match", async () => {
    const foo = record({ affected: lodash.affected.map((a) => ({ ...a, package: { ...(a.package as object), ecosystem: "Foo" } })) });
    const lookup = inMemoryLookup(foo);
    expect((await matchReportWith(lodashImage, lookup, all())).matches).toEqual([]);
    expect(lookup.asked[0]).toEqual([{ ecosystem: "npm", name: "lodash" }]);
    expect(matchReport(lodashImage, foo, all()).matches).toEqual([]);
  });

  it("an empty affected list gives no rows", () => {
    expect(record({ affected: [] })).toEqual([]);
  });

  it("a record with a version the scheme cannot read is skipped and counted; the good record still matches", () => {
    const bad = record({ id: "GHSA-0000-0000-0000", aliases: ["CVE-2099-0001"], affected: [{ ...lodash.affected[0], ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "4.17.21.1" }] }] }] });
    const r = matchReport(lodashImage, [...record({}), ...bad], all());
    expect(triples(r.matches)).toEqual(["lodash CVE-2021-23337 4.17.21"]);
    expect(r.skippedRows).toEqual([{ source: "osv-ghsa", record: "GHSA-0000-0000-0000", ecosystem: "npm", name: "lodash", reason: expect.stringContaining("4.17.21.1") }]);
    expect(r.coverage.skippedRows).toBe(1);
  });

  it("an installed version the scheme cannot read is unmatchable, never 'not vulnerable'", async () => {
    const img = await indexImage([[{ name: "usr/lib/python3/dist-packages/jinja2-0.1-bulbasaur.dist-info/METADATA", content: "Name: Jinja2\nVersion: 0.1-bulbasaur\n" }]]);
    const r = matchReport(img, osvRecords([["osv-pypi", advisoryFile("osv/pypi/PYSEC-2019-217.yaml")]]), all());
    expect(r.matches).toEqual([]);
    expect(r.unmatchable).toEqual([{ package: expect.objectContaining({ name: "Jinja2", version: "0.1-bulbasaur" }), reason: expect.stringContaining("pep440") }]);
    expect(r.coverage).toMatchObject({ packages: 1, matched: 0, unmatchable: 1 });
  });

  it("under_investigation is listed but flagged", async () => {
    const img = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.debian12 }, { name: "var/lib/dpkg/status", content: dpkg([{ name: "libfoo1", version: "1.0-1", source: "foo" }]) }]]);
    const adv = parseDebian([raw("debian.json", JSON.stringify({ foo: { "CVE-2099-1": { releases: { bookworm: { status: "undetermined", urgency: "not yet assigned" } } } } }))]).advisories;
    const r = matchReport(img, candidatesOf("debian", adv), all());
    expect(r.matches).toMatchObject([{ id: "CVE-2099-1", flagged: "under_investigation", fixState: "under_investigation" }]);
  });
});

describe("C11 Node.js runtime", () => {
  const { advisories } = parseNodejsCore([advisoryFile("nodejs/core/index.json", "vuln/core/index.json")]);
  const candidates = candidatesOf("nodejs", advisories);
  /** No scanner records the node executable yet: the package it would record, through coalesce and buildReport. */
  const nodeImage = (version: string): IndexReport =>
    buildReport(`sha256:${"d".repeat(64)}`, coalesce([{ digest: `sha256:${"e".repeat(64)}`, whiteouts: [], opaqueDirs: [], files: [], outputs: [{ packages: [{ name: "node", version, kind: "binary", package_db: "node:usr/local/bin/node" }] }] }]));

  it("node v20.20.1: the seven 2026 entries, fixed in 20.20.2", () => {
    const r = matchReport(nodeImage("v20.20.1"), candidates, { ecosystemsWithData: new Set(["Node.js"]), now: new Date("2026-01-01T00:00:00Z") });
    expect(r.matches.map((m) => m.id)).toEqual(["CVE-2026-21637", "CVE-2026-21710", "CVE-2026-21713", "CVE-2026-21714", "CVE-2026-21715", "CVE-2026-21716", "CVE-2026-21717"]);
    expect(new Set(r.matches.map((m) => m.fixedIn))).toEqual(new Set(["20.20.2"]));
    expect(r.matches[0]).toMatchObject({ installedVersionCompared: "20.20.1", matchedBy: [{ via: "constraints", ecosystem: "Node.js" }] });
    expect(r.coverage.ecosystems).toEqual([{ ecosystem: "Node.js", state: "supported", packages: 1 }]);
  });

  it("node v20.20.2: nothing", () => {
    expect(matchReport(nodeImage("v20.20.2"), candidates, all()).matches).toEqual([]);
  });

  it("node v18.20.8: nothing, and the coverage says the 18.x line is end-of-life (not clean)", () => {
    const r = matchReport(nodeImage("v18.20.8"), candidates, { ecosystemsWithData: new Set(["Node.js"]), now: NOW });
    expect(r.matches).toEqual([]);
    expect(r.coverage.ecosystems).toEqual([{ ecosystem: "Node.js", state: "end_of_life", packages: 1, endOfLife: "2025-04-30", reason: expect.stringContaining("18.x") }]);
  });
});

describe("coverage of an image without a distribution", () => {
  it("language packages only: no distribution entry; npm without data is no_data", async () => {
    const img = await indexImage([[{ name: "app/node_modules/lodash/package.json", content: JSON.stringify({ name: "lodash", version: "4.17.15" }) }]]);
    const r = matchReport(img, [], { ecosystemsWithData: new Set(), now: NOW });
    expect(r.coverage.distribution).toBeUndefined();
    expect(r.coverage.ecosystems).toEqual([{ ecosystem: "npm", state: "no_data", packages: 1 }]);
  });

  it("OS packages without a release file: unsupported, with the count", async () => {
    const img = await indexImage([[{ name: "lib/apk/db/installed", content: packageFixture("apk/alpine-3.18/installed") }]]);
    const r = matchReport(img, [], { ecosystemsWithData: () => true, now: NOW });
    expect(r.coverage.distribution).toMatchObject({ state: "unsupported", reason: expect.stringContaining("15 OS packages not matched") });
    expect(r.coverage.matched).toBe(0);
    expect(r.unmatchable).toEqual([]);
  });
});

export type { Advisory };

describe("Wolfi and Chainguard: apk packages looked up by origin in the Wolfi/Chainguard OSV ecosystems", async () => {
  // The os-release of a real Wolfi image (../shared/fixtures/osrelease/wolfi-20220914, from syft); the apk
  // entry and the advisory follow trivy's pkg/detector/ospkg/wolfi/wolfi_test.go "contain pre": package
  // test 0.1.0_alpha from origin test-src, fixes 0.1.0_alpha_pre2 (CVE-2030-0001) and 0.1.0_alpha2
  // (CVE-2030-0002); trivy detects CVE-2030-0002 only.
  const wolfiRelease = readFileSync(fixturesDir("osrelease", "wolfi-20220914", "os-release"));
  const installed = "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:test\nV:0.1.0_alpha\nA:x86_64\no:test-src\n\n";
  const osv = (ecosystem: string) => (id: string, fixed: string) =>
    raw(`${id}.json`, JSON.stringify({ id, modified: "2024-01-01T00:00:00Z", affected: [{ package: { ecosystem, name: "test-src" }, ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed }] }] }] }));

  it("Wolfi: CVE-2030-0002 only, compared as apk versions, keyed by the origin", async () => {
    const report = await indexImage([[{ name: "etc/os-release", content: wolfiRelease }, { name: "lib/apk/db/installed", content: installed }]]);
    const parsed = parseOsv([osv("Wolfi")("CVE-2030-0001", "0.1.0_alpha_pre2"), osv("Wolfi")("CVE-2030-0002", "0.1.0_alpha2")]);
    const result = matchReport(report, candidatesOf("osv-wolfi", parsed.advisories), { ecosystemsWithData: new Set(["Wolfi"]), now: NOW });
    expect(result.matches.map((m) => [m.id, m.package.name, m.installedVersionCompared, m.fixedIn])).toEqual([["CVE-2030-0002", "test", "0.1.0_alpha", "0.1.0_alpha2"]]);
    expect(result.coverage.distribution).toMatchObject({ did: "wolfi", state: "supported", ecosystem: "Wolfi" });
    expect(result.coverage.ecosystems).toEqual([{ ecosystem: "Wolfi", state: "supported", packages: 1 }]);
  });

  it("Chainguard: the same through its own ecosystem; without data it is no_data, not clean", async () => {
    const cg = readFileSync(fixturesDir("osrelease", "chainguard-20230214", "os-release"));
    const report = await indexImage([[{ name: "etc/os-release", content: cg }, { name: "lib/apk/db/installed", content: installed }]]);
    const parsed = parseOsv([osv("Chainguard")("CVE-2030-0002", "0.1.0_alpha2")]);
    expect(matchReport(report, candidatesOf("osv-chainguard", parsed.advisories), { ecosystemsWithData: new Set(["Chainguard"]), now: NOW }).matches.map((m) => m.id)).toEqual(["CVE-2030-0002"]);
    const none = matchReport(report, [], { ecosystemsWithData: () => false, now: NOW });
    expect(none.coverage.distribution).toMatchObject({ state: "no_data", ecosystem: "Chainguard" });
  });
});
