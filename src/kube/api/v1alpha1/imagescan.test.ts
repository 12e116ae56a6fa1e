import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { parseReference } from "../../../image/reference.js";
import { ImageScanSpecSchema, referenceHash, scanName } from "./imagescan.js";

// The CRD the API server enforces: the zod model must say the same.
const crd = parse(readFileSync(fileURLToPath(new URL("../../../../crds/imagescans.portcullis.dev.yaml", import.meta.url)), "utf8")) as {
  spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: { required: string[]; properties: Record<string, { pattern?: string; maxLength?: number; minLength?: number }> } } } } }> };
};
const specSchema = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec;

describe("ImageScanSpecSchema", () => {
  it("has the CRD's required fields, patterns and lengths", () => {
    expect(specSchema.required).toEqual(["image"]);
    const platform = new RegExp(specSchema.properties.platform!.pattern!);
    const rescan = new RegExp(specSchema.properties.rescanAfter!.pattern!);
    for (const p of ["linux/amd64", "linux/arm64/v8", "windows/amd64", "linux/arm_64", "Linux/amd64", "linux", "linux/amd64/v8/x", ""]) {
      expect(ImageScanSpecSchema.safeParse({ image: "nginx", platform: p }).success, p).toBe(platform.test(p));
    }
    for (const d of ["24h", "90m", "1h30m", "1.5h", "10µs", "h", "24", "1d", "-1h"]) {
      expect(ImageScanSpecSchema.safeParse({ image: "nginx", rescanAfter: d }).success, d).toBe(rescan.test(d));
    }
    const max = specSchema.properties.image!.maxLength!;
    expect(ImageScanSpecSchema.safeParse({ image: "a".repeat(max) }).success).toBe(true);
    expect(ImageScanSpecSchema.safeParse({ image: "a".repeat(max + 1) }).success).toBe(false);
    expect(ImageScanSpecSchema.safeParse({ image: "" }).success).toBe(false);
    expect(ImageScanSpecSchema.safeParse({}).success).toBe(false);
    expect(ImageScanSpecSchema.safeParse({ image: "nginx", imagePullSecrets: [{ name: "" }] }).success).toBe(false);
    expect(ImageScanSpecSchema.safeParse({ image: "nginx", imagePullSecrets: [{ name: "regcred" }] }).success).toBe(true);
  });
});

describe("scan naming", () => {
  it("names scans by repository and digest, and hashes references", () => {
    const d = `sha256:${"3f2a9c1b7e4d".padEnd(64, "0")}`;
    expect(scanName(parseReference("debian:12"), d)).toBe("debian-3f2a9c1b7e4d");
    expect(scanName(parseReference("registry.example.com/team/app:1"), d)).toBe("team-app-3f2a9c1b7e4d");
    expect(referenceHash(parseReference("nginx"))).toBe(referenceHash(parseReference("docker.io/library/nginx:latest")));
    expect(referenceHash(parseReference("nginx"))).toMatch(/^[0-9a-f]{40}$/);
  });
});
