// A kind the shared cache can hold: where its objects are listed and watched. One value per kind, so that
// every consumer in the process asking for "pods" gets the same informer (./cache.ts).
import * as k8s from "@kubernetes/client-node";
import type { KubeObject } from "./informer.js";

export interface Kind<T extends KubeObject> {
  /** `group/version/plural` (`v1/pods` for the core group): the cache's key and what logs name. */
  readonly id: string;
  /** The cluster-wide watch path, e.g. /apis/portcullis.dev/v1alpha1/imagescans or /api/v1/pods. */
  readonly watchPath: string;
  /** A full list, with the list's resourceVersion. */
  list(kc: k8s.KubeConfig): Promise<{ items: T[]; resourceVersion: string }>;
}

const customApis = new WeakMap<k8s.KubeConfig, k8s.CustomObjectsApi>();
const coreApis = new WeakMap<k8s.KubeConfig, k8s.CoreV1Api>();

function customApi(kc: k8s.KubeConfig): k8s.CustomObjectsApi {
  let api = customApis.get(kc);
  if (!api) customApis.set(kc, (api = kc.makeApiClient(k8s.CustomObjectsApi)));
  return api;
}

function coreApi(kc: k8s.KubeConfig): k8s.CoreV1Api {
  let api = coreApis.get(kc);
  if (!api) coreApis.set(kc, (api = kc.makeApiClient(k8s.CoreV1Api)));
  return api;
}

/** A custom resource's kind, listed across namespaces. */
export function customKind<T extends KubeObject>(group: string, version: string, plural: string): Kind<T> {
  return {
    id: `${group}/${version}/${plural}`,
    watchPath: `/apis/${group}/${version}/${plural}`,
    async list(kc) {
      const res = (await customApi(kc).listClusterCustomObject({ group, version, plural })) as { items: T[]; metadata: { resourceVersion: string } };
      return { items: res.items, resourceVersion: res.metadata.resourceVersion };
    },
  };
}

export const PODS: Kind<k8s.V1Pod> = {
  id: "v1/pods",
  watchPath: "/api/v1/pods",
  async list(kc) {
    const res = await coreApi(kc).listPodForAllNamespaces();
    return { items: res.items, resourceVersion: res.metadata?.resourceVersion ?? "" };
  },
};

export const NAMESPACES: Kind<k8s.V1Namespace> = {
  id: "v1/namespaces",
  watchPath: "/api/v1/namespaces",
  async list(kc) {
    const res = await coreApi(kc).listNamespace();
    return { items: res.items, resourceVersion: res.metadata?.resourceVersion ?? "" };
  },
};
