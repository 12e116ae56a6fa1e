import { describe, expect, it } from "vitest";
import type { Descriptor, ImageIndex } from "./manifest.js";
import { MediaTypes } from "./mediatypes.js";
import {
  defaultPlatform, formatPlatform, missingPlatformMessage, normalizePlatform, parsePlatform, platformCandidates, platformMatches, PlatformError, selectManifest, type Platform,
} from "./platform.js";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const entry = (c: string, platform?: Platform, extra: Partial<Descriptor> = {}): Descriptor => ({ mediaType: MediaTypes.OCI_MANIFEST, digest: D(c), size: 10, ...(platform ? { platform } : {}), ...extra });
const idx = (...manifests: Descriptor[]): ImageIndex => ({ kind: "index", mediaType: MediaTypes.OCI_INDEX, manifests });
const attestation = (c: string, platform: Platform = { os: "unknown", architecture: "unknown" }) =>
  entry(c, platform, { annotations: { "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": D("a") } });

describe("parsePlatform", () => {
  it.each<[string, Platform]>([
    ["linux/amd64", { os: "linux", architecture: "amd64" }],
    ["linux/arm64", { os: "linux", architecture: "arm64", variant: "v8" }],
    ["linux/arm64/v8", { os: "linux", architecture: "arm64", variant: "v8" }],
    ["linux/arm64/8", { os: "linux", architecture: "arm64", variant: "v8" }],
    ["linux/aarch64", { os: "linux", architecture: "arm64", variant: "v8" }],
    ["linux/arm", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/arm/v6", { os: "linux", architecture: "arm", variant: "v6" }],
    ["linux/arm/5", { os: "linux", architecture: "arm", variant: "v5" }],
    ["linux/armhf", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/armel", { os: "linux", architecture: "arm", variant: "v6" }],
    ["linux/x86_64", { os: "linux", architecture: "amd64" }],
    ["linux/amd64/v1", { os: "linux", architecture: "amd64" }],
    ["linux/amd64/v3", { os: "linux", architecture: "amd64", variant: "v3" }],
    ["linux/i386", { os: "linux", architecture: "386" }],
    ["Linux/S390X", { os: "linux", architecture: "s390x" }],
    ["windows/amd64", { os: "windows", architecture: "amd64" }],
    ["macos/arm64", { os: "darwin", architecture: "arm64", variant: "v8" }],
  ])("%s", (s, want) => {
    expect(parsePlatform(s)).toEqual(want);
  });

  it.each<[string, PlatformError["part"]]>([
    ["", "platform"],
    ["linux", "platform"],
    ["linux/arm/v7/x", "platform"],
    ["/amd64", "os"],
    ["lin ux/amd64", "os"],
    ["linux/", "architecture"],
    ["linux/amd$64", "architecture"],
    ["linux/arm/", "variant"],
    ["linux/arm/v 7", "variant"],
  ])("refuses %j, naming the %s", (s, part) => {
    let err: unknown;
    try {
      parsePlatform(s);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlatformError);
    expect(err).toMatchObject({ code: "INVALID_PLATFORM", part });
    expect((err as Error).message).toContain(`invalid platform ${JSON.stringify(s)}`);
    if (part !== "platform") expect((err as Error).message).toContain(part);
  });

  it("formats", () => {
    expect(formatPlatform({ os: "linux", architecture: "amd64" })).toBe("linux/amd64");
    expect(formatPlatform(parsePlatform("linux/arm64"))).toBe("linux/arm64/v8");
  });

  it("keeps osVersion", () => {
    expect(normalizePlatform({ os: "Windows", architecture: "AMD64", osVersion: "10.0.20348.2340" })).toEqual({ os: "windows", architecture: "amd64", osVersion: "10.0.20348.2340" });
  });

  it("defaults to linux and this machine's architecture", () => {
    expect(defaultPlatform("x64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(defaultPlatform("arm64")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(defaultPlatform("arm")).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(defaultPlatform("ia32")).toEqual({ os: "linux", architecture: "386" });
    expect(defaultPlatform().os).toBe("linux");
  });

  it("matches with default variants", () => {
    expect(platformMatches({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm64", variant: "v8" })).toBe(true);
    expect(platformMatches({ os: "linux", architecture: "aarch64" }, { os: "linux", architecture: "arm64" })).toBe(true);
    expect(platformMatches({ os: "linux", architecture: "arm" }, { os: "linux", architecture: "arm", variant: "v6" })).toBe(false);
    expect(platformMatches({ os: "linux", architecture: "amd64" }, { os: "windows", architecture: "amd64" })).toBe(false);
  });
});

describe("selectManifest", () => {
  // What BuildKit pushes for a multi-platform build with attestations.
  const index = idx(
    entry("1", { os: "linux", architecture: "amd64" }),
    entry("2", { os: "linux", architecture: "arm", variant: "v6" }),
    entry("3", { os: "linux", architecture: "arm", variant: "v7" }),
    entry("4", { os: "linux", architecture: "arm64", variant: "v8" }),
    attestation("5"),
    attestation("6"),
  );

  it.each<[string, string | undefined]>([
    ["linux/amd64", "1"],
    ["linux/x86_64", "1"],
    ["linux/arm", "3"],
    ["linux/arm/v7", "3"],
    ["linux/arm/v6", "2"],
    ["linux/arm/v5", undefined],
    ["linux/arm64", "4"],
    ["linux/aarch64", "4"],
    ["linux/s390x", undefined],
    ["windows/amd64", undefined],
  ])("%s -> %s", (wanted, c) => {
    expect(selectManifest(index, parsePlatform(wanted))?.digest).toBe(c === undefined ? undefined : D(c));
  });

  it("never picks attestations or unknown/unknown", () => {
    expect(selectManifest(index, { os: "unknown", architecture: "unknown" })).toBeUndefined();
    expect(selectManifest(idx(attestation("7", { os: "linux", architecture: "amd64" })), { os: "linux", architecture: "amd64" })).toBeUndefined();
  });

  it("fills a missing arm64 variant on the entry (v8) and prefers the exact variant", () => {
    expect(selectManifest(idx(entry("1", { os: "linux", architecture: "arm64" })), parsePlatform("linux/arm64/v8"))?.digest).toBe(D("1"));
    const amd = idx(entry("1", { os: "linux", architecture: "amd64", variant: "v3" }), entry("2", { os: "linux", architecture: "amd64" }));
    expect(selectManifest(amd, parsePlatform("linux/amd64"))?.digest).toBe(D("2"));
    expect(selectManifest(amd, parsePlatform("linux/amd64/v3"))?.digest).toBe(D("1"));
    // Plain amd64 is the v1 baseline, which a v2 machine runs.
    expect(selectManifest(amd, parsePlatform("linux/amd64/v2"))?.digest).toBe(D("2"));
    expect(selectManifest(idx(entry("1", { os: "linux", architecture: "amd64", variant: "v2" })), parsePlatform("linux/amd64"))?.digest).toBe(D("1"));
  });

  it("returns nested indexes that match or have no platform, after direct matches", () => {
    const nested = entry("8", undefined, { mediaType: MediaTypes.OCI_INDEX });
    expect(selectManifest(idx(attestation("5"), nested), parsePlatform("linux/amd64"))?.digest).toBe(D("8"));
    expect(selectManifest(idx(nested, entry("1", { os: "linux", architecture: "amd64" })), parsePlatform("linux/amd64"))?.digest).toBe(D("1"));
    const nestedList = entry("9", { os: "linux", architecture: "arm64" }, { mediaType: MediaTypes.DOCKER_LIST });
    expect(selectManifest(idx(nestedList), parsePlatform("linux/arm64"))?.digest).toBe(D("9"));
    // An image manifest without a platform is not a guess we make.
    expect(selectManifest(idx(entry("1")), parsePlatform("linux/amd64"))).toBeUndefined();
  });

  it("lists candidates for the error message", () => {
    expect(platformCandidates(index)).toEqual(["linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64/v8"]);
    expect(platformCandidates(idx(entry("1", { os: "linux", architecture: "arm64" }), entry("2", { os: "linux", architecture: "arm64", variant: "v8" })))).toEqual(["linux/arm64/v8"]);
    expect(missingPlatformMessage(idx(entry("1", { os: "linux", architecture: "amd64" }), entry("4", { os: "linux", architecture: "arm64" }), attestation("5")), parsePlatform("linux/s390x"))).toBe(
      "no linux/s390x in index; it has linux/amd64, linux/arm64/v8",
    );
    expect(missingPlatformMessage(idx(attestation("5")), parsePlatform("linux/amd64"))).toBe("no linux/amd64 in index; it has no usable platform");
  });
});
