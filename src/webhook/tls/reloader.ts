// Every replica's reloader: polls the Secret and, when tls.crt/tls.key change (and the key matches), makes the
// servers attached to it serve the new certificate without a restart (setSecureContext). Connections already
// established keep the certificate they negotiated. docs/certificates.md has the intervals.
import { randomBytes, type X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext, type Server as TlsServer } from "node:tls";
import type * as k8s from "@kubernetes/client-node";
import type { ClientCa } from "../client-ca.js";
import { keyMatches, parseCert, splitPem } from "./bundle.js";
import { decoded, SECRET_KEYS, type TlsSecretStore } from "./secret.js";

export class CertificateReloader {
  private material?: Material;
  private bundlePem?: string;
  private caNotAfter?: Date;
  private appliedVersion?: string;
  private readonly listeners = new Set<(m: { certPem: string; keyPem: string }) => void>();
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private timer?: NodeJS.Timeout;
  private started = false;
  private waitingLogged = false;

  constructor(private readonly options: ReloaderOptions) {
    this.readyPromise = new Promise((r) => (this.resolveReady = r));
  }

  /** Loads the Secret (a missing one is waited for) and keeps polling it until stop(). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.started = false;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (!this.started) return;
    // Every 2 s until the first certificate is loaded.
    const ms = this.material ? this.options.pollMs : Math.min(this.options.pollMs, 2000);
    this.timer = setTimeout(() => void this.refresh().finally(() => this.schedule()), ms);
    this.timer.unref();
  }

  /** Reads the Secret once and applies it; errors are logged. */
  async refresh(): Promise<void> {
    try {
      const secret = await this.options.store.read();
      if (!secret) {
        if (!this.waitingLogged) this.options.log("info", this.options.waitingFor);
        this.waitingLogged = true;
        return;
      }
      this.apply(secret);
    } catch (e) {
      this.options.log("warn", `reading the Secret: ${(e as Error).message}`);
    }
  }

  /** Takes tls.crt/tls.key (and ca.crt) of `secret` as the serving material when they changed and are sound. */
  apply(secret: k8s.V1Secret): void {
    const { log } = this.options;
    const version = secret.metadata?.resourceVersion;
    if (version && version === this.appliedVersion) return;
    const certPem = decoded(secret, SECRET_KEYS.cert);
    const keyPem = decoded(secret, SECRET_KEYS.key);
    const bundlePem = decoded(secret, SECRET_KEYS.bundle);
    if (!certPem || !keyPem) {
      log("warn", `the Secret has no ${SECRET_KEYS.cert} and ${SECRET_KEYS.key}`);
      return;
    }
    let material = this.material;
    if (!material || material.certPem !== certPem || material.keyPem !== keyPem) {
      const leafPem = splitPem(certPem)[0];
      const leaf = leafPem ? parseCert(leafPem) : undefined;
      if (!leaf || !keyMatches(leaf, keyPem)) {
        log("error", `the Secret's ${SECRET_KEYS.cert} is not a certificate or ${SECRET_KEYS.key} is not its key: still serving the previous certificate`);
        return;
      }
      let context: SecureContext;
      try {
        context = createSecureContext({ cert: certPem, key: keyPem });
      } catch (e) {
        log("error", `the Secret's certificate cannot be served: ${(e as Error).message}`);
        return;
      }
      material = { certPem, keyPem, leaf: leaf.x, leafNotAfter: new Date(leaf.notAfter), context };
      this.material = material;
      log("info", `serving certificate ${leaf.x.serialNumber} (valid until ${new Date(leaf.notAfter).toISOString()})`);
      for (const l of this.listeners) {
        try {
          l({ certPem, keyPem });
        } catch (e) {
          log("error", `applying the new certificate: ${(e as Error).message}`);
        }
      }
    }
    this.bundlePem = bundlePem;
    const issuer = splitPem(bundlePem).map(parseCert).find((c) => c && material.leaf.checkIssued(c.x) && material.leaf.verify(c.x.publicKey));
    this.caNotAfter = issuer ? new Date(issuer.notAfter) : undefined;
    this.appliedVersion = version;
    this.resolveReady();
  }

  /** Resolves once a certificate is loaded. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  isReady(): boolean {
    return !!this.material;
  }

  /** The current serving material (for SNICallback); throws before ready(). */
  secureContext(): SecureContext {
    const m = this.material;
    if (!m) throw new Error("webhook TLS: no certificate loaded yet");
    return (m.context ??= createSecureContext({ cert: m.certPem, key: m.keyPem }));
  }

  /** cert/key PEM of the current certificate (for a server's options), undefined before ready(). */
  tlsOptions(): { cert: string; key: string } | undefined {
    return this.material ? { cert: this.material.certPem, key: this.material.keyPem } : undefined;
  }

  /**
   * Keeps `server` (https.Server or tls.Server; it may be created without a certificate) serving the current
   * certificate: setSecureContext now (when loaded) and on every change. Returns a function that detaches it.
   */
  attach(server: TlsServer, o: { clientCa?: Pick<ClientCa, "pem" | "onChange"> } = {}): () => void {
    // setSecureContext replaces the whole context: the client CA (when client certificates are required) goes
    // into every one, and a new client CA is applied with the current certificate.
    const apply = (m: { certPem: string; keyPem: string }) => server.setSecureContext({ cert: m.certPem, key: m.keyPem, ...(o.clientCa ? { ca: o.clientCa.pem() } : {}) });
    if (this.material) apply(this.material);
    this.listeners.add(apply);
    const off = o.clientCa?.onChange(() => {
      if (this.material) apply(this.material);
      // Session tickets issued under the old CA would resume without a certificate check: new keys void them.
      server.setTicketKeys(randomBytes(48));
      // Idle keep-alive connections were accepted under the old CA: closed, their clients connect anew.
      (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    });
    return () => {
      this.listeners.delete(apply);
      off?.();
    };
  }

  /** The CA bundle as a webhook configuration's caBundle (base64 PEM), once loaded. */
  caBundle(): string | undefined {
    return this.bundlePem ? Buffer.from(this.bundlePem).toString("base64") : undefined;
  }

  /** notAfter of the served leaf and of the CA in ca.crt that signed it (for metrics). */
  expiry(): { leaf?: Date; ca?: Date } {
    return { ...(this.material ? { leaf: this.material.leafNotAfter } : {}), ...(this.caNotAfter ? { ca: this.caNotAfter } : {}) };
  }
}

export interface ReloaderOptions {
  store: TlsSecretStore;
  /** Re-reads the Secret this often. */
  pollMs: number;
  /** Logged once while the Secret does not exist. */
  waitingFor: string;
  log(level: "info" | "warn" | "error", msg: string): void;
}

interface Material {
  certPem: string;
  keyPem: string;
  leaf: X509Certificate;
  leafNotAfter: Date;
  context?: SecureContext;
}
