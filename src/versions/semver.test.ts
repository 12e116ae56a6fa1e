import { describe, expect, it } from "vitest";
import { satisfies, semver } from "./semver.js";
import { orderMismatches } from "./testing.js";
import { UnmatchableVersionError } from "./types.js";

describe("semver", () => {
  it("orders with SemVer 2.0 precedence", () => {
    expect(
      orderMismatches(
        semver,
        "1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0 < 2.0.0 < 2.1.0 < 2.1.1",
        "v1.2.3 = 1.2.3 =  1.2.3  = 1.2.3+build",
        // C6: lodash and semver advisories, ranges evaluated with compare
        "4.17.15 < 4.17.21",
        "7.0.0 < 7.5.1 < 7.5.2-rc.1 < 7.5.2",
      ),
    ).toEqual([]);
  });

  it("refuses what npm's semver refuses, and prerelease numbers it would compare as floats", () => {
    for (const v of ["", "=1.0.0", "V1.0.0", "1.0", "1", "1.0.0.0", "01.0.0", "9007199254740992.0.0", "1.0.0-9007199254740991", "1.0.0-999999999999999999999999999999"]) {
      expect(semver.valid(v), v).toBe(false);
    }
    expect(semver.valid("9007199254740991.0.0")).toBe(true);
    expect(semver.valid("1.0.0-9007199254740990")).toBe(true);
  });

  it("satisfies() evaluates Node.js advisory ranges (C11)", () => {
    const vulnerable = "^20.20.0 || ^22.22.0";
    const patched = "^20.20.2 || ^22.22.2";
    const affected = (v: string) => satisfies(v, vulnerable) && !satisfies(v, patched);
    expect(affected("20.20.1")).toBe(true);
    expect(affected("v20.20.1")).toBe(true);
    expect(affected("20.20.2")).toBe(false);
    expect(affected("22.22.2")).toBe(false);
    expect(affected("18.20.8")).toBe(false);
    // why ranges from OSV must not use satisfies: a prerelease inside the range does not satisfy it
    expect(satisfies("7.5.2-rc.1", ">=7.0.0 <7.5.2")).toBe(false);
    expect(() => satisfies("1.0.0", ">=abc")).toThrow(UnmatchableVersionError);
    expect(() => satisfies("1.0.0", "  ")).toThrow(UnmatchableVersionError);
    expect(() => satisfies("1.0", ">=1.0.0")).toThrow(UnmatchableVersionError);
  });
});
