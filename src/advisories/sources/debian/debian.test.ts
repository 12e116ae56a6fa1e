import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Advisory, AffectedPackage, RawFile } from "../../../model/advisory.js";
import { AdvisoryInputError, SIZE_CAPS } from "../../input.js";
import { detect, parse, parseDebianAdvisoryList, parseDebianCveList } from "./index.js";

const FIXTURES = new URL("../../../../../shared/fixtures/advisories/", import.meta.url);
const fixture = (rel: string): Buffer => readFileSync(new URL(rel, FIXTURES));
const raw = (path: string, text: string): RawFile => ({ path, bytes: Buffer.from(text) });

function advisory(advisories: Advisory[], id: string): Advisory {
  const a = advisories.find((x) => x.id === id);
  if (!a) throw new Error(`no advisory ${id}`);
  return a;
}
function row(a: Advisory, name: string, ecosystem: string): AffectedPackage {
  const r = a.affected.find((x) => x.name === name && x.ecosystem === ecosystem);
  if (!r) throw new Error(`no row ${name} ${ecosystem} in ${a.id}`);
  return r;
}

describe("Debian tracker JSON (vunnel/debian.json) with the DSA list (vunnel/DSA)", () => {
  const result = parse([
    { path: "debian.json", bytes: fixture("debian/vunnel/debian.json") },
    { path: "DSA/list", bytes: fixture("debian/vunnel/DSA") },
  ]);
  const { advisories, skipped } = result;

  it("gives one advisory per CVE and one row per (source package, release)", () => {
    expect(advisories.map((a) => a.id)).toEqual([
      "CVE-2005-3111",
      "CVE-2007-2383",
      "CVE-2008-7220",
      "CVE-2013-1444",
      "CVE-2022-0456",
      "CVE-2025-53603",
    ]);
    expect(advisories.reduce((n, a) => n + a.affected.length, 0)).toBe(25);
    for (const a of advisories) {
      for (const r of a.affected) expect(r.nameKind).toBe("source");
      expect(new Set(a.affected.map((r) => `${r.name} ${r.ecosystem}`)).size).toBe(a.affected.length);
    }
  });

  it("bookworm sope CVE-2025-53603 is fixed in 5.8.0-1+deb12u1, announced by DSA-5970-1 on 2025-07-31", () => {
    const a = advisory(advisories, "CVE-2025-53603");
    expect(a.summary).toMatch(/^In Alinto SOPE SOGo 2\.0\.2 through 5\.12\.2/);
    expect(a.advisoryIds).toEqual(["DSA-5970-1"]);
    expect(row(a, "sope", "Debian:12")).toEqual({
      ecosystem: "Debian:12",
      name: "sope",
      nameKind: "source",
      fixState: "fixed",
      fixedVersions: ["5.8.0-1+deb12u1"],
      ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "5.8.0-1+deb12u1" }] }],
      vendorSeverity: "not yet assigned",
      fixAvailableAt: "2025-07-31",
      detail: { release: "bookworm", bugs: [1108798], scope: "local", advisories: ["DSA-5970-1"] },
    });
    // The DSA names bookworm only: the other releases get no advisory id and no date.
    const bullseye = row(a, "sope", "Debian:11");
    expect(bullseye.fixedVersions).toEqual(["5.0.1-2+deb11u1"]);
    expect(bullseye.fixAvailableAt).toBeUndefined();
    expect(bullseye.detail?.advisories).toBeUndefined();
    expect(row(a, "sope", "Debian:13").fixedVersions).toEqual(["5.12.1-2"]);
    expect(row(a, "sope", "Debian:unstable").fixedVersions).toEqual(["5.12.1-2"]);
    expect(a.severity).toBe("Unknown");
    expect(a.vendorSeverity).toBe("not yet assigned");
  });

  it("prototypejs CVE-2007-2383 (fixed_version 0, unimportant) is not affected anywhere", () => {
    const a = advisory(advisories, "CVE-2007-2383");
    expect(a.affected.map((r) => r.ecosystem)).toEqual(["Debian:8", "Debian:9", "Debian:10", "Debian:unstable"]);
    for (const r of a.affected) {
      expect(r.fixState).toBe("not_affected");
      expect(r.fixedVersions).toEqual([]);
      expect(r.ranges).toEqual([]);
      expect(r.vendorSeverity).toBe("unimportant");
    }
    expect(a.severity).toBe("Negligible");
  });

  it("chromium CVE-2022-0456: buster and stretch open + end-of-life → end_of_life; bookworm fixed", () => {
    const a = advisory(advisories, "CVE-2022-0456");
    const buster = row(a, "chromium", "Debian:10");
    expect(buster.fixState).toBe("end_of_life");
    expect(buster.fixedVersions).toEqual([]);
    expect(buster.ranges).toEqual([{ type: "ECOSYSTEM", events: [{ introduced: "0" }] }]);
    expect(buster.vendorSeverity).toBe("end-of-life");
    expect(row(a, "chromium", "Debian:9").fixState).toBe("end_of_life");
    expect(row(a, "chromium", "Debian:12")).toMatchObject({ fixState: "fixed", fixedVersions: ["98.0.4758.80-1"] });
    expect(row(a, "chromium", "Debian:11")).toMatchObject({ fixState: "fixed", fixedVersions: ["98.0.4758.80-1~deb11u1"] });
    expect(a.summary).toBeUndefined();
    // end-of-life is no severity: the advisory's word is the other releases' urgency.
    expect(a.severity).toBe("Unknown");
    expect(a.vendorSeverity).toBe("not yet assigned");
  });

  it("keeps the urgency as written and maps it level for level (no inflation)", () => {
    expect(advisory(advisories, "CVE-2008-7220")).toMatchObject({ severity: "High", vendorSeverity: "high**" });
    expect(advisory(advisories, "CVE-2013-1444")).toMatchObject({ severity: "Low", vendorSeverity: "low**" });
    expect(advisory(advisories, "CVE-2005-3111")).toMatchObject({ severity: "Medium", vendorSeverity: "medium" });
  });

  it('"releases": [] gives zero rows, no advisory, and a skipped record', () => {
    expect(advisories.find((a) => a.id === "CVE-2022-0358")).toBeUndefined();
    expect(skipped).toEqual([
      {
        file: "debian.json",
        record: "chromium-browser/CVE-2022-0358",
        reason: "releases is a list, expected an object of releases: no rows",
      },
    ]);
  });

  it("DSA notices without package lines add nothing", () => {
    const withoutLists = parse([{ path: "debian.json", bytes: fixture("debian/vunnel/debian.json") }]);
    const strip = (as: Advisory[]) =>
      as.map((a) => ({ ...a, advisoryIds: [], references: [], affected: a.affected.map((r) => ({ ...r, detail: {}, fixAvailableAt: undefined })) }));
    expect(strip(advisories)).toEqual(strip(withoutLists.advisories));
  });
});

