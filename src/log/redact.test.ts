// The scrubber's rules, case by case. For URLs the oracle is the WHATWG URL parser: whatever it reads as
// the password must be gone and the host it reads must stay.
import { describe, expect, it } from "vitest";
import { OPERATOR_PULL_SECRET, REDACTED, scrubString, tenantRedactor } from "./redact.js";

describe("scrubString", () => {
  it.each([
    "postgres://u:p@ssw0rd@db",
    "postgres://u:p@ssw0rd@db:5432/portcullis?sslmode=require",
    "postgresql://portcullis:a@b@c@db.example.com/x",
    "https://robot:s3cr%40t@registry.example.com/v2/",
    "redis://:only-a-password@cache:6379/0",
    "amqp://user:pa:ss@mq.internal",
  ])("removes the password the URL parser reads from %s and keeps its host", (url) => {
    const u = new URL(url);
    const out = scrubString(`connect to ${url} failed`);
    expect(u.password.length).toBeGreaterThan(0);
    expect(out).not.toContain(decodeURIComponent(u.password));
    expect(out).not.toContain(u.password);
    expect(out).toContain(`${REDACTED}@${u.host}`);
    expect(out).toMatch(/ failed$/);
  });

  it.each([
    ["authorization: bearer abc123.def456", "authorization: bearer [REDACTED]"],
    ["AUTHORIZATION: BEARER abc123.def456", "AUTHORIZATION: BEARER [REDACTED]"],
    ["Authorization: token ghp_0123456789abcdefghijkl", "Authorization: token [REDACTED]"],
    ["proxy-authorization=Basic dXNlcjpwYXNz", "proxy-authorization=Basic [REDACTED]"],
    ["AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY=[REDACTED]"],
    ["export AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEJr", "export AWS_SESSION_TOKEN=[REDACTED]"],
    ["aws_secret_access_key: wJalrXUtnFEMI", "aws_secret_access_key: [REDACTED]"],
    ["PRIVATE-TOKEN: glpat-xxxxxxxxxxxxxxxxxxxx", "PRIVATE-TOKEN: [REDACTED]"],
    ["curl -H 'PRIVATE-TOKEN: s3cr3t' https://gitlab.example.com", "curl -H 'PRIVATE-TOKEN: [REDACTED]' https://gitlab.example.com"],
    ['{"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "region": "eu-west-1"}', '{"AWS_SECRET_ACCESS_KEY": "[REDACTED]", "region": "eu-west-1"}'],
    ["token glpat-Abcdefghij0123456789 leaked", "token [REDACTED] leaked"],
    ["sa eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl here", "sa [REDACTED] here"],
  ])("scrubs %s", (input, out) => {
    expect(scrubString(input)).toBe(out);
  });

  it("keeps prose, challenges and URLs without a password", () => {
    for (const s of [
      "a bearer token is required (Authorization: Bearer TOKEN, a Kubernetes token)",
      'registry answered 401: Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"',
      "Basic authentication failed for postgres://portcullis@db/x",
      "fetching https://registry.example.com/v2/app/manifests/1 for a@b.example",
      "the Authorization header is missing",
    ]) expect(scrubString(s)).toBe(s);
  });

  it("does bounded work on hostile input (long runs of name characters)", () => {
    const hostile = `${"a-".repeat(200_000)}=x ${"x@".repeat(100_000)}`;
    const t0 = performance.now();
    scrubString(hostile);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe("tenantRedactor", () => {
  const redact = tenantRedactor({ namespace: "portcullis-system", names: ["regcred", "ecr.pull"] });
  it("names the operator's pull secrets by their kind, keeps a tenant's own, and scrubs", () => {
    expect(redact("not authorized (tried secret portcullis-system/regcred, secret team/own)")).toBe(`not authorized (tried ${OPERATOR_PULL_SECRET}, secret team/own)`);
    expect(redact("pull secret portcullis-system/ecr.pull does not exist")).toBe(`${OPERATOR_PULL_SECRET} does not exist`);
    expect(redact("secret portcullis-system/regcred2 and portcullis-system/regcred-x")).toBe("secret portcullis-system/regcred2 and portcullis-system/regcred-x");
    expect(redact("secret portcullis-system/ecrxpull")).toBe("secret portcullis-system/ecrxpull");
    expect(redact("Authorization: bearer abc123.def")).toBe("Authorization: bearer [REDACTED]");
    expect(tenantRedactor()("postgres://u:p@ssw0rd@db")).toBe("postgres://u:[REDACTED]@db");
  });
});
