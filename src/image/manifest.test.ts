import { describe, expect, it } from "vitest";
import { layerHistory, ManifestError, parseImageConfig, parseManifest } from "./manifest.js";
import { MediaTypes } from "./mediatypes.js";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const layer = (c: string, extra: object = {}) => ({ mediaType: MediaTypes.OCI_LAYER_GZIP, digest: D(c), size: 5, ...extra });
const manifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.OCI_MANIFEST,
  config: { mediaType: MediaTypes.OCI_CONFIG, digest: D("c"), size: 2 },
  layers: [layer("1"), layer("2")],
};
const index = {
  schemaVersion: 2,
  mediaType: MediaTypes.OCI_INDEX,
  manifests: [{ mediaType: MediaTypes.OCI_MANIFEST, digest: D("a"), size: 10, platform: { os: "linux", architecture: "arm64", variant: "v8", "os.version": "x" } }],
};

function failure(f: () => unknown): ManifestError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return e as ManifestError;
  }
  throw new Error("no error");
}

describe("parseManifest", () => {
  it("reads an OCI image manifest, ignoring Content-Type parameters", () => {
    const m = parseManifest(enc(manifest), `${MediaTypes.OCI_MANIFEST}; charset=utf-8`);
    expect(m).toEqual({
      kind: "manifest",
      mediaType: MediaTypes.OCI_MANIFEST,
      config: { mediaType: MediaTypes.OCI_CONFIG, digest: D("c"), size: 2 },
      layers: [layer("1"), layer("2")],
    });
  });

  it("reads a Docker schema 2 manifest and list", () => {
    const docker = { ...manifest, mediaType: MediaTypes.DOCKER_MANIFEST, layers: [layer("1", { mediaType: MediaTypes.DOCKER_LAYER_GZIP })] };
    expect(parseManifest(enc(docker), MediaTypes.DOCKER_MANIFEST)).toMatchObject({ kind: "manifest", mediaType: MediaTypes.DOCKER_MANIFEST });
    const list = { ...index, mediaType: MediaTypes.DOCKER_LIST };
    expect(parseManifest(enc(list), MediaTypes.DOCKER_LIST)).toMatchObject({ kind: "index", mediaType: MediaTypes.DOCKER_LIST });
  });

  it("reads an index and maps os.version", () => {
    const i = parseManifest(enc({ ...index, annotations: { a: "b" } }), MediaTypes.OCI_INDEX);
    expect(i).toEqual({
      kind: "index",
      mediaType: MediaTypes.OCI_INDEX,
      annotations: { a: "b" },
      manifests: [{ mediaType: MediaTypes.OCI_MANIFEST, digest: D("a"), size: 10, platform: { os: "linux", architecture: "arm64", variant: "v8", osVersion: "x" } }],
    });
  });

  it("keeps annotations, subject, artifactType and urls", () => {
    const subject = { mediaType: MediaTypes.OCI_MANIFEST, digest: D("5"), size: 7 };
    const foreign = layer("3", { mediaType: MediaTypes.DOCKER_FOREIGN_LAYER, urls: ["https://example.com/l"], annotations: { k: "v" } });
    const m = parseManifest(enc({ ...manifest, layers: [foreign], annotations: { x: "y" }, subject, artifactType: "application/x" }), MediaTypes.OCI_MANIFEST);
    expect(m).toMatchObject({ annotations: { x: "y" }, subject, artifactType: "application/x", layers: [foreign] });
  });

  it("accepts a body without mediaType under a manifest Content-Type", () => {
    const { mediaType: _m, ...bare } = manifest;
    expect(parseManifest(enc(bare), MediaTypes.OCI_MANIFEST).mediaType).toBe(MediaTypes.OCI_MANIFEST);
  });

  it.each([undefined, "", "application/json", "application/octet-stream", "Application/JSON; charset=utf-8"])("sniffs the type under Content-Type %j", (ct) => {
    const { mediaType: _m, ...bare } = manifest;
    const { mediaType: _i, ...bareIndex } = index;
    expect(parseManifest(enc(bare), ct)).toMatchObject({ kind: "manifest", mediaType: MediaTypes.OCI_MANIFEST });
    expect(parseManifest(enc(bareIndex), ct)).toMatchObject({ kind: "index", mediaType: MediaTypes.OCI_INDEX });
    expect(parseManifest(enc({ ...manifest, mediaType: MediaTypes.DOCKER_MANIFEST }), ct).mediaType).toBe(MediaTypes.DOCKER_MANIFEST);
    expect(parseManifest(enc({ ...index, mediaType: MediaTypes.DOCKER_LIST }), ct).kind).toBe("index");
  });

  it("refuses a body whose mediaType disagrees with Content-Type", () => {
    const e = failure(() => parseManifest(enc(manifest), MediaTypes.DOCKER_MANIFEST));
    expect(e).toMatchObject({ code: "MANIFEST_INVALID", field: "mediaType" });
    expect(e.message).toBe(`manifest says mediaType ${MediaTypes.OCI_MANIFEST}, but it was served as ${MediaTypes.DOCKER_MANIFEST}`);
    expect(failure(() => parseManifest(enc(index), MediaTypes.OCI_MANIFEST)).code).toBe("MANIFEST_INVALID");
  });

  it.each([
    ["schemaVersion 1", { schemaVersion: 1, name: "x", tag: "t", fsLayers: [] }, "application/json"],
    ["the schema 1 type", { schemaVersion: 1, fsLayers: [] }, MediaTypes.DOCKER_SCHEMA1],
    ["the signed schema 1 type", { schemaVersion: 1, fsLayers: [], signatures: [] }, MediaTypes.DOCKER_SCHEMA1_SIGNED],
    ["a schema 1 mediaType in the body", { mediaType: MediaTypes.DOCKER_SCHEMA1 }, undefined],
  ])("refuses schema 1 (%s) with a way out", (_what, body, ct) => {
    const e = failure(() => parseManifest(enc(body), ct));
    expect(e.code).toBe("MANIFEST_UNSUPPORTED");
    expect(e.message).toMatch(/schema 1 manifests are not supported.*re-push/);
  });

  it("refuses types that are not image manifests", () => {
    const e = failure(() => parseManifest(enc({ schemaVersion: 2, mediaType: "application/vnd.oci.artifact.manifest.v1+json", blobs: [] }), "application/vnd.oci.artifact.manifest.v1+json"));
    expect(e.code).toBe("MANIFEST_UNSUPPORTED");
    expect(e.message).toMatch(/application\/vnd\.oci\.artifact\.manifest\.v1\+json is not an image manifest or index/);
    expect(failure(() => parseManifest(enc({ ...manifest, mediaType: "application/x-thing" }), undefined)).code).toBe("MANIFEST_UNSUPPORTED");
  });

  it.each<[string, unknown, string | undefined, RegExp, string?]>([
    ["bad JSON", "{nope", MediaTypes.OCI_MANIFEST, /manifest is not valid JSON/],
    ["an array", [1], MediaTypes.OCI_MANIFEST, /not a JSON object/],
    ["null", null, MediaTypes.OCI_MANIFEST, /not a JSON object/],
    ["a number mediaType", { ...manifest, mediaType: 7 }, undefined, /mediaType: expected a string/, "mediaType"],
    ["nothing to sniff", { schemaVersion: 2, config: {} }, undefined, /neither manifests\[\].*nor layers\[\]/],
    ["both lists", { schemaVersion: 2, manifests: [], layers: [] }, "application/json", /both manifests\[\] and layers\[\]/],
    ["schemaVersion 3", { ...manifest, schemaVersion: 3 }, MediaTypes.OCI_MANIFEST, /image manifest .*: schemaVersion:/, "schemaVersion"],
    ["no schemaVersion", { ...index, schemaVersion: undefined }, MediaTypes.OCI_INDEX, /image index .*: schemaVersion:/, "schemaVersion"],
    ["no config", { ...manifest, config: undefined }, MediaTypes.OCI_MANIFEST, /config:/, "config"],
    ["layers not a list", { ...manifest, layers: {} }, MediaTypes.OCI_MANIFEST, /layers:/, "layers"],
    ["a bad layer digest", { ...manifest, layers: [layer("1"), layer("2", { digest: "sha256:xyz" })] }, MediaTypes.OCI_MANIFEST, /layers\[1\]\.digest: not a sha256/, "layers[1].digest"],
    ["an uppercase digest", { ...manifest, layers: [layer("A")] }, MediaTypes.OCI_MANIFEST, /layers\[0\]\.digest/, "layers[0].digest"],
    ["a negative size", { ...manifest, layers: [layer("1", { size: -1 })] }, MediaTypes.OCI_MANIFEST, /layers\[0\]\.size/, "layers[0].size"],
    ["a fractional size", { ...manifest, layers: [layer("1", { size: 1.5 })] }, MediaTypes.OCI_MANIFEST, /layers\[0\]\.size/, "layers[0].size"],
    ["an unsafe size", { ...manifest, layers: [layer("1", { size: 2 ** 53 })] }, MediaTypes.OCI_MANIFEST, /layers\[0\]\.size/, "layers[0].size"],
    ["a string size", { ...manifest, config: { ...manifest.config, size: "2" } }, MediaTypes.OCI_MANIFEST, /config\.size/, "config.size"],
    ["no layer mediaType", { ...manifest, layers: [layer("1", { mediaType: undefined })] }, MediaTypes.OCI_MANIFEST, /layers\[0\]\.mediaType/, "layers[0].mediaType"],
    ["a bad annotation", { ...manifest, annotations: { a: 1 } }, MediaTypes.OCI_MANIFEST, /annotations\.a/, "annotations.a"],
    ["bad urls", { ...manifest, layers: [layer("1", { urls: "https://x" })] }, MediaTypes.OCI_MANIFEST, /layers\[0\]\.urls/, "layers[0].urls"],
    ["a bad subject", { ...manifest, subject: { mediaType: MediaTypes.OCI_MANIFEST, size: 1 } }, MediaTypes.OCI_MANIFEST, /subject\.digest/, "subject.digest"],
    ["a platform without os", { ...index, manifests: [{ ...index.manifests[0], platform: { architecture: "amd64" } }] }, MediaTypes.OCI_INDEX, /manifests\[0\]\.platform\.os/, "manifests[0].platform.os"],
    ["a bad index entry", { ...index, manifests: [index.manifests[0], { mediaType: MediaTypes.OCI_MANIFEST, digest: D("b") }] }, MediaTypes.OCI_INDEX, /manifests\[1\]\.size/, "manifests[1].size"],
  ])("refuses %s", (_what, body, ct, message, field) => {
    const raw = typeof body === "string" ? new TextEncoder().encode(body) : enc(body);
    const e = failure(() => parseManifest(raw, ct));
    expect(e.code).toBe("MANIFEST_INVALID");
    expect(e.message).toMatch(message);
    if (field) expect(e.field).toBe(field);
  });

  it("lists at most three problems", () => {
    const bad = { ...manifest, layers: [1, 2, 3, 4, 5].map((n) => layer(String(n), { size: -1 })) };
    expect(failure(() => parseManifest(enc(bad), MediaTypes.OCI_MANIFEST)).message).toMatch(/layers\[2\]\.size.*and 2 more$/);
  });

  it("reads a view into a larger buffer", () => {
    const raw = enc(manifest);
    const big = new Uint8Array(raw.length + 20);
    big.set(raw, 10);
    expect(parseManifest(big.subarray(10, 10 + raw.length), MediaTypes.OCI_MANIFEST).kind).toBe("manifest");
  });
});

