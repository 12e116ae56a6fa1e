// Which ImageScan speaks for a digest: the digest label finds candidates, but anyone who may create
// ImageScans can set it, so only a scan the controller indexed for that very digest counts as Indexed.
import { describe, expect, it } from "vitest";
import type { ImageScan } from "../controller/imagescan.js";
import { scanOf } from "./server.js";

const V = `sha256:${"a".repeat(64)}`;
const H = `sha256:${"b".repeat(64)}`;
const INDEX = `sha256:${"c".repeat(64)}`;
const scan = (name: string, status?: ImageScan["status"]): ImageScan => ({
  metadata: { name, namespace: "team", labels: { "portcullis.dev/digest": "a".repeat(63) } }, spec: { image: `r.example.com/${name}` }, ...(status ? { status } : {}),
});

describe("scanOf", () => {
  it("ignores a decoy labelled with the digest but Indexed for another image", () => {
    const decoy = scan("decoy", { phase: "Indexed", digest: H });
    expect(scanOf([decoy], V)).toBeUndefined();
    const real = scan("real", { phase: "Indexed", digest: V });
    expect(scanOf([decoy, real], V)?.metadata?.name).toBe("real");
  });

  it("accepts the index digest an image was resolved from", () => {
    expect(scanOf([scan("multi", { phase: "Indexed", digest: H, resolvedDigest: INDEX })], INDEX)?.metadata?.name).toBe("multi");
  });

  it("still reports a scan on its way (not Indexed yet) for the digest", () => {
    expect(scanOf([scan("decoy", { phase: "Indexed", digest: H }), scan("pending", { phase: "Indexing" })], V)?.metadata?.name).toBe("pending");
    expect(scanOf([scan("new")], V)?.metadata?.name).toBe("new");
  });
});
