// affects() on the real records of ../shared/fixtures/advisories, parsed by the real parsers; the expected
// answers are the fixture README's (C6-C9, C11), computed there with each ecosystem's own tool.
import { describe, expect, it } from "vitest";
import { parseNodejsCore } from "../advisories/sources/nodejs/index.js";
import { parseOsv } from "../advisories/sources/osv/index.js";
import type { Advisory, AffectedPackage } from "../model/advisory.js";
import { canonicalGoVersion, golang, maven, pep440, schemeFor, semver, UnmatchableVersionError, type VersionScheme } from "../versions/index.js";
import { affects } from "./affects.js";
import { advisoryFile } from "./testing.js";

function osv(rel: string): Advisory {
  const r = parseOsv([advisoryFile(`osv/${rel}`)]);
  expect(r.skipped).toEqual([]);
  expect(r.advisories).toHaveLength(1);
  return r.advisories[0]!;
}

/** Affected by the record: by any of its rows for this package. */
function byRecord(a: Advisory, name: string, version: string, scheme: VersionScheme) {
  const rows = a.affected.filter((r) => r.name === name);
  expect(rows.length).toBeGreaterThan(0);
  const results = rows.map((r) => affects(version, r, scheme));
  const hit = results.find((r) => "affected" in r && r.affected);
  return hit ?? results[0]!;
}
const affected = (a: Advisory, name: string, version: string, scheme: VersionScheme) => {
  const r = byRecord(a, name, version, scheme);
  return "affected" in r && r.affected;
};
const fixedIn = (a: Advisory, name: string, version: string, scheme: VersionScheme) => {
  const r = byRecord(a, name, version, scheme);
  return "affected" in r && r.affected ? r.fixedIn : undefined;
};

describe("C7 Go (golang/vulndb records, x/mod/semver order)", () => {
  const go1752 = osv("go/GO-2023-1752.json");
  const go0969 = osv("go/GO-2022-0969.json");
  const go0907 = osv("go/GO-2022-0907.json");
  const stdlib = (tag: string) => canonicalGoVersion(tag);

  it("GO-2023-1752: go1.19.8 (v1.19.8) is affected, fixed in 1.19.9", () => {
    expect(stdlib("go1.19.8")).toBe("v1.19.8");
    expect(byRecord(go1752, "stdlib", "v1.19.8", golang)).toEqual({ affected: true, via: "range", fixedIn: "1.19.9" });
    expect(fixedIn(go1752, "stdlib", "v1.20.3", golang)).toBe("1.20.4");
    expect(affected(go1752, "stdlib", "v1.19.9", golang)).toBe(false);
    expect(affected(go1752, "stdlib", "v1.20.4", golang)).toBe(false);
  });

  it("GO-2022-0969: v1.19.8 is not affected; go1.19.0 and go1.19rc2 (v1.19.0-rc.2, above the 1.19.0-0 sentinel) are", () => {
    expect(affected(go0969, "stdlib", "v1.19.8", golang)).toBe(false);
    expect(affected(go0969, "stdlib", stdlib("go1.19"), golang)).toBe(true);
    expect(stdlib("go1.19rc2")).toBe("v1.19.0-rc.2");
    expect(fixedIn(go0969, "stdlib", stdlib("go1.19rc2"), golang)).toBe("1.19.1");
    expect(fixedIn(go0969, "stdlib", "v1.18.5", golang)).toBe("1.18.6");
  });

  it("GO-2022-0969 golang.org/x/net: a pseudo-version below v0.0.0 is affected (introduced 0 is no lower bound); the fix and v0.1.0 are not", () => {
    expect(affected(go0969, "golang.org/x/net", "v0.0.0-20220722155237-a158d28d115b", golang)).toBe(true);
    expect(affected(go0969, "golang.org/x/net", "v0.0.0-20220906165146-f3363e06e74c", golang)).toBe(false);
    expect(affected(go0969, "golang.org/x/net", "v0.1.0", golang)).toBe(false);
  });

  it("GO-2022-0907 k8s.io/kubernetes, three intervals", () => {
    for (const v of ["v1.18.17", "v1.19.9", "v1.20.5"]) expect(affected(go0907, "k8s.io/kubernetes", v, golang), v).toBe(true);
    for (const v of ["v1.18.18", "v1.19.10", "v1.20.6", "v1.21.0"]) expect(affected(go0907, "k8s.io/kubernetes", v, golang), v).toBe(false);
    expect(fixedIn(go0907, "k8s.io/kubernetes", "v1.19.9", golang)).toBe("1.19.10");
  });
});

