import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "./duration.js";

describe("durations", () => {
  it("parses Go-style durations and refuses anything else", () => {
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("10")).toBeUndefined();
    expect(parseDuration("10m and more")).toBeUndefined();
  });

  it("formats to whole seconds in a form parseDuration reads back", () => {
    for (const [ms, text] of [[600_000, "10m"], [90_000, "1m30s"], [4000, "4s"], [3_600_000, "60m"]] as const) {
      expect(formatDuration(ms)).toBe(text);
      expect(parseDuration(text)).toBe(ms);
    }
  });
});
