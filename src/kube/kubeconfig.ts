// A KubeConfig whose API clients keep their connections. @kubernetes/client-node 1.4 gives every request a new
// https.Agent (KubeConfig.applySecurityAuthentication → createAgent), so every API call opened a TCP connection
// and made a full TLS handshake on the event loop that also answers admission reviews: a status write, an Event,
// a Lease renewal, a SubjectAccessReview each paid one. Here the agent the library built is replaced by one
// kept-alive agent per distinct TLS setting (server name, CA, client certificate and key, verification); the
// headers it set (a bearer token read fresh from its file, exec credentials) are left as they are, so token
// rotation works as before. A rotated client certificate (new bytes) gets a new agent; the old one's idle
// sockets close after `IDLE_MS`.
import { createHash } from "node:crypto";
import https from "node:https";
import * as k8s from "@kubernetes/client-node";

/** How long an idle connection to the API server is kept (the API server's own idle timeout is longer). */
const IDLE_MS = 30_000;
/** Connections per agent at most: the controller's concurrency and the webhook's lookups share them. */
const MAX_SOCKETS = 32;

type RequestContext = Parameters<k8s.KubeConfig["applySecurityAuthentication"]>[0];

export class KeepAliveKubeConfig extends k8s.KubeConfig {
  private readonly agents = new Map<string, https.Agent>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const built = context.getAgent();
    // Only the plain HTTPS agent is replaced; a proxy's agent (HTTP, SOCKS) is the library's to manage.
    if (!(built instanceof https.Agent) || built.constructor !== https.Agent) return;
    context.setAgent(this.agentFor(built.options));
  }

  /** The open connections of every agent (for tests and debugging). */
  connectionCount(): number {
    let n = 0;
    for (const a of this.agents.values()) {
      for (const list of [...Object.values(a.sockets), ...Object.values(a.freeSockets)]) n += list?.length ?? 0;
    }
    return n;
  }

  /** Closes every kept connection (at shutdown; later requests open new ones). */
  destroyAgents(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }

  private agentFor(options: https.AgentOptions): https.Agent {
    const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = options;
    const h = createHash("sha256");
    for (const part of [ca, cert, key, pfx, passphrase, rejectUnauthorized, servername]) h.update(`${bytes(part)}\0`);
    const id = h.digest("hex");
    let agent = this.agents.get(id);
    if (!agent) {
      agent = new https.Agent({ ...options, keepAlive: true, keepAliveMsecs: 10_000, maxSockets: MAX_SOCKETS, maxFreeSockets: MAX_SOCKETS, timeout: IDLE_MS, scheduling: "lifo" });
      this.agents.set(id, agent);
    }
    return agent;
  }
}

/** A stable text of an option's value (strings, Buffers, arrays of them, booleans). */
function bytes(v: unknown): string {
  if (v === undefined || v === null) return "-";
  if (Buffer.isBuffer(v)) return v.toString("base64");
  if (Array.isArray(v)) return v.map(bytes).join(",");
  return String(v);
}
