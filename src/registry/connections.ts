// Connections to registries that outlive one RegistryClient. The operator makes a client per scan (each with
// that scan's pull secrets), so without this every scan opened new TCP connections and made new TLS
// handshakes to the same registry, and to its token realm, on the event loop that also answers admission
// reviews; against a remote registry each costs round trips before the first byte. A connection carries no
// credential (each request authenticates itself, as Docker and containerd also share connections across
// pulls), so clients of different tenants may share one; what a client learns with its credentials
// (tokens, which credential works) stays its own. Connections still go through the egress guard, which judges
// every new connection's address.
//
// A client closed in the middle of a body (a scan that stopped reading a layer) aborts its own requests: the
// connection under such a body is destroyed (undici does that for an aborted request), never handed back
// half-read to the next client, and close() does not wait for it.
import type { Agent } from "undici";
import type { AddressClass } from "../net/egress.js";

/** One registry host's connections, as one set of connection settings reaches it. */
export interface HostConnection {
  /** https, or http for a loopback or insecure registry that does not speak TLS (learned once). */
  scheme?: "https" | "http";
  dispatcher: Agent;
  /** For an insecure registry: TLS without verification. */
  insecureDispatcher?: Agent;
  /** The class of the address last connected to (what its realms and redirects may share). */
  addressClass?: AddressClass;
}

/**
 * Shared registry connections: one set per process. The agents are made by the first client that needs
 * them; clients whose connection settings differ (egress guard, CA, verification, timeouts, pool size) get
 * separate connections, keyed by those settings.
 */
export class RegistryConnections {
  private readonly hosts = new Map<string, HostConnection>();
  private readonly follow = new Map<string, Agent>();
  private closed = false;

  /** The connections of `key` (a registry and its connection settings), made by `make` the first time. */
  host(key: string, make: () => HostConnection): HostConnection {
    this.check();
    let h = this.hosts.get(key);
    if (!h) this.hosts.set(key, (h = make()));
    return h;
  }

  /** The agent for token realms and redirects of `key` (a follow policy and connection settings). */
  followAgent(key: string, make: () => Agent): Agent {
    this.check();
    let a = this.follow.get(key);
    if (!a) this.follow.set(key, (a = make()));
    return a;
  }

  /**
   * Ends every connection (at shutdown): destroyed, with any request still in flight, rather than waited for
   * (a graceful close waits for bodies nobody may read). Later use is an error.
   */
  async close(): Promise<void> {
    this.closed = true;
    const agents = [...this.follow.values(), ...[...this.hosts.values()].flatMap((h) => (h.insecureDispatcher ? [h.dispatcher, h.insecureDispatcher] : [h.dispatcher]))];
    this.hosts.clear();
    this.follow.clear();
    await Promise.allSettled(agents.map((a) => a.destroy()));
  }

  private check(): void {
    if (this.closed) throw new Error("registry connections used after close()");
  }
}
