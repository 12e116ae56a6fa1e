import { readFileSync } from "node:fs";
import semver from "semver";
import { describe, expect, it } from "vitest";
import { AdvisoryInputError } from "../../input.js";
import type { Advisory, RawFile } from "../../../model/advisory.js";
import { detectNodejsCore, parseNodejsCore } from "./index.js";

const FIXTURES = new URL("../../../../../shared/fixtures/advisories/", import.meta.url);
const INDEX: RawFile = { path: "vuln/core/index.json", bytes: readFileSync(new URL("nodejs/core/index.json", FIXTURES)) };

function byKey(advisories: Advisory[], key: string): Advisory {
  const a = advisories.find((x) => x.origin.record === key);
  if (!a) throw new Error(`no advisory for entry ${key}`);
  return a;
}

/** C11: affected iff satisfies(v, vulnerable) && !satisfies(v, patched). */
function affecting(advisories: Advisory[], version: string): string[] {
  return advisories
    .filter((a) => {
      const c = a.affected[0]?.constraints;
      return c && semver.satisfies(version, c.vulnerable) && !(c.patched && semver.satisfies(version, c.patched));
    })
    .map((a) => a.origin.record);
}

describe("Node.js core index.json", () => {
  const result = parseNodejsCore([INDEX]);

  it("reads all 171 entries: 170 advisories and entry 150, an exact duplicate of 141, skipped", () => {
    expect(result.advisories).toHaveLength(170);
    expect(result.skipped).toEqual([{ file: "vuln/core/index.json", record: "150", reason: "duplicate of entry 141" }]);
    expect(new Set(result.advisories.map((a) => a.id)).size).toBe(170);
  });

  it("entry 171: CVE-2026-21717, patched ^20.20.2 || …", () => {
    const a = byKey(result.advisories, "171");
    expect(a).toMatchObject({
      id: "CVE-2026-21717",
      aliases: [],
      advisoryIds: [],
      summary: "HashDoS in V8",
      severity: "Medium",
      vendorSeverity: "medium",
      cvss: [],
      references: [{ type: "ADVISORY", url: "https://nodejs.org/en/blog/vulnerability/march-2026-security-releases" }],
      origin: { file: "vuln/core/index.json", record: "171" },
    });
    expect(a.details).toContain("JSON.parse()");
    expect(a.affected).toEqual([
      {
        ecosystem: "Node.js",
        name: "node",
        nameKind: "binary",
        fixState: "fixed",
        fixedVersions: ["20.20.2", "22.22.2", "24.14.1", "25.8.2"],
        ranges: [],
        constraints: { vulnerable: "20.x || 22.x || 24.x || 25.x", patched: "^20.20.2 || ^22.22.2 || ^24.14.1 || ^25.8.2" },
        detail: { affectedEnvironments: ["all"] },
      },
    ]);
  });

  it("entries without a CVE get NSWG-CORE-<key>; several CVEs: the first is the id, the others aliases", () => {
    const two = byKey(result.advisories, "2");
    expect(two.id).toBe("NSWG-CORE-2");
    expect(two.aliases).toEqual([]);
    expect(two.severity).toBe("Unknown");
    expect(two.vendorSeverity).toBe("unknown");
    expect(result.advisories.filter((a) => a.id.startsWith("NSWG-CORE-")).map((a) => a.origin.record)).toEqual(
      ["2", "9", "11", "17", "20", "21", "25", "26", "29", "30", "33", "38", "39", "41"],
    );
    const http2 = byKey(result.advisories, "62");
    expect(http2.id).toBe("CVE-2019-9511");
    expect(http2.aliases).toEqual(["CVE-2019-9512", "CVE-2019-9513", "CVE-2019-9514", "CVE-2019-9515", "CVE-2019-9516", "CVE-2019-9517", "CVE-2019-9518"]);
    expect(http2.published).toBe("2019-08-15T00:00:00Z");
  });

  it("trims ranges, reads >= ranges, scores the 3.0 vectors the file writes without the CVSS: label", () => {
    const e87 = byKey(result.advisories, "87");
    expect(e87.affected[0]?.constraints).toEqual({ vulnerable: "12.x || 14.x", patched: "^12.22.6 || ^14.17.6" });
    const e54 = byKey(result.advisories, "54");
    expect(e54.affected[0]?.fixedVersions).toEqual(["6.14.4", "8.11.4", "10.9.0"]);
    const e18 = byKey(result.advisories, "18");
    expect(e18.cvss).toEqual([{ version: "3.0", vector: "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:N", score: 4.8, source: "nodejs" }]);
    expect(byKey(result.advisories, "40").cvss[0]?.score).toBe(5.9);
    expect(byKey(result.advisories, "141").affected[0]?.detail).toEqual({ affectedEnvironments: ["win32"] });
    expect(result.advisories.map((a) => a.severity).filter((s) => s === "Critical")).toHaveLength(5);
  });

  it("C11: node 20.20.1 is affected by 7 entries, 20.20.2 and 18.20.8 by none", () => {
    expect(affecting(result.advisories, "20.20.1")).toEqual(["163", "164", "167", "168", "169", "170", "171"]);
    expect(byKey(result.advisories, "163").id).toBe("CVE-2026-21637");
    expect(affecting(result.advisories, "20.20.2")).toEqual([]);
    expect(affecting(result.advisories, "18.20.8")).toEqual([]);
  });

  it("is detected; OSV and enrichment files are not", () => {
    expect(detectNodejsCore(INDEX)).toBe(true);
    const entry = { path: "vuln/core/171.json", bytes: Buffer.from(JSON.stringify((JSON.parse(INDEX.bytes.toString()) as Record<string, unknown>)["171"])) };
    expect(detectNodejsCore(entry)).toBe(true);
    for (const f of ["osv/ghsa/GHSA-c2qf-rxjj-qqgw.json", "enrichment/nvd/feed.json", "enrichment/kev/known_exploited_vulnerabilities.json", "enrichment/epss/data.csv"]) {
      expect(detectNodejsCore({ path: f, bytes: readFileSync(new URL(f, FIXTURES)) }), f).toBe(false);
    }
  });
});

