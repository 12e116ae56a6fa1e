// The Secret that holds the certificates (docs/certificates.md has its keys and annotations): read into the
// plan's state, and written whole with create (absent) or a replace on the resourceVersion it was read with.
// Anything else in the Secret (other keys, labels, annotations) is kept.
import type * as k8s from "@kubernetes/client-node";
import type { TlsApi } from "./api.js";
import { keyMatches, parseCert, splitPem, type Cert } from "./bundle.js";
import { bundleOf, type TlsState } from "./plan.js";

export const DEFAULT_SECRET_NAME = "portcullis-webhook-tls";

export const SECRET_KEYS = {
  cert: "tls.crt", key: "tls.key", bundle: "ca.crt", caKey: "ca.key", nextCert: "ca-next.crt", nextKey: "ca-next.key",
} as const;
export const ANNOTATIONS = {
  carriedSince: "portcullis.dev/ca-next-carried-since",
  retireAt: "portcullis.dev/ca-previous-retire-at",
} as const;

/** A key of the Secret, decoded (undefined when absent). */
export function decoded(secret: k8s.V1Secret | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");
}

/** What the Secret holds that can be used: a leaf only with its key, the CA whose key matches (or the first). */
export function readState(secret: k8s.V1Secret | undefined): TlsState {
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

/** The certificates' Secret in one namespace. */
export class TlsSecretStore {
  constructor(private readonly api: () => TlsApi, readonly namespace: string, readonly name: string) {}

  /** undefined when the Secret does not exist; any other failure rejects. */
  read(): Promise<k8s.V1Secret | undefined> {
    return this.api().readSecret(this.namespace, this.name);
  }

  /** Creates the Secret, or replaces `prev` conditionally on the resourceVersion it was read with (409 otherwise). */
  write(prev: k8s.V1Secret | undefined, s: TlsState): Promise<k8s.V1Secret> {
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
        name: this.name,
        namespace: this.namespace,
        labels: { ...(prev?.metadata?.labels ?? {}), "app.kubernetes.io/managed-by": "portcullis", "app.kubernetes.io/component": "webhook-tls" },
        annotations,
      },
      data,
    };
    return prev ? this.api().replaceSecret(this.namespace, this.name, body) : this.api().createSecret(this.namespace, body);
  }
}