describe("DSA/DLA lists", () => {
  it("reads every vunnel/DSA entry; notices have no fix lines", () => {
    const { entries, skipped } = parseDebianAdvisoryList(fixture("debian/vunnel/DSA").toString(), "DSA/list");
    expect(skipped).toEqual([]);
    expect(entries.map((e) => e.id)).toEqual([
      "DSA-141",
      "DSA-140",
      "DSA-139",
      "DSA-138",
      "DSA-2819-1",
      "DSA-2808-2",
      "DSA-3281-1",
      "DSA-4205-1",
      "DSA-4323-1",
      "DSA-5970-1",
    ]);
    const byId = new Map(entries.map((e) => [e.id, e]));
    expect(byId.get("DSA-140")).toMatchObject({
      date: "2002-08-05",
      package: "libpng",
      cves: ["CVE-2002-0660", "CVE-2002-0728"],
      fixes: [
        { release: "woody", package: "libpng", version: "1.0.12-3.woody.2" },
        { release: "woody", package: "libpng3", version: "1.2.1-1.1.woody.2" },
      ],
    });
    for (const id of ["DSA-2819-1", "DSA-3281-1", "DSA-4205-1"]) expect(byId.get(id)?.fixes).toEqual([]);
    expect(byId.get("DSA-3281-1")?.package).toBeUndefined();
    expect(byId.get("DSA-4205-1")).toMatchObject({ title: "jessie end-of-life", notes: ["end of security support for jessie"] });
    expect(byId.get("DSA-5970-1")).toMatchObject({
      date: "2025-07-31",
      package: "sope",
      title: "sope - security update",
      cves: ["CVE-2025-53603"],
      fixes: [{ release: "bookworm", package: "sope", version: "5.8.0-1+deb12u1" }],
    });
  });

  it("tracker/DLA/list: the MALFORMED HEADER entry is skipped, DLA-2711-1 is kept", () => {
    const { entries, skipped } = parseDebianAdvisoryList(fixture("debian/tracker/DLA/list").toString(), "DLA/list");
    expect(entries).toEqual([
      {
        id: "DLA-2711-1",
        date: "2021-07-19",
        title: "thunderbird - security update",
        package: "thunderbird",
        cves: ["CVE-2021-29969", "CVE-2021-29970", "CVE-2021-29976", "CVE-2021-30547"],
        fixes: [{ release: "stretch", package: "thunderbird", version: "1:78.12.0-1~deb9u1" }],
        notes: [],
        line: 1,
      },
    ]);
    expect(skipped).toEqual([{ file: "DLA/list", record: "line 4", reason: 'unreadable header "[19 Jul 2021] MALFORMED HEADER"' }]);
  });

  it("tracker/DSA/list keeps epochs in versions", () => {
    const { entries, skipped } = parseDebianAdvisoryList(fixture("debian/tracker/DSA/list").toString(), "DSA/list");
    expect(skipped).toEqual([]);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.fixes).toEqual([
      { release: "stretch", package: "redis", version: "3:3.2.6-3+deb9u3" },
      { release: "buster", package: "redis", version: "5:5.0.3-4+deb10u1" },
    ]);
  });

  it("C3: DSA-4568-1 [buster] - postgresql-common 200+deb10u3 lands on the source package's buster row", () => {
    const json = JSON.stringify({
      "postgresql-common": {
        "CVE-2019-3466": {
          releases: {
            buster: { status: "resolved", fixed_version: "200+deb10u3", urgency: "high", repositories: { buster: "200+deb10u5" } },
          },
        },
      },
    });
    // The row as Debian's data/DSA/list has it; the header date is written for this test.
    const dsa = "[13 Nov 2019] DSA-4568-1 postgresql-common - security update\n\t{CVE-2019-3466}\n\t[buster] - postgresql-common 200+deb10u3\n";
    const { advisories, skipped } = parse([raw("debian.json", json), raw("DSA/list", dsa)]);
    expect(skipped).toEqual([]);
    const a = advisory(advisories, "CVE-2019-3466");
    expect(a.advisoryIds).toEqual(["DSA-4568-1"]);
    expect(a.affected).toEqual([
      {
        ecosystem: "Debian:10",
        name: "postgresql-common",
        nameKind: "source",
        fixState: "fixed",
        fixedVersions: ["200+deb10u3"],
        ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "200+deb10u3" }] }],
        vendorSeverity: "high",
        fixAvailableAt: "2019-11-13",
        detail: { release: "buster", advisories: ["DSA-4568-1"] },
      },
    ]);
  });
});

