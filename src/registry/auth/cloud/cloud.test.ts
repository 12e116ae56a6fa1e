// The cloud helpers against local servers that play ECR, STS, EKS Pod Identity and the GCE metadata
// server (the real endpoints cannot be reached from here), and aws4's SigV4 against AWS's published
// test-suite signatures.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import aws4 from "aws4";
import { afterEach, describe, expect, it } from "vitest";
import { EgressGuard } from "../../../net/egress.js";
import { EcrCredentialProvider, parseEcrHost } from "./ecr.js";
import { GcrCredentialProvider } from "./gcr.js";

const AKID = "AKIDEXAMPLE";
const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

describe("SigV4 (aws4) against AWS's signature test suite", () => {
  // Date 20150830T123600Z, region us-east-1, service "service", host example.amazonaws.com.
  const vectors: Array<[string, aws4.Request, string]> = [
    ["get-vanilla", { method: "GET", path: "/" }, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"],
    ["get-vanilla-query-order-key-case", { method: "GET", path: "/?Param2=value2&Param1=value1" }, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"],
    ["post-vanilla", { method: "POST", path: "/" }, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"],
  ];
  for (const [name, req, signature] of vectors) {
    it(name, () => {
      const signed = aws4.sign(
        { host: "example.amazonaws.com", service: "service", region: "us-east-1", ...req, headers: { "X-Amz-Date": "20150830T123600Z" }, doNotModifyHeaders: false },
        { accessKeyId: AKID, secretAccessKey: SECRET },
      );
      const auth = String(signed.headers!.Authorization);
      expect(auth).toBe(`AWS4-HMAC-SHA256 Credential=${AKID}/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`);
    });
  }
});

const servers: Server[] = [];
afterEach(async () => Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r)))));

async function serve(handler: (req: IncomingMessage, body: string) => { status: number; body: string; type?: string }): Promise<{ url: string; calls: Array<{ req: IncomingMessage; body: string }> }> {
  const calls: Array<{ req: IncomingMessage; body: string }> = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      calls.push({ req, body });
      const r = handler(req, body);
      res.writeHead(r.status, { "content-type": r.type ?? "application/json" }).end(r.body);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, calls };
}

function ecrReply(password: string, expiresAtSec: number) {
  return { status: 200, body: JSON.stringify({ authorizationData: [{ authorizationToken: Buffer.from(`AWS:${password}`).toString("base64"), expiresAt: expiresAtSec, proxyEndpoint: "https://x" }] }) };
}