describe("C9 Maven (GHSA-jfh8-c2jp-5v3q, Log4Shell; ComparableVersion order)", () => {
  const log4shell = osv("ghsa/GHSA-jfh8-c2jp-5v3q.json");
  const name = "org.apache.logging.log4j:log4j-core";
  it.each(["2.0-beta9", "2.3", "2.4", "2.12.1", "2.13.0", "2.14.1"])("%s is affected", (v) => expect(affected(log4shell, name, v, maven)).toBe(true));
  it.each(["2.3.1", "2.3.2", "2.12.2", "2.12.3", "2.15.0", "2.16.0"])("%s is not", (v) => expect(affected(log4shell, name, v, maven)).toBe(false));
  it("the fix offered is the one of the interval the version is in", () => {
    expect(fixedIn(log4shell, name, "2.0-beta9", maven)).toBe("2.3.1");
    expect(fixedIn(log4shell, name, "2.12.1", maven)).toBe("2.12.2");
    expect(fixedIn(log4shell, name, "2.14.1", maven)).toBe("2.15.0");
  });
});

describe("C6 npm (GHSA records; compared with semver.compare, not satisfies)", () => {
  const semverRecord = osv("ghsa/GHSA-c2qf-rxjj-qqgw.json");
  const lodash = osv("ghsa/GHSA-35jh-r3h4-6jhm.json");
  it("lodash 4.17.15 is affected, fixed in 4.17.21", () => expect(fixedIn(lodash, "lodash", "4.17.15", semver)).toBe("4.17.21"));
  it.each(["7.5.1", "6.3.0", "5.7.1", "7.5.2-rc.1"])("semver %s is affected", (v) => expect(affected(semverRecord, "semver", v, semver)).toBe(true));
  it.each(["7.5.2", "6.3.1", "5.7.2", "7.6.0"])("semver %s is not", (v) => expect(affected(semverRecord, "semver", v, semver)).toBe(false));
});

describe("C8 PyPI (PEP 440)", () => {
  const ghsa = osv("ghsa/GHSA-h5c8-rqwp-cp95.json");
  const pysec = osv("pypi/PYSEC-2019-217.yaml");
  it("jinja2 3.1.2 × GHSA-h5c8-rqwp-cp95: affected, fixed in 3.1.3", () => expect(byRecord(ghsa, "jinja2", "3.1.2", pep440)).toEqual({ affected: true, via: "range", fixedIn: "3.1.3" }));
  it("jinja2 3.1.2 × PYSEC-2019-217: not affected (above the range, not listed)", () => expect(affected(pysec, "jinja2", "3.1.2", pep440)).toBe(false));
  it("a listed version is affected through the list; 2.10.1 (the fix) is not listed", () => {
    expect(byRecord(pysec, "jinja2", "2.10", pep440)).toMatchObject({ affected: true, via: "versions", fixedIn: "2.10.1" });
    expect(affected(pysec, "jinja2", "2.10.1", pep440)).toBe(false);
  });
  it("an unlisted version inside the range falls to the range (a local build is not in the published list)", () => {
    // 2.10.0+deb1 is not 2.10 (a local label sorts above the public version), so the list does not name it.
    expect(byRecord(pysec, "jinja2", "2.10.0+deb1", pep440)).toEqual({ affected: true, via: "range", fixedIn: "2.10.1" });
  });
});

