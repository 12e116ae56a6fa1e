import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CvssError, cvssBaseScore, cvssScores, parseCvss, roundUp, severityFromCvss, toCvss } from "./cvss.js";
import { CVSS4_MACROVECTOR_SCORES } from "./cvss4-macrovectors.js";

const FIXTURES = new URL("../../../shared/fixtures/advisories/enrichment/cvss-scores/", import.meta.url);

/** `VECTOR SCORE # comment` lines; blank and `#` lines skipped. */
function readList(name: string): Array<{ vector: string; score: number; line: number }> {
  const out: Array<{ vector: string; score: number; line: number }> = [];
  readFileSync(new URL(name, FIXTURES), "utf8")
    .split("\n")
    .forEach((raw, i) => {
      const text = raw.replace(/#.*$/, "").trim();
      if (!text) return;
      const [vector, score] = text.split(/\s+/);
      out.push({ vector: vector ?? "", score: Number(score), line: i + 1 });
    });
  return out;
}

describe("CVSS scores of every fixture line", () => {
  for (const [file, count, version] of [
    ["v2_score.list", 12, "2.0"],
    ["v30_score.list", 32, "3.0"],
    ["v31_score.list", 35, "3.1"],
    ["v4_score.list", 40, "4.0"],
  ] as const) {
    const lines = readList(file);
    it(`${file} has ${count} vectors`, () => expect(lines).toHaveLength(count));
    for (const { vector, score, line } of lines) {
      it(`${file}:${line} ${vector} → ${score}`, () => {
        const s = cvssScores(vector);
        expect(s.version).toBe(version);
        expect(s.score).toBe(score);
      });
    }
  }
});

describe("Base, Temporal and Environmental scores", () => {
  it("v2: the three scores of CVE-2002-0392 (guide section 3.3.1)", () => {
    expect(cvssScores("AV:N/AC:L/Au:N/C:N/I:N/A:C")).toEqual({ version: "2.0", base: 7.8, score: 7.8 });
    const s = cvssScores("AV:N/AC:L/Au:N/C:N/I:N/A:C/E:F/RL:OF/RC:C/CDP:H/TD:H/CR:M/IR:M/AR:H");
    expect(s).toEqual({ version: "2.0", base: 7.8, temporal: 6.4, environmental: 9.2, score: 9.2 });
  });

  it("v3.1: the spec example keeps Base 3.8 and gives Temporal 3.7", () => {
    expect(cvssScores("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:N/E:F/RL:X")).toEqual({ version: "3.1", base: 3.8, temporal: 3.7, score: 3.7 });
  });

  it("v3.1: an all-None impact scores 0", () => {
    expect(cvssBaseScore("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:U/C:N/I:N/A:N")).toBe(0);
  });

  it("v4.0: base is the Base metrics alone, score includes Threat and Environmental", () => {
    const s = cvssScores("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U");
    expect(s).toEqual({ version: "4.0", base: 7.7, score: 5.2 });
  });

  it("toCvss keeps the vector and the computed Base score", () => {
    expect(toCvss(" CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H ", "ubuntu")).toEqual({
      version: "3.1",
      vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
      score: 7.8,
      source: "ubuntu",
    });
  });

  it("Roundup (v3.1 Appendix A) does not round binary noise up", () => {
    expect(roundUp(4.000000000000001)).toBe(4);
    expect(roundUp(4.02)).toBe(4.1);
    expect(roundUp(4.0)).toBe(4);
  });
});

describe("strict vector validation", () => {
  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", /Base metric A missing/],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:H", /metric A given twice/],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:Y", /unknown metric "XX"/],
    ["CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", /metric AV has no value "Q"/],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/", /malformed metric/],
    ["CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", /unknown version prefix/],
    ["CVSS:4.0/AC:L/AV:N/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", /out of the specification's order/],
    ["CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:S/SA:N", /metric SI has no value "S"/],
    ["AV:N/AC:L/Au:N/C:N/I:N", /Base metric A missing/],
    ["AV:N/AC:L/Au:N/C:N/I:N/A:C/E:X", /metric E has no value "X"/],
    ["AV:N/AC:L/Au:N/C:N/I:N/A:C/__proto__:x", /unknown metric "__proto__"/],
    [`CVSS:3.1/${"AV:N/".repeat(200)}`, /longer than 512/],
  ];
  for (const [vector, why] of bad) {
    it(`refuses ${JSON.stringify(vector.slice(0, 60))}`, () => {
      expect(() => parseCvss(vector)).toThrow(CvssError);
      expect(() => parseCvss(vector)).toThrow(why);
    });
  }

  it("accepts v3 metrics in any order (v3.1 section 6) and explicit X", () => {
    expect(cvssBaseScore("CVSS:3.1/A:H/I:H/C:H/S:U/UI:N/PR:N/AC:L/AV:N/E:X")).toBe(9.8);
  });
});

describe("CVSS v4.0 data and the whole Base space", () => {
  it("has a score for every one of the 270 MacroVectors", () => {
    const keys = Object.keys(CVSS4_MACROVECTOR_SCORES);
    expect(keys).toHaveLength(270);
    for (const k of keys) {
      const [eq1, eq2, eq3, eq4, eq5, eq6] = k.split("").map(Number);
      expect(eq1! <= 2 && eq2! <= 1 && eq3! <= 2 && eq4! <= 2 && eq5! <= 2 && eq6! <= 1, k).toBe(true);
      expect(eq3 === 2 && eq6 === 0, k).toBe(false);
    }
  });

  it("scores every Base vector (104,976 of them), each between 0 and 10", () => {
    const values: Record<string, string[]> = {
      AV: ["N", "A", "L", "P"],
      AC: ["L", "H"],
      AT: ["N", "P"],
      PR: ["N", "L", "H"],
      UI: ["N", "P", "A"],
      VC: ["H", "L", "N"],
      VI: ["H", "L", "N"],
      VA: ["H", "L", "N"],
      SC: ["H", "L", "N"],
      SI: ["H", "L", "N"],
      SA: ["H", "L", "N"],
    };
    const names = Object.keys(values);
    let n = 0;
    const walk = (i: number, parts: string[]) => {
      if (i === names.length) {
        const s = cvssScores(`CVSS:4.0/${parts.join("/")}`);
        if (!(s.score >= 0 && s.score <= 10 && s.score === s.base)) throw new Error(`bad score for ${parts.join("/")}`);
        n++;
        return;
      }
      const name = names[i] ?? "";
      for (const v of values[name] ?? []) walk(i + 1, [...parts, `${name}:${v}`]);
    };
    walk(0, []);
    expect(n).toBe(104_976);
    expect(cvssBaseScore("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H")).toBe(10);
    expect(cvssBaseScore("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N")).toBe(0);
  }, 60_000);
});

describe("severityFromCvss (CVSS v3 qualitative scale)", () => {
  it.each([
    [0, "Negligible"],
    [0.1, "Low"],
    [3.9, "Low"],
    [4.0, "Medium"],
    [6.9, "Medium"],
    [7.0, "High"],
    [8.9, "High"],
    [9.0, "Critical"],
    [10, "Critical"],
    [-1, "Unknown"],
    [10.1, "Unknown"],
    [Number.NaN, "Unknown"],
  ] as const)("%s → %s", (score, severity) => {
    expect(severityFromCvss(score)).toBe(severity);
  });
});
