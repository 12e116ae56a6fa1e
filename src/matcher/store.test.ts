// The matcher over the real store: the fixture tree imported with `db import`'s code into the embedded
// store, candidates looked up by the store's one query, the Alpine 3.18 inventory indexed by the real
// scanners. The answer is the fixture README's C1 (33 matches, 14 CVEs); the PostgreSQL store runs the
// same SQL (src/store/advisory-suite.ts on both).
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { defaultCatalogue } from "../advisories/catalogue.js";
import { importPlans, planImport } from "../advisories/import.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/types.js";
import { matchReportWith } from "./match.js";
import { indexImage, OS_RELEASE, packageFixture } from "./testing.js";

let store: Store;
beforeAll(async () => {
  store = await openStore("memory:");
  const plan = await planImport([fileURLToPath(new URL("../../../shared/fixtures/advisories/alpine/vuln-list", import.meta.url))], defaultCatalogue());
  expect((await importPlans(store.advisories, plan.plans)).map((r) => r.status)).toEqual(["imported"]);
});
afterAll(async () => store?.close());

it("matches an indexed image against the advisories in the store (C1: 33 matches over 14 CVEs)", async () => {
  const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.alpine318 }, { name: "lib/apk/db/installed", content: packageFixture("apk/alpine-3.18/installed") }]]);
  const ecosystems = await store.advisories.ecosystems();
  expect(ecosystems.has("Alpine:v3.18")).toBe(true);
  const result = await matchReportWith(report, (keys) => store.advisories.candidates(keys), { ecosystemsWithData: ecosystems, now: new Date("2025-01-01T00:00:00Z") });
  expect(result.matches).toHaveLength(33);
  expect(new Set(result.matches.map((m) => m.id)).size).toBe(14);
  expect(result.coverage.distribution).toMatchObject({ state: "supported", ecosystem: "Alpine:v3.18" });
  const ssl = result.matches.find((m) => m.package.name === "libssl3" && m.id === "CVE-2023-6237")!;
  expect(ssl).toMatchObject({ fixedIn: "3.1.4-r4", matchedBy: [{ source: "alpine", ecosystem: "Alpine:v3.18", origin: { file: "3.18/main/openssl.json" } }] });
  // Every answer traces back to its operation in the store.
  expect(ssl.matchedBy[0]!.operationRef).toBe((await store.advisories.latestOperation("alpine"))!.ref);
});
