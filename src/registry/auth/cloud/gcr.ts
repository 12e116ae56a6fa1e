// Google Container Registry and Artifact Registry: the metadata server's access token for the pod's
// service account (GKE Workload Identity too), used as Basic `oauth2accesstoken:<token>`. Key-file pull
// secrets (`_json_key`, `_json_key_base64` user names) need nothing here: they are plain Basic credentials
// from the keyring.
import type { Credential, CredentialProvider } from "../types.js";
import { CloudCredentialError } from "./errors.js";
import { ANYWHERE, type EgressGuard } from "../../../net/egress.js";
import { smallRequest } from "./http.js";

const HOST = /^(((.+\.)?gcr\.io)|(.+-docker\.pkg\.dev))$/;

export interface GcrOptions {
  /** The metadata server, host[:port] or a URL; default $GCE_METADATA_HOST, else metadata.google.internal. */
  metadataHost?: string;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** Renew this long before expiry (default 5 min). */
  refreshBeforeMs?: number;
  /** The egress guard the request goes through (default: the process's; the configured host may be anywhere). */
  egress?: EgressGuard;
}

export class GcrCredentialProvider implements CredentialProvider {
  readonly name = "gcr";
  private cached: { credential: Credential; refreshAt: number } | undefined;
  private inflight: Promise<Credential> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: GcrOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  matches(host: string): boolean {
    return HOST.test(host);
  }

  private tokenUrl(): string {
    const h = this.options.metadataHost ?? (this.options.env ?? process.env).GCE_METADATA_HOST ?? "metadata.google.internal";
    const base = /^https?:\/\//.test(h) ? h.replace(/\/+$/, "") : `http://${h}`;
    return `${base}/computeMetadata/v1/instance/service-accounts/default/token`;
  }

  async get(host: string, signal?: AbortSignal): Promise<Credential | undefined> {
    if (!this.matches(host)) return undefined;
    if (this.cached && this.now() < this.cached.refreshAt) return this.cached.credential;
    this.inflight ??= this.fetch(signal).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetch(signal?: AbortSignal): Promise<Credential> {
    const url = this.tokenUrl();
    const res = await smallRequest(url, { headers: { "metadata-flavor": "Google" }, signal, timeoutMs: 5000, policy: ANYWHERE, egress: this.options.egress }).catch((e: Error) => {
      throw new CloudCredentialError("GCR_AUTH_FAILED", "gcr", `the GCE metadata server (${new URL(url).host}) did not answer: ${e.message}; outside GCP use a _json_key pull secret`);
    });
    if (res.status !== 200) throw new CloudCredentialError("GCR_AUTH_FAILED", "gcr", `the GCE metadata server answered ${res.status} for the default service account's token`, res.status);
    let body: { access_token?: string; expires_in?: number };
    try {
      body = JSON.parse(res.text) as typeof body;
    } catch {
      throw new CloudCredentialError("GCR_AUTH_FAILED", "gcr", "the GCE metadata server answered something that is not JSON");
    }
    if (!body.access_token) throw new CloudCredentialError("GCR_AUTH_FAILED", "gcr", "the GCE metadata server answered without an access token");
    const life = (body.expires_in ?? 300) * 1000;
    const credential: Credential = { username: "oauth2accesstoken", password: body.access_token, source: "gcr-metadata" };
    this.cached = { credential, refreshAt: this.now() + life - Math.min(this.options.refreshBeforeMs ?? 5 * 60 * 1000, life / 2) };
    return credential;
  }

  async preflight(signal?: AbortSignal): Promise<{ ok: boolean; detail: string }> {
    try {
      await this.fetch(signal);
      return { ok: true, detail: `access token from the metadata server ${new URL(this.tokenUrl()).host}` };
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    }
  }
}
