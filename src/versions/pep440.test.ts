import { describe, expect, it } from "vitest";
import { pep440 } from "./pep440.js";
import { orderMismatches } from "./testing.js";

describe("pep440", () => {
  it("orders PEP 440's own example list", () => {
    expect(
      orderMismatches(
        pep440,
        "1.dev0 < 1.0.dev456 < 1.0a1 < 1.0a2.dev456 < 1.0a12.dev456 < 1.0a12 < 1.0b1.dev456 < 1.0b2 < 1.0b2.post345.dev456 < 1.0b2.post345 < 1.0rc1.dev456 < 1.0rc1 < 1.0 < 1.0+abc.5 < 1.0+abc.7 < 1.0+5 < 1.0.post456.dev34 < 1.0.post456 < 1.0.15 < 1.1.dev1",
      ),
    ).toEqual([]);
  });

  it("reads the spellings PEP 440 normalises", () => {
    expect(
      orderMismatches(
        pep440,
        "1.0-1 = 1.0.post1 = 1.0post1 = 1.0-post-1 = 1.0.r1 = 1.0rev1",
        "1.0alpha1 = 1.0a1 = 1.0-a.1 = 1.0A1",
        "1.0c1 = 1.0pre1 = 1.0preview1 = 1.0RC1 = 1.0rc1",
        "1.0.post = 1.0.post0",
        "1.0dev = 1.0.dev0",
        "v1.0 = V1.0 = 1.0 = 1.0.0 =  1.0\t",
        "1.0+LOCAL = 1.0+local",
        "1.0+abc-1_2 = 1.0+abc.1.2",
        "1.0+0x1 < 1.0+1",
        "9.0 < 1!0.1 = 1!0.1.0",
        // C8: Jinja2 3.1.2 is affected by [0, 3.1.3), not by [0, 2.10.1)
        "2.10 < 2.10.1 < 3.1.2 < 3.1.3",
      ),
    ).toEqual([]);
  });

  it("refuses legacy versions", () => {
    for (const v of ["", " ", "1.0-bulbasaur", "0.3.1-p1", "1.0+", "1.0+-a", "1..0", "a", "1.0.x", "2013-01-21T20:33:09+0100", "1.0_", "1.0-"]) {
      expect(pep440.valid(v), JSON.stringify(v)).toBe(false);
    }
  });
});
