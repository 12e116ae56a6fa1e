// NuGet ordering on OSV's own NuGet comparison vectors (osv-scalibr semantic/testdata/nuget-versions.txt,
// test/fixtures/versions/README.md), both orientations, and what the scheme refuses.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { nuget } from "./nuget.js";
import { readVectors } from "./testing.js";
import { UnmatchableVersionError } from "./types.js";

describe("nuget", () => {
  it("every pair of OSV's nuget-versions.txt, both ways", () => {
    const vectors = readVectors("nuget-versions.txt", fileURLToPath(new URL("../../test/fixtures/versions/", import.meta.url)));
    expect(vectors.length).toBeGreaterThan(30);
    const bad = vectors.filter((v) => Math.sign(nuget.compare(v.a, v.b)) !== v.want || Math.sign(nuget.compare(v.b, v.a)) !== (-v.want || 0));
    expect(bad).toEqual([]);
  });

  it("refuses what is not a NuGet version", () => {
    for (const v of ["v1.0.0", "1.0.0.0.0", "1.0.0-", "1.0.0-a..b", "1.0.0-a_b", "", "latest"]) {
      expect(nuget.valid(v), v).toBe(false);
      expect(() => nuget.compare(v, "1.0.0")).toThrow(UnmatchableVersionError);
    }
  });
});
