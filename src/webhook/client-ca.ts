// The CA that signs the API server's client certificate for webhook calls (`serve --webhook-client-ca FILE`).
// With it, the webhook's TLS server requests a client certificate and refuses the handshake of any caller
// whose certificate that CA did not sign: an AdmissionReview that reaches the handler then came from an API
// server (or whoever holds a certificate of that CA — use a CA of its own for this, never the cluster CA that
// also signs kubelets' and users' client certificates). The API server presents the certificate named in the
// kubeconfig of its `--admission-control-config-file` (WebhookAdmissionConfiguration; docs/trust.md).
//
// The file is read at start (an unreadable file, one larger than 1 MiB, or one without a CA certificate is a
// ClientCaError: serve does not start) and polled; a changed file that is sound replaces the CA for new
// connections, one that is not is logged and the previous CA stays (a Secret or ConfigMap volume is updated
// by swapping a symlink: the content is compared, not the modification time).
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { PortcullisError } from "../errors.js";

export const CLIENT_CA_MAX_BYTES = 1024 * 1024;

export class ClientCaError extends PortcullisError {
  readonly domain = "webhook";
  readonly code = "WEBHOOK_CLIENT_CA_INVALID";
}

export interface ClientCaOptions {
  file: string;
  /** How often the file is read again (default 30 s). */
  pollSeconds?: number;
  log?(level: "info" | "warn" | "error", msg: string): void;
}

/** The CA certificates of a PEM text, or a ClientCaError naming what is wrong. */
export function parseClientCa(text: string, source: string): string {
  if (Buffer.byteLength(text) > CLIENT_CA_MAX_BYTES) throw new ClientCaError(`${source}: larger than ${CLIENT_CA_MAX_BYTES} bytes`);
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length) throw new ClientCaError(`${source}: no PEM CERTIFICATE block`);
  const cas: string[] = [];
  for (const [i, b] of blocks.entries()) {
    let x: X509Certificate;
    try {
      x = new X509Certificate(b);
    } catch (e) {
      throw new ClientCaError(`${source}: certificate ${i + 1} cannot be read: ${(e as Error).message}`);
    }
    if (!x.ca) throw new ClientCaError(`${source}: certificate ${i + 1} (${x.subject.replace(/\n/g, ", ")}) is not a CA (basicConstraints CA:TRUE)`);
    cas.push(`${b}\n`);
  }
  return cas.join("");
}

export class ClientCa {
  private current: string;
  private readonly listeners = new Set<(pem: string) => void>();
  private timer?: NodeJS.Timeout;

  /** Reads the file now: throws ClientCaError when it is unusable. */
  constructor(private readonly options: ClientCaOptions) {
    let text: string;
    try {
      text = readFileSync(options.file, "utf8");
    } catch (e) {
      throw new ClientCaError(`--webhook-client-ca ${options.file}: ${(e as Error).message}`);
    }
    this.current = parseClientCa(text, options.file);
  }

  /** The CA certificates (PEM) client certificates must chain to. */
  pem(): string {
    return this.current;
  }

  /** Calls `l` with the new PEM after each change; returns a function that unsubscribes. */
  onChange(l: (pem: string) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Polls the file until stop(). */
  start(): void {
    const ms = (this.options.pollSeconds ?? 30) * 1000;
    const tick = () => void this.reload().finally(() => {
      if (this.timer) this.timer = setTimeout(tick, ms).unref();
    });
    this.timer = setTimeout(tick, ms).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Reads the file once; a sound, changed CA is applied; anything else is logged and the previous CA kept. */
  async reload(): Promise<boolean> {
    let pem: string;
    try {
      pem = parseClientCa(await readFile(this.options.file, "utf8"), this.options.file);
    } catch (e) {
      this.options.log?.("error", `webhook client CA: ${(e as Error).message}; still requiring certificates of the previous CA`);
      return false;
    }
    if (pem === this.current) return false;
    this.current = pem;
    this.options.log?.("info", `webhook client CA reloaded from ${this.options.file}`);
    for (const l of this.listeners) {
      try {
        l(pem);
      } catch (e) {
        this.options.log?.("error", `applying the new webhook client CA: ${(e as Error).message}`);
      }
    }
    return true;
  }
}
