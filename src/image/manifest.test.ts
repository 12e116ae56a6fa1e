import { describe, expect, it } from "vitest";
import { parseImageConfig, parseManifest } from "./manifest.js";
import { MediaTypes } from "./mediatypes.js";
import { defaultPlatform, parsePlatform, platformCandidates, selectManifest } from "./platform.js";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (c: string, extra: object = {}) => ({ mediaType: MediaTypes.OCI_MANIFEST, digest: D(c), size: 10, ...extra });
const enc = (o: unknown) => Buffer.from(JSON.stringify(o));

describe("parseManifest", () => {
  const manifest = { schemaVersion: 2, mediaType: MediaTypes.OCI_MANIFEST, config: { mediaType: MediaTypes.OCI_CONFIG, digest: D("c"), size: 2 }, layers: [{ mediaType: MediaTypes.OCI_LAYER_GZIP, digest: D("1"), size: 5 }] };

  it("reads OCI and Docker manifests and indexes", () => {
    expect(parseManifest(enc(manifest), `${MediaTypes.OCI_MANIFEST}; charset=utf-8`)).toMatchObject({ kind: "manifest", layers: [{ digest: D("1") }] });
    const docker = { ...manifest, mediaType: MediaTypes.DOCKER_MANIFEST };
    expect(parseManifest(enc(docker), MediaTypes.DOCKER_MANIFEST).mediaType).toBe(MediaTypes.DOCKER_MANIFEST);
    const list = { schemaVersion: 2, mediaType: MediaTypes.DOCKER_LIST, manifests: [desc("a", { platform: { os: "linux", architecture: "amd64" } })] };
    expect(parseManifest(enc(list), MediaTypes.DOCKER_LIST)).toMatchObject({ kind: "index", manifests: [{ platform: { os: "linux", architecture: "amd64" } }] });
  });

  it("sniffs the kind when the server says nothing useful", () => {
    const { mediaType: _m, ...bare } = manifest;
    expect(parseManifest(enc(bare), "application/octet-stream").kind).toBe("manifest");
    expect(parseManifest(enc({ schemaVersion: 2, manifests: [] }), undefined).kind).toBe("index");
  });

  it("refuses a body whose mediaType disagrees with Content-Type", () => {
    expect(() => parseManifest(enc(manifest), MediaTypes.DOCKER_MANIFEST)).toThrow(/says mediaType .* served as/);
  });

  it("refuses schema 1 with a way out", () => {
    expect(() => parseManifest(enc({ schemaVersion: 1, name: "x", fsLayers: [] }), MediaTypes.DOCKER_SCHEMA1_SIGNED)).toThrow(/schema 1 .* re-push/);
  });

  it("names the bad field", () => {
    const bad = { ...manifest, layers: [{ mediaType: MediaTypes.OCI_LAYER, digest: "sha256:xyz", size: -1 }] };
    expect(() => parseManifest(enc(bad), MediaTypes.OCI_MANIFEST)).toThrow(/layers\.0\.digest/);
    expect(() => parseManifest(Buffer.from("{nope"), MediaTypes.OCI_MANIFEST)).toThrow(/not valid JSON/);
    expect(() => parseManifest(enc([1]), MediaTypes.OCI_MANIFEST)).toThrow(/not a JSON object/);
    expect(() => parseManifest(enc({ schemaVersion: 2, config: {} }), "application/vnd.example+json")).toThrow();
  });

  it("reads an image config", () => {
    expect(parseImageConfig(enc({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [D("d")] } })).rootfs.diff_ids).toEqual([D("d")]);
    expect(() => parseImageConfig(enc({ rootfs: {} }))).toThrow(/rootfs/);
  });
});

describe("platforms", () => {
  const index = {
    kind: "index" as const,
    mediaType: MediaTypes.OCI_INDEX,
    manifests: [
      desc("a", { platform: { os: "linux", architecture: "amd64" } }),
      desc("b", { platform: { os: "linux", architecture: "arm", variant: "v6" } }),
      desc("c", { platform: { os: "linux", architecture: "arm", variant: "v7" } }),
      desc("d", { platform: { os: "linux", architecture: "arm64" } }),
      desc("e", { platform: { os: "unknown", architecture: "unknown" }, annotations: { "vnd.docker.reference.type": "attestation-manifest" } }),
    ],
  };
  it("parses and normalises", () => {
    expect(parsePlatform("linux/arm64")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(parsePlatform("linux/x86_64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(() => parsePlatform("linux")).toThrow(/os\/architecture/);
    expect(defaultPlatform("x64")).toEqual({ os: "linux", architecture: "amd64" });
  });
  it("selects with variant defaults and skips attestations", () => {
    expect(selectManifest(index, parsePlatform("linux/arm"))?.digest).toBe(D("c"));
    expect(selectManifest(index, parsePlatform("linux/arm/v6"))?.digest).toBe(D("b"));
    expect(selectManifest(index, parsePlatform("linux/arm64/v8"))?.digest).toBe(D("d"));
    expect(selectManifest(index, { os: "unknown", architecture: "unknown" })).toBeUndefined();
    expect(platformCandidates(index)).toEqual(["linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64/v8"]);
  });
});
