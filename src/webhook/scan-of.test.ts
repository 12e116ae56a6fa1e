// Which ImageScan speaks for a digest: the digest label finds candidates, but anyone who may create
// ImageScans can set it, so only a scan the controller indexed for that very digest counts as Indexed, and a
// candidate on its way counts only when its spec asks for that very image.
import { describe, expect, it } from "vitest";
import { parseReference } from "../image/reference.js";
import { scanOf } from "./server.js";
import { DIGEST_LABEL, existingScans, type ImageScan, IMAGESCAN_INDEXERS, REFERENCE_LABEL } from "../kube/api/v1alpha1/index.js";

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

describe("scanOf: what a tenant controls", () => {
  it("does not take the index digest from a scan whose spec names a platform, or whose status is of an older spec", () => {
    const withPlatform: ImageScan = { ...scan("arm"), spec: { image: "r.example.com/app", platform: "linux/arm64" }, status: { phase: "Indexed", digest: H, resolvedDigest: INDEX } };
    expect(scanOf([withPlatform], INDEX)).toBeUndefined();
    const stale: ImageScan = { ...scan("edited"), metadata: { name: "edited", namespace: "team", generation: 3 }, status: { phase: "Indexed", digest: H, resolvedDigest: INDEX, observedGeneration: 2 } };
    expect(scanOf([stale], INDEX)).toBeUndefined();
    expect(scanOf([{ ...stale, status: { ...stale.status, observedGeneration: 3 } }], INDEX)?.metadata?.name).toBe("edited");
  });
});

describe("existingScans: labels find candidates, status and spec decide", () => {
  const ref = parseReference(`r.example.com/team/app@${V}`);
  const index = (scans: ImageScan[]) => ({
    byIndex: (name: string, value: string) => scans.filter((s) => IMAGESCAN_INDEXERS[name]!(s).includes(value)),
  });
  const labelled = (name: string, image: string, status?: ImageScan["status"], platform?: string): ImageScan => ({
    metadata: { name, namespace: "team", labels: { [DIGEST_LABEL]: V.slice(7, 70) } }, spec: { image, ...(platform ? { platform } : {}) }, ...(status ? { status } : {}),
  });

  it("leaves out a decoy labelled with the digest that asks for another image, Indexed or not", () => {
    const decoys = [
      labelled("decoy-indexed", `r.example.com/team/harmless@${H}`, { phase: "Indexed", digest: H }),
      labelled("decoy-pending", `r.example.com/team/harmless@${H}`),
      labelled("decoy-tag", "r.example.com/team/app:1"),
      labelled("decoy-repo", `evil.example.com/team/app@${V}`),
      labelled("decoy-platform", `r.example.com/team/app@${V}`, undefined, "linux/arm64"),
      labelled("decoy-garbage", "::not a reference::"),
    ];
    expect(existingScans(index(decoys), "team", ref, V, undefined)).toEqual([]);
  });

  it("finds a pending scan that asks for exactly this image, and any scan whose status says the digest, whatever its labels", () => {
    const pending = labelled("pending", `r.example.com/team/app@${V}`, { phase: "Pending" });
    const unlabelled: ImageScan = { metadata: { name: "by-status", namespace: "team" }, spec: { image: "r.example.com/team/app:1" }, status: { phase: "Indexed", digest: V } };
    const elsewhere: ImageScan = { ...unlabelled, metadata: { name: "other-ns", namespace: "other" } };
    expect(existingScans(index([pending, unlabelled, elsewhere]), "team", ref, V, undefined).map((s) => s.metadata!.name)).toEqual(["by-status", "pending"]);
  });

  it("a scan of a reference without a digest counts only when its spec asks for that reference", () => {
    const tagRef = parseReference("r.example.com/team/app:1");
    const key = "k".repeat(40);
    const own: ImageScan = { metadata: { name: "own", namespace: "team", labels: { [REFERENCE_LABEL]: key } }, spec: { image: "r.example.com/team/app:1" } };
    const decoy: ImageScan = { metadata: { name: "decoy", namespace: "team", labels: { [REFERENCE_LABEL]: key } }, spec: { image: "r.example.com/team/other:1" } };
    expect(existingScans(index([own, decoy]), "team", tagRef, undefined, key).map((s) => s.metadata!.name)).toEqual(["own"]);
  });
});
