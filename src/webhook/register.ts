// The webhook configurations Portcullis registers (the leader writes them; `portcullis serve --webhook-url`
// for development and CI, the Service in a cluster). What they select and how they fail is the cluster's
// safety: system namespaces and Portcullis's own are never sent, dryRun has no side effects, and
// failurePolicy is explicit.
import * as k8s from "@kubernetes/client-node";

export const VALIDATING_NAME = "portcullis";
export const MUTATING_NAME = "portcullis-pin-digests";

export interface RegistrationOptions {
  /** `https://host:port` outside the cluster; otherwise `service`. */
  url?: string;
  service?: { namespace: string; name: string; port?: number };
  caBundle: string;
  failurePolicy?: "Fail" | "Ignore";
  timeoutSeconds?: number;
  /**
   * Namespaces never sent, matched by the `kubernetes.io/metadata.name` label, which the API server sets to the
   * namespace's name and nobody can change (1.21+). The only exclusion: no label a namespace's owner can set
   * takes it out (the `portcullis.dev/ignore` label of earlier versions is gone).
   */
  excludeNamespaces: string[];
  /**
   * Only namespaces with this label (key=value) are sent, when set. Whoever may label a namespace can then
   * take it out: choose a label only the platform team sets (see README, "Which namespaces are judged").
   */
  onlyLabel?: { key: string; value: string };
  /** Register the mutating (digest pinning) webhook too. */
  mutating?: boolean;
}

const RULES: k8s.V1RuleWithOperations[] = [
  { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers"], scope: "Namespaced" },
  { apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments", "statefulsets", "daemonsets", "replicasets"], scope: "Namespaced" },
  { apiGroups: ["batch"], apiVersions: ["v1", "v1beta1"], operations: ["CREATE", "UPDATE"], resources: ["jobs", "cronjobs"], scope: "Namespaced" },
];

function namespaceSelector(o: RegistrationOptions): k8s.V1LabelSelector {
  const expr: k8s.V1LabelSelectorRequirement[] = [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: o.excludeNamespaces }];
  return { matchExpressions: expr, ...(o.onlyLabel ? { matchLabels: { [o.onlyLabel.key]: o.onlyLabel.value } } : {}) };
}

function clientConfig(o: RegistrationOptions, path: string): k8s.AdmissionregistrationV1WebhookClientConfig {
  if (o.url) return { url: `${o.url.replace(/\/+$/, "")}${path}`, caBundle: o.caBundle };
  if (!o.service) throw new Error("a webhook needs --webhook-url or a Service");
  return { service: { namespace: o.service.namespace, name: o.service.name, port: o.service.port ?? 443, path }, caBundle: o.caBundle };
}

export function validatingConfiguration(o: RegistrationOptions): k8s.V1ValidatingWebhookConfiguration {
  return {
    apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration",
    metadata: { name: VALIDATING_NAME, labels: { "app.kubernetes.io/managed-by": "portcullis" } },
    webhooks: [{
      name: "images.portcullis.dev",
      admissionReviewVersions: ["v1"],
      clientConfig: clientConfig(o, "/validate"),
      rules: RULES,
      failurePolicy: o.failurePolicy ?? "Fail",
      matchPolicy: "Equivalent",
      sideEffects: "NoneOnDryRun",
      timeoutSeconds: o.timeoutSeconds ?? 5,
      namespaceSelector: namespaceSelector(o),
    }],
  };
}

export function mutatingConfiguration(o: RegistrationOptions): k8s.V1MutatingWebhookConfiguration {
  return {
    apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration",
    metadata: { name: MUTATING_NAME, labels: { "app.kubernetes.io/managed-by": "portcullis" } },
    webhooks: [{
      name: "pin-digests.portcullis.dev",
      admissionReviewVersions: ["v1"],
      clientConfig: clientConfig(o, "/mutate"),
      rules: RULES,
      // Pinning is a convenience: when it is down, pods go through unpinned (validation still decides).
      failurePolicy: "Ignore",
      matchPolicy: "Equivalent",
      sideEffects: "None",
      reinvocationPolicy: "IfNeeded",
      timeoutSeconds: o.timeoutSeconds ?? 5,
      namespaceSelector: namespaceSelector(o),
    }],
  };
}

type Configuration = k8s.V1ValidatingWebhookConfiguration | k8s.V1MutatingWebhookConfiguration;

/**
 * What replaces `cur`: our webhooks, with the labels and annotations others put on the object kept (Helm's
 * ownership annotations, without which `helm upgrade` refuses the object; cert-manager's
 * `inject-ca-from`). With no caBundle of our own (cert-manager mode), each entry keeps the one it has.
 */
function merged<T extends Configuration>(want: T, cur: T, caBundle: string): T {
  const has = new Map((cur.webhooks ?? []).map((w) => [w.name, w.clientConfig?.caBundle]));
  return {
    ...want,
    metadata: {
      ...want.metadata,
      labels: { ...cur.metadata?.labels, ...want.metadata?.labels },
      ...(cur.metadata?.annotations ? { annotations: cur.metadata.annotations } : {}),
      resourceVersion: cur.metadata?.resourceVersion,
    },
    webhooks: (want.webhooks ?? []).map((w) => (caBundle || !has.get(w.name) ? w : { ...w, clientConfig: { ...w.clientConfig, caBundle: has.get(w.name) } })),
  } as T;
}

/**
 * Creates or updates the configurations (idempotent). An existing one (the chart's, a previous leader's)
 * is replaced with our webhooks, keeping its labels and annotations. Without `mutating`, a previous
 * mutating one is removed.
 */
export async function registerWebhooks(kc: k8s.KubeConfig, o: RegistrationOptions): Promise<void> {
  const api = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  const v = validatingConfiguration(o);
  try {
    const cur = await api.readValidatingWebhookConfiguration({ name: VALIDATING_NAME });
    await api.replaceValidatingWebhookConfiguration({ name: VALIDATING_NAME, body: merged(v, cur, o.caBundle) });
  } catch (e) {
    if ((e as { code?: number }).code !== 404) throw e;
    await api.createValidatingWebhookConfiguration({ body: v });
  }
  if (o.mutating) {
    const m = mutatingConfiguration(o);
    try {
      const cur = await api.readMutatingWebhookConfiguration({ name: MUTATING_NAME });
      await api.replaceMutatingWebhookConfiguration({ name: MUTATING_NAME, body: merged(m, cur, o.caBundle) });
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
      await api.createMutatingWebhookConfiguration({ body: m });
    }
  } else {
    await api.deleteMutatingWebhookConfiguration({ name: MUTATING_NAME }).catch((e: unknown) => {
      if ((e as { code?: number }).code !== 404) throw e;
    });
  }
}

/** Removes both configurations (emergency removal, uninstall). */
export async function unregisterWebhooks(kc: k8s.KubeConfig): Promise<void> {
  const api = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  for (const del of [() => api.deleteValidatingWebhookConfiguration({ name: VALIDATING_NAME }), () => api.deleteMutatingWebhookConfiguration({ name: MUTATING_NAME })]) {
    await del().catch((e: unknown) => {
      if ((e as { code?: number }).code !== 404) throw e;
    });
  }
}
