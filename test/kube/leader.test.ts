// Leader election against the real API server: one leader among candidates, release on stop(), takeover
// after a crash (a SIGKILLed child process) within the lease duration plus a few retry periods, and a leader
// stepping down when its Lease is stolen, when RBAC forbids its renewals, and when the API server is gone.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createServer, connect, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { LeaderElector, type LeaderElectionOptions } from "../../src/kube/leader.js";
import { describeWith, service, tool } from "../env/index.js";
import { kubeconfigYaml } from "../env/services.js";

const run = promisify(execFile);
const NS = "leader-test";
/** Short durations so the tests stay fast: lease 3 s, renew deadline 2 s, retry 0.5 s. */
const FAST = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const candidateScript = fileURLToPath(new URL("./fixtures/leader-candidate.ts", import.meta.url));

/** A period of believed leadership: from onStartedLeading to its signal aborting (or the process dying). */
interface Interval {
  who: string;
  start: number;
  end?: number;
}

interface Candidate {
  id: string;
  elector: LeaderElector;
  intervals: Interval[];
  signals: AbortSignal[];
  stoppedCalls: number;
  /** Requests its elector made. */
  requests: number;
  leaders: Array<string | undefined>;
  logs: string[];
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Asserts that no two intervals overlap (an open interval lasts until now). */
function expectNoOverlap(intervals: Interval[]): void {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    expect(prev.end, `${prev.who} still led when ${cur.who} started`).toBeDefined();
    expect(cur.start, `${prev.who} led until ${prev.end}, ${cur.who} from ${cur.start}`).toBeGreaterThanOrEqual(prev.end!);
  }
}

