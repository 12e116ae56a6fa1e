// The webhook's certificates in one object: the leader's rotator and every replica's reloader over one Secret.
// serve builds one per process; the controller role leads (reconcile, lead), the webhook role (and the report
// API's TLS server) reloads (start, attach). docs/certificates.md has the modes, the Secret and the schedule.
import { isIP } from "node:net";
import type { SecureContext, Server as TlsServer } from "node:tls";
import type * as k8s from "@kubernetes/client-node";
import type { ClientCa } from "../client-ca.js";
import { kubeTlsApi, type TlsApi } from "./api.js";
import { CertificateReloader } from "./reloader.js";
import { CertificateRotator, mintWith, type ReconcileResult } from "./rotator.js";
import { DEFAULT_SECRET_NAME, TlsSecretStore } from "./secret.js";

const DEFAULT_CA_VALIDITY_DAYS = 1826;
const DEFAULT_LEAF_VALIDITY_DAYS = 90;

export class WebhookCertificates {
  readonly mode: "builtin" | "external";
  readonly secretName: string;
  private readonly rotator: CertificateRotator;
  private readonly reloader: CertificateReloader;

  constructor(options: WebhookCertificatesOptions) {
    this.mode = options.mode ?? "builtin";
    this.secretName = options.secretName ?? DEFAULT_SECRET_NAME;
    const dnsNames = [...new Set((options.dnsNames ?? []).map((d) => d.toLowerCase()))];
    const ipAddresses = [...new Set(options.ipAddresses ?? [])];
    const caDays = options.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS;
    const leafDays = options.leafValidityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
    for (const ip of ipAddresses) if (!isIP(ip)) throw new Error(`webhook TLS: ${ip} is not an IP address`);
    if (!(caDays > 0 && leafDays > 0)) throw new Error("webhook TLS: validity days must be positive");
    if (this.mode === "builtin" && !dnsNames.length && !ipAddresses.length) {
      throw new Error("webhook TLS: the serving certificate needs at least one DNS name or IP address");
    }
    let client: TlsApi | undefined;
    const api = () => (client ??= options.api ?? kubeTlsApi(options.kc));
    const store = new TlsSecretStore(api, options.namespace, this.secretName);
    const log = (level: "info" | "warn" | "error", msg: string) => options.log?.(level, `webhook TLS: ${msg}`, { secret: `${options.namespace}/${this.secretName}` });
    this.reloader = new CertificateReloader({
      store, pollMs: (options.pollSeconds ?? 30) * 1000, log,
      waitingFor: this.mode === "builtin" ? "waiting for the leader to create the Secret" : "waiting for the Secret (cert-manager)",
    });
    this.rotator = new CertificateRotator({
      api, store, log, mint: mintWith({ caDays, leafDays, dnsNames, ipAddresses }),
      settings: { leafDays, settleMs: (options.rolloverSettleSeconds ?? 60) * 1000, caOverlapDays: options.caOverlapDays, dnsNames, ipAddresses },
      webhookConfigurations: options.webhookConfigurations ?? {}, reconcileMs: (options.reconcileSeconds ?? 60) * 1000,
      now: () => options.now?.() ?? new Date(),
      onStored: (secret) => this.reloader.apply(secret),
    });
  }

  // ----- the leader

  /**
   * Creates or rotates what is due, writes the Secret, and publishes the bundle into the configurations.
   * Calls are serialized. builtin mode only (external: a no-op).
   */
  reconcile(): Promise<ReconcileResult> {
    if (this.mode === "external") return Promise.resolve({ changes: [], patched: [], missing: [], caBundle: this.caBundle() });
    return this.rotator.reconcile();
  }

  /** Reconciles now and every reconcileSeconds until `signal` aborts (the leader's term). */
  async lead(signal: AbortSignal): Promise<void> {
    if (this.mode === "external") return;
    await this.rotator.lead(signal);
  }

  // ----- every replica

  /** Loads the Secret (a missing one is waited for) and keeps polling it until stop(). */
  start(): Promise<void> {
    return this.reloader.start();
  }

  stop(): void {
    this.reloader.stop();
  }

  /** Reads the Secret once and applies it; errors are logged. */
  refresh(): Promise<void> {
    return this.reloader.refresh();
  }

  /** Resolves once a certificate is loaded. */
  ready(): Promise<void> {
    return this.reloader.ready();
  }

  isReady(): boolean {
    return this.reloader.isReady();
  }

  /** The current serving material (for SNICallback); throws before ready(). */
  secureContext(): SecureContext {
    return this.reloader.secureContext();
  }

  /** cert/key PEM of the current certificate (for a server's options), undefined before ready(). */
  tlsOptions(): { cert: string; key: string } | undefined {
    return this.reloader.tlsOptions();
  }

  /** Keeps `server` serving the current certificate (reloader.ts); returns a function that detaches it. */
  attach(server: TlsServer, o: { clientCa?: Pick<ClientCa, "pem" | "onChange"> } = {}): () => void {
    return this.reloader.attach(server, o);
  }

  /** The CA bundle as a webhook configuration's caBundle (base64 PEM), once loaded. */
  caBundle(): string | undefined {
    return this.reloader.caBundle();
  }

  /** notAfter of the served leaf and of the CA in ca.crt that signed it (for metrics). */
  expiry(): { leaf?: Date; ca?: Date } {
    return this.reloader.expiry();
  }
}

export interface WebhookCertificatesOptions {
  kc: k8s.KubeConfig;
  /** Portcullis's namespace: where the Secret is. */
  namespace: string;
  /** "builtin" (default): Portcullis's own CA; "external": cert-manager writes the Secret and injects the CA. */
  mode?: "builtin" | "external";
  secretName?: string;
  /** The serving certificate's names (see webhookSans()); builtin mode needs at least one name or address. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Configurations whose every webhook entry gets the caBundle (builtin mode). */
  webhookConfigurations?: { validating?: string[]; mutating?: string[] };
  caValidityDays?: number;
  leafValidityDays?: number;
  /** After a CA switch, the old CA leaves the bundle when the old leaf expires, or this long after the switch if sooner. */
  caOverlapDays?: number;
  /** How long every configuration must have carried the new CA before the leaf switches to it (default 60 s). */
  rolloverSettleSeconds?: number;
  /** Replicas re-read the Secret this often (default 30 s). */
  pollSeconds?: number;
  /** lead() reconciles this often (default 60 s). */
  reconcileSeconds?: number;
  now?(): Date;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  /** The API server access (default: from kc). */
  api?: TlsApi;
}