describe("CVE list (text) as the fallback when there is no JSON", () => {
  it("reads tracker/CVE/list: fixed, <unfixed>, <no-dsa>, (unimportant), (low; bug #…), TODO, NOT-FOR-US", () => {
    const { entries, skipped } = parseDebianCveList(fixture("debian/tracker/CVE/list").toString(), "CVE/list");
    expect(skipped).toEqual([]);
    expect(entries.map((e) => e.id)).toEqual([
      "CVE-2023-XXXX",
      "CVE-2023-XXXX",
      "CVE-2021-36980",
      "CVE-2021-36383",
      "CVE-2021-36373",
      "CVE-2021-36367",
    ]);
    expect(entries[2]).toMatchObject({ todo: "check", packages: [] });
    expect(entries[3]).toMatchObject({ notForUs: "Xen Orchestra", packages: [] });
    expect(entries[4]?.packages).toEqual([{ package: "ant", kind: "unfixed", urgency: "unimportant", bugs: [], line: 14 }]);
    expect(entries[5]?.packages).toEqual([
      { package: "putty", kind: "fixed", version: "0.75-3", urgency: "low", bugs: [990901], line: 19 },
      { release: "bullseye", package: "putty", kind: "no-dsa", note: "Minor issue", bugs: [], line: 20 },
      { release: "buster", package: "putty", kind: "no-dsa", note: "Minor issue", bugs: [], line: 21 },
    ]);
  });

  const { advisories, skipped } = parse([
    { path: "CVE/list", bytes: fixture("debian/tracker/CVE/list") },
    { path: "DSA/list", bytes: fixture("debian/tracker/DSA/list") },
    { path: "DLA/list", bytes: fixture("debian/tracker/DLA/list") },
  ]);

  it("produces the same model: entries without package lines give nothing, placeholders get unique ids", () => {
    expect(skipped).toEqual([{ file: "DLA/list", record: "line 4", reason: 'unreadable header "[19 Jul 2021] MALFORMED HEADER"' }]);
    const ids = advisories.map((a) => a.id);
    expect(ids).toHaveLength(4);
    expect(ids.slice(0, 2)).toEqual(["CVE-2021-36367", "CVE-2021-36373"]);
    expect(ids[2]).toMatch(/^CVE-2023-XXXX-[0-9A-F]{6}$/);
    expect(ids[3]).toMatch(/^CVE-2023-XXXX-[0-9A-F]{6}$/);
    const foot = advisories.find((a) => a.summary === "code execution via malformed XTGETTCAP");
    expect(foot?.affected.map((r) => [r.ecosystem, r.fixState, r.fixedVersions])).toEqual([
      ["Debian:11", "not_fixed", []],
      ["Debian:12", "fixed", ["1.13.1-2+deb12u1"]],
      ["Debian:unstable", "fixed", ["1.15.3-2"]],
    ]);
    expect(foot?.affected[0]?.detail).toEqual({ release: "bullseye", nodsa: "Minor issue" });
    const wordpress = advisories.find((a) => a.summary === "Other security issues from wordpress 6.3.2");
    expect(wordpress?.affected).toMatchObject([{ name: "wordpress", ecosystem: "Debian:unstable", fixState: "not_fixed" }]);
  });

  it("putty: release lines inherit the unstable line's urgency; ant <unfixed> (unimportant) is not_fixed, Negligible", () => {
    const putty = advisory(advisories, "CVE-2021-36367");
    expect(putty.affected.map((r) => [r.ecosystem, r.fixState, r.vendorSeverity])).toEqual([
      ["Debian:10", "not_fixed", "low"],
      ["Debian:11", "not_fixed", "low"],
      ["Debian:unstable", "fixed", "low"],
    ]);
    expect(putty.severity).toBe("Low");
    const ant = advisory(advisories, "CVE-2021-36373");
    expect(ant.affected).toMatchObject([{ name: "ant", ecosystem: "Debian:unstable", fixState: "not_fixed", vendorSeverity: "unimportant" }]);
    expect(ant.severity).toBe("Negligible");
  });

  it("reads a vuln-list-debian entry (trivy-db/CVE-2023-5981.json): gnutls28 bookworm fixed 3.7.9-2+deb12u1", () => {
    const r = parse([{ path: "CVE/CVE-2023-5981.json", bytes: fixture("debian/trivy-db/CVE-2023-5981.json") }]);
    expect(r.skipped).toEqual([]);
    expect(r.advisories).toHaveLength(1);
    const a = advisory(r.advisories, "CVE-2023-5981");
    expect(a.advisoryIds).toEqual(["DLA-3660-1"]);
    expect(a.affected.map((x) => [x.ecosystem, x.fixState, x.fixedVersions])).toEqual([
      ["Debian:11", "fixed", ["3.7.1-5+deb11u5"]],
      ["Debian:12", "fixed", ["3.7.9-2+deb12u1"]],
      ["Debian:unstable", "fixed", ["3.8.2-1"]],
    ]);
    expect(row(a, "gnutls28", "Debian:12").ranges).toEqual([
      { type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "3.7.9-2+deb12u1" }] },
    ]);
    expect(a.references.map((x) => x.url)).toContain("https://gitlab.com/gnutls/gnutls/-/issues/1511");
  });

  it("the same entry as CVE list text and as tracker JSON give the same rows", () => {
    const list = "CVE-2024-0001 (x)\n\t- foo 1.2-1 (medium; bug #1)\n\t[bookworm] - foo 1.1-1+deb12u1\n\t[bullseye] - foo <not-affected> (Vulnerable code not present)\n\t[buster] - foo <postponed> (Minor issue, revisit)\n\t[stretch] - foo <end-of-life> (EOL)\n\t[trixie] - foo <ignored> (Not worth it)\n";
    const json = JSON.stringify({
      foo: {
        "CVE-2024-0001": {
          description: "x",
          debianbug: 1,
          releases: {
            sid: { status: "resolved", fixed_version: "1.2-1", urgency: "medium" },
            bookworm: { status: "resolved", fixed_version: "1.1-1+deb12u1", urgency: "medium" },
            bullseye: { status: "resolved", fixed_version: "0", urgency: "medium" },
            buster: { status: "open", urgency: "medium", nodsa: "Minor issue, revisit", nodsa_reason: "postponed" },
            stretch: { status: "open", urgency: "end-of-life" },
            trixie: { status: "open", urgency: "medium", nodsa: "Not worth it", nodsa_reason: "ignored" },
          },
        },
      },
    });
    const fromList = parse([raw("CVE/list", list)]);
    const fromJson = parse([raw("debian.json", json)]);
    const shape = (a: Advisory | undefined) =>
      a?.affected.map((r) => [r.ecosystem, r.fixState, r.fixedVersions, r.ranges, r.vendorSeverity, r.detail?.nodsa]);
    expect(shape(fromList.advisories[0])).toEqual(shape(fromJson.advisories[0]));
    expect(shape(fromJson.advisories[0])?.map((x) => x[1])).toEqual([
      "end_of_life",
      "deferred",
      "not_affected",
      "fixed",
      "wont_fix",
      "fixed",
    ]);
    expect(fromList.advisories[0]?.severity).toBe("Medium");
  });
});

