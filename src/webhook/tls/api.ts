// What the certificates need of the API server, narrowly: their Secret, and the caBundles of the webhook
// configurations. Conflicts reject with `{ code: 409 }`.
import * as k8s from "@kubernetes/client-node";

export const code = (e: unknown): number | undefined => (e as { code?: number } | undefined)?.code;

const undefinedIf404 = (e: unknown): undefined => {
  if (code(e) === 404) return undefined;
  throw e;
};

export function kubeTlsApi(kc: k8s.KubeConfig): TlsApi {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const adm = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  return {
    readSecret: (namespace, name) => core.readNamespacedSecret({ namespace, name }).catch(undefinedIf404),
    createSecret: (namespace, body) => core.createNamespacedSecret({ namespace, body }),
    replaceSecret: (namespace, name, body) => core.replaceNamespacedSecret({ namespace, name, body }),
    async readWebhookConfiguration(kind, name) {
      const c = await (kind === "validating" ? adm.readValidatingWebhookConfiguration({ name }) : adm.readMutatingWebhookConfiguration({ name })).catch(undefinedIf404);
      if (!c) return undefined;
      return { resourceVersion: c.metadata?.resourceVersion ?? "", webhooks: (c.webhooks ?? []).map((w) => ({ name: w.name, caBundle: w.clientConfig?.caBundle })) };
    },
    async setCaBundles(kind, name, resourceVersion, entries) {
      // A JSON patch touches only the caBundles (fields this client does not model survive); setting the
      // resourceVersion makes it conditional (409 when the configuration changed since it was read).
      const body = [
        { op: "replace", path: "/metadata/resourceVersion", value: resourceVersion },
        ...entries.flatMap((e) => [
          { op: "test", path: `/webhooks/${e.index}/name`, value: e.name },
          { op: "add", path: `/webhooks/${e.index}/clientConfig/caBundle`, value: e.caBundle },
        ]),
      ];
      const opts = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
      if (kind === "validating") await adm.patchValidatingWebhookConfiguration({ name, body }, opts);
      else await adm.patchMutatingWebhookConfiguration({ name, body }, opts);
    },
  };
}

export type WebhookKind = "validating" | "mutating";

export interface WebhookConfigurationView {
  resourceVersion: string;
  webhooks: Array<{ name: string; caBundle?: string }>;
}

/** What the certificates need from the API server (a fake in unit tests). */
export interface TlsApi {
  /** undefined when the Secret does not exist (404); any other failure rejects. */
  readSecret(namespace: string, name: string): Promise<k8s.V1Secret | undefined>;
  createSecret(namespace: string, body: k8s.V1Secret): Promise<k8s.V1Secret>;
  /** Replaces the Secret; body.metadata.resourceVersion is the precondition. */
  replaceSecret(namespace: string, name: string, body: k8s.V1Secret): Promise<k8s.V1Secret>;
  /** undefined when the configuration does not exist. */
  readWebhookConfiguration(kind: WebhookKind, name: string): Promise<WebhookConfigurationView | undefined>;
  /** Sets entries' clientConfig.caBundle, only if the configuration still has `resourceVersion`. */
  setCaBundles(kind: WebhookKind, name: string, resourceVersion: string, entries: Array<{ index: number; name: string; caBundle: string }>): Promise<void>;
}
