// What integration tests import: the services of this run, and a describe() that needs some of them.
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
