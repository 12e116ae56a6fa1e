// What integration tests import: the services of this run, and a describe() that needs some of them.
import pg from "pg";
import { describe, inject, it } from "vitest";
import type { ServiceName, TestEnv } from "./types.js";

export type { TestEnv, ServiceName } from "./types.js";

export function testEnv(): TestEnv {
  return inject("portcullisEnv");
}

/** The service, or an error that says why it is absent. */
export function service<K extends ServiceName>(name: K): NonNullable<TestEnv["services"][K]> {
  const env = testEnv();
  const s = env.services[name];
  if (!s) throw new Error(`service ${name} is not available: ${env.missing[name] ?? "not started"}`);
  return s as NonNullable<TestEnv["services"][K]>;
}

/**
 * A describe block whose tests need `names`. On a developer's machine without those services it is
 * reported as skipped; in CI (or with PORTCULLIS_REQUIRE_SERVICES=1) a missing service is a failing test.
 */
export function describeWith(names: ServiceName[], title: string, body: () => void): void {
  const env = testEnv();
  const absent = names.filter((n) => !env.services[n]);
  if (absent.length === 0) {
    describe(title, body);
  } else if (env.strict) {
    describe(title, () => {
      it("has the services it needs", () => {
        throw new Error(`missing: ${absent.map((n) => `${n} (${env.missing[n] ?? "not started"})`).join(", ")}`);
      });
    });
  } else {
    describe.skipIf(true)(`${title} [needs ${absent.join(", ")}]`, body);
  }
}

/** A tool's path, or an error saying how to get it. */
export function tool(name: string): string {
  const p = testEnv().tools[name];
  if (!p) throw new Error(`${name} not found; run \`npm run env:setup\` as root`);
  return p;
}

/** Polls `f` until it returns something other than undefined; after `timeoutMs` throws naming `what`. */
export async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Waits until the test API server serves each CRD (`imagescans.portcullis.dev`, …): its `Established`
 * condition is True. `kubectl wait --for=condition=Established` fails at once, instead of waiting, when it
 * reads a CRD created a moment ago whose status has no conditions yet (seen on a busy machine).
 */
export async function crdsEstablished(kubeconfig: string, names: readonly string[], timeoutMs = 60_000): Promise<void> {
  const { execFile } = await import("node:child_process");
  for (const name of names) {
    await until(`CRD ${name} to be Established`, () => new Promise<true | undefined>((resolve) => {
      execFile(tool("kubectl"), ["--kubeconfig", kubeconfig, "get", "crd", name, "-o", "jsonpath={.status.conditions[?(@.type==\"Established\")].status}"], (err, stdout) => {
        resolve(!err && stdout.trim() === "True" ? true : undefined);
      });
    }), timeoutMs);
  }
}

/**
 * Databases of a test's own on the run's PostgreSQL (the re-match cursor, migrations and operation ids are
 * per database): `create(prefix)` makes one and returns its URL; `dropAll()` drops every one it made.
 */
export function scratchDatabases(): { create(prefix: string): Promise<string>; dropAll(): Promise<void> } {
  const made: string[] = [];
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: service("postgres").url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  return {
    async create(prefix) {
      const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${made.length}`;
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      made.push(name);
      const u = new URL(service("postgres").url);
      u.pathname = `/${name}`;
      return u.toString();
    },
    async dropAll() {
      if (!made.length) return;
      await admin(async (c) => {
        for (const name of made.splice(0)) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
    },
  };
}
