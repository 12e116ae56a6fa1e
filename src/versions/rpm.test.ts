import { describe, expect, it } from "vitest";
import { parseEvr, rpm, rpmvercmp } from "./rpm.js";
import { orderMismatches } from "./testing.js";

describe("rpm", () => {
  it("orders as rpm.vercmp does", () => {
    expect(
      orderMismatches(
        rpm,
        "1.0~rc1 < 1.0~rc1^git1 < 1.0 < 1.0^git1 < 1.0.1",
        "1.0~~ < 1.0~ < 1.0 < 1.0^ < 1.0a",
        // alphabetic segments below numeric ones, compared by ASCII (upper case first)
        "1.0.a < 1.0.1",
        "1.0A < 1.0a = 1.0.a",
        "1.01 = 1.1 < 1.10",
        // separators only separate
        "1.0_1 = 1.0.1 = 1.0+1",
        "1.0. = 1.0",
        // a missing release sorts below any release, even an empty one
        "1.0 < 1.0- < 1.0-0 < 1.0-1",
        "1.0-1.el8_8 < 1.0-1.el8_10 < 1.0-2.el8",
        "9.9 < 1:0.1 = 01:0.1",
        "0:1.0 = :1.0 = 1.0",
        "999999999999999999999999999991:1 < 999999999999999999999999999999:0",
      ),
    ).toEqual([]);
  });

  it("parses EVR labels as rpm does", () => {
    expect(parseEvr("1:2.3-4.el9")).toEqual({ epoch: "1", version: "2.3", release: "4.el9" });
    expect(parseEvr("2.3")).toEqual({ epoch: "0", version: "2.3", release: undefined });
    expect(parseEvr("1-2-3")).toEqual({ epoch: "0", version: "1-2", release: "3" });
    expect(parseEvr(":1.0")).toEqual({ epoch: "0", version: "1.0", release: undefined });
    expect(parseEvr("a:1.0-1")).toEqual({ epoch: "0", version: "a:1.0", release: "1" });
    expect(parseEvr("1:")).toEqual({ epoch: "1", version: "", release: undefined });
    expect(() => parseEvr("")).toThrow(/empty/);
  });

  it("rpmvercmp compares a version or release string without EVR parsing", () => {
    expect(rpmvercmp("1.0", "1.0-1")).toBe(-1);
    expect(rpmvercmp("el8_10", "el8_8")).toBe(1);
    expect(rpmvercmp("1:1", "1.1")).toBe(0);
  });
});
