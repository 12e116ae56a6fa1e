import { expect, it } from "vitest";
import { describeError, errorCode } from "./errors.js";

it("says an error as message [CODE], and the message alone without a string code", () => {
  expect(describeError(Object.assign(new Error("GET x answered 500"), { code: "ADVISORY_HTTP_STATUS" }))).toBe("GET x answered 500 [ADVISORY_HTTP_STATUS]");
  expect(describeError(Object.assign(new Error("refused"), { code: 401 }))).toBe("refused");
  expect(describeError("plain")).toBe("plain");
  expect(errorCode(undefined)).toBeUndefined();
  expect(errorCode({ code: "X" })).toBe("X");
});
