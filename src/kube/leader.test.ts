import { ApiException, KubeConfig, V1MicroTime, type V1Lease } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { LeaderElector, describeError, jittered, leaseRecord, sameRecord, statusCode } from "./leader.js";

describe("describeError", () => {
  it("gives the API server's Status message, not client-node's dump of the response", () => {
    const status = { kind: "Status", status: "Failure", message: 'leases.coordination.k8s.io "x" is forbidden: User "nobody" cannot update resource "leases"', reason: "Forbidden", code: 403 };
    const asString = new ApiException(403, "Unknown API Status Code!", JSON.stringify(status), { "content-type": "application/json" });
    expect(describeError(asString)).toBe(`HTTP 403: ${status.message}`);
    expect(describeError(new ApiException(409, "x", { message: "Operation cannot be fulfilled", reason: "Conflict" }, {}))).toBe("HTTP 409: Operation cannot be fulfilled");
    expect(describeError(new ApiException(409, "x", { reason: "Conflict" }, {}))).toBe("HTTP 409: Conflict");
    expect(describeError(new ApiException(401, "Unauthorized", undefined, {}))).toBe("HTTP 401: Unauthorized");
    expect(describeError(new ApiException(502, "x", "<html>bad gateway</html>", {}))).toBe("HTTP 502: <html>bad gateway</html>");
    expect(describeError(new Error("connect ECONNREFUSED 127.0.0.1:1"))).toBe("connect ECONNREFUSED 127.0.0.1:1");
    expect(describeError("odd")).toBe("odd");
    expect(statusCode(new ApiException(404, "x", undefined, {}))).toBe(404);
    expect(statusCode(Object.assign(new Error("x"), { code: "ECONNREFUSED" }))).toBeUndefined();
    expect(statusCode(undefined)).toBeUndefined();
  });
});

describe("lease records", () => {
  it("reads times as the API server's strings, whether client-node gave a string or a Date", () => {
    const t = "2025-01-02T03:04:05.123456Z";
    const asRead = { spec: { holderIdentity: "a", leaseDurationSeconds: 15, acquireTime: t, renewTime: t, leaseTransitions: 2 } } as unknown as V1Lease;
    expect(leaseRecord(asRead)).toEqual({ holderIdentity: "a", leaseDurationSeconds: 15, acquireTime: t, renewTime: t, leaseTransitions: 2 });
    const micro = new V1MicroTime("2025-01-02T03:04:05.123Z");
    expect(leaseRecord({ spec: { renewTime: micro } }).renewTime).toBe("2025-01-02T03:04:05.123000Z");
    expect(leaseRecord({ spec: { holderIdentity: "" } }).holderIdentity).toBeUndefined();
    expect(leaseRecord(undefined)).toEqual({});
  });

  it("compares the election fields only; an empty holder is no holder", () => {
    const r = { holderIdentity: "a", leaseDurationSeconds: 15, renewTime: "t1", acquireTime: "t0", leaseTransitions: 1 };
    expect(sameRecord(r, { ...r })).toBe(true);
    expect(sameRecord(r, { ...r, renewTime: "t2" })).toBe(false);
    expect(sameRecord(r, { ...r, holderIdentity: "b" })).toBe(false);
    expect(sameRecord(r, { ...r, leaseTransitions: 2 })).toBe(false);
    expect(sameRecord({ holderIdentity: "" }, {})).toBe(true);
    expect(sameRecord({ leaseTransitions: 0 }, {})).toBe(true);
  });
});

describe("jittered", () => {
  it("spreads a wait over [base, base * 2.2) like client-go's wait.Jitter(d, 1.2)", () => {
    expect(jittered(1000, 1.2, () => 0)).toBe(1000);
    expect(jittered(1000, 1.2, () => 0.5)).toBe(1600);
    expect(jittered(1000, 1.2, () => 0.999)).toBeLessThan(2200);
    for (let i = 0; i < 100; i++) {
      const d = jittered(500);
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThan(1100);
    }
  });
});

describe("LeaderElector options", () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:1" }], users: [{ name: "u" }], contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
  const base = { kc, namespace: "ns", name: "lease", identity: "me", onStartedLeading: () => undefined };

  it("refuses durations that cannot be safe", () => {
    expect(() => new LeaderElector({ ...base, identity: "" })).toThrow(/identity/);
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(/leaseDurationMs must be greater than renewDeadlineMs/);
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(/renewDeadlineMs must be greater than retryPeriodMs/);
    expect(() => new LeaderElector({ ...base, retryPeriodMs: 0 })).toThrow(/retryPeriodMs/);
    let requests = 0;
    const e = new LeaderElector({ ...base, onRequest: () => requests++ });
    expect(e.isLeader).toBe(false);
    expect(e.leader).toBeUndefined();
    expect(requests).toBe(0);
  });

  it("logs unreachable API servers and stops cleanly, without unhandled rejections", async () => {
    const logs: string[] = [];
    let requests = 0;
    const e = new LeaderElector({ ...base, leaseDurationMs: 600, renewDeadlineMs: 400, retryPeriodMs: 50, log: (m) => logs.push(m), onRequest: () => requests++ });
    e.start();
    e.start();
    const deadline = Date.now() + 5000;
    while (!logs.some((l) => l.includes("failed")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await e.stop();
    await e.stop();
    expect(logs.join("\n")).toMatch(/acquiring lease ns\/lease failed: .*ECONNREFUSED/);
    expect(requests).toBeGreaterThan(0);
    expect(e.isLeader).toBe(false);
    expect(() => e.start()).toThrow(/after stop/);
  });
});
