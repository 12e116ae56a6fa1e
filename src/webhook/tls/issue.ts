// Issuing: a self-signed CA and serving certificates signed by it, and the names a serving certificate needs.
// ECDSA P-256 keys (PKCS#8 PEM), SHA-256 signatures; docs/certificates.md has the profile and the schedule.
//
// @peculiar/x509 writes the certificates (Node's crypto cannot), with Node's WebCrypto. Its dependency tsyringe
// insists on a Reflect metadata API at load time; the three functions it calls are provided here when absent
// (nothing else in Portcullis uses decorators), and the library is loaded lazily, after that, by a dynamic import.
import { createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import type * as X509 from "@peculiar/x509";

/** notBefore = issuance - this, for clocks (the API server's, a client's) that lag behind ours. */
const BACKDATE_MS = 60 * 60 * 1000;
export const DAY_MS = 86_400_000;

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNATURE = { name: "ECDSA", hash: "SHA-256" } as const;

type X509Lib = typeof X509;
let x509Lib: Promise<X509Lib> | undefined;

/** The metadata functions tsyringe calls (define/getOwn/get), on a WeakMap, unless something provides them. */
function ensureReflectMetadata(): void {
  const R = Reflect as unknown as Record<string, unknown>;
  if (typeof R.getMetadata === "function") return;
  const store = new WeakMap<object, Map<unknown, unknown>>();
  R.defineMetadata = (key: unknown, value: unknown, target: object) => {
    let m = store.get(target);
    if (!m) store.set(target, (m = new Map()));
    m.set(key, value);
  };
  R.getOwnMetadata = (key: unknown, target: object) => store.get(target)?.get(key);
  R.getMetadata = (key: unknown, target: object) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t) as object | null) {
      const m = store.get(t);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
}

function x509(): Promise<X509Lib> {
  x509Lib ??= (async () => {
    ensureReflectMetadata();
    const lib = await import("@peculiar/x509");
    (lib.cryptoProvider as unknown as { set(crypto: unknown): void }).set(webcrypto);
    return lib;
  })();
  return x509Lib;
}

/** A positive, non-zero-led 128-bit serial (hex). */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f || 0x01;
  return b.toString("hex");
}

function pemBlock(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return pemBlock("PRIVATE KEY", Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key)));
}

/** Any PEM private key (PKCS#8 or SEC1) of a P-256 key, as a WebCrypto signing key. */
async function signingKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: "pkcs8", format: "der" });
  return webcrypto.subtle.importKey("pkcs8", der, EC_KEY, false, ["sign"]);
}

function certPem(cert: X509.X509Certificate): string {
  const pem = cert.toString("pem").replace(/\r\n/g, "\n");
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}

/** A self-signed CA: basicConstraints CA:true (pathLen 0, critical), keyUsage keyCertSign+cRLSign (critical). */
export async function createCA(o: { now: Date; validityDays: number; commonName?: string }): Promise<PemPair> {
  const x = await x509();
  const keys = await newKeyPair();
  const serialNumber = randomSerial();
  const stamp = o.now.toISOString().slice(0, 10).replace(/-/g, "");
  const cert = await x.X509CertificateGenerator.createSelfSigned({
    serialNumber,
    // A name of its own per CA: during a rollover two CAs are trusted at once and must not be confused.
    name: `CN=${o.commonName ?? `portcullis-webhook-ca-${stamp}-${serialNumber.slice(0, 8)}`}`,
    notBefore: new Date(o.now.getTime() - BACKDATE_MS),
    notAfter: new Date(o.now.getTime() + o.validityDays * DAY_MS),
    signingAlgorithm: SIGNATURE,
    keys: keys as unknown as X509.X509CertificateCreateSelfSignedParams["keys"],
    extensions: [
      new x.BasicConstraintsExtension(true, 0, true),
      new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true),
      await x.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as X509.PublicKeyType),
    ],
  });
  return { certPem: certPem(cert), keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * A serving certificate signed by `ca`: SANs (DNS and IP), keyUsage digitalSignature (critical), extKeyUsage
 * serverAuth, basicConstraints CA:false, a random serial; valid `validityDays`, never past the CA's notAfter.
 */
export async function issueServingCertificate(
  ca: PemPair,
  o: { now: Date; validityDays: number; dnsNames: string[]; ipAddresses: string[] },
): Promise<PemPair> {
  if (!o.dnsNames.length && !o.ipAddresses.length) throw new Error("a serving certificate needs at least one DNS name or IP address");
  const x = await x509();
  const caCert = new x.X509Certificate(ca.certPem);
  const keys = await newKeyPair();
  const ski = caCert.getExtension(x.SubjectKeyIdentifierExtension);
  const notAfter = Math.min(o.now.getTime() + o.validityDays * DAY_MS, caCert.notAfter.getTime());
  const cert = await x.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    // The names are in the SAN (clients ignore the CN when there is one; a CN is limited to 64 characters).
    subject: "CN=portcullis-webhook",
    issuer: caCert.subjectName,
    notBefore: new Date(o.now.getTime() - BACKDATE_MS),
    notAfter: new Date(notAfter),
    signingAlgorithm: SIGNATURE,
    publicKey: keys.publicKey as unknown as X509.PublicKeyType,
    signingKey: (await signingKey(ca.keyPem)) as unknown as X509.X509CertificateCreateWithKeyParams["signingKey"],
    extensions: [
      new x.BasicConstraintsExtension(false, undefined, true),
      new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature, true),
      new x.ExtendedKeyUsageExtension([x.ExtendedKeyUsage.serverAuth]),
      new x.SubjectAlternativeNameExtension([
        ...o.dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...o.ipAddresses.map((value) => ({ type: "ip" as const, value })),
      ]),
      ski ? new x.AuthorityKeyIdentifierExtension(ski.keyId) : await x.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      await x.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as X509.PublicKeyType),
    ],
  });
  return { certPem: certPem(cert), keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * The names a serving certificate needs. Outside the cluster (`--webhook-url https://HOST:PORT`): HOST, as an
 * IP address or a DNS name. In the cluster: the Service's `<svc>.<ns>.svc`, `<svc>.<ns>.svc.cluster.local`,
 * `<svc>.<ns>` and `<svc>`.
 */
export function webhookSans(o: { url: string } | { service: { name: string; namespace: string } }): { dnsNames: string[]; ipAddresses: string[] } {
  if ("url" in o) {
    const host = new URL(o.url).hostname.replace(/^\[(.*)\]$/, "$1");
    return isIP(host) ? { dnsNames: [], ipAddresses: [host] } : { dnsNames: [host.toLowerCase()], ipAddresses: [] };
  }
  const { name, namespace } = o.service;
  return { dnsNames: [`${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`, `${name}.${namespace}`, name], ipAddresses: [] };
}

export interface PemPair {
  certPem: string;
  keyPem: string;
}
