// Every pair of every comparison vector in ../shared/fixtures/advisories/versions/ (README there: where
// each file comes from and which real tool produced it), in both orientations. The only answers that
// differ from a file are listed below with the reason; each was checked against the real tool
// (test/versions/oracles.test.ts re-checks them).
import { describe, expect, it } from "vitest";
import { apk } from "./apk.js";
import { dpkg } from "./dpkg.js";
import { golang } from "./golang.js";
import { maven } from "./maven.js";
import { pep440 } from "./pep440.js";
import { rpm } from "./rpm.js";
import { rubygems } from "./rubygems.js";
import { semver } from "./semver.js";
import { goVectors, readVectors, type Vector } from "./testing.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

interface Expectation {
  scheme: VersionScheme;
  /** Lines whose pair must throw UnmatchableVersionError (one side is not a version of the scheme). */
  unmatchable?: number[];
  /** Lines where the file's answer is not the one of the tool this scheme follows: line -> [answer, why]. */
  differs?: Record<number, [number, string]>;
}

// maven-versions-generated.txt was made with Maven 3.8.6; Maven 3.8.7 (MNG-7644, "treat .X as -X for any
// string qualifier X") orders these 18 pairs the other way. maven-artifact 3.8.7 gives the answer here.
const MNG_7644 = "3.8.6 answer; Maven 3.8.7 (MNG-7644: a qualifier after '.' sorts like one after '-') says >";
const MAVEN_386: Record<number, [number, string]> = Object.fromEntries(
  [2781, 2786, 5776, 9949, 11435, 11450, 11476, 11526, 11557, 11578, 11582, 11594, 11602, 11612, 11621, 11687, 11748, 12642].map((l) => [l, [1, MNG_7644]]),
);

/** "3-5 9" -> [3, 4, 5, 9]. */
function lines(spec: string): number[] {
  return spec.split(/\s+/).flatMap((r) => {
    const [from, to = from] = r.split("-").map(Number);
    return Array.from({ length: to! - from! + 1 }, (_, i) => from! + i);
  });
}

const FILES: Record<string, Expectation> = {
  "debian-versions.txt": { scheme: dpkg },
  "debian-versions-generated.txt": { scheme: dpkg },
  "rpm-versions-generated.txt": { scheme: rpm },
  "alpine-versions-generated.txt": { scheme: apk },
  // 11 pairs with legacy strings packaging 22+ refuses (the README: "11 pairs use legacy (invalid) strings on purpose").
  "pypi-versions.txt": { scheme: pep440, unmatchable: [47, 48, 49, 50, 51, 52, 53, 54, 56, 57, 58] },
  // The README: 69 pairs hold one of 69 strings that are not PEP 440 (checked by count below too).
  "pypi-versions-generated.txt": {
    scheme: pep440,
    unmatchable: lines("525-532 1994 4222-4223 4909-4924 5367 7249-7258 7542 8716 9328-9348 11207 11234-11235 11248 11424 11759 11871-11872"),
  },
  // npm's semver refuses 30-digit numbers and a fifth component (osv's semver is more lenient).
  "semver-versions.txt": { scheme: semver, unmatchable: [87, 88, 92] },
  "maven-versions-generated.txt": { scheme: maven, differs: MAVEN_386 },
  "maven-versions.txt": { scheme: maven, differs: { 100: [1, "1-1 = 1-ga-1 follows Maven 3.9; 3.8 keeps the empty qualifier's sub-list: 1-1 > 1-ga-1"] } },
  "maven-compare.list": { scheme: maven, differs: { 109: [0, "2.0.a < 2.0.0.a follows Maven 3.9's tests; 3.8.7 trims both to 2-a: equal"] } },
  "rubygems-versions-generated.txt": { scheme: rubygems },
  // RubyGems 3.3 refuses 1beta and 1gamma ("Malformed version number string"): a letter needs a '.' before it.
  "rubygems-versions.txt": { scheme: rubygems, unmatchable: [3, 27] },
};

function outcome(scheme: VersionScheme, a: string, b: string): number | "unmatchable" {
  try {
    return Math.sign(scheme.compare(a, b));
  } catch (e) {
    if (e instanceof UnmatchableVersionError) return "unmatchable";
    throw e;
  }
}

/** Each vector checked as a < b and b > a; returns the lines that did not give `want`. */
function check(scheme: VersionScheme, vectors: Vector[], want: (v: Vector) => number | "unmatchable"): string[] {
  const bad: string[] = [];
  for (const v of vectors) {
    const w = want(v);
    const got = outcome(scheme, v.a, v.b);
    const back = outcome(scheme, v.b, v.a);
    const wantBack = w === "unmatchable" ? w : -w || 0;
    if (got !== w || back !== wantBack) bad.push(`${v.file}:${v.line}: ${v.a} vs ${v.b}: want ${w}, got ${got} (reversed ${back})`);
  }
  return bad;
}

describe("comparison vectors", () => {
  for (const [file, x] of Object.entries(FILES)) {
    it(`${file} with ${x.scheme.name}`, () => {
      const vectors = readVectors(file);
      expect(vectors.length).toBeGreaterThan(20);
      const unmatchable = new Set(x.unmatchable ?? []);
      for (const line of [...unmatchable, ...Object.keys(x.differs ?? {}).map(Number)]) {
        expect(vectors.some((v) => v.line === line), `${file}:${line} is a vector line`).toBe(true);
      }
      const bad = check(x.scheme, vectors, (v) => (unmatchable.has(v.line) ? "unmatchable" : (x.differs?.[v.line]?.[0] ?? v.want)));
      expect(bad).toEqual([]);
    });
  }

  it("pypi-versions-generated.txt: exactly 69 pairs, holding 69 distinct non-PEP 440 strings, are unmatchable", () => {
    const vectors = readVectors("pypi-versions-generated.txt");
    const invalid = new Set<string>();
    let pairs = 0;
    for (const v of vectors) {
      const bad = [v.a, v.b].filter((s) => !pep440.valid(s));
      bad.forEach((s) => invalid.add(s));
      if (bad.length) {
        pairs++;
        expect(() => pep440.compare(v.a, v.b)).toThrow(UnmatchableVersionError);
      }
    }
    expect(pairs).toBe(69);
    expect(invalid.size).toBe(69);
    expect(invalid).toContain("0.1-bulbasaur");
    expect(invalid).toContain("0.3.1-p1");
    expect(invalid).toContain("-class.-jw.util.version.Version-");
  });

  it("Go cases of the fixture README's C7 section", () => {
    const vectors = goVectors();
    expect(vectors.length).toBeGreaterThan(30);
    expect(check(golang, vectors, (v) => v.want)).toEqual([]);
  });
});
