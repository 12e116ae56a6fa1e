// A real registry (distribution) whose token realm is a name: the registry client must look the name up
// through the egress guard when it connects, and send the registry's credentials to the realm only when the
// name resolves to an address a loopback registry's realm may reach (loopback or public). Every other
// answer of DNS (the metadata service in each IPv6 spelling, link-local, private) is refused before any
// byte (or credential) goes out. Names resolve from a table, as a hosts file would answer.
import { mkdtempSync, rmSync } from "node:fs";
import type { LookupAddress } from "node:dns";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseReference } from "../../src/image/reference.js";
import { EgressGuard } from "../../src/net/egress.js";
import { RegistryClient } from "../../src/registry/client.js";
import { describeWith } from "../env/index.js";
import { ProcessSupervisor } from "../env/process.js";
import { startRegistry, startTokenServer, type RegistryService, type TokenAuthSetup } from "../env/services.js";

// The registryToken service proves the test env has distribution and a token server; this file starts its
// own registry, whose realm names `realm.test` instead of 127.0.0.1.
describeWith(["registryToken"], "a real registry's token realm, resolved through the egress guard", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-egress-"));
  const sup = new ProcessSupervisor(dir);
  let token: TokenAuthSetup;
  let registry: RegistryService;
  let stopRegistry: () => Promise<void>;
  let answer: string[] = [];
  const looked: string[] = [];
  const guard = new EgressGuard(async (name): Promise<LookupAddress[]> => {
    looked.push(name);
    if (name !== "realm.test") throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
    return answer.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  });
  const alice = { lookup: async () => [{ username: "alice", password: "alice-secret", source: "test alice" }] };

  beforeAll(async () => {
    token = await startTokenServer(join(dir, "token"), { alice: "alice-secret" });
    const r = await startRegistry(sup, {
      name: "egress", auth: "token", username: "alice", password: "alice-secret",
      token: { realm: token.tokenServer.url.replace("127.0.0.1", "realm.test"), service: token.service, issuer: token.issuer, rootCertFile: token.rootCertFile },
    });
    registry = r.service;
    stopRegistry = r.stop;
  }, 60_000);
  afterAll(async () => {
    await stopRegistry?.();
    await token?.tokenServer.stop();
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ["169.254.169.254"], ["::ffff:169.254.169.254"], ["::ffff:a9fe:a9fe"], ["64:ff9b::a9fe:a9fe"], ["::a9fe:a9fe"], ["fd00:ec2::254"],
    ["169.254.10.10"], ["fe80::1"], ["10.0.0.1"], ["fd12::1"], ["127.0.0.1", "169.254.169.254"],
  ])("refuses the realm when realm.test resolves to %s", async (...addresses) => {
    answer = addresses;
    looked.length = 0;
    const before = token.tokenServer.requests.length;
    const c = new RegistryClient({ keyring: alice, egress: guard, options: { maxAttempts: 1 } });
    const err = await c.resolveDigest(parseReference(`${registry.host}/team/app:1`)).catch((e: unknown) => e);
    await c.close();
    expect(err).toMatchObject({ code: "BLOCKED_URL" });
    expect((err as Error).message).toMatch(/realm\.test resolves to .*: refused/);
    expect(looked).toContain("realm.test");
    // Nothing reached the token server, so alice's password went nowhere.
    expect(token.tokenServer.requests.length).toBe(before);
  });

  it("runs the whole token flow when realm.test resolves to loopback (the registry's own class)", async () => {
    answer = ["127.0.0.1"];
    const before = token.tokenServer.requests.length;
    const c = new RegistryClient({ keyring: alice, egress: guard, options: { maxAttempts: 1 } });
    // The repository is empty: the registry answers MANIFEST_UNKNOWN / NAME_UNKNOWN only to an authorized
    // request (to any other it answers 401), so this is the token flow working end to end.
    const err = await c.resolveDigest(parseReference(`${registry.host}/team/app:1`)).catch((e: unknown) => e);
    await c.close();
    expect(err).toMatchObject({ code: expect.stringMatching(/^(MANIFEST_UNKNOWN|NAME_UNKNOWN)$/) });
    expect(token.tokenServer.requests.slice(before)).toEqual([expect.objectContaining({ user: "alice", status: 200, scopes: ["repository:team/app:pull"] })]);
  });
});
