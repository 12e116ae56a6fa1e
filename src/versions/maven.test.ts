import { describe, expect, it } from "vitest";
import { maven } from "./maven.js";
import { orderMismatches } from "./testing.js";

describe("maven", () => {
  it("orders the POM reference's examples as Maven 3.8 does", () => {
    expect(
      orderMismatches(
        maven,
        "1 < 1.1",
        "1-snapshot < 1 < 1-sp",
        "1-foo2 < 1-foo10",
        "1.foo = 1-foo < 1-1 < 1.1",
        "1.ga = 1-ga = 1-0 = 1.0 = 1 = 1.final = 1.RELEASE = 1.",
        "1-ga < 1-sp",
        "1-ga.1 < 1-sp.1",
        "1-sp-1 < 1-ga-1",
        "1-a1 = 1-alpha-1 = 1.0alpha1 = 1alpha1",
      ),
    ).toEqual([]);
  });

  it("orders qualifiers, case-insensitively, unknown ones last", () => {
    expect(
      orderMismatches(
        maven,
        "1-alpha < 1-beta < 1-milestone < 1-rc = 1-cr < 1-snapshot < 1 < 1-sp < 1-abc < 1-xyz = 1-XYZ",
        "1-a1 < 1-b1 < 1-m1 < 1-rc1",
        "1-RC2 = 1-rc2",
      ),
    ).toEqual([]);
  });

  it("keeps Maven 3.8.7's answers where later Maven differs", () => {
    expect(
      orderMismatches(
        maven,
        // 3.9 says equal
        "1-ga-1 < 1-1",
        // 3.9 says <
        "2.0.a = 2.0.0.a = 2-a",
        // MNG-7644 (new in 3.8.7): a qualifier after '.' sorts as after '-'
        "1.0.0.RC1 < 1.0.0-RC2",
        "1.0.0-RC8 < 1.0.0.RC16",
      ),
    ).toEqual([]);
  });

  it("gives the C9 answers of the fixture README (log4j-core, jackson-databind)", () => {
    // GHSA-jfh8-c2jp-5v3q: [0, 2.3.1) [2.4, 2.12.2) [2.13.0, 2.15.0)
    expect(
      orderMismatches(
        maven,
        "2.0-beta9 < 2.3 < 2.3.1 < 2.3.2 < 2.4 < 2.12.1 < 2.12.2 < 2.12.3 < 2.13.0 < 2.14.1 < 2.15.0 < 2.16.0",
        "2.9.10.8 < 2.12.6.1",
      ),
    ).toEqual([]);
  });

  it("reads every non-empty string, as Maven does", () => {
    for (const v of ["~", "1 2", "..", "-", "a", "1-~"]) expect(maven.valid(v), v).toBe(true);
    expect(maven.valid("")).toBe(false);
  });
});
