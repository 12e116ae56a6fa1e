// Reading certificates: PEM texts split into certificates, parsed by Node's X509Certificate, and the checks the
// rotation plan and the reloader make (a key that matches, a leaf its CA signed, the CAs of a caBundle).
import { createPrivateKey, X509Certificate } from "node:crypto";

/** The CERTIFICATE blocks of a PEM text, each ending in a newline. */
export function splitPem(text: string | undefined): string[] {
  return (text ?? "").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? [];
}

/** One certificate, or undefined when `pem` is not one Node can read. */
export function parseCert(pem: string): Cert | undefined {
  try {
    const x = new X509Certificate(pem);
    return { pem, x, fingerprint: x.fingerprint256, notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
  } catch {
    return undefined;
  }
}

/** Whether `keyPem` is the private key of `cert` (false for no key, or one that cannot be read). */
export function keyMatches(cert: Cert, keyPem: string | undefined): boolean {
  if (!keyPem) return false;
  try {
    return cert.x.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** Whether `ca` issued `leaf` and its signature verifies with the CA's key. */
export function signedBy(leaf: Cert, ca: Cert): boolean {
  try {
    return leaf.x.checkIssued(ca.x) && leaf.x.verify(ca.x.publicKey);
  } catch {
    return false;
  }
}

/** The fingerprints of the certificates in a base64 caBundle (a block that is not a certificate: its text). */
export function bundleFingerprints(caBundleBase64: string | undefined): Set<string> {
  const text = caBundleBase64 ? Buffer.from(caBundleBase64, "base64").toString("utf8") : "";
  return new Set(splitPem(text).map((p) => parseCert(p)?.fingerprint ?? p));
}

export interface Cert {
  pem: string;
  x: X509Certificate;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
}
