// Registration of the webhook configurations against the real API server, where one already exists: the
// chart's (Helm's ownership annotations, cert-manager's CA injection annotation) or a previous leader's.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MUTATING_NAME, VALIDATING_NAME, registerWebhooks, unregisterWebhooks } from "../../src/webhook/register.js";
import { describeWith, service } from "../env/index.js";

describeWith(["kube"], "webhook registration over an existing configuration", () => {
  let kc: k8s.KubeConfig;
  let api: k8s.AdmissionregistrationV1Api;
  const chartBundle = Buffer.from("-----BEGIN CERTIFICATE-----\nchart\n-----END CERTIFICATE-----\n").toString("base64");
  // A namespace label nothing has: no other request on this API server is sent to the missing server.
  const options = { url: "https://127.0.0.1:9", failurePolicy: "Ignore" as const, excludeNamespaces: ["kube-system"], onlyLabel: { key: "portcullis.dev/register-test", value: "never" } };

  beforeAll(async () => {
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    api = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    await unregisterWebhooks(kc);
  });
  afterAll(async () => {
    if (kc) await unregisterWebhooks(kc);
  });

  it("keeps the labels and annotations others put on it, and a cert-manager caBundle when it has none of its own", async () => {
    const annotations = { "meta.helm.sh/release-name": "portcullis", "meta.helm.sh/release-namespace": "portcullis-system", "cert-manager.io/inject-ca-from": "portcullis-system/portcullis-webhook" };
    await api.createValidatingWebhookConfiguration({
      body: {
        metadata: { name: VALIDATING_NAME, labels: { "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "portcullis-0.1.0" }, annotations },
        webhooks: [{ name: "images.portcullis.dev", admissionReviewVersions: ["v1"], sideEffects: "None", failurePolicy: "Ignore", clientConfig: { url: "https://127.0.0.1:9/old", caBundle: chartBundle }, namespaceSelector: { matchLabels: { "portcullis.dev/register-test": "never" } } }],
      },
    });

    // cert-manager mode: the operator has no CA of its own to publish.
    await registerWebhooks(kc, { ...options, caBundle: "", mutating: true });
    const v = await api.readValidatingWebhookConfiguration({ name: VALIDATING_NAME });
    expect(v.metadata!.annotations).toEqual(annotations);
    expect(v.metadata!.labels).toMatchObject({ "helm.sh/chart": "portcullis-0.1.0", "app.kubernetes.io/managed-by": "portcullis" });
    expect(v.webhooks![0]!.clientConfig.caBundle).toBe(chartBundle);
    expect(v.webhooks![0]!.clientConfig.url).toBe("https://127.0.0.1:9/validate");
    expect(v.webhooks![0]!.sideEffects).toBe("NoneOnDryRun");
    expect((await api.readMutatingWebhookConfiguration({ name: MUTATING_NAME })).webhooks![0]!.reinvocationPolicy).toBe("IfNeeded");

    // Builtin mode: its own bundle wins; the annotations stay. Without digest pinning the mutating one goes.
    const own = Buffer.from("own").toString("base64");
    await registerWebhooks(kc, { ...options, caBundle: own, mutating: false });
    const again = await api.readValidatingWebhookConfiguration({ name: VALIDATING_NAME });
    expect(again.webhooks![0]!.clientConfig.caBundle).toBe(own);
    expect(again.metadata!.annotations).toEqual(annotations);
    await expect(api.readMutatingWebhookConfiguration({ name: MUTATING_NAME })).rejects.toMatchObject({ code: 404 });
  });
});