/** Checks the request was SigV4-signed for ECR with the given key, by signing the same request again. */
function expectSigned(req: IncomingMessage, body: string, accessKeyId: string, secretAccessKey: string, sessionToken?: string) {
  const auth = String(req.headers.authorization);
  expect(auth).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${accessKeyId}/\\d{8}/eu-west-1/ecr/aws4_request, SignedHeaders=[a-z0-9;-]*x-amz-target[a-z0-9;-]*, Signature=[0-9a-f]{64}$`));
  const again = aws4.sign({
    host: String(req.headers.host), path: req.url, method: req.method, service: "ecr", region: "eu-west-1", body,
    headers: { "content-type": String(req.headers["content-type"]), "x-amz-target": String(req.headers["x-amz-target"]), "X-Amz-Date": String(req.headers["x-amz-date"]) },
  }, { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) });
  expect(String(again.headers!.Authorization)).toBe(auth);
  expect(req.headers["x-amz-target"]).toBe("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken");
  if (sessionToken) expect(req.headers["x-amz-security-token"]).toBe(sessionToken);
}

const host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

describe("ECR", () => {
  it("recognises ECR hosts, FIPS, China, sovereign partitions and ECR Public", () => {
    expect(parseEcrHost(host)).toMatchObject({ account: "123456789012", region: "eu-west-1", fips: false });
    expect(parseEcrHost("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com")).toMatchObject({ fips: true, region: "us-gov-west-1" });
    expect(parseEcrHost("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")).toMatchObject({ suffix: "amazonaws.com.cn" });
    expect(parseEcrHost("public.ecr.aws")).toMatchObject({ public: true, region: "us-east-1" });
    expect(parseEcrHost("12345.dkr.ecr.eu-west-1.amazonaws.com")).toBeUndefined();
    expect(parseEcrHost("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io")).toBeUndefined();
  });

  it("signs GetAuthorizationToken with static keys, decodes the token, and caches it", async () => {
    const ecr = await serve(() => ecrReply("pw-1", Date.now() / 1000 + 12 * 3600));
    const p = new EcrCredentialProvider({ env: { AWS_ACCESS_KEY_ID: "AKIASTATIC", AWS_SECRET_ACCESS_KEY: "s3cret", AWS_SESSION_TOKEN: "sess" }, ecrEndpoint: () => ecr.url });
    const [a, b] = await Promise.all([p.get(host), p.get(host)]);
    expect(a).toEqual({ username: "AWS", password: "pw-1", source: "ecr" });
    expect(b).toEqual(a);
    expect(await p.get("999999999999.dkr.ecr.eu-west-1.amazonaws.com")).toEqual(a);
    expect(ecr.calls).toHaveLength(1);
    expectSigned(ecr.calls[0]!.req, ecr.calls[0]!.body, "AKIASTATIC", "s3cret", "sess");
  });

  it("renews the token before it expires", async () => {
    let n = 0;
    let now = 1_700_000_000_000;
    const ecr = await serve(() => ecrReply(`pw-${++n}`, now / 1000 + 12 * 3600));
    const p = new EcrCredentialProvider({ env: { AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "S" }, ecrEndpoint: () => ecr.url, now: () => now });
    expect((await p.get(host))!.password).toBe("pw-1");
    now += 9 * 3600 * 1000;
    expect((await p.get(host))!.password).toBe("pw-1");
    now += 1 * 3600 * 1000; // 10 h of 12: past 80% of its life
    expect((await p.get(host))!.password).toBe("pw-2");
  });

  it("embargoes a failing region instead of hammering it, and says so", async () => {
    let now = 1_700_000_000_000;
    const ecr = await serve(() => ({ status: 400, body: JSON.stringify({ __type: "com.amazonaws#AccessDeniedException", message: "nope" }) }));
    const p = new EcrCredentialProvider({ env: { AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "S" }, ecrEndpoint: () => ecr.url, now: () => now, embargoMs: 60_000 });
    await expect(p.get(host)).rejects.toMatchObject({ code: "ECR_AUTH_FAILED", status: 400, message: expect.stringContaining("AccessDeniedException") });
    await expect(p.get(host)).rejects.toMatchObject({ code: "EMBARGOED" });
    expect(ecr.calls).toHaveLength(1);
    now += 61_000;
    await expect(p.get(host)).rejects.toMatchObject({ code: "ECR_AUTH_FAILED" });
    expect(ecr.calls).toHaveLength(2);
  });

  it("declines excluded accounts and regions without calling AWS", async () => {
    const ecr = await serve(() => ecrReply("pw", Date.now() / 1000 + 3600));
    const env = { AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "S" };
    expect(await new EcrCredentialProvider({ env, ecrEndpoint: () => ecr.url, accountInclude: ["111111111111"] }).get(host)).toBeUndefined();
    expect(await new EcrCredentialProvider({ env, ecrEndpoint: () => ecr.url, accountExclude: ["123456789012"] }).get(host)).toBeUndefined();
    expect(await new EcrCredentialProvider({ env, ecrEndpoint: () => ecr.url, regionExclude: ["eu-west-1"] }).get(host)).toBeUndefined();
    expect(await new EcrCredentialProvider({ env, ecrEndpoint: () => ecr.url, regionInclude: ["us-east-1"] }).get(host)).toBeUndefined();
    expect(ecr.calls).toHaveLength(0);
    expect(() => new EcrCredentialProvider({ accountInclude: ["12"] })).toThrow();
  });

  it("exchanges an IRSA web identity token with STS, re-reading the token file each time", async () => {
    const dir = mkdtempSync(join(tmpdir(), "irsa-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "jwt-1\n");
    let now = 1_700_000_000_000;
    const sts = await serve((_req, body) => {
      const params = new URLSearchParams(body);
      expect(params.get("Action")).toBe("AssumeRoleWithWebIdentity");
      expect(params.get("RoleArn")).toBe("arn:aws:iam::123456789012:role/portcullis");
      const n = params.get("WebIdentityToken")!.slice(4);
      return { status: 200, type: "text/xml", body: `<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA${n}</AccessKeyId><SecretAccessKey>sk${n}</SecretAccessKey><SessionToken>st${n}</SessionToken><Expiration>${new Date(now + 3600_000).toISOString()}</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>` };
    });
    const ecr = await serve((req, body) => {
      expectSigned(req, body, String(req.headers.authorization).includes("ASIA1") ? "ASIA1" : "ASIA2", String(req.headers.authorization).includes("ASIA1") ? "sk1" : "sk2", String(req.headers["x-amz-security-token"]));
      return ecrReply("pw", now / 1000 + 600);
    });
    const p = new EcrCredentialProvider({ env: { AWS_ROLE_ARN: "arn:aws:iam::123456789012:role/portcullis", AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_REGION: "eu-west-1" }, stsEndpoint: () => sts.url, ecrEndpoint: () => ecr.url, now: () => now });
    expect(await p.preflight()).toMatchObject({ ok: true, detail: expect.stringContaining("IRSA") });
    expect(await p.get(host)).toMatchObject({ username: "AWS", password: "pw" });
    writeFileSync(tokenFile, "jwt-2\n");
    now += 3600_000;
    await p.get(host);
    expect(sts.calls.map((c) => new URLSearchParams(c.body).get("WebIdentityToken"))).toEqual(["jwt-1", "jwt-2"]);
    expect(ecr.calls.at(-1)!.req.headers.authorization).toContain("ASIA2");
  });

  it("uses EKS Pod Identity with the token from its file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "podid-"));
    writeFileSync(join(dir, "t"), "pod-identity-token");
    const agent = await serve((req) => {
      expect(req.headers.authorization).toBe("pod-identity-token");
      return { status: 200, body: JSON.stringify({ AccessKeyId: "ASIAPOD", SecretAccessKey: "podsecret", Token: "podsession", Expiration: new Date(Date.now() + 3600_000).toISOString() }) };
    });
    const ecr = await serve((req, body) => {
      expectSigned(req, body, "ASIAPOD", "podsecret", "podsession");
      return ecrReply("pw-pod", Date.now() / 1000 + 3600);
    });
    const p = new EcrCredentialProvider({ env: { AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: join(dir, "t") }, ecrEndpoint: () => ecr.url });
    expect(await p.get(host)).toMatchObject({ password: "pw-pod" });
  });

  it("says there are no AWS credentials, and never prints a secret", async () => {
    const p = new EcrCredentialProvider({ env: {} });
    expect(await p.preflight()).toEqual({ ok: false, detail: expect.stringContaining("no AWS credentials") });
    await expect(p.get(host)).rejects.toMatchObject({ code: "NO_CLOUD_CREDENTIALS" });
    const ecr = await serve(() => ({ status: 403, body: "{}" }));
    const q = new EcrCredentialProvider({ env: { AWS_ACCESS_KEY_ID: "AKIAVISIBLE", AWS_SECRET_ACCESS_KEY: "do-not-print" }, ecrEndpoint: () => ecr.url });
    const err = (await q.get(host).catch((e: unknown) => e)) as Error;
    expect(err.message).not.toContain("do-not-print");
    expect(JSON.stringify(err)).not.toContain("do-not-print");
  });
});

describe("the cloud helpers' egress", () => {
  // Names resolve from a table: what DNS would answer if it pointed AWS's names inside.
  const resolving = (table: Record<string, string>) => new EgressGuard(async (name) => {
    const address = table[name];
    if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
    return [{ address, family: address.includes(":") ? 6 : 4 }];
  });

  it.each(["169.254.169.254", "::ffff:169.254.169.254", "10.0.0.1", "127.0.0.1", "fd00:ec2::254"])("refuses the ECR API when its name resolves to %s (endpoints Portcullis composes are public only)", async (address) => {
    const p = new EcrCredentialProvider({ env: { AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "S" }, egress: resolving({ "api.ecr.eu-west-1.amazonaws.com": address }) });
    await expect(p.get(host)).rejects.toMatchObject({ code: "ECR_AUTH_FAILED", message: expect.stringMatching(new RegExp(`api\\.ecr\\.eu-west-1\\.amazonaws\\.com resolves to ${address.replace(/\./g, "\\.")}: refused`)) });
  });

  it("refuses STS on an internal address, and still reaches the configured Pod Identity endpoint on link-local", async () => {
    const dir = mkdtempSync(join(tmpdir(), "egress-sts-"));
    writeFileSync(join(dir, "token"), "web-identity-token");
    const irsa = new EcrCredentialProvider({
      env: { AWS_ROLE_ARN: "arn:aws:iam::123456789012:role/p", AWS_WEB_IDENTITY_TOKEN_FILE: join(dir, "token"), AWS_REGION: "eu-west-1" },
      egress: resolving({ "sts.eu-west-1.amazonaws.com": "169.254.169.254" }),
    });
    await expect(irsa.get(host)).rejects.toMatchObject({ message: expect.stringMatching(/sts\.eu-west-1\.amazonaws\.com resolves to 169\.254\.169\.254: refused/) });
    // The operator configured the Pod Identity URI (the agent lives on 169.254.170.23): it is reached, by name here.
    const agent = await serve(() => ({ status: 200, body: JSON.stringify({ AccessKeyId: "AK", SecretAccessKey: "SK", Token: "T", Expiration: new Date(Date.now() + 3600_000).toISOString() }) }));
    const ecr = await serve(() => ecrReply("pw-pod", Date.now() / 1000 + 3600));
    const port = new URL(agent.url).port;
    const pod = new EcrCredentialProvider({ env: { AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://pod-identity.test:${port}/v1/credentials` }, ecrEndpoint: () => ecr.url, egress: resolving({ "pod-identity.test": "127.0.0.1" }) });
    expect(await pod.get(host)).toMatchObject({ password: "pw-pod" });
    expect(agent.calls).toHaveLength(1);
  });

  it("reaches the configured GCE metadata server whatever its address", async () => {
    const md = await serve(() => ({ status: 200, body: JSON.stringify({ access_token: "ya29.x", expires_in: 3599 }) }));
    const p = new GcrCredentialProvider({ metadataHost: `metadata.google.internal:${new URL(md.url).port}`, egress: resolving({ "metadata.google.internal": "127.0.0.1" }) });
    expect(await p.get("gcr.io")).toMatchObject({ password: "ya29.x" });
  });
});

