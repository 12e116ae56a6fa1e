// The findings suite, run against both stores (embedded in the unit project, PostgreSQL in test/store/): the
// fixture README's C1 (Alpine 3.18 inventory × the Alpine secdb files, 14 CVEs over 33 matches) indexed,
// stored, matched, and matched again after an advisory operation, with the reverse index deciding which
// images are matched again. `open` must give a store of its own (the re-match cursor is per database).
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultCatalogue } from "../advisories/catalogue.js";
import { importPlans, planImport } from "../advisories/import.js";
import { indexImage, OS_RELEASE, packageFixture } from "../matcher/testing.js";
import { fixturesDir } from "../scanners/testing.js";
import type { Store } from "../store/types.js";
import { matchManifest } from "./findings.js";
import { rematchPending } from "./rematch.js";

const C1_CVES = ["CVE-2022-48174", "CVE-2023-2650", "CVE-2023-2975", "CVE-2023-3446", "CVE-2023-3817", "CVE-2023-42363", "CVE-2023-42364", "CVE-2023-42365",
  "CVE-2023-42366", "CVE-2023-5363", "CVE-2023-5678", "CVE-2023-6129", "CVE-2023-6237", "CVE-2025-26519"];
const OPENSSL_CVES = ["CVE-2023-2650", "CVE-2023-2975", "CVE-2023-3446", "CVE-2023-3817", "CVE-2023-5363", "CVE-2023-5678", "CVE-2023-6129", "CVE-2023-6237"];

/** The blocks of an apk installed database whose `P:` is in `names`. */
function apkSubset(installed: Buffer, names: readonly string[]): string {
  return installed.toString("utf8").split(/\n\n+/).filter((b) => names.includes(/^P:(.*)$/m.exec(b)?.[1] ?? "")).join("\n\n") + "\n\n";
}

export function findingsSuite(title: string, open: () => Promise<Store>): void {
  describe(title, () => {
    let store: Store;
    const dir = mkdtempSync(join(tmpdir(), "findings-"));
    const full = fixturesDir("advisories", "alpine/vuln-list");
    const partial = join(dir, "vuln-list");
    const all = `sha256:${"c1".repeat(32)}`;
    const small = `sha256:${"c2".repeat(32)}`;
    const importDir = async (path: string) => {
      const plan = await planImport([path], defaultCatalogue());
      return (await importPlans(store.advisories, plan.plans)).map((r) => r.status);
    };

    beforeAll(async () => {
      store = await open();
      // The same tree without openssl's file: a later operation adds it.
      cpSync(full, partial, { recursive: true, filter: (src) => !src.endsWith("openssl.json") });
      const installed = packageFixture("apk/alpine-3.18/installed");
      for (const [digest, db] of [[all, installed.toString("utf8")], [small, apkSubset(installed, ["musl", "zlib"])]] as const) {
        const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.alpine318 }, { name: "lib/apk/db/installed", content: db }]], digest);
        await store.persistManifest({ digest, layers: [] });
        await store.setIndexFinished(report, "test", []);
      }
    });
    afterAll(async () => {
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("writes nothing without advisory data, and says so", async () => {
      expect(await matchManifest(store, all)).toEqual({ state: "no_data" });
      expect(await store.findings.get(all)).toBeUndefined();
      expect(await store.findings.unmatched()).toEqual([all, small].sort());
      expect(await matchManifest(store, `sha256:${"0".repeat(64)}`)).toEqual({ state: "not_indexed" });
    });

    it("matches every image indexed before the first data arrived, then only those an operation touches", async () => {
      expect(await importDir(partial)).toEqual(["imported"]);
      const first = await rematchPending(store, { now: new Date("2025-01-01T00:00:00Z") });
      expect(first).toMatchObject({ operations: 1, manifests: 2, failed: [] });
      expect(first.changed.map((c) => c.manifest).sort()).toEqual([all, small].sort());
      const before = (await store.findings.get(all))!;
      // C1 without openssl's file: the 5 busybox CVEs and musl's.
      expect(new Set(before.findings.map((f) => f.id))).toEqual(new Set(C1_CVES.filter((c) => !OPENSSL_CVES.includes(c))));
      expect(before.summary).toMatchObject({ total: 6, coverage: "supported", coverageMessage: "Alpine:v3.18 supported", matchedAt: "2025-01-01T00:00:00.000Z" });
      expect(before.summary.fixable).toBe(6);
      expect((await store.findings.get(small))!.findings.map((f) => `${f.id} ${f.package} ${f.fixedIn}`)).toEqual(["CVE-2025-26519 musl 1.2.4-r3"]);
      // Nothing new: nothing to do.
      expect(await rematchPending(store)).toMatchObject({ operations: 0, manifests: 0 });

      expect(await importDir(full)).toEqual(["imported"]);
      const second = await rematchPending(store, { now: new Date("2025-01-02T00:00:00Z") });
      // openssl's records touch libssl3/libcrypto3 of the big image only: the small one is not matched again.
      expect(second).toMatchObject({ operations: 1, manifests: 1, failed: [] });
      expect(second.changed.map((c) => c.manifest)).toEqual([all]);
      const after = (await store.findings.get(all))!;
      expect(new Set(after.findings.map((f) => f.id))).toEqual(new Set(C1_CVES));
      expect(after.findings).toHaveLength(33);
      expect(after.summary.total).toBe(14);
      expect(after.findings.find((f) => f.id === "CVE-2023-6237" && f.package === "libssl3")).toMatchObject({ version: "3.1.0-r4", fixedIn: "3.1.4-r4", fixState: "fixed" });
      // Must not: fixed exactly at the installed version.
      expect(after.findings.some((f) => f.id === "CVE-2023-1255")).toBe(false);
      expect(second.changed[0]!.previous?.summary.total).toBe(6);
      expect((await store.findings.get(small))!.summary.matchedAt).toBe("2025-01-01T00:00:00.000Z");
    });

    it("answers the reverse index by package key", async () => {
      expect(await store.findings.manifestsForKeys([{ ecosystem: "Alpine:v3.18", name: "musl" }])).toEqual([all, small].sort());
      expect(await store.findings.manifestsForKeys([{ ecosystem: "Alpine:v3.18", name: "openssl" }])).toEqual([all]);
      expect(await store.findings.manifestsForKeys([{ ecosystem: "Alpine:v3.17", name: "musl" }])).toEqual([]);
      expect(await store.findings.unmatched()).toEqual([]);
    });

    it("deleting a manifest deletes its findings and keys", async () => {
      const gone = `sha256:${"c3".repeat(32)}`;
      const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.alpine318 }, { name: "lib/apk/db/installed", content: apkSubset(packageFixture("apk/alpine-3.18/installed"), ["musl"]) }]], gone);
      await store.persistManifest({ digest: gone, layers: [] });
      await store.setIndexFinished(report, "test", []);
      expect((await matchManifest(store, gone)).state).toBe("matched");
      expect(await store.findings.manifestsForKeys([{ ecosystem: "Alpine:v3.18", name: "musl" }])).toContain(gone);
      await store.deleteManifests([gone]);
      expect(await store.findings.get(gone)).toBeUndefined();
      expect(await store.findings.manifestsForKeys([{ ecosystem: "Alpine:v3.18", name: "musl" }])).not.toContain(gone);
    });
  });
}
