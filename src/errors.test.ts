import { expect, it } from "vitest";
import { describeError, errorCode, isTransient, isTransientCode, PortcullisError } from "./errors.js";
import { UsageError } from "./cli/exit.js";
import { ReferenceError } from "./image/errors.js";
import { LayerError } from "./layers/errors.js";
import { TocError } from "./layers/toc/errors.js";
import { RegistryError } from "./registry/errors.js";
import { ScannerError } from "./scanners/errors.js";

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
  }
  for (const code of ["AUTH_FAILED", "MANIFEST_UNKNOWN", "DIGEST_MISMATCH", "TOO_LARGE"] as const) {
    expect(isTransient(new RegistryError(code, "x"))).toBe(false);
  }
  expect(isTransient(Object.assign(new Error("x"), { code: 503 }))).toBe(false);
  // Another indexer held the manifest's lock past the wait: it is at work, so later.
  expect(isTransient(Object.assign(new Error("x"), { code: "LOCK_TIMEOUT" }))).toBe(true);
  expect(isTransient("NETWORK")).toBe(false);
  expect(isTransientCode(undefined)).toBe(false);
});

it("gives every error one base: the code callers branch on unchanged, namespaced by the part that reports it", () => {
  const registry = new RegistryError("DIGEST_MISMATCH", "x");
  const layer = new LayerError("DIGEST_MISMATCH", "sha256:ab", "x");
  // The same bare code from two parts: the qualified codes tell them apart, the bare codes stay what they were.
  expect([registry.code, registry.qualifiedCode]).toEqual(["DIGEST_MISMATCH", "registry/DIGEST_MISMATCH"]);
  expect([layer.code, layer.qualifiedCode]).toEqual(["DIGEST_MISMATCH", "layer/DIGEST_MISMATCH"]);
  const toc = new TocError("sha256:ab", "bad");
  expect([toc.code, toc.qualifiedCode, toc.message]).toEqual(["BAD_TOC", "layer/BAD_TOC", "layer sha256:ab: bad"]);
  // The ImageScan controller and the index job runner named a ScannerError's failure SCANNER_ERROR: now its code.
  const scanner = new ScannerError("dpkg", "var/lib/dpkg/status", "truncated");
  expect([scanner.name, scanner.qualifiedCode, describeError(scanner)]).toEqual(["ScannerError", "scanner/SCANNER_ERROR", "dpkg: var/lib/dpkg/status: truncated [SCANNER_ERROR]"]);
  for (const e of [registry, layer, toc, scanner, new UsageError("bad flag"), new ReferenceError("bad", "tag")]) {
    expect(e).toBeInstanceOf(PortcullisError);
    expect(e).toBeInstanceOf(Error);
    expect(e.qualifiedCode).toMatch(/^[a-z]+\/[A-Z_]+$/);
  }
  expect(new ReferenceError("bad", "tag").qualifiedCode).toBe("image/INVALID_REFERENCE");
  // What crossed a process boundary keeps only its code: the decision holds for it too.
  expect(isTransient(JSON.parse(JSON.stringify({ name: "RegistryError", code: "NETWORK", message: "reset" })))).toBe(true);
  expect(isTransient(layer)).toBe(false);
});
