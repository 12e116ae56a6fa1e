// Every image a Pod (or a pod template) runs, with the field path users see in messages:
// containers, initContainers, ephemeralContainers and image volumes (`volumes[].image`, Kubernetes 1.31+).
// The kubelet's record of what it pulled (`status.*ContainerStatuses[].imageID`) gives the digest when
// present.
import type * as k8s from "@kubernetes/client-node";

export interface PodImage {
  /** Field path, e.g. `spec.containers[1].image`. */
  field: string;
  /** The container (or volume) name. */
  name: string;
  image: string;
  /** The digest the kubelet reports having pulled (`sha256:…`), when it reports a repository digest. */
  pulledDigest?: string;
}

interface ImageVolume {
  name?: string;
  image?: { reference?: string };
}

/** Images of a pod spec (templates included: pass `template.spec`). */
export function podSpecImages(spec: k8s.V1PodSpec | undefined, prefix = "spec"): PodImage[] {
  const out: PodImage[] = [];
  const lists: Array<[string, Array<{ name: string; image?: string }> | undefined]> = [
    ["initContainers", spec?.initContainers],
    ["containers", spec?.containers],
    ["ephemeralContainers", spec?.ephemeralContainers],
  ];
  for (const [list, items] of lists) {
    items?.forEach((c, i) => {
      if (c.image) out.push({ field: `${prefix}.${list}[${i}].image`, name: c.name, image: c.image });
    });
  }
  (spec?.volumes as ImageVolume[] | undefined)?.forEach((v, i) => {
    const ref = v.image?.reference;
    if (ref) out.push({ field: `${prefix}.volumes[${i}].image.reference`, name: v.name ?? `volume ${i}`, image: ref });
  });
  return out;
}

/** The images of a Pod, with the digests the kubelet reports. */
export function podImages(pod: k8s.V1Pod): PodImage[] {
  const images = podSpecImages(pod.spec);
  const pulled = new Map<string, string>();
  const st = pod.status;
  for (const [kind, list] of [["initContainers", st?.initContainerStatuses], ["containers", st?.containerStatuses], ["ephemeralContainers", st?.ephemeralContainerStatuses]] as const) {
    for (const s of list ?? []) {
      const d = digestOfImageID(s.imageID);
      if (d) pulled.set(`${kind}/${s.name}`, d);
    }
  }
  for (const img of images) {
    const kind = img.field.slice("spec.".length, img.field.indexOf("["));
    const d = pulled.get(`${kind}/${img.name}`);
    if (d) img.pulledDigest = d;
  }
  return images;
}

/**
 * The repository digest in a kubelet imageID: `docker-pullable://host/repo@sha256:…` (dockershim),
 * `host/repo@sha256:…` (containerd, CRI-O). A bare `sha256:…` is the image's config ID, not a manifest
 * digest, and is ignored.
 */
export function digestOfImageID(imageID: string | undefined): string | undefined {
  if (!imageID) return undefined;
  const at = imageID.lastIndexOf("@");
  if (at < 0) return undefined;
  const d = imageID.slice(at + 1);
  return /^sha256:[a-f0-9]{64}$/.test(d) ? d : undefined;
}
