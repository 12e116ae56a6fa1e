import { describe, expect, it } from "vitest";
import { isDigest, parseDigest } from "./digest.js";
import { ReferenceError } from "./errors.js";

describe("parseDigest", () => {
  it("splits sha256 and sha512 digests", () => {
    expect(parseDigest(`sha256:${"0a".repeat(32)}`)).toEqual({ algorithm: "sha256", hex: "0a".repeat(32) });
    expect(parseDigest(`sha512:${"f".repeat(128)}`)).toEqual({ algorithm: "sha512", hex: "f".repeat(128) });
  });

  it.each([
    ["", /algorithm:hex/],
    ["f".repeat(64), /algorithm:hex/],
    [`:${"f".repeat(64)}`, /algorithm "" is not supported/],
    [`sha384:${"f".repeat(96)}`, /"sha384" is not supported/],
    [`SHA256:${"f".repeat(64)}`, /not supported/],
    [`sha256:${"F".repeat(64)}`, /64 lowercase hex/],
    [`sha256:${"f".repeat(63)}`, /64 lowercase hex/],
    [`sha256:${"f".repeat(65)}`, /64 lowercase hex/],
    [`sha256:${"g".repeat(64)}`, /64 lowercase hex/],
    [`sha512:${"f".repeat(64)}`, /128 lowercase hex/],
    [`sha256:${"f".repeat(64)}\n`, /64 lowercase hex/],
  ])("refuses %j", (s, message) => {
    expect(() => parseDigest(s)).toThrow(message);
    expect(() => parseDigest(s)).toThrow(ReferenceError);
    try {
      parseDigest(s);
    } catch (e) {
      expect(e).toMatchObject({ code: "INVALID_REFERENCE", part: "digest" });
      expect((e as Error).message).toContain(JSON.stringify(s));
    }
    expect(isDigest(s)).toBe(false);
  });

  it("isDigest", () => {
    expect(isDigest(`sha256:${"a".repeat(64)}`)).toBe(true);
  });
});