describe("C11 Node.js runtime (nodejs/security-wg core index; satisfies(vulnerable) && !satisfies(patched))", () => {
  const { advisories } = parseNodejsCore([advisoryFile("nodejs/core/index.json", "vuln/core/index.json")]);
  const hits = (v: string) =>
    advisories
      .filter((a) => a.affected.some((r) => { const x = affects(v, r, semver); return "affected" in x && x.affected; }))
      .map((a) => a.id)
      .sort();
  it("node 20.20.2: nothing", () => expect(hits("20.20.2")).toEqual([]));
  it("node 20.20.1: the seven 2026 entries", () =>
    expect(hits("20.20.1")).toEqual(["CVE-2026-21637", "CVE-2026-21710", "CVE-2026-21713", "CVE-2026-21714", "CVE-2026-21715", "CVE-2026-21716", "CVE-2026-21717"]));
  it("node 18.20.8: nothing (the line is end-of-life: newer entries do not list it; coverage says so, see match.test.ts)", () => expect(hits("18.20.8")).toEqual([]));
  it("the fix offered for 20.20.1 is on its line", () => {
    const a = advisories.find((x) => x.id === "CVE-2026-21717")!;
    expect(affects("20.20.1", a.affected[0]!, semver)).toMatchObject({ affected: true, via: "constraints", fixedIn: "20.20.2" });
  });
});

describe("OSV evaluation rules", () => {
  const row = (o: Partial<AffectedPackage>): AffectedPackage => ({ ecosystem: "npm", name: "x", nameKind: "binary", fixState: "affected", fixedVersions: [], ranges: [], ...o });
  const range = (...events: AffectedPackage["ranges"][number]["events"]) => [{ type: "SEMVER" as const, events }];

  it("events in any order are sorted by version", () => {
    const r = row({ ranges: range({ fixed: "2.0.0" }, { introduced: "1.0.0" }, { fixed: "4.0.0" }, { introduced: "3.0.0" }) });
    expect(["0.9.0", "1.0.0", "1.9.9", "2.0.0", "2.5.0", "3.0.0", "3.9.0", "4.0.0"].map((v) => "affected" in affects(v, r, semver) && (affects(v, r, semver) as { affected: boolean }).affected)).toEqual([
      false, true, true, false, false, true, true, false,
    ]);
  });

  it("last_affected includes its version", () => {
    const r = row({ ranges: range({ introduced: "0" }, { last_affected: "1.2.3" }) });
    expect(affects("1.2.3", r, semver)).toEqual({ affected: true, via: "range" });
    expect(affects("1.2.4", r, semver)).toMatchObject({ affected: false });
  });

  it("introduced equal to fixed is an empty interval", () => {
    expect(affects("1.0.0", row({ ranges: range({ introduced: "1.0.0" }, { fixed: "1.0.0" }) }), semver)).toMatchObject({ affected: false });
  });

  it("limit bounds a range from above; '*' bounds nothing", () => {
    const r = row({ ranges: range({ introduced: "1.0.0" }, { limit: "2.0.0" }) });
    expect(affects("1.5.0", r, semver)).toMatchObject({ affected: true });
    expect(affects("2.1.0", r, semver)).toMatchObject({ affected: false });
    expect(affects("9.0.0", row({ ranges: range({ introduced: "1.0.0" }, { limit: "*" }) }), semver)).toMatchObject({ affected: true });
  });

  it("introduced '0' is no lower bound, never the version 0: a Go pseudo-version below v0.0.0 is in [0, …)", () => {
    const r = row({ ecosystem: "Go", ranges: range({ introduced: "0" }, { fixed: "0.0.1" }) });
    expect(golang.compare("v0.0.0-20200101000000-abcdefabcdef", "v0.0.0")).toBeLessThan(0);
    expect(affects("v0.0.0-20200101000000-abcdefabcdef", r, golang)).toMatchObject({ affected: true });
  });

  it("GIT ranges never match; a GIT entry's versions list still does", () => {
    const git = [{ type: "GIT" as const, events: [{ introduced: "0" }, { fixed: "a1b2c3d4" }] }];
    expect(affects("1.0.0", row({ ranges: git }), semver)).toEqual({ affected: false, reason: "GIT ranges never match" });
    expect(affects("1.0.0", row({ ranges: git, versions: ["1.0.0"] }), semver)).toEqual({ affected: true, via: "versions" });
    expect(affects("1.0.1", row({ ranges: git, versions: ["1.0.0"] }), semver)).toMatchObject({ affected: false });
  });

  it("listed versions compare by the scheme (PyPI 2.10 is 2.10.0); unreadable list entries are ignored", () => {
    expect(affects("2.10.0", row({ versions: ["2.10"] }), pep440)).toMatchObject({ affected: true, via: "versions" });
    expect(affects("2.10.0", row({ versions: ["0.1-bulbasaur", "2.10"] }), pep440)).toMatchObject({ affected: true });
  });

  it("an unreadable version in a range skips the row with the reason; an unreadable installed version throws", () => {
    expect(affects("1.0.0", row({ ranges: range({ introduced: "0" }, { fixed: "not-a-version" }) }), semver)).toEqual({ skipped: expect.stringContaining("not-a-version") });
    expect(() => affects("0.1-bulbasaur", row({ ranges: range({ introduced: "0" }) }), pep440)).toThrow(UnmatchableVersionError);
  });

  it("constraints that are not ranges skip the row", () => {
    expect(affects("1.0.0", row({ ecosystem: "Node.js", constraints: { vulnerable: "" } }), semver)).toEqual({ skipped: expect.stringContaining("empty range") });
  });
});

