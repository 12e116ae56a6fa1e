// The admission webhook's certificates: who makes them, where they live, when they change, and how every
// replica starts serving a new one without a restart.
//
// Two modes.
// - "builtin" (default): Portcullis is its own CA. The leader's reconcile() keeps one Secret
//   (default `portcullis-webhook-tls`, type kubernetes.io/tls) in Portcullis's namespace and patches the
//   CA bundle into the named Validating/MutatingWebhookConfigurations (every webhook entry of each).
// - "external": cert-manager (or anyone) writes the Secret and injects the CA (the chart annotates the
//   configurations with `cert-manager.io/inject-ca-from`); reconcile() does nothing, replicas only read.
//
// The Secret (builtin mode). Values are PEM; keys are PKCS#8 ("PRIVATE KEY"), ECDSA P-256, SHA-256 signatures.
//   tls.crt, tls.key       the serving ("leaf") certificate and its key — what every replica serves
//   ca.crt                 the trust bundle: every CA certificate the API server must trust right now, the
//                          signing CA first. This, base64-encoded, is each webhook entry's caBundle.
//   ca.key                 the signing CA's key (the CA in ca.crt whose public key matches it)
//   ca-next.crt/.key       only during a CA rollover, before the switch: the new CA (also in ca.crt)
//   annotations
//     portcullis.dev/ca-next-carried-since   when every configuration was first seen carrying the new CA
//     portcullis.dev/ca-previous-retire-at   when the CA(s) that ca.crt keeps after a switch are dropped
// Anything else in the Secret (other keys, labels, annotations) is kept.
//
// Schedule (all times from the injectable clock `now()`; every certificate's notBefore is backdated one hour
// for clocks that lag; "life" is notAfter - notBefore):
//   leaf   valid leafValidityDays (90), never past its CA's notAfter; re-issued when less than 1/3 of its life
//          remains (day 60 of 90), or when it is missing, expired, not signed by the signing CA, its key does not
//          match, or its names differ from dnsNames/ipAddresses.
//   CA     valid caValidityDays (1826, ~5 years). When less than 1/5 of its life remains (~year 4) a rollover
//          starts: (1) a new CA is made and published NEXT TO the old one in ca.crt and every caBundle; the leaf
//          stays signed by the old CA. (2) Once a reconcile sees every existing configuration carrying the new
//          CA, that time is recorded; (3) a reconcile at least rolloverSettleSeconds (60) later — and still seeing
//          them all carry it (API servers load configurations asynchronously) — switches: the new CA signs a
//          new leaf and becomes the signing CA; the old CA stays in the bundle until the old leaf's notAfter
//          (a replica that has not reloaded yet still serves it), or caOverlapDays after the switch if that is
//          sooner. A configuration that does not exist is logged and does not block the switch.
//   repair a CA whose key is missing or does not match, while the leaf it signed is still valid, is replaced by
//          the same rollover (no trust gap). With no usable CA and no usable leaf (first start, or a Secret that
//          is gone bad) a new CA and leaf are made at once.
// Writes: the leader reads the Secret, plans, and writes it with create (absent) or replace with the
// resourceVersion it read; a 409 means another writer won: re-read and plan again (up to 5 times). Keys exist
// only in the Secret: a new key is used (patched, served) only after the write that stores it succeeded,
// and a failed write leaves the previous Secret as it was. A GET that fails with anything but 404 never leads
// to a new CA. caBundles are compared as sets of certificates and patched (JSON patch, guarded by the
// configuration's resourceVersion; 409 -> re-read) only when different; reconcile() publishes on every call,
// so a configuration that was re-applied with a stale caBundle is fixed at the next reconcile.
//
// Replicas: start() GETs the Secret and polls it every pollSeconds (30; every 2 s until the first certificate
// is loaded — a missing Secret is not an error, readiness stays false). A new tls.crt/tls.key pair (checked:
// the key must match) replaces the serving material; attach(server) calls server.setSecureContext() on every
// change, so an https.Server created without a certificate starts, and keeps, serving the current one.
// Connections already established keep the certificate they negotiated.
//
// Dependencies: @peculiar/x509 writes the certificates (Node's crypto cannot), with Node's WebCrypto. Its
// dependency tsyringe insists on a Reflect metadata API at load time; the three functions it calls are
// provided here when absent (nothing else in Portcullis uses decorators), and the library is loaded lazily,
// after that, by a dynamic import. Node's X509Certificate reads and checks what is stored.
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { createSecureContext, type SecureContext, type Server as TlsServer } from "node:tls";
import * as k8s from "@kubernetes/client-node";
import type * as X509 from "@peculiar/x509";
import type { ClientCa } from "./client-ca.js";

