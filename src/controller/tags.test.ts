import { describe, expect, it } from "vitest";
import { filterTags, newestTags, tagFilterError, tagOrder, tagVersion } from "./tags.js";

// The orders semver itself defines (semver.org §11's example list), as a check of the version reading.
const SPEC_ORDER = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"];

describe("tag selection of watched repositories", () => {
  it("reads tags as versions with or without a leading v, and orders them as semver.org says", () => {
    expect(tagVersion("v1.2.3")?.version).toBe("1.2.3");
    expect(tagVersion("1.2")).toBeUndefined();
    expect(tagVersion("latest")).toBeUndefined();
    expect(newestTags([...SPEC_ORDER].reverse().sort(), "semver", 8)).toEqual([...SPEC_ORDER].reverse());
  });

  it("filters by pattern and semver range, then keeps the newest N", () => {
    const tags = ["1.9.0", "1.10.0", "v2.0.0", "2.1.0-rc.1", "latest", "main-abc123", "1.2.0"];
    expect(filterTags(tags, { semverRange: ">=1.9.0" })).toEqual(["1.9.0", "1.10.0", "v2.0.0"]);
    expect(filterTags(tags, { pattern: "^main-" })).toEqual(["main-abc123"]);
    expect(filterTags(tags, { pattern: "^v?1\\.", semverRange: "<1.10.0" })).toEqual(["1.9.0", "1.2.0"]);
    const c = filterTags(tags, { semverRange: "*" });
    expect(tagOrder(c)).toBe("semver");
    expect(newestTags(c, "semver", 2)).toEqual(["v2.0.0", "1.10.0"]);
  });

  it("orders tags that are not versions by creation time, unknown times last", () => {
    const created: Record<string, string> = { a: "2026-01-01T00:00:00Z", b: "2026-03-01T00:00:00Z", c: "2026-02-01T00:00:00Z" };
    const tags = ["a", "b", "c", "d", "1.0.0"];
    expect(tagOrder(tags)).toBe("created");
    expect(newestTags(tags, "created", 4, (t) => created[t])).toEqual(["b", "c", "a", "1.0.0"]);
  });

  it("refuses patterns that would backtrack for ever, and ranges that are not ranges", () => {
    expect(tagFilterError({ pattern: "^(a+)+$" })).toMatch(/nested quantifiers/);
    expect(tagFilterError({ pattern: "(\\d{1,3})*" })).toMatch(/nested quantifiers/);
    expect(tagFilterError({ pattern: "^v[0-9]+\\.[0-9]+$" })).toBeUndefined();
    expect(tagFilterError({ pattern: "(" })).toMatch(/not a regular expression/);
    expect(tagFilterError({ pattern: "x".repeat(300) })).toMatch(/longer than 256/);
    expect(tagFilterError({ semverRange: "one" })).toMatch(/not a semver range/);
    expect(tagFilterError({ semverRange: "^1.2 || >=3" })).toBeUndefined();
  });
});
