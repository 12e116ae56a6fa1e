// SSRF guards for URLs a registry hands us (token realms, redirects): the operator's pod can reach cloud
// metadata services and cluster-internal addresses, so a registry must not steer requests there.
import { isIP } from "node:net";

export type AddressClass = "loopback" | "private" | "link-local" | "public";

/** The class of a host: IP literals by range; `localhost` names are loopback; other names are public. */
export function addressClass(host: string): AddressClass {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  const v = isIP(h);
  if (v === 4) {
    const [a, b] = h.split(".").map(Number) as [number, number];
    if (a === 127 || a === 0) return "loopback";
    if (a === 169 && b === 254) return "link-local";
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)) return "private";
    return "public";
  }
  if (v === 6) {
    if (h === "::1" || h === "::") return "loopback";
    if (/^fe[89ab]/.test(h)) return "link-local";
    if (/^f[cd]/.test(h)) return "private";
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped ? addressClass(mapped[1]!) : "public";
  }
  return h === "localhost" || h.endsWith(".localhost") ? "loopback" : "public";
}

/** True for loopback, private (RFC 1918, ULA, CGNAT), link-local and unspecified addresses. */
export function isInternalIp(host: string): boolean {
  return addressClass(host) !== "public";
}

function hostname(hostPort: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(hostPort);
  if (m) return m[1]!;
  return hostPort.replace(/:\d+$/, "");
}

/**
 * Checks a URL the registry at `registryHost` told us to follow. Refused: schemes other than http(s),
 * plain http unless the registry itself is plain http, and internal addresses, except the registry's own
 * host and addresses of the registry's own class (a loopback registry may redirect to loopback, a private
 * one to private storage), never link-local (cloud metadata) unless it is the registry itself.
 */
export function checkFollowedUrl(raw: string, registryHost: string, registryIsHttp: boolean): URL | string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `not a URL: ${JSON.stringify(raw.slice(0, 200))}`;
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return `scheme ${u.protocol} is not allowed`;
  if (u.protocol === "http:" && !registryIsHttp) return `plain http (${u.host}) from an https registry`;
  const target = u.hostname.replace(/^\[|\]$/g, "");
  const own = hostname(registryHost);
  if (target === own) return u;
  const cls = addressClass(target);
  if (cls === "public") return u;
  if (cls !== "link-local" && cls === addressClass(own)) return u;
  return `internal address ${target}`;
}
