// The egress guard: where an outbound request may go. Every HTTP request Portcullis makes to an address
// somebody else chose (a registry, the token realm or redirect a registry names, the layer URIs of the
// report API, the cloud credential helpers' endpoints) connects through an undici Agent built here, so the
// check runs on the address actually connected to: after DNS resolution (a guarded `lookup` hands the
// socket only addresses that passed), for IP literals before connecting, and once more on the connected
// socket's remote address. A redirect is a new connection, so it is checked the same way.
//
// Addresses fall into classes; a policy says which classes a kind of request may reach. IPv4 in every
// spelling a URL parser or getaddrinfo accepts (dotted, decimal 2852039166, octal 0251.0376.0251.0376, hex
// 0xa9fea9fe, short forms 127.1) and IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, the URL
// parser's ::ffff:a9fe:a9fe, IPv4-compatible ::a.b.c.d, SIIT ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96 and the
// local-use 64:ff9b:1::/48, 6to4 2002::/16) are judged by the IPv4 address they carry.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP, type LookupFunction, type Socket } from "node:net";
import { Agent, buildConnector } from "undici";
import { PortcullisError } from "../errors.js";

export type AddressClass =
  /** 127.0.0.0/8, ::1, and the unspecified 0.0.0.0/8 and :: (which reach this host). */
  | "loopback"
  /** RFC 1918, CGNAT 100.64.0.0/10, IPv6 ULA fc00::/7 and site-local fec0::/10, local-use NAT64. */
  | "private"
  /** 169.254.0.0/16, fe80::/10. */
  | "link-local"
  /** Cloud instance metadata and credential services (AWS, GCP, Azure, ECS, EKS Pod Identity, Alibaba, Oracle). */
  | "metadata"
  /** Multicast, 240.0.0.0/4 and broadcast, ff00::/8: nothing an HTTP request has business with. */
  | "reserved"
  | "public";

export const ADDRESS_CLASSES: readonly AddressClass[] = ["loopback", "private", "link-local", "metadata", "reserved", "public"];

/** Which address classes a kind of request may reach. */
export interface EgressPolicy {
  /** What the requests are, for messages ("a token realm", "a layer URI"). */
  readonly name: string;
  readonly allow: ReadonlySet<AddressClass>;
}

export function egressPolicy(name: string, allow: Iterable<AddressClass>): EgressPolicy {
  return { name, allow: new Set(allow) };
}

/** Everything: endpoints the operator configured (a metadata server for credentials) and tests. */
export const ANYWHERE = egressPolicy("a configured endpoint", ADDRESS_CLASSES);
/** The internet only: endpoints Portcullis composes itself (STS, the ECR API). */
export const PUBLIC_ONLY = egressPolicy("a cloud API", ["public"]);

const METADATA_V4 = new Set([
  ip4(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean ...
  ip4(169, 254, 170, 2), // ECS task credentials
  ip4(169, 254, 170, 23), // EKS Pod Identity
  ip4(100, 100, 100, 200), // Alibaba Cloud
  ip4(192, 0, 0, 192), // Oracle Cloud
]);
const METADATA_V6 = new Set(["fd00:ec2:0:0:0:0:0:254", "fd00:ec2:0:0:0:0:0:23"]);
const METADATA_NAMES = new Set(["metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"]);

function ip4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function v4Class(n: number): AddressClass {
  const a = n >>> 24;
  const b = (n >>> 16) & 255;
  if (METADATA_V4.has(n)) return "metadata";
  if (a === 127 || a === 0) return "loopback";
  if (a === 169 && b === 254) return "link-local";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)) return "private";
  if (a >= 224) return "reserved";
  return "public";
}

/**
 * An IPv4 address in any spelling inet_aton (and so getaddrinfo and the WHATWG URL parser) accepts: one to
 * four parts, each decimal, octal (leading 0) or hex (0x), the last filling the remaining bytes. As an
 * unsigned 32-bit number, or undefined if `s` is not one.
 */
