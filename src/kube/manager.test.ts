// The manager's order and shutdown without leader election (the Lease itself is test/kube/leader.test.ts and
// test/controller/failover.test.ts; a real two-process run is test/controller/roles.test.ts).
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { SharedCache } from "./cache.js";
import { Manager, runnable } from "./manager.js";

function recorder() {
  const seen: string[] = [];
  const make = (name: string, leader: boolean, o: { startMs?: number; failStart?: boolean; failStop?: boolean } = {}) =>
    runnable(name, leader, async (signal) => {
      seen.push(`start ${name}`);
      if (o.startMs) await new Promise((r) => setTimeout(r, o.startMs));
      if (o.failStart) throw new Error(`${name} cannot start`);
      seen.push(`running ${name}${signal.aborted ? " (aborted)" : ""}`);
      return async () => {
        seen.push(`stop ${name}`);
        if (o.failStop) throw new Error(`${name} cannot stop`);
      };
    });
  return { seen, make };
}

describe("Manager", () => {
  const cache = () => new SharedCache(new KubeConfig());

  it("starts each runnable once the one before runs, the leader's after the others, and stops in reverse", async () => {
    const { seen, make } = recorder();
    const m = new Manager({ cache: cache() });
    // Added out of order: a leader runnable between two others still starts after them.
    m.add(make("caches", false, { startMs: 30 })).add(make("controller", true, { startMs: 10 })).add(make("server", false)).add(make("gc", true));
    await m.start();
    expect(seen).toEqual(["start caches", "running caches", "start server", "running server", "start controller", "running controller", "start gc", "running gc"]);
    expect(m.leading).toBe(true);
    seen.length = 0;
    await m.stop();
    expect(seen).toEqual(["stop gc", "stop controller", "stop server", "stop caches"]);
    expect(m.leading).toBe(false);
    // Idempotent.
    await m.stop();
    expect(seen).toHaveLength(4);
  });

  it("stops what it started and rejects, naming the runnable, when one that needs no Lease cannot start", async () => {
    const { seen, make } = recorder();
    const m = new Manager({ cache: cache() });
    m.add(make("caches", false)).add(make("server", false, { failStart: true })).add(make("after", false)).add(make("controller", true));
    await expect(m.start()).rejects.toThrow(/^server: server cannot start$/);
    expect(seen).toEqual(["start caches", "running caches", "start server", "stop caches"]);
  });

  it("goes on with the term when a leader runnable cannot start, and logs a failed stop without stopping the rest", async () => {
    const { seen, make } = recorder();
    const lines: string[] = [];
    const m = new Manager({ cache: cache(), log: (msg, _f, level) => lines.push(`${level} ${msg}`) });
    m.add(make("registration", true, { failStart: true })).add(make("controller", true, { failStop: true })).add(make("server", false));
    await m.start();
    await m.stop();
    expect(seen).toEqual(["start server", "running server", "start registration", "start controller", "running controller", "stop controller", "stop server"]);
    expect(lines).toContain("error registration failed to start: registration cannot start");
    expect(lines).toContain("error stopping controller: controller cannot stop");
  });

  it("without leader runnables, starts no term (and says no controllers run)", async () => {
    const { make } = recorder();
    const lines: string[] = [];
    const m = new Manager({ cache: cache(), log: (msg) => lines.push(msg) });
    m.add(make("webhook-server", false));
    await m.start();
    expect(m.leading).toBe(false);
    await m.stop();
    expect(lines).not.toContain("controllers running");
  });

  it("refuses a runnable added after start", async () => {
    const { make } = recorder();
    const m = new Manager({ cache: cache() });
    m.add(make("a", false));
    await m.start();
    expect(() => m.add(make("b", false))).toThrow(/added after start/);
    await m.stop();
  });
});
