// The portcullis.dev/v1alpha1 API group: its name, the plurals of its kinds, and the labels, annotations and
// defaults every part of Portcullis that reads or writes these objects agrees on (the webhook, the report API,
// the controllers). Nothing here does I/O.

export const GROUP = "portcullis.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export const IMAGESCAN_PLURAL = "imagescans";
export const IMAGE_POLICY_PLURAL = "imagepolicies";
export const CLUSTER_IMAGE_POLICY_PLURAL = "clusterimagepolicies";
export const REPOSITORY_PLURAL = "imagerepositories";

/** Labels and annotations on the ImageScans Portcullis manages (created for pods, reviews and repositories). */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** The managed-by value of what Portcullis creates (ImageScans here, the chart's objects in deploy/). */
export const MANAGED_BY = "portcullis";
/** The digest's hex, cut to the 63 characters a label value allows. */
export const DIGEST_LABEL = "portcullis.dev/digest";
export const REPOSITORY_LABEL = "portcullis.dev/repository";
/** For scans of a reference no digest could be found for (the scan then says why): a hash of the reference. */
export const REFERENCE_LABEL = "portcullis.dev/reference";
export const UNUSED_SINCE_ANNOTATION = "portcullis.dev/unused-since";
/** Set by the admission webhook on a scan someone is waiting for: it goes to the priority lane. */
export const PRIORITY_ANNOTATION = "portcullis.dev/priority";
/** The reference as a pod wrote it (the spec holds the digest form). */
export const IMAGE_ANNOTATION = "portcullis.dev/image";
/** On the ImageScans an ImageRepository asked for: that repository (`namespace/name`). */
export const WATCHED_BY_ANNOTATION = "portcullis.dev/watched-by";

/**
 * Namespaces whose pods are neither scanned nor judged unless configured otherwise (Portcullis's own is added
 * to both lists wherever it runs).
 */
export const DEFAULT_EXCLUDED_NAMESPACES: readonly string[] = ["kube-system", "kube-public", "kube-node-lease"];
