// An image as the indexer takes it: a manifest's digest and its layers' descriptors, bottom to top. A leaf of the
// model (src/model imports nothing of the project).

/** `sha256:<64 hex>` (or another algorithm Clair accepts). */
export type Digest = string;

export interface LayerDescriptor {
  digest: Digest;
  size: number;
  mediaType: string;
  /** Set for foreign layers (deprecated, Windows); they are skipped and the skip is recorded. */
  urls?: string[];
  /**
   * The descriptor's annotations, from the digest-verified manifest: a table of contents of the layer
   * (zstd:chunked) is found and authenticated through them.
   */
  annotations?: Record<string, string>;
  /**
   * A SOCI zTOC of this layer (a table of contents kept outside the image manifest, in a SOCI index the
   * source found and verified for the image), or why the image's SOCI index could not be used for it. Set by
   * the Indexer from LayerSource.soci for the layers it scans; never stored.
   */
  soci?: LayerSoci;
}

/** A layer's zTOC: its bytes (digest-checked by the source against the SOCI index), or why there is none. */
export type LayerSoci = { index: Digest; ztoc: Digest; bytes: Uint8Array } | { index?: Digest; error: string };

export interface ManifestToIndex {
  /** The manifest's own digest (of the platform-specific image manifest). */
  digest: Digest;
  /** Bottom to top. */
  layers: LayerDescriptor[];
}
