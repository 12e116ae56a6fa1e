import { describe, expect, it } from "vitest";
import { RegistryOptionsSchema } from "./options.js";

describe("registry options", () => {
  it("fills in the defaults and keeps what was given", () => {
    const o = RegistryOptionsSchema.parse({ maxAttempts: 2, insecureRegistries: ["r.local:5000"] });
    expect(o).toMatchObject({ maxAttempts: 2, insecureRegistries: ["r.local:5000"], maxConcurrentPerRegistry: 8, caCertificates: {}, userAgent: "portcullis", maxManifestBytes: 8 * 1024 * 1024 });
    expect(RegistryOptionsSchema.parse(undefined).maxBlobResumes).toBe(5);
  });

  it("refuses unknown keys and values out of range, naming the option", () => {
    expect(() => RegistryOptionsSchema.parse({ maxAtempts: 2 })).toThrow("unknown registry option: maxAtempts");
    expect(() => RegistryOptionsSchema.parse({ maxAttempts: 11 })).toThrow("registry option maxAttempts must be at most 10");
    expect(() => RegistryOptionsSchema.parse({ maxConcurrentPerRegistry: 0 })).toThrow("registry option maxConcurrentPerRegistry must be at least 1");
    expect(() => RegistryOptionsSchema.parse({ backoffBaseMs: 1.5 })).toThrow("must be a whole number");
    expect(RegistryOptionsSchema.parse({ requestsPerSecond: 0.5 }).requestsPerSecond).toBe(0.5);
    expect(() => RegistryOptionsSchema.parse({ connectTimeoutMs: "10" })).toThrow("registry option connectTimeoutMs must be a number");
    expect(() => RegistryOptionsSchema.parse({ caCertificates: { "r.local": 1 } })).toThrow(/caCertificates must map/);
    expect(() => RegistryOptionsSchema.parse([])).toThrow("registry options must be an object");
  });
});
