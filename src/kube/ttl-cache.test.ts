import { describe, expect, it } from "vitest";
import { TtlCache } from "./ttl-cache.js";

describe("TtlCache", () => {
  it("keeps the answers in use when full: least recently used out first", () => {
    const c = new TtlCache<number>(60_000, 3);
    c.set("a", 1);
    c.set("b", 2);
    c.set("c", 3);
    expect(c.get("a")).toBe(1);
    c.set("d", 4);
    expect([c.get("a"), c.get("b"), c.get("c"), c.get("d")]).toEqual([1, undefined, 3, 4]);
    expect(c.size).toBe(3);
  });

  it("forgets an answer after its time", () => {
    const c = new TtlCache<boolean>(-1, 3);
    c.set("a", true);
    expect(c.get("a")).toBeUndefined();
  });
});
