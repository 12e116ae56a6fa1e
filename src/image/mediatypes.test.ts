import { describe, expect, it } from "vitest";
import { ACCEPT_MANIFESTS, baseMediaType, isImageManifestMediaType, isIndexMediaType, isNonDistributableLayer, LAYER_TYPES, MediaTypes } from "./mediatypes.js";

describe("media types", () => {
  it("accepts the four manifest types, OCI first", () => {
    expect(ACCEPT_MANIFESTS.split(", ")).toEqual([
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.docker.distribution.manifest.list.v2+json",
      "application/vnd.docker.distribution.manifest.v2+json",
    ]);
  });

  it("classifies", () => {
    expect(isIndexMediaType(MediaTypes.DOCKER_LIST)).toBe(true);
    expect(isIndexMediaType(MediaTypes.OCI_MANIFEST)).toBe(false);
    expect(isImageManifestMediaType(MediaTypes.DOCKER_MANIFEST)).toBe(true);
    expect(isImageManifestMediaType(MediaTypes.DOCKER_SCHEMA1_SIGNED)).toBe(false);
    expect(isNonDistributableLayer(MediaTypes.DOCKER_FOREIGN_LAYER)).toBe(true);
    expect(isNonDistributableLayer(MediaTypes.OCI_LAYER_NONDIST_ZSTD)).toBe(true);
    expect(isNonDistributableLayer(MediaTypes.OCI_LAYER_GZIP)).toBe(false);
    expect(LAYER_TYPES.size).toBe(10);
    expect([...LAYER_TYPES].every((t) => /(\.tar|\+gzip|\+zstd|\.gzip|\.zstd)$/.test(t))).toBe(true);
  });

  it("strips parameters", () => {
    expect(baseMediaType(" Application/JSON ; charset=utf-8")).toBe("application/json");
    expect(baseMediaType("")).toBe("");
  });
});
