// Media types of OCI and Docker images, and the Accept header that asks for every manifest type we read.

export const MediaTypes = {
  OCI_INDEX: "application/vnd.oci.image.index.v1+json",
  OCI_MANIFEST: "application/vnd.oci.image.manifest.v1+json",
  OCI_CONFIG: "application/vnd.oci.image.config.v1+json",
  OCI_LAYER: "application/vnd.oci.image.layer.v1.tar",
  OCI_LAYER_GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
  OCI_LAYER_ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
  OCI_LAYER_NONDIST: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  OCI_LAYER_NONDIST_GZIP: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  OCI_LAYER_NONDIST_ZSTD: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  DOCKER_LIST: "application/vnd.docker.distribution.manifest.list.v2+json",
  DOCKER_MANIFEST: "application/vnd.docker.distribution.manifest.v2+json",
  DOCKER_CONFIG: "application/vnd.docker.container.image.v1+json",
  DOCKER_LAYER: "application/vnd.docker.image.rootfs.diff.tar",
  DOCKER_LAYER_GZIP: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  /** Not standard, but BuildKit writes it. */
  DOCKER_LAYER_ZSTD: "application/vnd.docker.image.rootfs.diff.tar.zstd",
  DOCKER_FOREIGN_LAYER: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  DOCKER_SCHEMA1: "application/vnd.docker.distribution.manifest.v1+json",
  DOCKER_SCHEMA1_SIGNED: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

export const INDEX_TYPES: ReadonlySet<string> = new Set([MediaTypes.OCI_INDEX, MediaTypes.DOCKER_LIST]);
export const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaTypes.OCI_MANIFEST, MediaTypes.DOCKER_MANIFEST]);
export const SCHEMA1_TYPES: ReadonlySet<string> = new Set([MediaTypes.DOCKER_SCHEMA1, MediaTypes.DOCKER_SCHEMA1_SIGNED]);

/** Sent identically on HEAD and GET, so the digest a HEAD reports is the digest a GET returns. */
export const ACCEPT_MANIFESTS = [MediaTypes.OCI_INDEX, MediaTypes.OCI_MANIFEST, MediaTypes.DOCKER_LIST, MediaTypes.DOCKER_MANIFEST].join(", ");

/** BuildKit marks attestation manifests in an index with this annotation. */
export const ANNOTATION_REFERENCE_TYPE = "vnd.docker.reference.type";
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