export const DEFAULT_SECRET_NAME = "portcullis-webhook-tls";
export const DEFAULT_CA_VALIDITY_DAYS = 1826;
export const DEFAULT_LEAF_VALIDITY_DAYS = 90;
/** The leaf is re-issued when less than this fraction of its life remains. */
export const LEAF_RENEW_FRACTION = 1 / 3;
/** A CA rollover starts when less than this fraction of the CA's life remains. */
export const CA_RENEW_FRACTION = 1 / 5;
/** notBefore = issuance - this, for clocks (the API server's, a client's) that lag behind ours. */
export const BACKDATE_MS = 60 * 60 * 1000;

export const SECRET_KEYS = {
  cert: "tls.crt", key: "tls.key", bundle: "ca.crt", caKey: "ca.key", nextCert: "ca-next.crt", nextKey: "ca-next.key",
} as const;
export const ANNOTATIONS = {
  carriedSince: "portcullis.dev/ca-next-carried-since",
  retireAt: "portcullis.dev/ca-previous-retire-at",
} as const;

const DAY_MS = 86_400_000;
const MAX_CONFLICTS = 5;
const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNATURE = { name: "ECDSA", hash: "SHA-256" } as const;

type Log = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
export type WebhookKind = "validating" | "mutating";

// ---------------------------------------------------------------------------------------------------------
// Certificate writing (@peculiar/x509 over WebCrypto)

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

