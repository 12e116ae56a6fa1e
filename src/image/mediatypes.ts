// Media types of OCI and Docker images, and the Accept header that asks for every manifest type we read.

export const MediaTypes = {
  OCI_INDEX: "application/vnd.oci.image.index.v1+json",
  OCI_MANIFEST: "application/vnd.oci.image.manifest.v1+json",
  OCI_CONFIG: "application/vnd.oci.image.config.v1+json",
  /** The config of an artifact that has none (`{}`); not an image. */
  OCI_EMPTY: "application/vnd.oci.empty.v1+json",
  OCI_LAYER: "application/vnd.oci.image.layer.v1.tar",
  OCI_LAYER_GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
  OCI_LAYER_ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
  /** Non-distributable layers are deprecated by OCI (image-spec 1.1) and Windows-only in practice. */
  OCI_LAYER_NONDIST: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  OCI_LAYER_NONDIST_GZIP: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  OCI_LAYER_NONDIST_ZSTD: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  DOCKER_LIST: "application/vnd.docker.distribution.manifest.list.v2+json",
  DOCKER_MANIFEST: "application/vnd.docker.distribution.manifest.v2+json",
  DOCKER_CONFIG: "application/vnd.docker.container.image.v1+json",
  DOCKER_LAYER: "application/vnd.docker.image.rootfs.diff.tar",
  DOCKER_LAYER_GZIP: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  /** Not in Docker's schema 2 spec, but BuildKit and containerd write it for zstd layers. */
  DOCKER_LAYER_ZSTD: "application/vnd.docker.image.rootfs.diff.tar.zstd",
  /** Windows base layers, fetched from the descriptor's `urls` rather than the registry. */
  DOCKER_FOREIGN_LAYER: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  /** Schema 1: refused (Docker and containerd 2 no longer pull it). */
  DOCKER_SCHEMA1: "application/vnd.docker.distribution.manifest.v1+json",
  DOCKER_SCHEMA1_SIGNED: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

export type MediaType = (typeof MediaTypes)[keyof typeof MediaTypes];

export const INDEX_TYPES: ReadonlySet<string> = new Set([MediaTypes.OCI_INDEX, MediaTypes.DOCKER_LIST]);
export const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaTypes.OCI_MANIFEST, MediaTypes.DOCKER_MANIFEST]);
export const SCHEMA1_TYPES: ReadonlySet<string> = new Set([MediaTypes.DOCKER_SCHEMA1, MediaTypes.DOCKER_SCHEMA1_SIGNED]);
export const CONFIG_TYPES: ReadonlySet<string> = new Set([MediaTypes.OCI_CONFIG, MediaTypes.DOCKER_CONFIG]);
export const LAYER_TYPES: ReadonlySet<string> = new Set([
  MediaTypes.OCI_LAYER, MediaTypes.OCI_LAYER_GZIP, MediaTypes.OCI_LAYER_ZSTD,
  MediaTypes.OCI_LAYER_NONDIST, MediaTypes.OCI_LAYER_NONDIST_GZIP, MediaTypes.OCI_LAYER_NONDIST_ZSTD,
  MediaTypes.DOCKER_LAYER, MediaTypes.DOCKER_LAYER_GZIP, MediaTypes.DOCKER_LAYER_ZSTD, MediaTypes.DOCKER_FOREIGN_LAYER,
]);
const NON_DISTRIBUTABLE: ReadonlySet<string> = new Set([
  MediaTypes.OCI_LAYER_NONDIST, MediaTypes.OCI_LAYER_NONDIST_GZIP, MediaTypes.OCI_LAYER_NONDIST_ZSTD, MediaTypes.DOCKER_FOREIGN_LAYER,
]);

/**
 * The manifest types we read, in order of preference. Send it identically on HEAD and GET: a registry
 * rewrites or refuses what the client does not accept, and the digest would change under you.
 */
export const ACCEPT_MANIFESTS = [MediaTypes.OCI_INDEX, MediaTypes.OCI_MANIFEST, MediaTypes.DOCKER_LIST, MediaTypes.DOCKER_MANIFEST].join(", ");

/** BuildKit marks attestation manifests (SBOM, provenance) in an index with this annotation ... */
export const ANNOTATION_REFERENCE_TYPE = "vnd.docker.reference.type";
/** ... set to this value; their platform is unknown/unknown. */
export const REFERENCE_TYPE_ATTESTATION = "attestation-manifest";
/** BuildKit's annotation on an attestation: the digest of the image manifest it describes. */
export const ANNOTATION_REFERENCE_DIGEST = "vnd.docker.reference.digest";
/** The tag of a manifest in an OCI layout's index.json. */
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";

/** The media type without parameters, lowercased: `Application/JSON; charset=utf-8` -> `application/json`. */
export function baseMediaType(contentType: string): string {
  return (contentType.split(";")[0] ?? "").trim().toLowerCase();
}

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

export function isImageManifestMediaType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType);
}

/** Foreign (Docker) and non-distributable (OCI) layers: deprecated, Windows-only in practice. */
export function isNonDistributableLayer(mediaType: string): boolean {
  return NON_DISTRIBUTABLE.has(mediaType);
}
