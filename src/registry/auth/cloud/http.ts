import { request } from "undici";
import { defaultEgressGuard, type EgressGuard, type EgressPolicy } from "../../../net/egress.js";

/**
 * A small JSON/XML request for cloud credential endpoints: timeouts, a size cap, the body as text. It goes
 * through the egress guard under `policy`: ANYWHERE for the endpoints the operator configured (the metadata
 * server, the Pod Identity URI, a test's STS), PUBLIC_ONLY for the AWS endpoints Portcullis composes from a
 * registry's host name. No redirect is followed.
 */
export async function smallRequest(url: string, init: { method?: "GET" | "POST" | "PUT"; headers?: Record<string, string>; body?: string; timeoutMs?: number; maxBytes?: number; signal?: AbortSignal; policy: EgressPolicy; egress?: EgressGuard }): Promise<{ status: number; text: string }> {
  const dispatcher = agentFor(init.egress ?? defaultEgressGuard, init.policy);
  const res = await request(url, {
    method: init.method ?? "GET",
    headers: init.headers,
    body: init.body,
    headersTimeout: init.timeoutMs ?? 10_000,
    bodyTimeout: init.timeoutMs ?? 10_000,
    signal: init.signal,
    dispatcher,
  });
  const max = init.maxBytes ?? 64 * 1024;
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > max) {
      res.body.destroy();
      throw new Error(`reply from ${new URL(url).host} is over ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return { status: res.statusCode, text: Buffer.concat(chunks).toString("utf8") };
}

/** One agent per guard and policy, kept for the process (the helpers call a handful of endpoints). */
const agents = new WeakMap<EgressGuard, Map<EgressPolicy, ReturnType<EgressGuard["agent"]>>>();
function agentFor(guard: EgressGuard, policy: EgressPolicy): ReturnType<EgressGuard["agent"]> {
  let m = agents.get(guard);
  if (!m) agents.set(guard, (m = new Map()));
  let a = m.get(policy);
  if (!a) m.set(policy, (a = guard.agent(policy, { connectTimeoutMs: 10_000 })));
  return a;
}