describe("hostile and broken input", () => {
  it("truncated JSON is an error naming the file and the position", () => {
    const text = fixture("debian/vunnel/debian.json").toString().slice(0, 500);
    expect(() => parse([raw("debian.json", text)])).toThrow(AdvisoryInputError);
    expect(() => parse([raw("debian.json", text)])).toThrow(/^debian\.json: invalid JSON at line \d+ column \d+ \(offset 500\)/);
  });

  it("a release value of the wrong type is a skipped record; the other releases are kept", () => {
    const json = JSON.stringify({
      foo: {
        "CVE-2024-0002": {
          releases: {
            bookworm: "resolved",
            bullseye: { status: 5 },
            buster: { status: "resolved", fixed_version: ["1"] },
            trixie: { status: "open" },
            hamm2: { status: "open" },
            sid: { status: "resolved" },
          },
        },
        "CVE-2024-0003": { releases: { sid: { status: "weird" } } },
        "CVE-2024-0004": "nope",
        [`CVE-${"9".repeat(200)}`]: { releases: {} },
      },
      bar: [],
    }).replace(/^\{/, '{"__proto__": {"CVE-1": {"releases": {"sid": {"status": "open"}}}}, ');
    const { advisories, skipped } = parse([raw("debian.json", json)]);
    expect(advisories.map((a) => a.id)).toEqual(["CVE-2024-0002"]);
    expect(advisories[0]?.affected).toMatchObject([{ ecosystem: "Debian:13", fixState: "not_fixed" }]);
    expect(skipped.map((s) => [s.record, s.reason])).toEqual([
      ["__proto__", "not a Debian source package name (or longer than 256 characters)"],
      ["foo/CVE-2024-0002/bookworm", "value is a string, expected an object"],
      ["foo/CVE-2024-0002/bullseye", "status: Invalid input: expected string, received number"],
      ["foo/CVE-2024-0002/buster", "fixed_version: Invalid input: expected string, received array"],
      ["foo/CVE-2024-0002/hamm2", 'unknown Debian release "hamm2"'],
      ["foo/CVE-2024-0002/sid", "status resolved without a fixed_version"],
      ["foo/CVE-2024-0003/sid", 'unknown status "weird"'],
      ["foo/CVE-2024-0004", "value is a string, expected an object"],
      [`foo/CVE-${"9".repeat(200)}`, "not a tracker id (CVE-…, TEMP-…) or longer than 128 characters"],
      ["bar", "value is a list, expected an object of CVE ids"],
    ]);
    expect(({} as Record<string, unknown>)["CVE-1"]).toBeUndefined();
  });

  it("an oversized file is an error naming it", () => {
    const big: RawFile = { path: "DSA/list", bytes: Buffer.alloc(SIZE_CAPS.other + 1, 0x20) };
    expect(() => parse([raw("debian.json", "{}"), big])).toThrow(/^DSA\/list: \d+ bytes is over the 64 MiB cap/);
    // The tracker JSON's own cap, without allocating it: only the length is read before refusing.
    const fake = new Proxy(Buffer.alloc(0), {
      get: (t, k) => (k === "length" ? SIZE_CAPS.debianJson + 1 : Reflect.get(t, k)),
    });
    expect(() => parse([{ path: "debian.json", bytes: fake }])).toThrow(/^debian\.json: \d+ bytes is over the 256 MiB cap/);
  });

  it("needs the JSON or a CVE list", () => {
    expect(() => parse([{ path: "DSA/list", bytes: fixture("debian/vunnel/DSA") }])).toThrow(
      /neither the tracker JSON \(debian\.json\) nor a CVE list/,
    );
    expect(() => parse([raw("debian.json", "[]")])).toThrow(/debian\.json: top level is a list/);
  });

  it("with the JSON present, a CVE list is not read and says so", () => {
    const r = parse([raw("debian.json", "{}"), { path: "CVE/list", bytes: fixture("debian/tracker/CVE/list") }]);
    expect(r.advisories).toEqual([]);
    expect(r.skipped).toEqual([{ file: "CVE/list", record: "*", reason: "not read: the tracker JSON is present and is the source of the rows" }]);
  });
});

describe("detect", () => {
  it("recognises every Debian fixture from its content, whatever its path", () => {
    for (const f of ["vunnel/debian.json", "vunnel/DSA", "trivy-db/CVE-2023-5981.json", "tracker/CVE/list", "tracker/DSA/list", "tracker/DLA/list"]) {
      expect(detect({ path: "x", bytes: fixture(`debian/${f}`) }), f).toBe(true);
    }
  });

  it("does not claim Alpine, Red Hat or other files", () => {
    for (const f of ["alpine/secdb/v3.10/community.json", "alpine/secdb/v3.15/main.yaml", "alpine/vuln-list/3.18/main/busybox.json", "redhat/cve-2024-28085.json", "osv/go/GO-2023-1752.json"]) {
      expect(detect({ path: "x", bytes: fixture(f) }), f).toBe(false);
    }
    expect(detect(raw("x", ""))).toBe(false);
  });
});
