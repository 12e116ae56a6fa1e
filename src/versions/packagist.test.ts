// Packagist ordering on OSV's Packagist vectors (osv-scalibr semantic/testdata: packagist-versions.txt, the
// cases of php-src's own version_compare.phpt, and packagist-versions-generated.txt, pairs of real Packagist
// release versions; test/fixtures/versions/README.md), both orientations.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { packagist } from "./packagist.js";
import { readVectors } from "./testing.js";
import { UnmatchableVersionError } from "./types.js";

const dir = fileURLToPath(new URL("../../test/fixtures/versions/", import.meta.url));

/**
 * Lines whose pair is unmatchable here on purpose: `dev-foo` is a branch (Composer's comparator puts branches
 * below every release, which would make an installed branch "affected" by every `< fix` range: a guess),
 * and `#` is a character no Composer version has (version_compare reads it as a separator).
 */
const UNMATCHABLE: Record<string, number[]> = { "packagist-versions.txt": [86, 90, 94, 95, 96, 97, 98, 99], "packagist-versions-generated.txt": [] };

describe("packagist", () => {
  for (const [file, unmatchable] of Object.entries(UNMATCHABLE)) {
    it(`every pair of ${file}, both ways`, () => {
      const vectors = readVectors(file, dir);
      expect(vectors.length).toBeGreaterThan(50);
      const odd = new Set(unmatchable);
      const bad = vectors.filter((v) => {
        if (odd.has(v.line)) return packagist.valid(v.a) && packagist.valid(v.b);
        return Math.sign(packagist.compare(v.a, v.b)) !== v.want || Math.sign(packagist.compare(v.b, v.a)) !== (-v.want || 0);
      });
      expect(bad.map((v) => `${v.line}: ${v.a} ${v.want} ${v.b}`)).toEqual([]);
    });
  }

  it("reads Composer's tags with a v, and refuses branches and junk", () => {
    expect(packagist.compare("v1.8.1", "1.8.1")).toBe(0);
    expect(packagist.compare("v2.0.0-RC1", "2.0.0")).toBe(-1);
    for (const v of ["", "dev-main", "dev-master", "latest", "1.0 beta", "1.0/2"]) {
      expect(packagist.valid(v), v).toBe(false);
      expect(() => packagist.compare(v, "1.0.0")).toThrow(UnmatchableVersionError);
    }
  });
});
