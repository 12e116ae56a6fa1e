// Images in a registry: resolve the reference to the platform's image manifest and stream its layers
// through the registry client, which checks size and digest while streaming; layers with a table of
// contents are read by byte ranges instead (../../layers/toc), the manifest being fetched by digest (so its
// annotations, which authenticate the table, are verified). SOCI zTOCs, kept in a SOCI index outside the image
// manifest, are found and fetched here too (./soci.ts), when the indexer asks for the layers it scans.
import type { Platform } from "../../image/platform.js";
import type { Reference } from "../../image/reference.js";
import type { RegistryClient, ResolvedImage } from "../../registry/client.js";
import type { LayerSource } from "../scan-layer.js";
import type { ManifestToIndex } from "../../model/image.js";
import { findSociZtocs, type SociOptions } from "./soci.js";

export interface RegistryImage {
  manifest: ManifestToIndex;
  source: LayerSource;
  resolved: ResolvedImage;
}

export async function openRegistryImage(client: RegistryClient, ref: Reference, opts: { platform?: Platform; signal?: AbortSignal; soci?: Omit<SociOptions, "signal"> } = {}): Promise<RegistryImage> {
  const resolved = await client.resolve(ref, opts);
  const manifest: ManifestToIndex = {
    digest: resolved.digest,
    layers: resolved.manifest.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, ...(l.urls?.length ? { urls: [...l.urls] } : {}), ...(l.annotations ? { annotations: { ...l.annotations } } : {}) })),
  };
  const source: LayerSource = {
    verifiesDigests: true,
    open: async (layer, signal) => client.getBlob(ref, { digest: layer.digest, size: layer.size }, signal),
    // Partial reads (tables of contents): ranges through the same client, auth and limits.
    ranges: (layer) => ({ read: (start, end, signal) => client.getBlobRange(ref, layer.digest, start, end, signal) }),
    soci: (layers, signal) => findSociZtocs(client, ref, resolved, layers, { ...opts.soci, signal }),
  };
  return { manifest, source, resolved };
}
