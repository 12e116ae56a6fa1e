// C6 live: npm packages installed at test time by the real npm from the npm registry (fixture README, C6),
// indexed by the real scanners from a layer of the installed tree, matched against the GHSA records of the
// fixtures through the store. Oracle: the fixture README's expectations (checked with npm's semver 7.8.5),
// and npm itself for what got installed (`npm ls --json`).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultCatalogue } from "../../src/advisories/catalogue.js";
import { importPlans, planImport } from "../../src/advisories/import.js";
import { matchWithStore } from "../../src/findings/match.js";
import { indexImage, type TarEntry } from "../../src/matcher/testing.js";
import { fixturesDir } from "../../src/scanners/testing.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";

/** Installs `specs` with npm into a new folder; returns the folder. */
function npmInstall(specs: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "npm-live-"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
  execFileSync("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", ...specs], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  return dir;
}

/** Every file under `root` as a layer entry below `prefix`. */
function tree(root: string, prefix: string): TarEntry[] {
  const out: TarEntry[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ name: `${prefix}/${relative(root, p)}`, content: readFileSync(p) });
    }
  };
  walk(root);
  return out;
}

describe("C6 live: npm packages installed by npm", () => {
  let store: Store;
  const dirs: string[] = [];
  beforeAll(async () => {
    store = await openStore("memory:");
    const plan = await planImport([fixturesDir("advisories", "osv/ghsa")], defaultCatalogue());
    expect((await importPlans(store.advisories, plan.plans)).every((r) => r.status === "imported")).toBe(true);
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function findings(specs: string[]): Promise<{ installed: Record<string, string>; found: string[] }> {
    const dir = npmInstall(specs);
    dirs.push(dir);
    const ls = JSON.parse(execFileSync("npm", ["ls", "--json", "--depth=0"], { cwd: dir }).toString()) as { dependencies: Record<string, { version: string }> };
    const report = await indexImage([tree(join(dir, "node_modules"), "srv/app/node_modules")]);
    const m = (await matchWithStore(store.advisories, report))!;
    const found = m.matches.map((x) => `${x.package.name} ${x.package.version} ${[x.id, ...x.aliases].find((a) => a.startsWith("GHSA-"))} ${x.fixedIn}`).sort();
    return { installed: Object.fromEntries(Object.entries(ls.dependencies).map(([k, v]) => [k, v.version])), found };
  }

  it("lodash 4.17.15 and semver 7.5.1: one GHSA each, with the fix", async () => {
    const r = await findings(["lodash@4.17.15", "semver@7.5.1"]);
    expect(r.installed).toEqual({ lodash: "4.17.15", semver: "7.5.1" });
    expect(r.found).toEqual(["lodash 4.17.15 GHSA-35jh-r3h4-6jhm 4.17.21", "semver 7.5.1 GHSA-c2qf-rxjj-qqgw 7.5.2"]);
  }, 180_000);

  it("semver 7.5.2 and 6.3.1 (the fixes), lodash 4.17.21: nothing; semver 6.3.0: the second range", async () => {
    expect((await findings(["lodash@4.17.21", "semver@7.5.2"])).found).toEqual([]);
    expect((await findings(["semver@6.3.1"])).found).toEqual([]);
    expect((await findings(["semver@6.3.0"])).found).toEqual(["semver 6.3.0 GHSA-c2qf-rxjj-qqgw 6.3.1"]);
  }, 300_000);
});