describe("GCR / Artifact Registry", () => {
  it("matches gcr.io and *-docker.pkg.dev", () => {
    const p = new GcrCredentialProvider();
    expect(p.matches("gcr.io")).toBe(true);
    expect(p.matches("eu.gcr.io")).toBe(true);
    expect(p.matches("europe-west1-docker.pkg.dev")).toBe(true);
    expect(p.matches("docker.pkg.dev")).toBe(false);
    expect(p.matches("gcr.io.evil.com")).toBe(false);
  });

  it("gets the metadata server's token, caches it, and renews it before expiry", async () => {
    let n = 0;
    let now = 1_700_000_000_000;
    const md = await serve((req) => {
      expect(req.headers["metadata-flavor"]).toBe("Google");
      expect(req.url).toBe("/computeMetadata/v1/instance/service-accounts/default/token");
      return { status: 200, body: JSON.stringify({ access_token: `ya29.${++n}`, expires_in: 3599, token_type: "Bearer" }) };
    });
    const p = new GcrCredentialProvider({ env: { GCE_METADATA_HOST: new URL(md.url).host }, now: () => now });
    const [a, b] = await Promise.all([p.get("gcr.io"), p.get("us-docker.pkg.dev")]);
    expect(a).toEqual({ username: "oauth2accesstoken", password: "ya29.1", source: "gcr-metadata" });
    expect(b).toEqual(a);
    now += 50 * 60 * 1000;
    expect((await p.get("gcr.io"))!.password).toBe("ya29.1");
    now += 6 * 60 * 1000;
    expect((await p.get("gcr.io"))!.password).toBe("ya29.2");
    expect(md.calls).toHaveLength(2);
  });

  it("explains a missing metadata server", async () => {
    const p = new GcrCredentialProvider({ metadataHost: "127.0.0.1:1" });
    await expect(p.get("gcr.io")).rejects.toMatchObject({ code: "GCR_AUTH_FAILED", message: expect.stringContaining("_json_key") });
    expect((await p.preflight()).ok).toBe(false);
  });
});
