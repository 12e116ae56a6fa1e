// The rotation plan: from what the Secret holds and the time, the next state and why (docs/certificates.md has
// the schedule). No I/O: certificates are minted by the functions it is given, the caller stores the state.
import type { X509Certificate } from "node:crypto";
import { type Cert, signedBy } from "./bundle.js";
import { DAY_MS } from "./issue.js";

/** The leaf is re-issued when less than this fraction of its life remains. */
const LEAF_RENEW_FRACTION = 1 / 3;
/** A CA rollover starts when less than this fraction of the CA's life remains. */
const CA_RENEW_FRACTION = 1 / 5;

/** Every CA certificate the API server must trust now, the signing CA first, each once. */
export function bundleOf(s: TlsState): Cert[] {
  const out: Cert[] = [];
  for (const c of [s.ca?.cert, s.next?.cert, ...s.previous]) if (c && !out.some((o) => o.fingerprint === c.fingerprint)) out.push(c);
  return out;
}

/**
 * The next state from `s` at `now`; `carried`: every existing webhook configuration carries the stored bundle.
 * `changes` says what changed (empty: nothing to write); `waiting`: a CA switch waits for a configuration.
 */
export async function plan(s: TlsState, now: Date, carried: boolean, p: PlanSettings, mint: Mint): Promise<{ state: TlsState; changes: string[]; waiting: boolean }> {
  const t = now.getTime();
  const changes: string[] = [];
  let waiting = false;
  const out: TlsState = { ...s, previous: [...s.previous] };
  const iso = (ms: number) => new Date(ms).toISOString();
  const usable = (h: Held | undefined): h is SigningCa => !!h?.keyPem && h.cert.x.ca && h.cert.notAfter > t;
  const newCA = () => mint.ca(now);
  const issue = (ca: SigningCa) => mint.leaf(ca, now);

  // Previous CAs leave the bundle at their retire time (or when they expire).
  if (out.previous.length) {
    const had = out.previous.length;
    if (out.retireAt === undefined) {
      out.retireAt = t + p.leafDays * DAY_MS;
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
      return { state: out, changes, waiting };
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
        waiting = true;
      }
    } else if (out.carriedSince === undefined) {
      out.carriedSince = t;
      changes.push(`every webhook configuration carries both CAs: the serving certificate switches to the new CA after ${p.settleMs / 1000} s`);
    } else if (t - out.carriedSince >= p.settleMs) {
      const next = out.next;
      let retire = Math.max(out.leaf?.cert.notAfter ?? t, t);
      if (p.caOverlapDays !== undefined) retire = Math.min(retire, t + p.caOverlapDays * DAY_MS);
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
      : !sansMatch(leaf.cert.x, p) ? `its names (${leaf.cert.x.subjectAltName ?? "none"}) differ from the wanted ones`
      : leaf.cert.notAfter - t < (leaf.cert.notAfter - leaf.cert.notBefore) * LEAF_RENEW_FRACTION ? `it expires ${iso(leaf.cert.notAfter)}`
      : undefined;
    if (why) {
      out.leaf = await issue(ca);
      changes.push(`new serving certificate (valid until ${iso(out.leaf.cert.notAfter)}): ${why}`);
    }
  }
  return { state: out, changes, waiting };
}

/** Whether the certificate's SANs are exactly the wanted DNS names and IP addresses. */
function sansMatch(c: X509Certificate, p: Pick<PlanSettings, "dnsNames" | "ipAddresses">): boolean {
  const entries = (c.subjectAltName ?? "").split(", ").filter(Boolean);
  const dns = entries.filter((e) => e.startsWith("DNS:")).map((e) => e.slice(4).toLowerCase());
  const ips = entries.filter((e) => e.startsWith("IP Address:"));
  if (entries.length !== dns.length + ips.length || ips.length !== p.ipAddresses.length) return false;
  if (new Set(dns).size !== p.dnsNames.length || !p.dnsNames.every((d) => dns.includes(d))) return false;
  return p.ipAddresses.every((ip) => c.checkIP(ip) !== undefined);
}

/** A certificate and, when it is there and matches, its key. */
export interface Held {
  cert: Cert;
  keyPem?: string;
}

export type SigningCa = Held & { keyPem: string };

export interface Leaf {
  cert: Cert;
  keyPem: string;
  /** tls.crt as stored: the leaf, and whatever chain followed it. */
  chainPem: string;
}

/** What the Secret holds, read (secret.ts). */
export interface TlsState {
  leaf?: Leaf;
  /** The signing CA; keyPem absent when the key is missing or does not match. */
  ca?: Held;
  next?: SigningCa;
  /** Trusted for the overlap after a switch, no longer signing. */
  previous: Cert[];
  carriedSince?: number;
  retireAt?: number;
}

export interface PlanSettings {
  leafDays: number;
  /** How long every configuration must have carried the new CA before the switch. */
  settleMs: number;
  /** After a switch the old CA leaves the bundle when the old leaf expires, or this long after the switch if sooner. */
  caOverlapDays?: number;
  /** The serving certificate's names (lower case). */
  dnsNames: string[];
  ipAddresses: string[];
}

/** Makes certificates for the plan (issue.ts, parsed). */
export interface Mint {
  ca(now: Date): Promise<SigningCa>;
  leaf(ca: SigningCa, now: Date): Promise<Leaf>;
}
