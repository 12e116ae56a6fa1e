import { describe, expect, it } from "vitest";
import { rubygems } from "./rubygems.js";
import { orderMismatches } from "./testing.js";

describe("rubygems", () => {
  it("orders as Gem::Version#<=>", () => {
    expect(
      orderMismatches(
        rubygems,
        "1.0.a9 < 1.0.a10 = 1.0.a.10",
        "1.0.b1 < 1.0 = 1 = 1.0.0 = 01.0 =  1.0\t",
        "1.0-1 = 1.0.pre.1 < 1.0",
        "1.0.a = 1.a < 1.b < 1",
        // letter runs by byte value: upper case first
        "1.B < 1.a",
        "1.0.0a = 1.0.0.a",
        "1.0.RC1 < 1.0.rc1",
      ),
    ).toEqual([]);
  });

  it("refuses what RubyGems 3.3 refuses (Malformed version number string), and blank strings", () => {
    for (const v of ["", " ", "1beta", "1gamma", "1.0-", "1..2", "a", ".1", "1.0_1", "1.0+1", "v1.0"]) expect(rubygems.valid(v), JSON.stringify(v)).toBe(false);
  });
});