describe("fix states", () => {
  const deb = schemeFor("Debian:12")!;
  const os = (fixState: AffectedPackage["fixState"], o: Partial<AffectedPackage> = {}): AffectedPackage => ({ ecosystem: "Debian:12", name: "x", nameKind: "source", fixState, fixedVersions: [], ranges: [], ...o });
  const open = [{ type: "ECOSYSTEM" as const, events: [{ introduced: "0" }] }];

  it("not_affected never matches, whatever the ranges say", () => {
    expect(affects("1.0-1", os("not_affected", { ranges: open }), deb)).toEqual({ affected: false, reason: "the source says not affected" });
  });

  it("fixed: affected iff below the fix", () => {
    const r = os("fixed", { fixedVersions: ["1.0-2"], ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "1.0-2" }] }] });
    expect(affects("1.0-1", r, deb)).toEqual({ affected: true, via: "range", fixedIn: "1.0-2" });
    expect(affects("1.0-2", r, deb)).toMatchObject({ affected: false });
    // Without ranges the fixed versions decide.
    expect(affects("1.0-1", os("fixed", { fixedVersions: ["1.0-2"] }), deb)).toEqual({ affected: true, via: "fixed_versions", fixedIn: "1.0-2" });
    expect(affects("1.0-3", os("fixed", { fixedVersions: ["1.0-2"] }), deb)).toMatchObject({ affected: false });
    expect(affects("1.0-1", os("fixed"), deb)).toEqual({ skipped: "fixed, but no fixed version" });
  });

  it.each(["not_fixed", "wont_fix", "deferred", "end_of_life", "under_investigation"] as const)("%s is affected, with ranges or without", (s) => {
    expect(affects("1.0-1", os(s, { ranges: open }), deb)).toEqual({ affected: true, via: "range" });
    expect(affects("1.0-1", os(s), deb)).toEqual({ affected: true, via: "state" });
  });

  it("a language row without ranges or versions affects nothing", () => {
    expect(affects("1.0.0", { ...os("affected"), ecosystem: "npm" }, semver)).toMatchObject({ affected: false });
  });
});