describe("Node.js core: entry files and bad input", () => {
  const entry = (v: unknown, path = "vuln/core/7.json"): RawFile => ({ path, bytes: Buffer.from(JSON.stringify(v)) });
  const good = { cve: ["CVE-2024-0001"], vulnerable: "20.x", patched: "^20.1.0", severity: "high", affectedEnvironments: ["all"] };

  it("reads a per-entry file, keyed by its file name", () => {
    const r = parseNodejsCore([entry(good)]);
    expect(r.skipped).toEqual([]);
    expect(r.advisories[0]).toMatchObject({ id: "CVE-2024-0001", severity: "High", origin: { file: "vuln/core/7.json", record: "7" } });
  });

  it("no patched range → not_fixed", () => {
    const r = parseNodejsCore([entry({ ...good, patched: "" })]);
    expect(r.advisories[0]?.affected[0]).toMatchObject({ fixState: "not_fixed", fixedVersions: [], constraints: { vulnerable: "20.x" } });
  });

  it("entries of the wrong shape are skipped with the reason", () => {
    const index = {
      "1": { ...good, vulnerable: 20 },
      "2": { ...good, vulnerable: "not a range !!" },
      "3": { ...good, cve: ["CVE-2024-XXXX"] },
      "4": "junk",
      "5": { ...good, publish_date: "16 Aug 2018" },
      "6": { ...good, cvss: "3.0/AV:N/AC:H" },
      abc: good,
    };
    // A "__proto__" key in the file is dropped when parsing, never assigned.
    const text = `${JSON.stringify(index).slice(0, -1)},"__proto__":${JSON.stringify(good)}}`;
    const r = parseNodejsCore([{ path: "index.json", bytes: Buffer.from(text) }]);
    expect(r.skipped.map((s) => [s.record, s.reason])).toEqual([
      ["1", "invalid entry: vulnerable: Invalid input: expected string, received number"],
      ["2", 'vulnerable: semver cannot read "not a range !!"'],
      ["3", 'not a CVE id: "CVE-2024-XXXX"'],
      ["4", "invalid entry: (record): Invalid input: expected object, received string"],
      ["5", "invalid entry: publish_date: not a YYYY-MM-DD date"],
      ["6#cvss", 'CVSS vector "CVSS:3.0/AV:N/AC:H": Base metrics PR, UI, S, C, I, A missing'],
      ["abc", "key is not an entry number"],
    ]);
    expect(r.advisories.map((a) => a.origin.record)).toEqual(["6"]);
    expect(({} as Record<string, unknown>).vulnerable).toBeUndefined();
  });

  it("a file that is not JSON is an error naming it", () => {
    expect(() => parseNodejsCore([{ path: "vuln/core/index.json", bytes: Buffer.from("{ nope") }])).toThrow(AdvisoryInputError);
    expect(() => parseNodejsCore([{ path: "vuln/core/index.json", bytes: Buffer.from("{ nope") }])).toThrow(/^file vuln\/core\/index\.json: invalid JSON/);
    expect(() => parseNodejsCore([{ path: "big.json", bytes: Buffer.alloc(100, 0x20) }], { maxFileBytes: 10 })).toThrow(/over the limit of 10/);
  });
});