describeWith(["kube"], "leader election with a Lease", () => {
  let kc: k8s.KubeConfig;
  let coord: k8s.CoordinationV1Api;
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const live: Candidate[] = [];
  const children: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    coord = kc.makeApiClient(k8s.CoordinationV1Api);
    await kc
      .makeApiClient(k8s.CoreV1Api)
      .createNamespace({ body: { metadata: { name: NS } } })
      .catch((e: { code?: number }) => (e.code === 409 ? undefined : Promise.reject(e)));
  });

  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(live.splice(0).map((c) => c.elector.stop()));
  });
  afterAll(async () => {
    await kubectl("delete", "namespace", NS, "--wait=false").catch(() => undefined);
  });

  function candidate(lease: string, id: string, opts: Partial<LeaderElectionOptions> = {}, config: k8s.KubeConfig = kc): Candidate {
    const c: Candidate = { id, intervals: [], signals: [], stoppedCalls: 0, requests: 0, leaders: [], logs: [], elector: undefined as unknown as LeaderElector };
    c.elector = new LeaderElector({
      kc: config,
      namespace: NS,
      name: lease,
      identity: id,
      ...FAST,
      onRequest: () => c.requests++,
      onStartedLeading: (signal) => {
        const interval: Interval = { who: id, start: Date.now() };
        c.intervals.push(interval);
        c.signals.push(signal);
        signal.addEventListener("abort", () => (interval.end = Date.now()), { once: true });
      },
      onStoppedLeading: () => c.stoppedCalls++,
      onNewLeader: (leader) => c.leaders.push(leader),
      log: (msg) => c.logs.push(`${new Date().toISOString()} ${msg}`),
      ...opts,
    });
    live.push(c);
    return c;
  }

  const readLease = (name: string) => coord.readNamespacedLease({ namespace: NS, name });
  /** The Lease as the API server stores it (kubectl's JSON, not client-node's model). */
  const rawLease = async (name: string) => JSON.parse((await kubectl("get", "lease", name, "-n", NS, "-o", "json")).stdout) as { spec: Record<string, unknown> };

  it("elects exactly one of two candidates, names it in the Lease, and renews with one request per period", async () => {
    const a = candidate("two", "alpha");
    const b = candidate("two", "beta");
    a.elector.start();
    b.elector.start();
    await waitFor("a leader", () => a.elector.isLeader || b.elector.isLeader, 15_000);
    const [leader, follower] = a.elector.isLeader ? [a, b] : [b, a];
    await waitFor("the follower to see the leader", () => follower.elector.leader === leader.id, 5_000);

    // For several retry periods: still exactly one, and the follower never led.
    const before = { leader: leader.requests, follower: follower.requests };
    const renew1 = (await readLease("two")).spec!.renewTime as unknown as string;
    for (let i = 0; i < 20; i++) {
      expect([a.elector.isLeader, b.elector.isLeader].filter(Boolean)).toHaveLength(1);
      await sleep(100);
    }
    const lease = await readLease("two");
    expect(lease.spec).toMatchObject({ holderIdentity: leader.id, leaseDurationSeconds: 3, leaseTransitions: 0 });
    expect(String(lease.spec!.acquireTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(String(lease.spec!.renewTime) > String(renew1)).toBe(true);
    expect(leader.intervals).toHaveLength(1);
    expect(follower.intervals).toHaveLength(0);
    expect(leader.elector.leader).toBe(leader.id);
    expect(follower.leaders).toEqual([leader.id]);
    // 2 s at one renewal per 0.5 s: the leader renews without reading first; the follower reads every 0.5-1.1 s.
    const leaderRequests = leader.requests - before.leader;
    const followerRequests = follower.requests - before.follower;
    expect(leaderRequests).toBeGreaterThanOrEqual(2);
    expect(leaderRequests).toBeLessThanOrEqual(6);
    expect(followerRequests).toBeLessThanOrEqual(5);

    // Stopping the follower changes nothing; stopping the leader releases the Lease.
    await follower.elector.stop();
    expect(follower.stoppedCalls).toBe(0);
    expect((await readLease("two")).spec!.holderIdentity).toBe(leader.id);
    await leader.elector.stop();
    expect(leader.signals[0]!.aborted).toBe(true);
    expect(leader.stoppedCalls).toBe(1);
    expect(leader.elector.isLeader).toBe(false);
    const released = await rawLease("two");
    // Sent and stored as "" (not null, which the API server would drop): the next candidate finds it free.
    expect(released.spec.holderIdentity).toBe("");
    expect(released.spec).toMatchObject({ leaseDurationSeconds: 1, leaseTransitions: 0 });
    expect(leader.logs.join("\n")).not.toMatch(/failed|could not/);
  });

  it("hands over at once when the leader stops: well under the lease duration", async () => {
    const slow = { leaseDurationMs: 8000, renewDeadlineMs: 5000, retryPeriodMs: 500 };
    const a = candidate("release", "alpha", slow);
    a.elector.start();
    await waitFor("alpha to lead", () => a.elector.isLeader, 15_000);
    const b = candidate("release", "beta", slow);
    b.elector.start();
    await waitFor("beta to see alpha", () => b.elector.leader === "alpha", 5_000);
    await sleep(1000);
    expect(b.intervals).toHaveLength(0);

    await a.elector.stop();
    const stoppedAt = Date.now();
    await waitFor("beta to lead", () => b.elector.isLeader, 8_000);
    const takeoverMs = b.intervals[0]!.start - stoppedAt;
    console.log(`leader: takeover after stop() in ${takeoverMs} ms (lease duration ${slow.leaseDurationMs} ms)`);
    // beta polls every 0.5-1.1 s and finds the Lease free; waiting for the lease would take 8 s.
    expect(takeoverMs).toBeLessThan(3000);
    expect(a.stoppedCalls).toBe(1);
    expect(a.signals[0]!.aborted).toBe(true);
    expectNoOverlap([...a.intervals, ...b.intervals]);
    expect((await readLease("release")).spec).toMatchObject({ holderIdentity: "beta", leaseTransitions: 1, leaseDurationSeconds: 8 });
    expect(b.leaders).toEqual(["alpha", undefined, "beta"]);
  });

  it("takes over from a SIGKILLed leader after the lease duration, never with two leaders at once", async () => {
    const intervals: Interval[] = [];
    const procs = new Map<string, { child: ChildProcessWithoutNullStreams; stderr: string[]; events: Array<{ event: string; t: number }> }>();
    const spawnCandidate = (id: string) => {
      const child = spawn(process.execPath, ["--import", "tsx", candidateScript, service("kube").kubeconfig, NS, "crash", id, String(FAST.leaseDurationMs), String(FAST.renewDeadlineMs), String(FAST.retryPeriodMs)], { cwd: repoRoot });
      children.push(child);
      const p = { child, stderr: [] as string[], events: [] as Array<{ event: string; t: number }> };
      let buf = "";
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const ev = JSON.parse(buf.slice(0, nl)) as { event: string; t: number };
          buf = buf.slice(nl + 1);
          p.events.push(ev);
          if (ev.event === "started") intervals.push({ who: id, start: ev.t });
          if (ev.event === "aborted") {
            const open = intervals.find((i) => i.who === id && i.end === undefined);
            if (open) open.end = ev.t;
          }
        }
      });
      child.stderr.on("data", (d: Buffer) => p.stderr.push(d.toString()));
      procs.set(id, p);
      return p;
    };
    const leads = (id: string) => intervals.some((i) => i.who === id && i.end === undefined);

    const first = spawnCandidate("child-1");
    await waitFor("child-1 to lead", () => leads("child-1"), 30_000, 50).catch((e: Error) => Promise.reject(new Error(`${e.message}\n${first.stderr.join("")}`)));
    const second = spawnCandidate("child-2");
    const local = candidate("crash", "local");
    local.elector.start();
    await waitFor("child-2 to see child-1", () => second.events.some((e) => e.event === "leader"), 30_000, 50);
    await waitFor("local to see child-1", () => local.elector.leader === "child-1", 5_000);
    await sleep(1500);
    expect(intervals.map((i) => i.who)).toEqual(["child-1"]);

    const exited = new Promise((r) => first.child.once("exit", r));
    const killedAt = Date.now();
    first.child.kill("SIGKILL");
    await exited;
    intervals.find((i) => i.who === "child-1")!.end = killedAt;

    await waitFor("a new leader", () => local.elector.isLeader || leads("child-2"), 15_000);
    for (const i of local.intervals) intervals.push(i);
    const successor = intervals.find((i) => i.who !== "child-1")!;
    const takeoverMs = successor.start - killedAt;
    console.log(`leader: ${successor.who} took over ${takeoverMs} ms after SIGKILL (lease ${FAST.leaseDurationMs} ms, retry ${FAST.retryPeriodMs} ms)`);
    // The last renewal was at most one retry period (plus a request) before the kill; candidates wait a full
    // lease duration after they saw it, and notice within a jittered retry period (up to 1.1 s).
    expect(takeoverMs).toBeGreaterThanOrEqual(FAST.leaseDurationMs - FAST.retryPeriodMs - 300);
    expect(takeoverMs).toBeLessThanOrEqual(FAST.leaseDurationMs + 7 * FAST.retryPeriodMs);
    expect((await readLease("crash")).spec).toMatchObject({ holderIdentity: successor.who, leaseTransitions: 1 });

    // A while longer: still exactly one leader.
    await sleep(1500);
    const stillLeading = [local.elector.isLeader, leads("child-2")].filter(Boolean);
    expect(stillLeading).toHaveLength(1);

    // child-2 stops on SIGTERM (releasing if it leads); then local may take over, still without overlap.
    const secondExit = new Promise<number | null>((r) => second.child.once("close", r));
    second.child.kill("SIGTERM");
    expect(await secondExit, second.stderr.join("")).toBe(0);
    await local.elector.stop();
    for (const i of local.intervals) if (!intervals.includes(i)) intervals.push(i);
    expectNoOverlap(intervals);
    expect(second.events.map((e) => e.event)).toContain("exit");
  });

  it("steps down at once when its Lease is taken by someone else, then campaigns again", async () => {
    const a = candidate("steal", "alpha");
    a.elector.start();
    await waitFor("alpha to lead", () => a.elector.isLeader, 15_000);
    await sleep(700);

    const lease = await readLease("steal");
    const now = new k8s.V1MicroTime();
    // Taken before the write: alpha cannot have seen the stolen record any earlier.
    const stolenAt = Date.now();
    await coord.replaceNamespacedLease({ namespace: NS, name: "steal", body: { ...lease, spec: { ...lease.spec, holderIdentity: "intruder", renewTime: now, acquireTime: now, leaseDurationSeconds: 3, leaseTransitions: (lease.spec!.leaseTransitions ?? 0) + 1 } } });

    await waitFor("alpha to step down", () => a.stoppedCalls === 1, 5_000);
    const lostAfterMs = a.intervals[0]!.end! - stolenAt;
    console.log(`leader: stepped down ${lostAfterMs} ms after the Lease was stolen`);
    expect(a.signals[0]!.aborted).toBe(true);
    expect(a.elector.isLeader).toBe(false);
    expect(a.elector.leader).toBe("intruder");
    // Found at the next renewal (every 0.5 s), not at the renew deadline.
    expect(lostAfterMs).toBeLessThan(FAST.renewDeadlineMs);
    expect(a.logs.join("\n")).toMatch(/lost lease leader-test\/steal: the lease is now held by intruder/);

    // The intruder never renews: alpha takes the Lease back once it has been unchanged for 3 s.
    await waitFor("alpha to lead again", () => a.intervals.length === 2, 10_000);
    const backAfterMs = a.intervals[1]!.start - stolenAt;
    console.log(`leader: re-acquired ${backAfterMs} ms after the steal`);
    expect(backAfterMs).toBeGreaterThanOrEqual(3000);
    expect(backAfterMs).toBeLessThanOrEqual(3000 + 7 * FAST.retryPeriodMs);
    expect((await readLease("steal")).spec).toMatchObject({ holderIdentity: "alpha", leaseTransitions: 2 });
    expect(a.leaders).toEqual(["alpha", "intruder", "alpha"]);
  });

  it("loses leadership when its renewals are refused (RBAC revoked), with the Status message logged", async () => {
    await kubectl("create", "role", "lease-holder", "-n", NS, "--verb=get,create,update", "--resource=leases.coordination.k8s.io");
    await kubectl("create", "rolebinding", "nobody-leases", "-n", NS, "--role=lease-holder", "--user=nobody");
    const s = service("kube");
    const nobody = new k8s.KubeConfig();
    nobody.loadFromString(kubeconfigYaml(s.server, s.caPem, s.unprivilegedToken, "nobody"));
    const a = candidate("rbac", "nobody", {}, nobody);
    a.elector.start();
    await waitFor("nobody to lead", () => a.elector.isLeader, 15_000);
    await sleep(700);
    expect(a.logs.join("\n")).not.toMatch(/renewing .* failed/);

    await kc.makeApiClient(k8s.RbacAuthorizationV1Api).deleteNamespacedRoleBinding({ namespace: NS, name: "nobody-leases" });
    const revokedAt = Date.now();
    await waitFor("nobody to step down", () => a.stoppedCalls === 1, 10_000);
    const lostAfterMs = a.intervals[0]!.end! - revokedAt;
    console.log(`leader: stepped down ${lostAfterMs} ms after RBAC was revoked (renew deadline ${FAST.renewDeadlineMs} ms)`);
    expect(a.signals[0]!.aborted).toBe(true);
    expect(a.elector.isLeader).toBe(false);
    // It kept trying until the renew deadline (counted from its last successful renewal, at most a retry
    // period before the revocation), and no longer.
    // period before the revocation), and no longer; stepping down at the first refusal would take < 0.6 s.
    expect(lostAfterMs).toBeGreaterThanOrEqual(FAST.renewDeadlineMs - 2 * FAST.retryPeriodMs);
    expect(lostAfterMs).toBeLessThanOrEqual(FAST.renewDeadlineMs + 1500);
    const logs = a.logs.join("\n");
    expect(logs).toMatch(/renewing lease leader-test\/rbac failed: HTTP 403: leases.coordination.k8s.io "rbac" is forbidden: User "nobody" cannot (get|update) resource "leases"/);
    expect(logs).toMatch(/lost lease leader-test\/rbac: no successful renewal within 2000 ms/);
    expect(logs).not.toMatch(/Headers:/);

    await a.elector.stop(); // not leading: nothing to release, nothing to throw
    expect(a.stoppedCalls).toBe(1);
    await kubectl("delete", "role", "lease-holder", "-n", NS);
  });

  /**
   * A TCP proxy to the API server, and a kubeconfig that goes through it. refuse(): the port is closed and
   * open connections are cut (connection refused). blackHole(): open connections are cut and new ones are
   * accepted but never answered (requests hang until the client gives up).
   */
  async function apiProxy() {
    const s = service("kube");
    const upstream = new URL(s.server);
    const sockets = new Set<Socket>();
    let mode: "forward" | "blackhole" = "forward";
    const track = (sock: Socket) => {
      sockets.add(sock);
      sock.on("error", () => undefined);
      sock.on("close", () => sockets.delete(sock));
    };
    const server: Server = createServer((down) => {
      track(down);
      if (mode === "blackhole") return;
      const up = connect(Number(upstream.port), upstream.hostname);
      track(up);
      down.on("close", () => up.destroy());
      up.on("close", () => down.destroy());
      down.pipe(up).pipe(down);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const config = new k8s.KubeConfig();
    config.loadFromString(kubeconfigYaml(`https://127.0.0.1:${port}`, s.caPem, s.token));
    const cut = () => {
      for (const sock of sockets) sock.destroy();
    };
    const proxy = {
      kc: config,
      refuse: () => new Promise<void>((r) => (server.close(() => r()), cut())),
      blackHole: () => {
        mode = "blackhole";
        cut();
      },
    };
    proxies.push(proxy);
    return proxy;
  }
  const proxies: Array<{ refuse(): Promise<void> }> = [];
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.refuse()));
  });

  it("a leader cut off from the API server (connection refused) steps down at the renew deadline; stop() never throws", async () => {
    const proxy = await apiProxy();
    const a = candidate("gone", "alpha", {}, proxy.kc);
    a.elector.start();
    await waitFor("alpha to lead", () => a.elector.isLeader, 15_000);
    await sleep(700);
    await proxy.refuse();
    const goneAt = Date.now();
    await waitFor("alpha to step down", () => a.stoppedCalls === 1, 10_000);
    const lostAfterMs = a.intervals[0]!.end! - goneAt;
    console.log(`leader: stepped down ${lostAfterMs} ms after the API server refused connections`);
    expect(lostAfterMs).toBeLessThanOrEqual(FAST.renewDeadlineMs + 1500);
    expect(a.signals[0]!.aborted).toBe(true);
    expect(a.logs.join("\n")).toMatch(/renewing lease leader-test\/gone failed: .*(ECONNREFUSED|ECONNRESET|socket hang up)/);
    await expect(a.elector.stop()).resolves.toBeUndefined();
    expect(a.stoppedCalls).toBe(1);

    // stop() while leading, the API server unreachable: resolves at once, aborts the signal, calls onStoppedLeading.
    const proxy2 = await apiProxy();
    const b = candidate("gone-2", "beta", {}, proxy2.kc);
    b.elector.start();
    await waitFor("beta to lead", () => b.elector.isLeader, 15_000);
    await proxy2.refuse();
    const t0 = Date.now();
    await expect(b.elector.stop()).resolves.toBeUndefined();
    const stopMs = Date.now() - t0;
    console.log(`leader: stop() with the API server refusing connections took ${stopMs} ms`);
    expect(stopMs).toBeLessThan(1000);
    expect(b.signals[0]!.aborted).toBe(true);
    expect(b.stoppedCalls).toBe(1);
    expect(b.logs.join("\n")).toMatch(/could not release lease leader-test\/gone-2: .*(ECONNREFUSED|ECONNRESET|socket hang up)/);
  });

  it("a leader whose requests hang steps down at the renew deadline, and stop() gives up on the release", async () => {
    const proxy = await apiProxy();
    const a = candidate("hang", "alpha", {}, proxy.kc);
    a.elector.start();
    await waitFor("alpha to lead", () => a.elector.isLeader, 15_000);
    await sleep(700);
    proxy.blackHole();
    const hungAt = Date.now();
    await waitFor("alpha to step down", () => a.stoppedCalls === 1, 10_000);
    const lostAfterMs = a.intervals[0]!.end! - hungAt;
    console.log(`leader: stepped down ${lostAfterMs} ms after the API server stopped answering`);
    // A hanging request is cut off at the deadline rather than holding the leader past it.
    expect(lostAfterMs).toBeLessThanOrEqual(FAST.renewDeadlineMs + 1000);
    expect(a.signals[0]!.aborted).toBe(true);
    expect(a.logs.join("\n")).toMatch(/renewing lease leader-test\/hang failed: no answer within \d+ ms/);
    await a.elector.stop();

    const proxy2 = await apiProxy();
    const b = candidate("hang-2", "beta", {}, proxy2.kc);
    b.elector.start();
    await waitFor("beta to lead", () => b.elector.isLeader, 15_000);
    proxy2.blackHole();
    const t0 = Date.now();
    await expect(b.elector.stop()).resolves.toBeUndefined();
    const stopMs = Date.now() - t0;
    console.log(`leader: stop() with the API server not answering took ${stopMs} ms (renew deadline ${FAST.renewDeadlineMs} ms)`);
    expect(stopMs).toBeGreaterThanOrEqual(FAST.renewDeadlineMs - 100);
    expect(stopMs).toBeLessThan(FAST.renewDeadlineMs + 1500);
    expect(b.signals[0]!.aborted).toBe(true);
    expect(b.stoppedCalls).toBe(1);
    expect(b.logs.join("\n")).toMatch(/could not release lease leader-test\/hang-2: no answer within 2000 ms/);
  });
});
