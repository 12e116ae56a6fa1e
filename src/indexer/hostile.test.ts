// The crafted inputs of issue 13 through the Indexer with the real scanners: each index ends IndexError with
// the code of the limit it hit, and nothing of the hostile layer is stored.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digestOf, gzip, makeTar, wantedFilesTar, zstdDeclaringWindow } from "../layers/testing.js";
import { defaultScanners } from "../scanners/index.js";
import { jarBomb } from "../scanners/java/testing.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/types.js";
import { Indexer } from "./indexer.js";
import { MemorySource } from "./testing.js";
import type { LayerDescriptor } from "../model/image.js";

function descriptor(blob: Buffer, mediaType: string): LayerDescriptor {
  return { digest: digestOf(blob), size: blob.length, mediaType };
}

describe("hostile layers through the Indexer", () => {
  let store: Store;
  beforeAll(async () => {
    store = await openStore("memory:");
  });
  afterAll(async () => store.close());

  async function index(blob: Buffer, mediaType: string, limits?: ConstructorParameters<typeof Indexer>[0]["limits"], maxScanCapturedBytes?: number) {
    const layer = descriptor(blob, mediaType);
    const indexer = new Indexer({ store, scanners: defaultScanners(), limits, ...(maxScanCapturedBytes ? { maxScanCapturedBytes } : {}) });
    const result = await indexer.index({ digest: digestOf(Buffer.concat([Buffer.from("manifest of "), blob])), layers: [layer] }, new MemorySource(new Map([[layer.digest, blob]])));
    expect(result.report.state).toBe("IndexError");
    expect(await store.scannedLayers([layer.digest], defaultScanners())).toEqual(new Set());
    return result;
  }

  it("a zstd layer whose frame declares a 2 GiB window: ZSTD_WINDOW_TOO_LARGE", async () => {
    const blob = zstdDeclaringWindow(await makeTar([{ name: "etc/os-release", content: "ID=debian\n" }]), 31);
    const r = await index(blob, "application/vnd.oci.image.layer.v1.tar+zstd");
    expect(r.error).toMatchObject({ code: "ZSTD_WINDOW_TOO_LARGE", layer: digestOf(blob) });
  });

  it("a layer holding a 64 KB jar whose 100 directory records point at one 60 MiB entry: ZIP_BOMB, naming the jar", async () => {
    const blob = gzip(await makeTar([{ name: "opt/app/lib/bomb.jar", content: jarBomb() }]));
    const r = await index(blob, "application/vnd.oci.image.layer.v1.tar+gzip");
    expect(r.error).toMatchObject({ code: "ZIP_BOMB", path: "opt/app/lib/bomb.jar" });
    expect(r.report.err).toMatch(/^java: opt\/app\/lib\/bomb\.jar: entries lib\/big\.jar and lib\/big\.jar start at the same offset/);
  });

  it("a layer made only of files the scanners want: CAPTURED_TOO_LARGE, per layer and per scan", async () => {
    const blob = gzip(await wantedFilesTar(64, 1 << 20));
    expect(blob.length).toBeLessThan(128 * 1024);
    const r = await index(blob, "application/vnd.oci.image.layer.v1.tar+gzip", { maxCapturedBytes: 16 << 20 });
    expect(r.error).toMatchObject({ code: "CAPTURED_TOO_LARGE", message: expect.stringMatching(/exceed 16777216 bytes in all/) });
    // The Indexer's budget for the whole scan (its layers are walked at once).
    const s = await index(blob, "application/vnd.oci.image.layer.v1.tar+gzip", undefined, 8 << 20);
    expect(s.error).toMatchObject({ code: "CAPTURED_TOO_LARGE", message: expect.stringMatching(/from this image's layers exceed 8388608 bytes in all/) });
  });
});