export interface PemPair {
  certPem: string;
  keyPem: string;
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

// ---------------------------------------------------------------------------------------------------------
// Reading what is stored

interface Cert {
  pem: string;
  x: X509Certificate;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
}

/** The CERTIFICATE blocks of a PEM text, each ending in a newline. */
export function splitPem(text: string | undefined): string[] {
  return (text ?? "").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? [];
}

function parseCert(pem: string): Cert | undefined {
  try {
    const x = new X509Certificate(pem);
    return { pem, x, fingerprint: x.fingerprint256, notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
  } catch {
    return undefined;
  }
}

function keyMatches(cert: Cert, keyPem: string | undefined): boolean {
  if (!keyPem) return false;
  try {
    return cert.x.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

function signedBy(leaf: Cert, ca: Cert): boolean {
  try {
    return leaf.x.checkIssued(ca.x) && leaf.x.verify(ca.x.publicKey);
  } catch {
    return false;
  }
}

/** The fingerprints of the certificates in a base64 caBundle. */
function bundleFingerprints(caBundleBase64: string | undefined): Set<string> {
  const text = caBundleBase64 ? Buffer.from(caBundleBase64, "base64").toString("utf8") : "";
  return new Set(splitPem(text).map((p) => parseCert(p)?.fingerprint ?? p));
}

function decoded(secret: k8s.V1Secret | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");
}

interface Held {
  cert: Cert;
  keyPem?: string;
}

interface TlsState {
  leaf?: { cert: Cert; keyPem: string; chainPem: string };
  /** The signing CA; keyPem absent when the key is missing or does not match. */
  ca?: Held;
  next?: Held & { keyPem: string };
  /** Trusted for the overlap after a switch, no longer signing. */
  previous: Cert[];
  carriedSince?: number;
  retireAt?: number;
}

function readState(secret: k8s.V1Secret | undefined): TlsState {
  const state: TlsState = { previous: [] };
  if (!secret) return state;
  const leafPem = splitPem(decoded(secret, SECRET_KEYS.cert))[0];
  const leafKey = decoded(secret, SECRET_KEYS.key);
  const leaf = leafPem ? parseCert(leafPem) : undefined;
  if (leaf && leafKey && keyMatches(leaf, leafKey)) state.leaf = { cert: leaf, keyPem: leafKey, chainPem: decoded(secret, SECRET_KEYS.cert)! };
  const bundle = splitPem(decoded(secret, SECRET_KEYS.bundle)).map(parseCert).filter((c): c is Cert => !!c);
  const caKey = decoded(secret, SECRET_KEYS.caKey);
  const signing = bundle.find((c) => keyMatches(c, caKey)) ?? bundle[0];
  if (signing) state.ca = { cert: signing, ...(keyMatches(signing, caKey) ? { keyPem: caKey } : {}) };
  const nextPem = splitPem(decoded(secret, SECRET_KEYS.nextCert))[0];
  const next = nextPem ? parseCert(nextPem) : undefined;
  const nextKey = decoded(secret, SECRET_KEYS.nextKey);
  if (next && nextKey && keyMatches(next, nextKey)) state.next = { cert: next, keyPem: nextKey };
  const seen = new Set([state.ca?.cert.fingerprint, state.next?.cert.fingerprint]);
  for (const c of bundle) {
    if (seen.has(c.fingerprint)) continue;
    seen.add(c.fingerprint);
    state.previous.push(c);
  }
  const time = (k: string) => {
    const t = Date.parse(secret.metadata?.annotations?.[k] ?? "");
    return Number.isNaN(t) ? undefined : t;
  };
  state.carriedSince = time(ANNOTATIONS.carriedSince);
  state.retireAt = time(ANNOTATIONS.retireAt);
  return state;
}

function bundleOf(s: TlsState): Cert[] {
  const out: Cert[] = [];
  for (const c of [s.ca?.cert, s.next?.cert, ...s.previous]) if (c && !out.some((o) => o.fingerprint === c.fingerprint)) out.push(c);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The API server, narrowly

export interface WebhookConfigurationView {
  resourceVersion: string;
  webhooks: Array<{ name: string; caBundle?: string }>;
}

/** What the manager needs from the API server (a fake in unit tests). Conflicts reject with `{ code: 409 }`. */
export interface TlsApi {
  /** undefined when the Secret does not exist (404); any other failure rejects. */
  readSecret(namespace: string, name: string): Promise<k8s.V1Secret | undefined>;
  createSecret(namespace: string, body: k8s.V1Secret): Promise<k8s.V1Secret>;
  /** Replaces the Secret; body.metadata.resourceVersion is the precondition. */
  replaceSecret(namespace: string, name: string, body: k8s.V1Secret): Promise<k8s.V1Secret>;
  /** undefined when the configuration does not exist. */
  readWebhookConfiguration(kind: WebhookKind, name: string): Promise<WebhookConfigurationView | undefined>;
  /** Sets entries' clientConfig.caBundle, only if the configuration still has `resourceVersion`. */
  setCaBundles(kind: WebhookKind, name: string, resourceVersion: string, entries: Array<{ index: number; name: string; caBundle: string }>): Promise<void>;
}

const code = (e: unknown): number | undefined => (e as { code?: number } | undefined)?.code;
const undefinedIf404 = (e: unknown): undefined => {
  if (code(e) === 404) return undefined;
  throw e;
};

export function kubeTlsApi(kc: k8s.KubeConfig): TlsApi {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const adm = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  return {
    readSecret: (namespace, name) => core.readNamespacedSecret({ namespace, name }).catch(undefinedIf404),
    createSecret: (namespace, body) => core.createNamespacedSecret({ namespace, body }),
    replaceSecret: (namespace, name, body) => core.replaceNamespacedSecret({ namespace, name, body }),
    async readWebhookConfiguration(kind, name) {
      const c = await (kind === "validating" ? adm.readValidatingWebhookConfiguration({ name }) : adm.readMutatingWebhookConfiguration({ name })).catch(undefinedIf404);
      if (!c) return undefined;
      return { resourceVersion: c.metadata?.resourceVersion ?? "", webhooks: (c.webhooks ?? []).map((w) => ({ name: w.name, caBundle: w.clientConfig?.caBundle })) };
    },
    async setCaBundles(kind, name, resourceVersion, entries) {
      // A JSON patch touches only the caBundles (fields this client does not model survive); setting the
      // resourceVersion makes it conditional (409 when the configuration changed since it was read).
      const body = [
        { op: "replace", path: "/metadata/resourceVersion", value: resourceVersion },
        ...entries.flatMap((e) => [
          { op: "test", path: `/webhooks/${e.index}/name`, value: e.name },
          { op: "add", path: `/webhooks/${e.index}/clientConfig/caBundle`, value: e.caBundle },
        ]),
      ];
      const opts = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
      if (kind === "validating") await adm.patchValidatingWebhookConfiguration({ name, body }, opts);
      else await adm.patchMutatingWebhookConfiguration({ name, body }, opts);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The manager

export interface WebhookCertificatesOptions {
  kc: k8s.KubeConfig;
  /** Portcullis's namespace: where the Secret is. */
  namespace: string;
  /** "builtin" (default): Portcullis's own CA; "external": cert-manager writes the Secret and injects the CA. */
  mode?: "builtin" | "external";
  secretName?: string;
  /** The serving certificate's names (see webhookSans()); builtin mode needs at least one name or address. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Configurations whose every webhook entry gets the caBundle (builtin mode). */
  webhookConfigurations?: { validating?: string[]; mutating?: string[] };
  caValidityDays?: number;
  leafValidityDays?: number;
  /** After a CA switch, the old CA leaves the bundle when the old leaf expires, or this long after the switch if sooner. */
  caOverlapDays?: number;
  /** How long every configuration must have carried the new CA before the leaf switches to it (default 60 s). */
  rolloverSettleSeconds?: number;
  /** Replicas re-read the Secret this often (default 30 s). */
  pollSeconds?: number;
  /** lead() reconciles this often (default 60 s). */
  reconcileSeconds?: number;
  now?(): Date;
  log?: Log;
  /** The API server access (default: from kc). */
  api?: TlsApi;
}

export interface ReconcileResult {
  /** What was created, rotated or dropped (empty: nothing was due). */
  changes: string[];
  /** Configurations whose caBundle was patched (kind/name). */
  patched: string[];
  /** Named configurations that do not exist (kind/name). */
  missing: string[];
  /** The caBundle now in the Secret (base64). */
  caBundle?: string;
}

interface Material {
  certPem: string;
  keyPem: string;
  leaf: X509Certificate;
  leafNotAfter: Date;
  context?: SecureContext;
}

export class WebhookCertificates {
  readonly mode: "builtin" | "external";
  readonly secretName: string;
  private readonly dnsNames: string[];
  private readonly ipAddresses: string[];
  private readonly caDays: number;
  private readonly leafDays: number;
  private readonly settleMs: number;
  private readonly pollMs: number;
  private readonly reconcileMs: number;
  private apiClient?: TlsApi;
  private material?: Material;
  private bundlePem?: string;
  private caNotAfter?: Date;
  private appliedVersion?: string;
  private readonly listeners = new Set<(m: { certPem: string; keyPem: string }) => void>();
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private timer?: NodeJS.Timeout;
  private started = false;
  private waitingLogged = false;
  private readonly missingLogged = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: WebhookCertificatesOptions) {
    this.mode = o.mode ?? "builtin";
    this.secretName = o.secretName ?? DEFAULT_SECRET_NAME;
    this.dnsNames = [...new Set((o.dnsNames ?? []).map((d) => d.toLowerCase()))];
    this.ipAddresses = [...new Set(o.ipAddresses ?? [])];
    this.caDays = o.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS;
    this.leafDays = o.leafValidityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
    this.settleMs = (o.rolloverSettleSeconds ?? 60) * 1000;
    this.pollMs = (o.pollSeconds ?? 30) * 1000;
    this.reconcileMs = (o.reconcileSeconds ?? 60) * 1000;
    for (const ip of this.ipAddresses) if (!isIP(ip)) throw new Error(`webhook TLS: ${ip} is not an IP address`);
    if (!(this.caDays > 0 && this.leafDays > 0)) throw new Error("webhook TLS: validity days must be positive");
    if (this.mode === "builtin" && !this.dnsNames.length && !this.ipAddresses.length) {
      throw new Error("webhook TLS: the serving certificate needs at least one DNS name or IP address");
    }
    this.readyPromise = new Promise((r) => (this.resolveReady = r));
  }

  private get api(): TlsApi {
    return (this.apiClient ??= this.o.api ?? kubeTlsApi(this.o.kc));
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  private log(level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>): void {
    this.o.log?.(level, `webhook TLS: ${msg}`, { secret: `${this.o.namespace}/${this.secretName}`, ...fields });
  }

  // ----- leader side

  /**
   * Creates or rotates what is due, writes the Secret, and publishes the bundle into the configurations.
   * Calls are serialized. builtin mode only (external: a no-op).
   */
  reconcile(): Promise<ReconcileResult> {
    const run = this.queue.then(() => this.reconcileOnce());
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Reconciles now and every reconcileSeconds until `signal` aborts (LeaderElector's onStartedLeading). */
  async lead(signal: AbortSignal): Promise<void> {
    if (this.mode === "external") return;
    while (!signal.aborted) {
      try {
        await this.reconcile();
      } catch (e) {
        this.log("error", `reconcile failed: ${(e as Error).message}`);
      }
      await sleep(this.reconcileMs, undefined, { signal }).catch(() => undefined);
    }
  }

  private async reconcileOnce(): Promise<ReconcileResult> {
    if (this.mode === "external") return { changes: [], patched: [], missing: [], caBundle: this.caBundle() };
    for (let attempt = 1; ; attempt++) {
      const secret = await this.api.readSecret(this.o.namespace, this.secretName);
      const state = readState(secret);
      const before = bundleOf(state);
      // Publish what is stored first: whether every configuration carries it decides a pending CA switch.
      const first = before.length ? await this.publish(before) : { carried: false, patched: [], missing: [] };
      const { state: next, changes } = await this.plan(state, this.now(), first.carried);
      let stored = secret;
      if (changes.length) {
        try {
          stored = await this.write(secret, next);
        } catch (e) {
          if (code(e) === 409 && attempt < MAX_CONFLICTS) {
            this.log("info", "the Secret changed while reconciling; reading it again");
            continue;
          }
          throw e;
        }
        for (const c of changes) this.log("info", c);
      }
      if (stored) this.applySecret(stored);
      const after = bundleOf(next);
      const changedBundle = after.length !== before.length || after.some((c, i) => c.fingerprint !== before[i]?.fingerprint);
      const second = changedBundle ? await this.publish(after) : first;
      return {
        changes,
        patched: [...new Set([...first.patched, ...second.patched])],
        missing: second.missing,
        caBundle: Buffer.from(after.map((c) => c.pem).join("")).toString("base64"),
      };
    }
  }

  /** The next state from `s` at `now`; `carried`: every existing configuration carries the stored bundle. */
  private async plan(s: TlsState, now: Date, carried: boolean): Promise<{ state: TlsState; changes: string[] }> {
    const t = now.getTime();
    const changes: string[] = [];
    const out: TlsState = { ...s, previous: [...s.previous] };
    const iso = (ms: number) => new Date(ms).toISOString();
    const usable = (h: Held | undefined): h is Held & { keyPem: string } => !!h?.keyPem && h.cert.x.ca && h.cert.notAfter > t;
    const newCA = async () => {
      const p = await createCA({ now, validityDays: this.caDays });
      return { cert: parseCert(p.certPem)!, keyPem: p.keyPem };
    };
    const issue = async (ca: Held & { keyPem: string }) => {
      const p = await issueServingCertificate({ certPem: ca.cert.pem, keyPem: ca.keyPem }, { now, validityDays: this.leafDays, dnsNames: this.dnsNames, ipAddresses: this.ipAddresses });
      return { cert: parseCert(p.certPem)!, keyPem: p.keyPem, chainPem: p.certPem };
    };

    // Previous CAs leave the bundle at their retire time (or when they expire).
    if (out.previous.length) {
      const had = out.previous.length;
      if (out.retireAt === undefined) {
        out.retireAt = t + this.leafDays * DAY_MS;
        changes.push(`the bundle has CAs that no longer sign without a retire time: kept until ${iso(out.retireAt)}`);
      }
      out.previous = t >= out.retireAt ? [] : out.previous.filter((c) => c.notAfter > t);
      if (out.previous.length < had) changes.push(`removed ${had - out.previous.length} previous CA(s) from the bundle`);
    }
    if (!out.previous.length && out.retireAt !== undefined) {
      out.retireAt = undefined;
      if (!changes.length) changes.push("cleared the previous CAs' retire time");
    }
    if (s.next && !usable(s.next)) {
      out.next = undefined;
      out.carriedSince = undefined;
      changes.push("dropped the next CA: it expired or is not a CA");
    }

    // The signing CA.
    if (!usable(out.ca)) {
      const leafTrusted = !!out.leaf && !!out.ca && out.ca.cert.notAfter > t && out.leaf.cert.notAfter > t && signedBy(out.leaf.cert, out.ca.cert);
      if (leafTrusted) {
        if (!out.next) {
          out.next = await newCA();
          out.carriedSince = undefined;
          changes.push(`the CA's key is missing or does not match: rolling over to a new CA (${out.next.cert.x.subject.replace(/\n/g, ", ")}), the current certificate is served until then`);
        }
      } else {
        const ca = await newCA();
        const leaf = await issue(ca);
        Object.assign(out, { ca, leaf, next: undefined, previous: [], carriedSince: undefined, retireAt: undefined });
        changes.push(s.ca || s.leaf
          ? `no usable CA and serving certificate in the Secret: created a new CA (valid until ${iso(ca.cert.notAfter)}) and serving certificate`
          : `created the CA (valid until ${iso(ca.cert.notAfter)}) and the serving certificate (valid until ${iso(leaf.cert.notAfter)})`);
        return { state: out, changes };
      }
    } else if (!out.next && out.ca.cert.notAfter - t < (out.ca.cert.notAfter - out.ca.cert.notBefore) * CA_RENEW_FRACTION) {
      out.next = await newCA();
      out.carriedSince = undefined;
      changes.push(`the CA expires ${iso(out.ca.cert.notAfter)}: rollover started, the new CA (valid until ${iso(out.next.cert.notAfter)}) is published next to it`);
    }

    // A pending switch to the next CA.
    let issued = false;
    if (out.next && s.next && out.next.cert.fingerprint === s.next.cert.fingerprint) {
      if (!carried) {
        if (out.carriedSince !== undefined) {
          out.carriedSince = undefined;
          changes.push("not every webhook configuration carries the new CA any more: the switch waits");
        } else {
          this.log("warn", "CA rollover: waiting for every webhook configuration to carry the new CA");
        }
      } else if (out.carriedSince === undefined) {
        out.carriedSince = t;
        changes.push(`every webhook configuration carries both CAs: the serving certificate switches to the new CA after ${this.settleMs / 1000} s`);
      } else if (t - out.carriedSince >= this.settleMs) {
        const next = out.next;
        let retire = Math.max(out.leaf?.cert.notAfter ?? t, t);
        if (this.o.caOverlapDays !== undefined) retire = Math.min(retire, t + this.o.caOverlapDays * DAY_MS);
        if (out.ca && retire > t) {
          out.previous.unshift(out.ca.cert);
          out.retireAt = Math.max(retire, out.retireAt ?? 0);
        }
        out.ca = next;
        out.next = undefined;
        out.carriedSince = undefined;
        out.leaf = await issue(next);
        issued = true;
        changes.push(`switched to the new CA: new serving certificate (valid until ${iso(out.leaf.cert.notAfter)}); the old CA stays in the bundle until ${iso(out.retireAt ?? t)}`);
      }
    }

    // The serving certificate.
    const ca = out.ca;
    if (!issued && usable(ca)) {
      const leaf = out.leaf;
      const why = !leaf ? "there was none (or its key did not match)"
        : leaf.cert.notAfter <= t ? `it expired ${iso(leaf.cert.notAfter)}`
        : !signedBy(leaf.cert, ca.cert) ? "it was not signed by the current CA"
        : !this.sansMatch(leaf.cert.x) ? `its names (${leaf.cert.x.subjectAltName ?? "none"}) differ from the wanted ones`
        : leaf.cert.notAfter - t < (leaf.cert.notAfter - leaf.cert.notBefore) * LEAF_RENEW_FRACTION ? `it expires ${iso(leaf.cert.notAfter)}`
        : undefined;
      if (why) {
        out.leaf = await issue(ca);
        changes.push(`new serving certificate (valid until ${iso(out.leaf.cert.notAfter)}): ${why}`);
      }
    }
    return { state: out, changes };
  }

  private sansMatch(c: X509Certificate): boolean {
    const entries = (c.subjectAltName ?? "").split(", ").filter(Boolean);
    const dns = entries.filter((e) => e.startsWith("DNS:")).map((e) => e.slice(4).toLowerCase());
    const ips = entries.filter((e) => e.startsWith("IP Address:"));
    if (entries.length !== dns.length + ips.length || ips.length !== this.ipAddresses.length) return false;
    if (new Set(dns).size !== this.dnsNames.length || !this.dnsNames.every((d) => dns.includes(d))) return false;
    return this.ipAddresses.every((ip) => c.checkIP(ip) !== undefined);
  }

  /** Creates the Secret, or replaces it conditionally on the resourceVersion it was read with. */
  private async write(prev: k8s.V1Secret | undefined, s: TlsState): Promise<k8s.V1Secret> {
    const data: Record<string, string> = { ...(prev?.data ?? {}) };
    const put = (k: string, v: string | undefined) => {
      if (v === undefined) delete data[k];
      else data[k] = Buffer.from(v).toString("base64");
    };
    put(SECRET_KEYS.cert, s.leaf?.chainPem);
    put(SECRET_KEYS.key, s.leaf?.keyPem);
    put(SECRET_KEYS.bundle, bundleOf(s).map((c) => c.pem).join(""));
    put(SECRET_KEYS.caKey, s.ca?.keyPem);
    put(SECRET_KEYS.nextCert, s.next?.cert.pem);
    put(SECRET_KEYS.nextKey, s.next?.keyPem);
    const annotations: Record<string, string> = { ...(prev?.metadata?.annotations ?? {}) };
    const note = (k: string, v: number | undefined) => {
      if (v === undefined) delete annotations[k];
      else annotations[k] = new Date(v).toISOString();
    };
    note(ANNOTATIONS.carriedSince, s.carriedSince);
    note(ANNOTATIONS.retireAt, s.retireAt);
    const body: k8s.V1Secret = {
      apiVersion: "v1",
      kind: "Secret",
      // A Secret created by someone else as Opaque keeps its type (the type is immutable).
      type: prev?.type ?? "kubernetes.io/tls",
      metadata: {
        ...(prev?.metadata ?? {}),
        name: this.secretName,
        namespace: this.o.namespace,
        labels: { ...(prev?.metadata?.labels ?? {}), "app.kubernetes.io/managed-by": "portcullis", "app.kubernetes.io/component": "webhook-tls" },
        annotations,
      },
      data,
    };
    return prev ? this.api.replaceSecret(this.o.namespace, this.secretName, body) : this.api.createSecret(this.o.namespace, body);
  }

  /** Puts `bundle` into every entry of every named configuration that differs. `carried`: all existing ones have it. */
  private async publish(bundle: Cert[]): Promise<{ carried: boolean; patched: string[]; missing: string[] }> {
    const want = new Set(bundle.map((c) => c.fingerprint));
    const caBundle = Buffer.from(bundle.map((c) => c.pem).join("")).toString("base64");
    const out = { carried: true, patched: [] as string[], missing: [] as string[] };
    const named: Array<[WebhookKind, string]> = [
      ...(this.o.webhookConfigurations?.validating ?? []).map((n): [WebhookKind, string] => ["validating", n]),
      ...(this.o.webhookConfigurations?.mutating ?? []).map((n): [WebhookKind, string] => ["mutating", n]),
    ];
    for (const [kind, name] of named) {
      const id = `${kind}/${name}`;
      try {
        const r = await this.publishOne(kind, name, want, caBundle);
        if (r === "missing") {
          out.missing.push(id);
          if (!this.missingLogged.has(id)) this.log("info", `${kind} webhook configuration ${name} does not exist (yet): its caBundle is set when it does`);
          this.missingLogged.add(id);
          continue;
        }
        this.missingLogged.delete(id);
        if (r === "patched") {
          out.patched.push(id);
          this.log("info", `set the caBundle of ${kind} webhook configuration ${name} (${bundle.length} CA${bundle.length === 1 ? "" : "s"})`);
        }
      } catch (e) {
        out.carried = false;
        this.log("error", `setting the caBundle of ${kind} webhook configuration ${name}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  private async publishOne(kind: WebhookKind, name: string, want: Set<string>, caBundle: string): Promise<"missing" | "current" | "patched"> {
    for (let attempt = 1; ; attempt++) {
      const cfg = await this.api.readWebhookConfiguration(kind, name);
      if (!cfg) return "missing";
      const stale = cfg.webhooks.flatMap((w, index) => {
        const have = bundleFingerprints(w.caBundle);
        return have.size === want.size && [...want].every((f) => have.has(f)) ? [] : [{ index, name: w.name, caBundle }];
      });
      if (!stale.length) return "current";
      try {
        await this.api.setCaBundles(kind, name, cfg.resourceVersion, stale);
        return "patched";
      } catch (e) {
        if (code(e) !== 409 || attempt >= MAX_CONFLICTS) throw e;
      }
    }
  }

  // ----- every replica

  /** Loads the Secret (a missing one is waited for) and keeps polling it until stop(). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.started = false;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (!this.started) return;
    const ms = this.material ? this.pollMs : Math.min(this.pollMs, 2000);
    this.timer = setTimeout(() => void this.refresh().finally(() => this.schedule()), ms);
    this.timer.unref();
  }

  /** Reads the Secret once and applies it; errors are logged. */
  async refresh(): Promise<void> {
    try {
      const secret = await this.api.readSecret(this.o.namespace, this.secretName);
      if (!secret) {
        if (!this.waitingLogged) this.log("info", this.mode === "builtin" ? "waiting for the leader to create the Secret" : "waiting for the Secret (cert-manager)");
        this.waitingLogged = true;
        return;
      }
      this.applySecret(secret);
    } catch (e) {
      this.log("warn", `reading the Secret: ${(e as Error).message}`);
    }
  }

  /** Takes tls.crt/tls.key (and ca.crt) of `secret` as the serving material when they changed and are sound. */
  private applySecret(secret: k8s.V1Secret): void {
    const version = secret.metadata?.resourceVersion;
    if (version && version === this.appliedVersion) return;
    const certPem = decoded(secret, SECRET_KEYS.cert);
    const keyPem = decoded(secret, SECRET_KEYS.key);
    const bundlePem = decoded(secret, SECRET_KEYS.bundle);
    if (!certPem || !keyPem) {
      this.log("warn", `the Secret has no ${SECRET_KEYS.cert} and ${SECRET_KEYS.key}`);
      return;
    }
    let material = this.material;
    if (!material || material.certPem !== certPem || material.keyPem !== keyPem) {
      const leafPem = splitPem(certPem)[0];
      const leaf = leafPem ? parseCert(leafPem) : undefined;
      if (!leaf || !keyMatches(leaf, keyPem)) {
        this.log("error", `the Secret's ${SECRET_KEYS.cert} is not a certificate or ${SECRET_KEYS.key} is not its key: still serving the previous certificate`);
        return;
      }
      let context: SecureContext;
      try {
        context = createSecureContext({ cert: certPem, key: keyPem });
      } catch (e) {
        this.log("error", `the Secret's certificate cannot be served: ${(e as Error).message}`);
        return;
      }
      material = { certPem, keyPem, leaf: leaf.x, leafNotAfter: new Date(leaf.notAfter), context };
      this.material = material;
      this.log("info", `serving certificate ${leaf.x.serialNumber} (valid until ${new Date(leaf.notAfter).toISOString()})`);
      for (const l of this.listeners) {
        try {
          l({ certPem, keyPem });
        } catch (e) {
          this.log("error", `applying the new certificate: ${(e as Error).message}`);
        }
      }
    }
    this.bundlePem = bundlePem;
    const issuer = splitPem(bundlePem).map(parseCert).find((c) => c && material.leaf.checkIssued(c.x) && material.leaf.verify(c.x.publicKey));
    this.caNotAfter = issuer ? new Date(issuer.notAfter) : undefined;
    this.appliedVersion = version;
    this.resolveReady();
  }

  /** Resolves once a certificate is loaded. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  isReady(): boolean {
    return !!this.material;
  }

  /** The current serving material (for SNICallback); throws before ready(). */
  secureContext(): SecureContext {
    const m = this.material;
    if (!m) throw new Error("webhook TLS: no certificate loaded yet");
    return (m.context ??= createSecureContext({ cert: m.certPem, key: m.keyPem }));
  }

  /** cert/key PEM of the current certificate (for a server's options), undefined before ready(). */
  tlsOptions(): { cert: string; key: string } | undefined {
    return this.material ? { cert: this.material.certPem, key: this.material.keyPem } : undefined;
  }

  /**
   * Keeps `server` (https.Server or tls.Server; it may be created without a certificate) serving the current
   * certificate: setSecureContext now (when loaded) and on every change. Returns a function that detaches it.
   */
  attach(server: TlsServer, o: { clientCa?: Pick<ClientCa, "pem" | "onChange"> } = {}): () => void {
    // setSecureContext replaces the whole context: the client CA (when client certificates are required) goes
    // into every one, and a new client CA is applied with the current certificate.
    const apply = (m: { certPem: string; keyPem: string }) => server.setSecureContext({ cert: m.certPem, key: m.keyPem, ...(o.clientCa ? { ca: o.clientCa.pem() } : {}) });
    if (this.material) apply(this.material);
    this.listeners.add(apply);
    const off = o.clientCa?.onChange(() => {
      if (this.material) apply(this.material);
      // Session tickets issued under the old CA would resume without a certificate check: new keys void them.
      server.setTicketKeys(randomBytes(48));
      // Idle keep-alive connections were accepted under the old CA: closed, their clients connect anew.
      (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    });
    return () => {
      this.listeners.delete(apply);
      off?.();
    };
  }

  /** The CA bundle as a webhook configuration's caBundle (base64 PEM), once loaded. */
  caBundle(): string | undefined {
    return this.bundlePem ? Buffer.from(this.bundlePem).toString("base64") : undefined;
  }

  /** notAfter of the served leaf and of the CA in ca.crt that signed it (for metrics). */
  expiry(): { leaf?: Date; ca?: Date } {
    return { ...(this.material ? { leaf: this.material.leafNotAfter } : {}), ...(this.caNotAfter ? { ca: this.caNotAfter } : {}) };
  }
}
