// Amazon ECR: GetAuthorizationToken with SigV4 (the aws4 package), for private registries
// (<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] and the sovereign partitions) and ECR Public.
// Opt-in by configuration; accounts and regions can be included or excluded so a multi-tenant operator
// never calls AWS for arbitrary accounts; a token is kept until shortly before its 12 h expiry; a region
// that failed is embargoed for a while instead of hammered.
import aws4 from "aws4";
import { z } from "zod";
import type { Credential, CredentialProvider } from "../types.js";
import { AwsCredentialChain, type AwsCredentialOptions } from "./aws-credentials.js";
import { CloudCredentialError } from "./errors.js";
import { ANYWHERE, PUBLIC_ONLY } from "../../../net/egress.js";
import { smallRequest } from "./http.js";

const PRIVATE_HOST = /^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.(amazonaws\.com(?:\.cn)?|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;
const PUBLIC_HOST = "public.ecr.aws";

export const EcrOptionsSchema = z
  .object({
    accountInclude: z.array(z.string().regex(/^\d{12}$/)).optional(),
    accountExclude: z.array(z.string().regex(/^\d{12}$/)).default([]),
    regionInclude: z.array(z.string()).optional(),
    regionExclude: z.array(z.string()).default([]),
    /** After a failure, calls for that region fail at once for this long. */
    embargoMs: z.number().int().nonnegative().default(10 * 60 * 1000),
    /** Renew a token this long before it expires (at least), or at 80% of its life if that is sooner. */
    refreshBeforeMs: z.number().int().nonnegative().default(5 * 60 * 1000),
  })
  .strict();

export type EcrOptions = z.input<typeof EcrOptionsSchema> & {
  /** The ECR API endpoint for a region (tests point it at a local server). */
  ecrEndpoint?: (region: string, fips: boolean, partitionSuffix: string) => string;
  ecrPublicEndpoint?: () => string;
} & AwsCredentialOptions;

export interface EcrTarget {
  account?: string;
  region: string;
  fips: boolean;
  suffix: string;
  public: boolean;
}

export function parseEcrHost(host: string): EcrTarget | undefined {
  if (host === PUBLIC_HOST) return { region: "us-east-1", fips: false, suffix: "amazonaws.com", public: true };
  const m = PRIVATE_HOST.exec(host);
  return m ? { account: m[1]!, fips: Boolean(m[2]), region: m[3]!, suffix: m[4]!, public: false } : undefined;
}

interface Cached {
  credential: Credential;
  refreshAt: number;
}

export class EcrCredentialProvider implements CredentialProvider {
  readonly name = "ecr";
  private readonly opts: z.output<typeof EcrOptionsSchema>;
  private readonly chain: AwsCredentialChain;
  private readonly now: () => number;
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<Credential>>();
  private readonly embargo = new Map<string, { until: number; reason: string }>();

  constructor(private readonly options: EcrOptions = {}) {
    const { ecrEndpoint: _e, ecrPublicEndpoint: _p, env: _env, now: _now, stsEndpoint: _s, egress: _g, ...rest } = options;
    this.opts = EcrOptionsSchema.parse(rest);
    this.chain = new AwsCredentialChain({ env: options.env, now: options.now, stsEndpoint: options.stsEndpoint, egress: options.egress });
    this.now = options.now ?? Date.now;
  }

  matches(host: string): boolean {
    return parseEcrHost(host) !== undefined;
  }

  /** Whether the account and region are allowed by the include/exclude lists. */
  allowed(t: EcrTarget): boolean {
    const o = this.opts;
    if (t.account && (o.accountExclude.includes(t.account) || (o.accountInclude && !o.accountInclude.includes(t.account)))) return false;
    if (o.regionExclude.includes(t.region) || (o.regionInclude && !o.regionInclude.includes(t.region))) return false;
    return true;
  }

  async get(host: string, signal?: AbortSignal): Promise<Credential | undefined> {
    const t = parseEcrHost(host);
    if (!t || !this.allowed(t)) return undefined;
    // One token covers every registry the principal may read in a region (registryIds is deprecated).
    const key = t.public ? "public" : `${t.region}/${t.fips ? "fips" : ""}/${t.suffix}`;
    const cached = this.cache.get(key);
    if (cached && this.now() < cached.refreshAt) return cached.credential;
    const emb = this.embargo.get(key);
    if (emb && this.now() < emb.until) {
      throw new CloudCredentialError("EMBARGOED", "ecr", `ECR ${t.public ? "Public" : `in ${t.region}`} failed ${Math.round((this.now() - (emb.until - this.opts.embargoMs)) / 1000)} s ago and is not retried for ${Math.ceil((emb.until - this.now()) / 1000)} s more: ${emb.reason}`);
    }
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(t, signal).then(
        (r) => {
          const life = r.expiresAt - this.now();
          this.cache.set(key, { credential: r.credential, refreshAt: r.expiresAt - Math.max(this.opts.refreshBeforeMs, life * 0.2) });
          this.embargo.delete(key);
          return r.credential;
        },
        (e: unknown) => {
          this.embargo.set(key, { until: this.now() + this.opts.embargoMs, reason: (e as Error).message });
          throw e;
        },
      ).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetchToken(t: EcrTarget, signal?: AbortSignal): Promise<{ credential: Credential; expiresAt: number }> {
    const creds = await this.chain.get(signal);
    const endpoint = t.public
      ? (this.options.ecrPublicEndpoint?.() ?? "https://api.ecr-public.us-east-1.amazonaws.com/")
      : (this.options.ecrEndpoint?.(t.region, t.fips, t.suffix) ?? `https://api.ecr${t.fips ? "-fips" : ""}.${t.region}.${t.suffix}/`);
    const url = new URL(endpoint);
    const body = "{}";
    const signed = aws4.sign(
      {
        host: url.host,
        path: url.pathname,
        method: "POST",
        service: t.public ? "ecr-public" : "ecr",
        region: t.region,
        headers: {
          "content-type": "application/x-amz-json-1.1",
          "x-amz-target": t.public ? "SpencerFrontendService.GetAuthorizationToken" : "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
        },
        body,
      },
      { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}) },
    );
    const headers = Object.fromEntries(Object.entries(signed.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
    delete headers.host;
    delete headers["content-length"];
    const where = t.public ? "ECR Public" : `ECR in ${t.region}`;
    const res = await smallRequest(url.toString(), { method: "POST", headers, body, signal, policy: (t.public ? this.options.ecrPublicEndpoint : this.options.ecrEndpoint) ? ANYWHERE : PUBLIC_ONLY, egress: this.options.egress }).catch((e: Error) => {
      throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `${where}: ${url.host} did not answer: ${e.message}`);
    });
    if (res.status !== 200) {
      let type = "";
      try {
        type = String((JSON.parse(res.text) as { __type?: string }).__type ?? "").split("#").pop() ?? "";
      } catch {
        // not JSON
      }
      throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `${where}: GetAuthorizationToken answered ${res.status}${type ? ` ${type}` : ""} (credentials from ${creds.source}; the role needs ecr:GetAuthorizationToken${t.public ? " and sts:GetServiceBearerToken" : ""})`, res.status);
    }
    let parsed: { authorizationData?: unknown };
    try {
      parsed = JSON.parse(res.text) as typeof parsed;
    } catch {
      throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `${where}: GetAuthorizationToken answered something that is not JSON`);
    }
    // Private: authorizationData is a list; Public: an object.
    const data = (Array.isArray(parsed.authorizationData) ? parsed.authorizationData[0] : parsed.authorizationData) as { authorizationToken?: string; expiresAt?: number | string } | undefined;
    const decoded = data?.authorizationToken ? Buffer.from(data.authorizationToken, "base64").toString("utf8") : "";
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `${where}: GetAuthorizationToken answered without a usable token`);
    const expiresAt = typeof data!.expiresAt === "number" ? data!.expiresAt * 1000 : data!.expiresAt ? Date.parse(String(data!.expiresAt)) : this.now() + 12 * 3600 * 1000;
    return { credential: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: t.public ? "ecr-public" : "ecr" }, expiresAt };
  }

  /** Start-up check: are there AWS credentials, and from where (never the secret). */
  async preflight(signal?: AbortSignal): Promise<{ ok: boolean; detail: string }> {
    const source = this.chain.describe();
    if (!source) return { ok: false, detail: "no AWS credentials found (static keys, IRSA or EKS Pod Identity)" };
    try {
      const c = await this.chain.get(signal);
      return { ok: true, detail: `AWS credentials from ${source}${c.expiresAt ? `, valid until ${new Date(c.expiresAt).toISOString()}` : ""}` };
    } catch (e) {
      return { ok: false, detail: `${source}: ${(e as Error).message}` };
    }
  }
}
