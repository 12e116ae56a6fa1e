// API clients made from a KeepAliveKubeConfig reuse their connections to the real API server: the distinct
// sockets the requests went over are counted from Node's own `http.client.request.start` diagnostics channel
// (the HTTP client's, not ours), next to the library's KubeConfig
// (one connection per request) doing the same calls, so the test shows both what was wrong and that it is not.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";
import type { Socket } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { afterEach, expect, it } from "vitest";
import { KeepAliveKubeConfig } from "../../src/kube/kubeconfig.js";
import { describeWith, service } from "../env/index.js";

describeWith(["kube"], "KeepAliveKubeConfig against the real API server", () => {
  const port = () => Number(new URL(service("kube").server).port);
  const sockets = new Set<Socket>();
  const onRequest = (m: unknown) => {
    // Published as the request starts: its socket is assigned, perhaps still connecting.
    const socket = (m as { request: ClientRequest }).request.socket as Socket | null;
    if (!socket) return;
    const check = () => socket.remotePort === port() && sockets.add(socket);
    if (socket.remotePort) check();
    else socket.once("connect", check);
  };
  /** The new connections `f`'s requests went over (reused ones seen before do not count again). */
  const counting = async (f: () => Promise<unknown>): Promise<number> => {
    const before = new Set(sockets);
    subscribe("http.client.request.start", onRequest);
    try {
      await f();
    } finally {
      unsubscribe("http.client.request.start", onRequest);
    }
    return [...sockets].filter((s) => !before.has(s)).length;
  };
  const configs: KeepAliveKubeConfig[] = [];
  afterEach(() => {
    for (const c of configs.splice(0)) c.destroyAgents();
  });

  it("opens one connection for sequential calls and at most one per concurrent call, where the library opens one per call", async () => {
    const plain = new k8s.KubeConfig();
    plain.loadFromFile(service("kube").kubeconfig);
    const kept = new KeepAliveKubeConfig();
    kept.loadFromFile(service("kube").kubeconfig);
    configs.push(kept);
    const calls = async (kc: k8s.KubeConfig, n: number) => {
      const core = kc.makeApiClient(k8s.CoreV1Api);
      for (let i = 0; i < n; i++) expect((await core.readNamespace({ name: "default" })).metadata?.name).toBe("default");
    };

    expect(await counting(() => calls(plain, 20))).toBe(20);
    expect(await counting(() => calls(kept, 20))).toBe(1);
    expect(kept.connectionCount()).toBe(1);

    // Eight at once need eight connections; the next eight reuse them.
    const core = kept.makeApiClient(k8s.CoreV1Api);
    const burst = () => Promise.all(Array.from({ length: 8 }, () => core.listNamespace()));
    const first = await counting(burst);
    expect(first).toBeGreaterThanOrEqual(1);
    expect(first).toBeLessThanOrEqual(8);
    expect(await counting(burst)).toBe(0);

    kept.destroyAgents();
    expect(kept.connectionCount()).toBe(0);
    // Closed, not broken: the next call opens a new connection.
    expect(await counting(() => calls(kept, 2))).toBe(1);
  });

  it("keeps the library's errors: a forbidden or missing object is still an ApiException with its code", async () => {
    const kept = new KeepAliveKubeConfig();
    kept.loadFromFile(service("kube").kubeconfig);
    configs.push(kept);
    const core = kept.makeApiClient(k8s.CoreV1Api);
    let err: unknown;
    expect(await counting(async () => (err = await core.readNamespace({ name: "no-such-namespace-kubeconfig-test" }).catch((e: unknown) => e)))).toBe(1);
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect((err as k8s.ApiException<unknown>).code).toBe(404);
    // The connection survives an error answer.
    expect(await counting(() => core.readNamespace({ name: "default" }))).toBe(0);
  });
});