describe("parseImageConfig", () => {
  const config = {
    architecture: "arm",
    variant: "v7",
    os: "linux",
    created: "2024-01-01T00:00:00Z",
    config: { Env: ["PATH=/bin"] },
    rootfs: { type: "layers", diff_ids: [D("d"), D("e")] },
    history: [{ created_by: "ADD rootfs" }, { created_by: "ENV x=1", empty_layer: true }, { created_by: "RUN apt-get install jq" }],
  };

  it("reads os, architecture, variant, diff_ids and history", () => {
    const c = parseImageConfig(enc(config));
    expect(c).toMatchObject({ os: "linux", architecture: "arm", variant: "v7", rootfs: { type: "layers", diff_ids: [D("d"), D("e")] } });
    expect(c.history).toHaveLength(3);
    expect(layerHistory(c).map((h) => h?.created_by)).toEqual(["ADD rootfs", "RUN apt-get install jq"]);
    expect(layerHistory({ ...c, history: undefined })).toEqual([undefined, undefined]);
  });

  it.each<[string, unknown, RegExp]>([
    ["no rootfs", { os: "linux" }, /image config: rootfs:/],
    ["no diff_ids", { rootfs: { type: "layers" } }, /rootfs\.diff_ids/],
    ["a bad diff_id", { rootfs: { type: "layers", diff_ids: [D("d"), "sha256:1"] } }, /rootfs\.diff_ids\[1\]: not a sha256/],
    ["a bad history entry", { rootfs: { type: "layers", diff_ids: [] }, history: [{ empty_layer: "yes" }] }, /history\[0\]\.empty_layer/],
    ["a number os", { os: 1, rootfs: { type: "layers", diff_ids: [] } }, /os:/],
    ["not an object", "[]", /image config is not a JSON object/],
    ["not JSON", "{", /image config is not valid JSON/],
  ])("refuses %s", (_what, body, message) => {
    const raw = typeof body === "string" ? new TextEncoder().encode(body) : enc(body);
    const e = failure(() => parseImageConfig(raw));
    expect(e.code).toBe("MANIFEST_INVALID");
    expect(e.message).toMatch(message);
  });
});
