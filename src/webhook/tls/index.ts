// The webhook's serving certificates (docs/certificates.md): issuing (issue.ts), reading certificates
// (bundle.ts), the rotation plan (plan.ts), the Secret (secret.ts), the leader's rotator (rotator.ts) and the
// replicas' reloader (reloader.ts), together in WebhookCertificates (certificates.ts).
export { kubeTlsApi, type TlsApi, type WebhookConfigurationView, type WebhookKind } from "./api.js";
export { splitPem } from "./bundle.js";
export { WebhookCertificates, type WebhookCertificatesOptions } from "./certificates.js";
export { createCA, issueServingCertificate, webhookSans } from "./issue.js";
export { ANNOTATIONS, SECRET_KEYS } from "./secret.js";
