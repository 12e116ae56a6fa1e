import { describe, expect, it } from "vitest";
import { apk } from "./apk.js";
import { orderMismatches } from "./testing.js";

describe("apk", () => {
  it("orders suffixes, letters and revisions as apk-package(5) and Gentoo's rules say", () => {
    expect(
      orderMismatches(
        apk,
        "1.0_alpha-r0 < 1.0_alpha1-r0 < 1.0_beta-r0 < 1.0_pre-r0 < 1.0_rc-r0 < 1.0_rc1-r0 < 1.0-r0 < 1.0_cvs-r0 < 1.0_svn-r0 < 1.0_git-r0 < 1.0_hg-r0 < 1.0_p-r0 < 1.0_p1-r0 < 1.0a-r0 < 1.0b-r0 < 1.0.1-r0",
        "1.0_rc1-r0 < 1.0_rc1_p2-r0 < 1.0_rc2-r0",
        "1.0_p1_alpha-r0 < 1.0_p1-r0",
        "1.0-r9 < 1.0-r10",
        "1.0 = 1.0-r0 < 1.0.0",
        // the letter may carry a number (old openssh versions in real secdb data)
        "5.1_p1-r2 < 5.1p-r0 < 5.1p0-r0 < 5.1p1-r0 = 5.1p01-r0 < 5.1p2-r0 < 5.2_p1-r0",
        // numbers after the first with a leading zero compare as strings without trailing zeros
        "1.001-r0 < 1.01-r0 = 1.010-r0 < 1.02-r0 < 1.1-r0",
        "6.02-r0 < 6.04-r0 < 6.10-r0",
        "4.2.008-r3 < 4.2.010-r3",
        "01.0-r0 = 1.0-r0",
        // the commit hash names a build, it does not order
        "1.0~abc-r0 = 1.0~def-r0 = 1.0-r0 < 1.0~abc-r1",
      ),
    ).toEqual([]);
  });

  it("gives the C1 answers of the fixture README (Alpine 3.18)", () => {
    expect(
      orderMismatches(
        apk,
        "3.1.0-r4 < 3.1.1-r0",
        "3.1.0-r4 = 3.1.0-r4",
        "1.35.0-r7 < 1.35.0-r17 < 1.36.0-r9 < 1.36.1-r1",
        "1.2.2_pre2-r0 < 1.2.4-r0 < 1.2.4-r3",
      ),
    ).toEqual([]);
  });

  it("refuses what is not apk-package(5)'s format", () => {
    for (const v of ["", "1.0-r", "1.0-", ".1", "1..1", "1.0A", "1.0ab", "1.0_foo", "1.0-r1a", "1.0~", "1.0~ABC", "v1.0", "1.0 ", "1.0-R1"]) {
      expect(apk.valid(v), JSON.stringify(v)).toBe(false);
    }
  });
});
