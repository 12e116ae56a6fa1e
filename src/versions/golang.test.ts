import { describe, expect, it } from "vitest";
import { canonicalGoVersion, golang } from "./golang.js";
import { orderMismatches } from "./testing.js";

describe("go", () => {
  it("canonicalises OSV's v-less versions and Go release tags", () => {
    const cases: Record<string, string> = {
      "go1.19.8": "v1.19.8",
      "go1.20": "v1.20.0",
      "go1.21rc2": "v1.21.0-rc.2",
      "go1.21beta1": "v1.21.0-beta.1",
      "go1.9.2rc2": "v1.9.2-rc.2",
      go1: "v1.0.0",
      "1.19.9": "v1.19.9",
      "1.20.0-0": "v1.20.0-0",
      "v1.2": "v1.2.0",
      v1: "v1.0.0",
      "v2.0.0+incompatible": "v2.0.0",
      "0.0.0-20220906165146-f3363e06e74c": "v0.0.0-20220906165146-f3363e06e74c",
    };
    for (const [v, want] of Object.entries(cases)) expect(canonicalGoVersion(v), v).toBe(want);
  });

  it("orders as golang.org/x/mod/semver", () => {
    expect(
      orderMismatches(
        golang,
        "v0.0.0-20220722155237-a158d28d115b < v0.0.0-20220906165146-f3363e06e74c < v0.0.0 < v0.1.0",
        "v1.0.0-0 < v1.0.0-1 < v1.0.0-alpha < v1.0.0-alpha.1 < v1.0.0-alpha.beta < v1.0.0-beta < v1.0.0-rc.1 < v1.0.0",
        "v1.0.0+a = v1.0.0+b = v1.0.0",
        "go1.21beta1 < go1.21rc1 < go1.21rc2 < go1.21.0 = go1.21 < go1.21.1",
      ),
    ).toEqual([]);
  });

  it("refuses what x/mod/semver refuses", () => {
    for (const v of ["", "v", "v1.0.0.0", "v01.0.0", "v1.00.0", "v1.0.0-01", "v1.0.0-", "v1.0.0+", "V1.0.0", " v1.0.0", "v1-rc.1", "v1.2-rc.1", "v1.2+x", "go1.21.0rc", "go", "goX", "go1.21rc", "v1.0.0-a..b"]) {
      expect(golang.valid(v), JSON.stringify(v)).toBe(false);
      expect(() => canonicalGoVersion(v)).toThrow();
    }
  });
});
