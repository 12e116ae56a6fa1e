// Test certificates, made with the openssl command line (Node has no X.509 writer): a CA per run and
// leaf certificates it signs, for TLS registries, the token server's signing key and webhooks.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface CertificateAuthority {
  certFile: string;
  keyFile: string;
  certPem: string;
}

export interface LeafCertificate {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** The certificate in DER, base64: what a JWT's `x5c` header carries. */
  derBase64: string;
}

export async function makeCA(dir: string, name: string): Promise<CertificateAuthority> {
  const keyFile = join(dir, `${name}-ca.key`);
  const certFile = join(dir, `${name}-ca.crt`);
  await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", `/CN=${name} test CA`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  return { certFile, keyFile, certPem: readFileSync(certFile, "utf8") };
}

/** A leaf signed by `ca`; `sans` like ["IP:127.0.0.1", "DNS:localhost"]. */
export async function issueCert(dir: string, ca: CertificateAuthority, name: string, sans: string[], extKeyUsage = "serverAuth,clientAuth"): Promise<LeafCertificate> {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, [`basicConstraints=CA:FALSE`, `keyUsage=critical,digitalSignature,keyEncipherment`, `extendedKeyUsage=${extKeyUsage}`, sans.length ? `subjectAltName=${sans.join(",")}` : ""].join("\n"));
  await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", csrFile, "-subj", `/CN=${name}`]);
  await run("openssl", ["x509", "-req", "-in", csrFile, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-out", certFile, "-days", "2", "-extfile", extFile]);
  const certPem = readFileSync(certFile, "utf8");
  const der = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
  return { certFile, keyFile, certPem, keyPem: readFileSync(keyFile, "utf8"), derBase64: der };
}