export function parseIpv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length > 4 || parts.some((p) => p === "")) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    let v: number;
    if (/^0x[0-9a-f]*$/i.test(p)) v = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]+$/.test(p)) v = parseInt(p.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(p)) v = Number(p);
    else return undefined;
    if (!Number.isSafeInteger(v)) return undefined;
    nums.push(v);
  }
  const last = nums.pop()!;
  if (nums.some((v) => v > 255) || last >= 2 ** (8 * (4 - nums.length))) return undefined;
  let n = 0;
  for (const [i, v] of nums.entries()) n += v * 2 ** (8 * (3 - i));
  return n + last;
}

/** The eight 16-bit groups of an IPv6 address (brackets and a zone allowed), or undefined. */
export function parseIpv6(s: string): number[] | undefined {
  const a = s.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  if (isIP(a) !== 6) return undefined;
  let text = a.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = parseIpv4(dotted[1]!)!;
    text = `${text.slice(0, -dotted[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array<string>(zeros).fill("0"), ...t].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

function v6Class(g: number[]): AddressClass {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  const low = ((g6 << 16) | g7) >>> 0;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0) {
    if (g4 === 0 && g5 === 0xffff) return v4Class(low); // mapped ::ffff:a.b.c.d
    if (g4 === 0xffff && g5 === 0) return v4Class(low); // SIIT ::ffff:0:a.b.c.d
    if (g4 === 0 && g5 === 0) return v4Class(low); // ::, ::1 and IPv4-compatible ::a.b.c.d
  }
  if (g0 === 0x64 && g1 === 0xff9b) {
    if (g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return v4Class(low); // NAT64 64:ff9b::/96
    if (g2 === 1) {
      const c = v4Class(low); // local-use NAT64 64:ff9b:1::/48: a translator inside the network
      return c === "public" ? "private" : c;
    }
  }
  if (g0 === 0x2002) {
    const c = v4Class(((g1 << 16) | g2) >>> 0); // 6to4
    if (c !== "public") return c;
  }
  if (METADATA_V6.has(g.map((x) => x.toString(16)).join(":"))) return "metadata";
  if ((g0 & 0xffc0) === 0xfe80) return "link-local";
  if ((g0 & 0xfe00) === 0xfc00 || (g0 & 0xffc0) === 0xfec0) return "private";
  if (g0 >>> 8 === 0xff) return "reserved";
  return "public";
}

/** The class of an IP address (IPv4 in any spelling, IPv6 with or without brackets), or undefined for a name. */
export function classifyAddress(address: string): AddressClass | undefined {
  const a = address.replace(/^\[|\]$/g, "");
  const v6 = parseIpv6(a);
  if (v6) return v6Class(v6);
  const v4 = parseIpv4(a);
  return v4 === undefined ? undefined : v4Class(v4);
}

/**
 * The class of a host as written (in a URL or a reference): an IP literal's class, `loopback` for
 * localhost names, `metadata` for the metadata services' names; undefined for any other name, which is
 * judged by what it resolves to when connecting.
 */
export function classifyHost(host: string): AddressClass | undefined {
  const h = host.toLowerCase().replace(/\.+$/, "");
  const literal = classifyAddress(h);
  if (literal) return literal;
  if (h === "localhost" || h.endsWith(".localhost")) return "loopback";
  if (METADATA_NAMES.has(h)) return "metadata";
  return undefined;
}

const DESCRIBE: Record<AddressClass, string> = {
  loopback: "a loopback address",
  private: "a private address",
  "link-local": "a link-local address",
  metadata: "a cloud metadata service",
  reserved: "a multicast or reserved address",
  public: "a public address",
};

export const EGRESS_REFUSED = "EPORTCULLIS_EGRESS_REFUSED";

/** A connection the policy does not allow; `code` is EGRESS_REFUSED. */
export class EgressRefusedError extends PortcullisError {
  readonly domain = "net";
  readonly code = EGRESS_REFUSED;
  constructor(readonly host: string, readonly address: string, readonly addressClass: AddressClass, readonly policy: string) {
    super(`${address !== host ? `${host} resolves to ${address}: refused, ` : ""}${address} is ${DESCRIBE[addressClass]}, which ${policy} may not reach`);
    this.name = "EgressRefusedError";
  }
}

/** The EgressRefusedError in an error's cause chain (undici wraps connection errors), if any. */
export function egressRefusal(e: unknown): EgressRefusedError | undefined {
  for (let c = e as { cause?: unknown } | undefined, i = 0; c && typeof c === "object" && i < 6; c = c.cause as typeof c, i++) {
    if (c instanceof EgressRefusedError) return c;
  }
  return undefined;
}

/** Why the policy refuses a host as written (IP literal or a well-known internal name), or undefined. */
export function refuseHost(host: string, policy: EgressPolicy): EgressRefusedError | undefined {
  const h = host.replace(/^\[|\]$/g, "");
  const cls = classifyHost(h);
  return cls && !policy.allow.has(cls) ? new EgressRefusedError(h, h, cls, policy.name) : undefined;
}

/** Name resolution: every address of a name (dns.lookup, as the sockets would do it, by default). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

export interface GuardedAgentOptions {
  /** TLS: extra CA, or no verification (insecure registries). */
  ca?: string;
  rejectUnauthorized?: boolean;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  connections?: number;
  /** Told the class of every address connected to (the registry client learns its registry's class). */
  onConnect?(addressClass: AddressClass, address: string): void;
}

/**
 * Checks outbound connections against policies. One per process (tests give theirs a resolver that
 * answers from a table, the way /etc/hosts would).
 */
export class EgressGuard {
  constructor(private readonly resolver: Resolver = systemResolver) {}

  /** A net/tls `lookup` that yields only addresses the policy allows (all of a name's addresses must pass). */
  lookup(policy: EgressPolicy): LookupFunction {
    return ((hostname: string, options: { all?: boolean; family?: number | string }, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
      this.resolver(hostname).then(
        (found) => {
          const family = options.family === 4 || options.family === "IPv4" ? 4 : options.family === 6 || options.family === "IPv6" ? 6 : 0;
          const addresses = family ? found.filter((a) => a.family === family) : found;
          // One refused address refuses the name: which one a socket would pick is not ours to know.
          for (const a of found) {
            const cls = classifyAddress(a.address) ?? "reserved";
            if (!policy.allow.has(cls)) return callback(new EgressRefusedError(hostname, a.address, cls, policy.name), options.all ? [] : "");
          }
          if (!addresses.length) return callback(Object.assign(new Error(`${hostname}: no address`), { code: "ENOTFOUND" }), options.all ? [] : "");
          if (options.all) return callback(null, addresses);
          callback(null, addresses[0]!.address, addresses[0]!.family);
        },
        (err: NodeJS.ErrnoException) => callback(err, options.all ? [] : ""),
      );
    }) as LookupFunction;
  }

  /** An undici connector that checks literals before connecting, names through lookup(), and the socket after. */
  connector(policy: EgressPolicy, o: GuardedAgentOptions = {}): buildConnector.connector {
    const inner = buildConnector({
      timeout: o.connectTimeoutMs ?? 10_000,
      lookup: this.lookup(policy),
      ...(o.ca ? { ca: o.ca } : {}),
      ...(o.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
    });
    return (opts, callback) => {
      const literal = refuseHost(opts.hostname, policy);
      if (literal) return callback(literal, null);
      inner(opts, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error("no socket"), null);
        const address = (socket as Socket).remoteAddress ?? "";
        const cls = classifyAddress(address) ?? "reserved";
        if (!policy.allow.has(cls)) {
          socket.destroy();
          return callback(new EgressRefusedError(opts.hostname, address, cls, policy.name), null);
        }
        o.onConnect?.(cls, address);
        callback(null, socket);
      });
    };
  }

  /** An undici Agent whose every connection goes through connector(). */
  agent(policy: EgressPolicy, o: GuardedAgentOptions = {}): Agent {
    return new Agent({
      connect: this.connector(policy, o),
      ...(o.headersTimeoutMs ? { headersTimeout: o.headersTimeoutMs } : {}),
      ...(o.bodyTimeoutMs ? { bodyTimeout: o.bodyTimeoutMs } : {}),
      keepAliveTimeout: o.keepAliveTimeoutMs ?? 30_000,
      ...(o.connections ? { connections: o.connections } : {}),
    });
  }
}

/** The process's guard (the system resolver). */
export const defaultEgressGuard = new EgressGuard();
