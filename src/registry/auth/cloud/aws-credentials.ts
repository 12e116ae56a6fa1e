// The AWS credentials an operator pod can have: static keys in the environment, IRSA (a web identity token
// exchanged with STS AssumeRoleWithWebIdentity), or EKS Pod Identity (the container credentials endpoint).
// Cached until shortly before they expire; the web identity token file is re-read on every exchange
// because the kubelet rotates it.
import { readFile } from "node:fs/promises";
import { ANYWHERE, PUBLIC_ONLY, type EgressGuard } from "../../../net/egress.js";
import { smallRequest } from "./http.js";
import { CloudCredentialError } from "./errors.js";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Epoch ms; undefined for static keys. */
  expiresAt?: number;
  source: "environment" | "web-identity" | "pod-identity";
}

export interface AwsCredentialOptions {
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** STS endpoint for a region (tests point it at a local server). */
  stsEndpoint?: (region: string) => string;
  /** The egress guard the requests go through (default: the process's). */
  egress?: EgressGuard;
}

const REFRESH_BEFORE_MS = 5 * 60 * 1000;

function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m?.[1];
}

export class AwsCredentialChain {
  private cached: AwsCredentials | undefined;
  private inflight: Promise<AwsCredentials> | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly now: () => number;

  constructor(private readonly options: AwsCredentialOptions = {}) {
    this.env = options.env ?? process.env;
    this.now = options.now ?? Date.now;
  }

  /** Which source would be used, without calling anything (for the pre-flight check). */
  describe(): string | undefined {
    const e = this.env;
    if (e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY) return "static keys from the environment";
    if (e.AWS_ROLE_ARN && e.AWS_WEB_IDENTITY_TOKEN_FILE) return `IRSA web identity (role ${e.AWS_ROLE_ARN})`;
    if (e.AWS_CONTAINER_CREDENTIALS_FULL_URI) return "EKS Pod Identity";
    return undefined;
  }

  async get(signal?: AbortSignal): Promise<AwsCredentials> {
    const c = this.cached;
    if (c && (c.expiresAt === undefined || this.now() < c.expiresAt - REFRESH_BEFORE_MS)) return c;
    this.inflight ??= this.fetch(signal).then(
      (creds) => {
        this.cached = creds;
        return creds;
      },
    ).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetch(signal?: AbortSignal): Promise<AwsCredentials> {
    const e = this.env;
    if (e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY) {
      return { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY, sessionToken: e.AWS_SESSION_TOKEN || undefined, source: "environment" };
    }
    if (e.AWS_ROLE_ARN && e.AWS_WEB_IDENTITY_TOKEN_FILE) return this.webIdentity(e.AWS_ROLE_ARN, e.AWS_WEB_IDENTITY_TOKEN_FILE, signal);
    if (e.AWS_CONTAINER_CREDENTIALS_FULL_URI) return this.podIdentity(e.AWS_CONTAINER_CREDENTIALS_FULL_URI, signal);
    throw new CloudCredentialError("NO_CLOUD_CREDENTIALS", "ecr", "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use IRSA (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE) or EKS Pod Identity");
  }

  private async webIdentity(roleArn: string, tokenFile: string, signal?: AbortSignal): Promise<AwsCredentials> {
    const token = (await readFile(tokenFile, "utf8").catch((err: Error) => {
      throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `cannot read the web identity token file ${tokenFile}: ${err.message}`);
    })).trim();
    const region = this.env.AWS_REGION ?? this.env.AWS_DEFAULT_REGION ?? "us-east-1";
    const endpoint = this.options.stsEndpoint?.(region) ?? `https://sts.${region}.amazonaws.com/`;
    const form = new URLSearchParams({
      Action: "AssumeRoleWithWebIdentity", Version: "2011-06-15", RoleArn: roleArn,
      RoleSessionName: this.env.AWS_ROLE_SESSION_NAME ?? `portcullis-${Math.floor(this.now() / 1000)}`, WebIdentityToken: token,
    });
    // AssumeRoleWithWebIdentity is not signed: the token is the credential.
    const res = await smallRequest(endpoint, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/xml" }, body: form.toString(), signal, policy: this.options.stsEndpoint ? ANYWHERE : PUBLIC_ONLY, egress: this.options.egress }).catch((err: Error) => {
      throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `STS ${new URL(endpoint).host} did not answer: ${err.message}`);
    });
    if (res.status !== 200) {
      const code = xmlText(res.text, "Code") ?? "";
      throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `STS refused AssumeRoleWithWebIdentity for ${roleArn} (${res.status}${code ? ` ${code}` : ""}): check the role's trust policy for this service account`, res.status);
    }
    const accessKeyId = xmlText(res.text, "AccessKeyId");
    const secretAccessKey = xmlText(res.text, "SecretAccessKey");
    const sessionToken = xmlText(res.text, "SessionToken");
    const expiration = xmlText(res.text, "Expiration");
    if (!accessKeyId || !secretAccessKey) throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", "STS answered without credentials");
    return { accessKeyId, secretAccessKey, sessionToken, expiresAt: expiration ? Date.parse(expiration) : undefined, source: "web-identity" };
  }

  private async podIdentity(uri: string, signal?: AbortSignal): Promise<AwsCredentials> {
    const headers: Record<string, string> = { accept: "application/json" };
    const tokenFile = this.env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
    if (tokenFile) headers.authorization = (await readFile(tokenFile, "utf8")).trim();
    else if (this.env.AWS_CONTAINER_AUTHORIZATION_TOKEN) headers.authorization = this.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    const res = await smallRequest(uri, { headers, signal, policy: ANYWHERE, egress: this.options.egress }).catch((err: Error) => {
      throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `the Pod Identity endpoint ${new URL(uri).host} did not answer: ${err.message}`);
    });
    if (res.status !== 200) throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", `the Pod Identity endpoint answered ${res.status}: is the pod's service account associated with a role?`, res.status);
    let body: { AccessKeyId?: string; SecretAccessKey?: string; Token?: string; Expiration?: string };
    try {
      body = JSON.parse(res.text) as typeof body;
    } catch {
      throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", "the Pod Identity endpoint answered something that is not JSON");
    }
    if (!body.AccessKeyId || !body.SecretAccessKey) throw new CloudCredentialError("ECR_AUTH_FAILED", "ecr", "the Pod Identity endpoint answered without credentials");
    return { accessKeyId: body.AccessKeyId, secretAccessKey: body.SecretAccessKey, sessionToken: body.Token, expiresAt: body.Expiration ? Date.parse(body.Expiration) : undefined, source: "pod-identity" };
  }
}
