import { expect, it } from "vitest";
import { describeError, errorCode, isTransient, isTransientCode } from "./errors.js";
import { RegistryError } from "./registry/errors.js";

it("says an error as message [CODE], and the message alone without a string code", () => {
  expect(describeError(Object.assign(new Error("GET x answered 500"), { code: "ADVISORY_HTTP_STATUS" }))).toBe("GET x answered 500 [ADVISORY_HTTP_STATUS]");
  expect(describeError(Object.assign(new Error("refused"), { code: 401 }))).toBe("refused");
  expect(describeError("plain")).toBe("plain");
  expect(errorCode(undefined)).toBeUndefined();
  expect(errorCode({ code: "X" })).toBe("X");
});

it("decides transience in one place: the registry's rate limits, 5xx and network trouble, by code", () => {
  for (const code of ["RATE_LIMITED", "SERVER_ERROR", "NETWORK"] as const) {
    expect(isTransient(new RegistryError(code, "x"))).toBe(true);
    expect(new RegistryError(code, "x").transient).toBe(true);
  }
  for (const code of ["AUTH_FAILED", "MANIFEST_UNKNOWN", "DIGEST_MISMATCH", "TOO_LARGE"] as const) {
    expect(isTransient(new RegistryError(code, "x"))).toBe(false);
    expect(new RegistryError(code, "x").transient).toBe(false);
  }
  expect(isTransient(Object.assign(new Error("x"), { code: 503 }))).toBe(false);
  // Another indexer held the manifest's lock past the wait: it is at work, so later.
  expect(isTransient(Object.assign(new Error("x"), { code: "LOCK_TIMEOUT" }))).toBe(true);
  expect(isTransient("NETWORK")).toBe(false);
  expect(isTransientCode(undefined)).toBe(false);
});
