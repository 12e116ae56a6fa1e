// Issuing (issue.ts): the certificates Node verifies, with the profile docs/certificates.md gives, and the names.
import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createCA, issueServingCertificate, webhookSans } from "./issue.js";

const DAY = 86_400_000;
const serialOf = (pem: string | undefined) => new X509Certificate(pem!).serialNumber;

describe("issuing", () => {
  it("makes a CA and a serving certificate that Node verifies: names, usages, random serials, validity", async () => {
    const now = new Date();
    const ca = await createCA({ now, validityDays: 1826 });
    const names = { dnsNames: ["portcullis.portcullis-system.svc", "portcullis.portcullis-system.svc.cluster.local", "portcullis.portcullis-system", "portcullis"], ipAddresses: ["127.0.0.1", "::1"] };
    const leaf = await issueServingCertificate(ca, { now, validityDays: 90, ...names });
    const caX = new X509Certificate(ca.certPem);
    const leafX = new X509Certificate(leaf.certPem);
    expect(caX.ca).toBe(true);
    expect(leafX.ca).toBe(false);
    expect(leafX.verify(caX.publicKey)).toBe(true);
    expect(leafX.checkIssued(caX)).toBe(true);
    for (const d of names.dnsNames) {
      expect(leafX.subjectAltName).toContain(`DNS:${d}`);
      expect(leafX.checkHost(d)).toBe(d);
    }
    expect(leafX.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(leafX.checkIP("::1")).toBe("::1");
    expect(leafX.checkIP("127.0.0.2")).toBeUndefined();
    expect(leafX.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // Node names extKeyUsage "keyUsage": serverAuth only
    expect(leafX.checkPrivateKey((await import("node:crypto")).createPrivateKey(leaf.keyPem))).toBe(true);
    // keyUsage bits and basicConstraints, read back with the library that wrote them.
    const x = await import("@peculiar/x509");
    const caP = new x.X509Certificate(ca.certPem);
    const leafP = new x.X509Certificate(leaf.certPem);
    expect(caP.getExtension(x.BasicConstraintsExtension)?.ca).toBe(true);
    expect(caP.getExtension(x.KeyUsagesExtension)!.usages & x.KeyUsageFlags.keyCertSign).toBeTruthy();
    expect(leafP.getExtension(x.KeyUsagesExtension)!.usages).toBe(x.KeyUsageFlags.digitalSignature);
    expect(leafP.getExtension(x.BasicConstraintsExtension)?.ca).toBe(false);
    expect(leafP.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    expect(leafP.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
    // Validity: backdated an hour; the leaf never outlives its CA.
    expect(leafP.notBefore.getTime()).toBe(Math.floor((now.getTime() - 3600_000) / 1000) * 1000);
    expect(leafP.notAfter.getTime()).toBe(Math.floor((now.getTime() + 90 * DAY) / 1000) * 1000);
    const short = await createCA({ now, validityDays: 10 });
    const clamped = new x.X509Certificate((await issueServingCertificate(short, { now, validityDays: 90, dnsNames: ["a"], ipAddresses: [] })).certPem);
    expect(clamped.notAfter.getTime()).toBe(new x.X509Certificate(short.certPem).notAfter.getTime());
    // Random serials, distinct CA names.
    const again = await issueServingCertificate(ca, { now, validityDays: 90, ...names });
    expect(serialOf(again.certPem)).not.toBe(leafX.serialNumber);
    expect(leafX.serialNumber).toMatch(/^[0-9A-F]{30,32}$/);
    expect(new X509Certificate(short.certPem).subject).not.toBe(caX.subject);
  });

  it("derives the names from --webhook-url or the Service", () => {
    expect(webhookSans({ url: "https://127.0.0.1:8443" })).toEqual({ dnsNames: [], ipAddresses: ["127.0.0.1"] });
    expect(webhookSans({ url: "https://[::1]:8443/x" })).toEqual({ dnsNames: [], ipAddresses: ["::1"] });
    expect(webhookSans({ url: "https://Webhook.Example:443" })).toEqual({ dnsNames: ["webhook.example"], ipAddresses: [] });
    expect(webhookSans({ service: { name: "portcullis", namespace: "ops" } })).toEqual({
      dnsNames: ["portcullis.ops.svc", "portcullis.ops.svc.cluster.local", "portcullis.ops", "portcullis"], ipAddresses: [],
    });
  });
});
