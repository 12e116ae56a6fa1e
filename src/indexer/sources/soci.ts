// Finding an image's SOCI index (awslabs/soci-snapshotter) and its layers' zTOCs in a registry. A SOCI index is
// an OCI image manifest whose config media type (or artifactType) names it, whose layers are the zTOCs, each
// annotated with the image layer it describes (`com.amazon.soci.image-layer-digest`):
// - v2 (soci-snapshotter 0.10 on, `soci convert`): the image manifest itself names its SOCI index in the
//   annotation `com.amazon.soci.index-digest` (the SOCI-enabled image's index lists both). The image manifest
//   is fetched by digest, so the SOCI index is the image author's, like a zstd:chunked table's checksum.
// - v1: a referrer of the image manifest (its `subject`), found through the referrers API or its tag schema.
//   Anyone who can push to the repository, or the registry itself, can add one after the fact, and a zTOC
//   decides what bytes a partial read sees (docs/partial-reads.md): read only when asked (`v1: true`); the
//   SOCI snapshotter too stopped reading v1 by default in 0.10.
// Every step is digest-verified: the SOCI index fetched by its digest (from the verified image manifest, or
// from a referrers listing whose answer must then name the image as its subject), each zTOC a blob of the
// digest and size the SOCI index gives. A layer whose zTOC cannot be had is marked with why (its read falls
// back to the full read and says so); a lookup that fails outright throws (the Indexer logs it, reads in full).
import { isDigest } from "../../image/digest.js";
import type { ImageManifest } from "../../image/manifest.js";
import type { Reference } from "../../image/reference.js";
import type { LayerDescriptor, LayerSoci } from "../../model/image.js";
import type { RegistryClient } from "../../registry/client.js";

export const SOCI_INDEX_V1 = "application/vnd.amazon.soci.index.v1+json";
export const SOCI_INDEX_V2 = "application/vnd.amazon.soci.index.v2+json";
/** On a SOCI-enabled (v2) image manifest: the digest of its SOCI index. */
export const SOCI_INDEX_DIGEST = "com.amazon.soci.index-digest";
/** On a zTOC's descriptor in a SOCI index: the image layer it describes. */
export const SOCI_LAYER_DIGEST = "com.amazon.soci.image-layer-digest";
export const ZTOC_MEDIA_TYPE = "application/octet-stream";

export interface SociOptions {
  /** Also look for v1 SOCI indexes among the image's referrers (default false: see above). */
  v1?: boolean;
  /** Largest zTOC fetched (default 64 MiB, as the zTOC reader's limit). */
  maxZtocBytes?: number;
  /** zTOCs fetched at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * The zTOCs of `layers` from the SOCI index of the image manifest `image` (fetched by digest), by layer digest.
 * Empty when the image has none (or only a v1 one and `v1` is off).
 */
export async function findSociZtocs(client: RegistryClient, ref: Reference, image: { digest: string; manifest: ImageManifest }, layers: readonly LayerDescriptor[], o: SociOptions = {}): Promise<Map<string, LayerSoci>> {
  const out = new Map<string, LayerSoci>();
  const failAll = (why: string, index?: string) => {
    for (const l of layers) out.set(l.digest, { ...(index ? { index } : {}), error: why });
    return out;
  };
  let indexDigest = image.manifest.annotations?.[SOCI_INDEX_DIGEST];
  let version: "v1" | "v2" = "v2";
  if (indexDigest !== undefined) {
    if (!isDigest(indexDigest)) return failAll(`the image manifest's ${SOCI_INDEX_DIGEST} ${JSON.stringify(indexDigest.slice(0, 80))} is not a digest`);
  } else {
    if (!o.v1) return out;
    const referrers = await client.listReferrers(ref, image.digest, { artifactType: SOCI_INDEX_V1, signal: o.signal });
    // Several SOCI indexes for one image: the first the registry lists.
    indexDigest = referrers.find((d) => d.artifactType === SOCI_INDEX_V1 && isDigest(d.digest))?.digest;
    if (!indexDigest) return out;
    version = "v1";
  }

  let index: ImageManifest;
  try {
    const fetched = await client.getManifest(ref, indexDigest, o.signal);
    if (fetched.manifest.kind !== "manifest") return failAll(`SOCI index ${indexDigest} is an image index, not a manifest`, indexDigest);
    index = fetched.manifest;
  } catch (e) {
    if (o.signal?.aborted) throw e;
    return failAll(`SOCI index ${indexDigest}: ${(e as Error).message}`, indexDigest);
  }
  const type = index.artifactType ?? index.config.mediaType;
  const wanted = version === "v2" ? SOCI_INDEX_V2 : SOCI_INDEX_V1;
  if (type !== wanted) return failAll(`SOCI index ${indexDigest} has type ${JSON.stringify(type.slice(0, 100))}, not ${wanted}`, indexDigest);
  if (version === "v1" && index.subject?.digest !== image.digest) return failAll(`SOCI index ${indexDigest} refers to ${index.subject?.digest ?? "no manifest"}, not the image ${image.digest}`, indexDigest);

  const ztocs = new Map<string, { digest: string; size: number }[]>();
  for (const d of index.layers) {
    const layer = d.annotations?.[SOCI_LAYER_DIGEST];
    if (d.mediaType !== ZTOC_MEDIA_TYPE || !layer) continue;
    ztocs.set(layer, [...(ztocs.get(layer) ?? []), { digest: d.digest, size: d.size }]);
  }
  const max = o.maxZtocBytes ?? 64 * 1024 * 1024;
  const fetches: Array<{ layer: string; ztoc: { digest: string; size: number } }> = [];
  for (const l of layers) {
    const z = ztocs.get(l.digest);
    if (!z) continue;
    if (z.length > 1) out.set(l.digest, { index: indexDigest, error: `SOCI index ${indexDigest} gives layer ${l.digest} ${z.length} zTOCs` });
    else if (z[0]!.size > max) out.set(l.digest, { index: indexDigest, error: `SOCI zTOC ${z[0]!.digest} of ${z[0]!.size} bytes is over the ${max}-byte limit` });
    else fetches.push({ layer: l.digest, ztoc: z[0]! });
  }
  let next = 0;
  const worker = async () => {
    while (next < fetches.length) {
      const f = fetches[next++]!;
      try {
        const chunks: Buffer[] = [];
        // The client's blob stream checks the digest and the size the SOCI index gives.
        for await (const c of client.getBlob(ref, f.ztoc, o.signal)) chunks.push(c as Buffer);
        out.set(f.layer, { index: indexDigest, ztoc: f.ztoc.digest, bytes: Buffer.concat(chunks) });
      } catch (e) {
        if (o.signal?.aborted) throw e;
        out.set(f.layer, { index: indexDigest, error: `SOCI zTOC ${f.ztoc.digest}: ${(e as Error).message}` });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, o.concurrency ?? 4), fetches.length) }, worker));
  return out;
}
