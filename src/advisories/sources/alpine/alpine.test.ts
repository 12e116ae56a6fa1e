import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Advisory, AffectedPackage, RawFile } from "../../../model/advisory.js";
import { AdvisoryInputError, SIZE_CAPS } from "../../input.js";
import { detect, parse, secfixIds } from "./index.js";

const FIXTURES = new URL("../../../../../shared/fixtures/advisories/", import.meta.url);
const fixture = (rel: string): Buffer => readFileSync(new URL(rel, FIXTURES));
const raw = (path: string, text: string): RawFile => ({ path, bytes: Buffer.from(text) });
/** The updater's paths: secdb files as `v3.18/main.json`, vuln-list files as `3.18/main/openssl.json`. */
const file = (rel: string): RawFile => ({ path: rel.replace(/^(secdb|vuln-list)\//, ""), bytes: fixture(`alpine/${rel}`) });

function advisory(advisories: Advisory[], id: string): Advisory {
  const a = advisories.find((x) => x.id === id);
  if (!a) throw new Error(`no advisory ${id}`);
  return a;
}
const only = (a: Advisory): AffectedPackage => {
  expect(a.affected).toHaveLength(1);
  return a.affected[0] as AffectedPackage;
};
const fixedRange = (v: string) => ({ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: v }] });

describe("Alpine secdb fixtures, one by one", () => {
  it.each([
    ["secdb/v3.10/community.json", "Alpine:v3.10", 9],
    ["secdb/v3.15/main.yaml", "Alpine:v3.15", 13],
    ["vuln-list/3.18/main/openssl.json", "Alpine:v3.18", 50],
    ["vuln-list/3.18/main/busybox.json", "Alpine:v3.18", 29],
    ["vuln-list/3.18/main/musl.json", "Alpine:v3.18", 4],
    ["vuln-list/3.18/main/zlib.json", "Alpine:v3.18", 4],
    ["vuln-list/3.18/main/apk-tools.json", "Alpine:v3.18", 2],
  ])("%s: ecosystem %s, %i ids, nothing skipped", (rel, ecosystem, count) => {
    const { advisories, skipped } = parse([file(rel)]);
    expect(skipped).toEqual([]);
    expect(advisories).toHaveLength(count);
    for (const a of advisories) {
      expect(a.severity).toBe("Unknown");
      const r = only(a);
      expect(r.ecosystem).toBe(ecosystem);
      expect(r.nameKind).toBe("source");
    }
  });

  it("busybox: '0' ids are not affected, 1.35.0-r17 is a fix like any other key, ALPINE-13661 is kept", () => {
    const { advisories } = parse([file("vuln-list/3.18/main/busybox.json")]);
    for (const id of ["CVE-2021-42373", "CVE-2021-42376", "CVE-2021-42377"]) {
      expect(only(advisory(advisories, id))).toEqual({
        ecosystem: "Alpine:v3.18",
        name: "busybox",
        nameKind: "source",
        fixState: "not_affected",
        fixedVersions: [],
        ranges: [],
        detail: { repositories: ["main"] },
      });
    }
    expect(only(advisory(advisories, "CVE-2022-30065"))).toMatchObject({
      fixState: "fixed",
      fixedVersions: ["1.35.0-r17"],
      ranges: [fixedRange("1.35.0-r17")],
    });
    const alpine = advisory(advisories, "ALPINE-13661");
    expect(only(alpine)).toMatchObject({ name: "busybox", fixState: "fixed", fixedVersions: ["1.35.0-r7"] });
    expect(alpine.references).toEqual([]);
    expect(only(advisory(advisories, "CVE-2022-28391")).fixedVersions).toEqual(["1.35.0-r7"]);
    expect(advisory(advisories, "CVE-2023-42363").references).toEqual([
      { type: "ADVISORY", url: "https://security.alpinelinux.org/vuln/CVE-2023-42363" },
    ]);
  });

  it("openssl: fixes from 1.1.1a-r0 to 3.1.4-r4 and five '0' ids", () => {
    const { advisories } = parse([file("vuln-list/3.18/main/openssl.json")]);
    const fixed = advisories.filter((a) => only(a).fixState === "fixed");
    expect(new Set(fixed.map((a) => only(a).fixedVersions[0])).size).toBe(28);
    expect(advisories.filter((a) => only(a).fixState === "not_affected").map((a) => a.id)).toEqual([
      "CVE-2022-1292",
      "CVE-2022-2068",
      "CVE-2022-2274",
      "CVE-2023-0466",
      "CVE-2023-4807",
    ]);
    expect(only(advisory(advisories, "CVE-2023-1255")).fixedVersions).toEqual(["3.1.0-r4"]);
    expect(only(advisory(advisories, "CVE-2023-6237")).fixedVersions).toEqual(["3.1.4-r4"]);
  });

  it("musl keeps _pre2 versions; zlib and apk-tools as listed", () => {
    const musl = parse([file("vuln-list/3.18/main/musl.json")]).advisories;
    expect(only(advisory(musl, "CVE-2020-28928")).fixedVersions).toEqual(["1.2.2_pre2-r0"]);
    expect(only(advisory(musl, "CVE-2025-26519")).fixedVersions).toEqual(["1.2.4-r3"]);
    const zlib = parse([file("vuln-list/3.18/main/zlib.json")]).advisories;
    expect(zlib.map((a) => [a.id, only(a).fixState, only(a).fixedVersions])).toEqual([
      ["CVE-2018-25032", "fixed", ["1.2.11-r4"]],
      ["CVE-2022-37434", "fixed", ["1.2.12-r2"]],
      ["CVE-2023-45853", "not_affected", []],
      ["CVE-2023-6992", "not_affected", []],
    ]);
    const apk = parse([file("vuln-list/3.18/main/apk-tools.json")]).advisories;
    expect(apk.map((a) => [a.id, only(a).fixedVersions])).toEqual([
      ["CVE-2021-30139", ["2.12.5-r0"]],
      ["CVE-2021-36159", ["2.12.6-r0"]],
    ]);
  });

  it("YAML secdb: versions stay strings (5.8-r0), repository from reponame", () => {
    const { advisories } = parse([file("secdb/v3.15/main.yaml")]);
    expect(only(advisory(advisories, "CVE-2019-20044"))).toEqual({
      ecosystem: "Alpine:v3.15",
      name: "zsh",
      nameKind: "source",
      fixState: "fixed",
      fixedVersions: ["5.8-r0"],
      ranges: [fixedRange("5.8-r0")],
      detail: { repositories: ["main"] },
    });
    expect(only(advisory(advisories, "CVE-2022-1271"))).toMatchObject({ name: "xz", fixedVersions: ["5.2.5-r1"] });
  });

  it("secdb JSON with fix keys newest first: each id gets its own key", () => {
    const { advisories } = parse([file("secdb/v3.10/community.json")]);
    expect(advisories.filter((a) => only(a).name === "botan").map((a) => [a.id, only(a).fixedVersions[0]])).toEqual([
      ["CVE-2018-12435", "2.7.0-r0"],
      ["CVE-2018-20187", "2.9.0-r0"],
      ["CVE-2018-9127", "2.5.0-r0"],
      ["CVE-2018-9860", "2.6.0-r0"],
    ]);
    expect(only(advisory(advisories, "CVE-2019-9929"))).toMatchObject({ name: "cfengine", detail: { repositories: ["community"] } });
  });
});

describe("Alpine secdb fixtures together", () => {
  const all = [
    "secdb/v3.10/community.json",
    "secdb/v3.15/main.yaml",
    "vuln-list/3.18/main/openssl.json",
    "vuln-list/3.18/main/busybox.json",
    "vuln-list/3.18/main/musl.json",
    "vuln-list/3.18/main/zlib.json",
    "vuln-list/3.18/main/apk-tools.json",
  ].map(file);
  const { advisories, skipped } = parse(all);

  it("merges an id over branches into one advisory, with a row per (branch, package)", () => {
    expect(skipped).toEqual([]);
    const ids = advisories.map((a) => a.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(advisory(advisories, "CVE-2022-37434").affected.map((r) => [r.ecosystem, r.name, r.fixedVersions])).toEqual([
      ["Alpine:v3.15", "zlib", ["1.2.12-r2"]],
      ["Alpine:v3.18", "zlib", ["1.2.12-r2"]],
    ]);
    expect(advisory(advisories, "CVE-2018-25032").affected.map((r) => [r.ecosystem, r.fixedVersions])).toEqual([
      ["Alpine:v3.15", ["1.2.12-r0"]],
      ["Alpine:v3.18", ["1.2.11-r4"]],
    ]);
    // 111 (file, id) pairs, two of them the zlib ids shared by v3.15 and v3.18.
    expect(advisories).toHaveLength(109);
    expect(advisories.reduce((n, a) => n + a.affected.length, 0)).toBe(111);
  });

  it("gives the C1 rows: the 14 CVEs affecting the Alpine 3.18 image have fixes in their origin packages", () => {
    const c1: Array<[string, string, string]> = [
      ["openssl", "CVE-2023-2650", "3.1.1-r0"],
      ["openssl", "CVE-2023-2975", "3.1.1-r2"],
      ["openssl", "CVE-2023-3446", "3.1.1-r3"],
      ["openssl", "CVE-2023-3817", "3.1.2-r0"],
      ["openssl", "CVE-2023-5363", "3.1.4-r0"],
      ["openssl", "CVE-2023-5678", "3.1.4-r1"],
      ["openssl", "CVE-2023-6129", "3.1.4-r3"],
      ["openssl", "CVE-2023-6237", "3.1.4-r4"],
      ["busybox", "CVE-2022-48174", "1.36.1-r1"],
      ["busybox", "CVE-2023-42363", "1.36.1-r7"],
      ["busybox", "CVE-2023-42364", "1.36.1-r7"],
      ["busybox", "CVE-2023-42365", "1.36.1-r7"],
      ["busybox", "CVE-2023-42366", "1.36.1-r6"],
      ["musl", "CVE-2025-26519", "1.2.4-r3"],
    ];
    for (const [pkg, id, fix] of c1) {
      expect(only(advisory(advisories, id)), id).toMatchObject({ ecosystem: "Alpine:v3.18", name: pkg, fixState: "fixed", fixedVersions: [fix] });
    }
  });
});

describe("secfixes ids", () => {
  it("splits several ids, drops comments, keeps non-CVE ids", () => {
    expect(secfixIds("CVE-2022-1234 CVE-2022-5678")).toEqual(["CVE-2022-1234", "CVE-2022-5678"]);
    expect(secfixIds("CVE-2021-1111 (incomplete fix of CVE-2020-1)")).toEqual(["CVE-2021-1111"]);
    expect(secfixIds("cve-2020-2222 # see upstream")).toEqual(["CVE-2020-2222"]);
    expect(secfixIds("ALPINE-13661")).toEqual(["ALPINE-13661"]);
    expect(secfixIds("GHSA-35jh-r3h4-6jhm, XSA-123")).toEqual(["GHSA-35jh-r3h4-6jhm", "XSA-123"]);
    expect(secfixIds("fixes a crash")).toEqual([]);
    expect(secfixIds(`CVE-2020-${"1".repeat(200)}`)).toEqual([]);
  });

  it("keeps the original string in detail and the ids as separate advisories", () => {
    const text = JSON.stringify({
      distroversion: "v3.19",
      reponame: "main",
      packages: [
        {
          pkg: {
            name: "foo",
            secfixes: {
              "1.2-r0": ["CVE-2022-1234 CVE-2022-5678", "CVE-2021-1111 (partial)"],
              "1.3-r0": ["CVE-2021-1111"],
              "0": ["CVE-2020-9999"],
              "1.4-r0": ["CVE-2020-9999"],
            },
          },
        },
      ],
    });
    const { advisories, skipped } = parse([raw("v3.19/main.json", text)]);
    expect(skipped).toEqual([]);
    expect(advisories.map((a) => a.id)).toEqual(["CVE-2020-9999", "CVE-2021-1111", "CVE-2022-1234", "CVE-2022-5678"]);
    expect(only(advisory(advisories, "CVE-2022-1234")).detail).toEqual({ repositories: ["main"], secfixes: ["CVE-2022-1234 CVE-2022-5678"] });
    // Several keys for one id: one fixed version and one range each.
    expect(only(advisory(advisories, "CVE-2021-1111"))).toMatchObject({
      fixState: "fixed",
      fixedVersions: ["1.2-r0", "1.3-r0"],
      ranges: [fixedRange("1.2-r0"), fixedRange("1.3-r0")],
    });
    // Listed under "0" and under a fix: the fix wins, the contradiction is kept in detail.
    expect(only(advisory(advisories, "CVE-2020-9999"))).toMatchObject({
      fixState: "fixed",
      fixedVersions: ["1.4-r0"],
      detail: { alsoListedUnder0: true },
    });
  });
});

describe("hostile and broken input", () => {
  it("records of the wrong shape are skipped, the rest is kept", () => {
    const text = `{"distroversion": "v3.18", "reponame": "main", "packages": [
      {"pkg": {"name": "ok", "secfixes": {"1.0-r0": ["CVE-2024-0001"], "__proto__": ["CVE-2024-0002"], "2.0-r0": "CVE-2024-0003"}}},
      {"pkg": {"name": "badlist", "secfixes": {"1.0-r0": [5, "no id here", "CVE-2024-0004"], "bad key!": ["CVE-2024-0005"]}}},
      {"pkg": {"name": "x", "secfixes": ["CVE-2024-0006"]}},
      {"pkg": {"name": "Bad Name", "secfixes": {}}},
      {"notpkg": 1},
      "str"
    ]}`;
    const { advisories, skipped } = parse([raw("v3.18/main.json", text)]);
    expect(advisories.map((a) => `${a.id} ${only(a).name} ${only(a).fixedVersions.join(",")}`)).toEqual([
      "CVE-2024-0001 ok 1.0-r0",
      "CVE-2024-0003 ok 2.0-r0",
      "CVE-2024-0004 badlist 1.0-r0",
    ]);
    expect(skipped.map((s) => [s.record, s.reason])).toEqual([
      ["ok __proto__", "fix version is not a version (or longer than 256 characters)"],
      ["badlist 1.0-r0 [0]", "id is a number, expected a string"],
      ["badlist 1.0-r0 [1]", 'no id in "no id here"'],
      ["badlist bad key!", "fix version is not a version (or longer than 256 characters)"],
      ["x", "secfixes is a list, expected an object of fix versions"],
      ["packages[3].name", 'package name is "Bad Name", expected an Alpine package name'],
      ["packages[4]", "expected {pkg: {name, secfixes}}, got missing"],
      ["packages[5]", "expected {pkg: {name, secfixes}}, got a string"],
    ]);
    expect(({} as Record<string, unknown>)["1.0-r0"]).toBeUndefined();
  });

  it("takes the branch from the path when distroversion is missing, skips a file that names none", () => {
    const doc = JSON.stringify({ name: "foo", secfixes: { "1-r0": ["CVE-2024-0001"] } });
    expect(only(parse([raw("3.20/community/foo.json", doc)]).advisories[0] as Advisory)).toMatchObject({
      ecosystem: "Alpine:v3.20",
      detail: { repositories: ["community"] },
    });
    const r = parse([raw("foo.json", doc)]);
    expect(r.advisories).toEqual([]);
    expect(r.skipped).toEqual([{ file: "foo.json", record: "*", reason: "no Alpine branch: distroversion is missing and the path names none" }]);
  });

  it("truncated JSON, broken YAML, a wrong top level and an oversized file are errors naming the file", () => {
    const text = fixture("alpine/vuln-list/3.18/main/busybox.json").toString().slice(0, 200);
    expect(() => parse([raw("3.18/main/busybox.json", text)])).toThrow(
      /^3\.18\/main\/busybox\.json: invalid JSON at line \d+ column \d+ \(offset 200\)/,
    );
    expect(() => parse([raw("v3.15/main.yaml", "distroversion: v3.15\npackages: [\n")])).toThrow(/^v3\.15\/main\.yaml: invalid YAML at line/);
    expect(() => parse([raw("v3.15/main.json", "[]")])).toThrow(AdvisoryInputError);
    const big: RawFile = { path: "v3.18/main.json", bytes: Buffer.alloc(SIZE_CAPS.other + 1, 0x20) };
    expect(() => parse([big])).toThrow(/^v3\.18\/main\.json: \d+ bytes is over the 64 MiB cap/);
  });

  it("does not depend on key order", () => {
    const a = parse([raw("v3.18/main.json", '{"distroversion":"v3.18","packages":[{"pkg":{"name":"p","secfixes":{"2-r0":["CVE-1-2"],"1-r0":["CVE-1-1"]}}}]}')]);
    const b = parse([raw("v3.18/main.json", '{"packages":[{"pkg":{"secfixes":{"1-r0":["CVE-1-1"],"2-r0":["CVE-1-2"]},"name":"p"}}],"distroversion":"v3.18"}')]);
    expect(a).toEqual(b);
  });
});

describe("detect", () => {
  it("recognises every Alpine fixture from its content", () => {
    for (const f of ["secdb/v3.10/community.json", "secdb/v3.15/main.yaml", "vuln-list/3.18/main/openssl.json", "vuln-list/3.18/main/apk-tools.json"]) {
      expect(detect({ path: "x", bytes: fixture(`alpine/${f}`) }), f).toBe(true);
    }
  });
  it("does not claim Debian, Red Hat or OSV files", () => {
    for (const f of ["debian/vunnel/debian.json", "debian/tracker/CVE/list", "redhat/cve-2024-28085.json", "osv/pypi/PYSEC-2019-217.yaml", "osv/go/GO-2023-1752.json"]) {
      expect(detect({ path: "x", bytes: fixture(f) }), f).toBe(false);
    }
  });
});
