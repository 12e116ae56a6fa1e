import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ClientCa, ClientCaError, CLIENT_CA_MAX_BYTES, parseClientCa } from "./client-ca.js";
import { createCA, issueServingCertificate } from "./tls/index.js";

const now = new Date();
const dir = mkdtempSync(join(tmpdir(), "client-ca-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("webhook client CA", () => {
  it("takes PEM CA certificates, and names what is wrong with anything else", async () => {
    const a = await createCA({ now, validityDays: 2 });
    const b = await createCA({ now, validityDays: 2 });
    expect(parseClientCa(`${a.certPem}${b.certPem}`, "f")).toBe(`${a.certPem.trim()}\n${b.certPem.trim()}\n`);
    const leaf = await issueServingCertificate(a, { now, validityDays: 1, dnsNames: ["x"], ipAddresses: [] });
    const bad: Array<[string, RegExp]> = [
      ["", /f: no PEM CERTIFICATE block/],
      [a.keyPem, /no PEM CERTIFICATE block/],
      [leaf.certPem, /certificate 1 \(CN=portcullis-webhook\) is not a CA/],
      [`${a.certPem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`, /certificate 2 cannot be read/],
      ["x".repeat(CLIENT_CA_MAX_BYTES + 1), /larger than 1048576 bytes/],
    ];
    for (const [text, re] of bad) {
      const e = (() => {
        try {
          parseClientCa(text, "f");
        } catch (x) {
          return x as ClientCaError;
        }
        throw new Error("expected a ClientCaError");
      })();
      expect(e).toBeInstanceOf(ClientCaError);
      expect(e.code).toBe("WEBHOOK_CLIENT_CA_INVALID");
      expect(e.message).toMatch(re);
    }
  });

  it("refuses to start without a usable file; reloads a changed one, keeps the previous on a bad one", async () => {
    expect(() => new ClientCa({ file: join(dir, "absent.pem") })).toThrow(/--webhook-client-ca .*absent\.pem: ENOENT/);
    const a = await createCA({ now, validityDays: 2 });
    const b = await createCA({ now, validityDays: 2 });
    const file = join(dir, "ca.pem");
    writeFileSync(file, a.certPem);
    const logs: string[] = [];
    const ca = new ClientCa({ file, log: (_l, m) => logs.push(m) });
    const seen: string[] = [];
    ca.onChange((pem) => seen.push(pem));
    expect(await ca.reload()).toBe(false);
    writeFileSync(file, b.certPem);
    expect(await ca.reload()).toBe(true);
    expect(seen).toEqual([b.certPem]);
    writeFileSync(file, "garbage");
    expect(await ca.reload()).toBe(false);
    expect(ca.pem()).toBe(b.certPem);
    expect(logs.at(-1)).toMatch(/no PEM CERTIFICATE block; still requiring certificates of the previous CA/);
  });
});
