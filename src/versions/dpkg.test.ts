import { describe, expect, it } from "vitest";
import { dpkg, parseDpkg } from "./dpkg.js";
import { orderMismatches } from "./testing.js";

describe("dpkg", () => {
  it("orders as Debian Policy 5.6.12 says", () => {
    expect(
      orderMismatches(
        dpkg,
        // Policy's own example: ~~ < ~~a < ~ < (empty) < a
        "1.0~~ < 1.0~~a < 1.0~ < 1.0 < 1.0a",
        // letters before non-letters; digits numerically
        "1.0a < 1.0+ < 1.0.",
        "1.9 < 1.10 = 1.010 < 1.11",
        // epoch first; 0: is no epoch
        "9.9 < 1:0.1 = 0001:0.1 < 2:0",
        "0:1.0 = 1.0 = 1.0-0 = 1.0-00",
        // revision after the last '-': upstream 1.0-1 here
        "1.0-2 < 1.0-1-1",
        // backports and security updates before the next revision; binNMUs after
        "1.0-1~bpo11+1 < 1.0-1 < 1.0-1ubuntu0.1 < 1.0-1+b1 < 1.0-1+deb12u1 < 1.0-2",
        "1.0 < 1.0+b1",
        "+1:1.0 = 1:1.0",
        " 1.0\t = 1.0",
      ),
    ).toEqual([]);
  });

  it("splits epoch, upstream and revision", () => {
    const p = parseDpkg("1:2.3-4-5");
    expect([p.epoch, p.s.slice(p.us, p.ue), p.s.slice(p.rs)]).toEqual([1, "2.3-4", "5"]);
  });

  it("refuses what dpkg refuses, and the empty string", () => {
    for (const v of ["", " ", "1 0", ":1", "1:", "a:1", "1a:1", "1.0-a:b", "2147483648:1", "-1:1", "1.0-", "-1", "1:-1"]) expect(dpkg.valid(v), JSON.stringify(v)).toBe(false);
    // dpkg only warns about these, and compares them
    for (const v of ["abc", "1:1.0-a:b", "1:1:1", "2147483647:0", "-0:1"]) expect(dpkg.valid(v), v).toBe(true);
  });
});
