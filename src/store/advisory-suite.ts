// The advisory store suite, run against both backends (embedded in the unit project, PostgreSQL in
// test/store/). Every test uses source names of its own, so suites may share a database.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Advisory, AffectedPackage } from "../model/advisory.js";
import type { OperationInput } from "./advisory-types.js";
import type { Store } from "./types.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function file(path: string, text: string): OperationInput["files"][number] {
  const bytes = Buffer.from(text);
  return { path, bytes, sha256: sha(bytes), size: bytes.length };
}

function pkg(name: string, fixed: string, ecosystem = "Debian:12"): AffectedPackage {
  return {
    ecosystem, name, nameKind: "source", fixState: "fixed", fixedVersions: [fixed],
    ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed }] }],
  };
}

function adv(id: string, affected: AffectedPackage[], extra: Partial<Advisory> = {}): Advisory {
  return {
    id, aliases: [], advisoryIds: [], severity: "High", cvss: [], references: [], affected,
    details: `details of ${id}`, origin: { file: "f.json", record: id }, ...extra,
  };
}

export function advisoryStoreSuite(title: string, open: () => Promise<Store>): void {
  describe(title, () => {
    let store: Store;
    const run = randomBytes(4).toString("hex");
    const src = (s: string) => `${s}-${run}`;
    const op = (source: string, files: OperationInput["files"], advisories: Advisory[], more: Partial<OperationInput> = {}): OperationInput => ({
      source, kind: "os", origin: "test", parserVersion: "1", fingerprint: {}, files, advisories, ...more,
    });

    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => store?.close());

    it("records an operation whole and answers candidates by (ecosystem, package)", async () => {
      const s = src("deb");
      const res = await store.advisories.recordOperation(op(s, [file("debian.json", "v1")], [
        adv("CVE-1", [pkg(`glibc-${run}`, "2.36-9+deb12u3"), pkg(`glibc-${run}`, "2.31-13+deb11u7", "Debian:11")]),
        adv("CVE-2", [pkg(`gnutls28-${run}`, "3.7.9-2+deb12u1")]),
      ]));
      expect(res.unchanged).toBe(false);
      expect(res.operation.stats).toMatchObject({ advisories: 2, affected: 3, added: 2, removed: 0, modified: 0 });
      const c = await store.advisories.candidates([{ ecosystem: "Debian:12", name: `glibc-${run}` }, { ecosystem: "Debian:12", name: `none-${run}` }]);
      expect(c).toHaveLength(1);
      expect(c[0]).toMatchObject({ source: s, operationRef: res.operation.ref, advisory: { id: "CVE-1", severity: "High" }, affected: { ecosystem: "Debian:12", fixedVersions: ["2.36-9+deb12u3"] } });
      // Candidates leave the long text out; the whole record is one call away.
      expect((c[0]!.advisory as Advisory).details).toBeUndefined();
      const ecos = await store.advisories.ecosystems();
      expect(ecos.has("Debian:12") && ecos.has("Debian:11")).toBe(true);
      const full = await store.advisories.advisory(s, "CVE-1");
      expect(full?.details).toBe("details of CVE-1");
      expect(full?.affected.map((a) => a.ecosystem)).toEqual(["Debian:12", "Debian:11"]);
    });

    it("does nothing for the same files and parser, and diffs a changed source against the previous operation", async () => {
      const s = src("diff");
      const first = await store.advisories.recordOperation(op(s, [file("a.json", "1")], [
        adv("CVE-A", [pkg(`a-${run}`, "1.0-1")]), adv("CVE-B", [pkg(`b-${run}`, "1.0-1")]), adv("CVE-C", [pkg(`c-${run}`, "1.0-1")]),
      ]));
      // Asked before the change: what the store parsed then (it keeps parsed rows) must not answer after it.
      const before = await store.advisories.candidates([{ ecosystem: "Debian:12", name: `b-${run}` }, { ecosystem: "Debian:12", name: `c-${run}` }]);
      expect(before.map((x) => [x.advisory.id, x.affected.fixedVersions])).toEqual([["CVE-B", ["1.0-1"]], ["CVE-C", ["1.0-1"]]]);
      const again = await store.advisories.recordOperation(op(s, [file("a.json", "1")], []));
      expect(again).toEqual({ unchanged: true, operation: first.operation });
      // A new parser version re-parses the same files into a new operation.
      const second = await store.advisories.recordOperation(op(s, [file("a.json", "2")], [
        adv("CVE-A", [pkg(`a-${run}`, "1.0-1")]), // unchanged
        adv("CVE-B", [pkg(`b-${run}`, "1.0-2")]), // modified: a new fix
        adv("CVE-D", [pkg(`d-${run}`, "1.0-1")]), // added; CVE-C removed
      ]));
      expect(second.operation.stats).toMatchObject({ added: 1, removed: 1, modified: 1 });
      const ch = await store.advisories.changes(second.operation.ref);
      expect(ch.changes).toEqual([{ id: "CVE-B", change: "modified" }, { id: "CVE-C", change: "removed" }, { id: "CVE-D", change: "added" }]);
      expect(ch.packages).toEqual([{ ecosystem: "Debian:12", name: `b-${run}` }, { ecosystem: "Debian:12", name: `c-${run}` }, { ecosystem: "Debian:12", name: `d-${run}` }]);
      // Only the latest operation answers.
      expect(await store.advisories.candidates([{ ecosystem: "Debian:12", name: `c-${run}` }])).toEqual([]);
      const b = await store.advisories.candidates([{ ecosystem: "Debian:12", name: `b-${run}` }]);
      expect(b.map((x) => x.affected.fixedVersions)).toEqual([["1.0-2"]]);
      // The unchanged record is one row shared by both operations.
      expect((await store.advisories.operations({ source: s })).map((o) => o.ref)).toEqual([second.operation.ref, first.operation.ref]);
    });

    it("keeps raw files whole across chunks and checks them on the way out", async () => {
      const s = src("raw");
      const big = Buffer.alloc(9 * 1024 * 1024 + 17, 7);
      big.write("head", 0);
      const f = { path: "big.bin", bytes: big, sha256: sha(big), size: big.length };
      const res = await store.advisories.recordOperation(op(s, [f], [], { kind: "enrichment" }));
      expect(res.operation.files).toEqual([{ path: "big.bin", sha256: f.sha256, size: big.length }]);
      const back = await store.advisories.rawFile(f.sha256);
      expect(back?.equals(big)).toBe(true);
      expect(await store.advisories.rawFile("0".repeat(64))).toBeUndefined();
    }, 60_000);

    it("writes nothing when any part of an operation fails", async () => {
      const s = src("atomic");
      const good = file("x.json", `good-${run}`);
      const before = (await store.advisories.operations({ source: s })).length;
      await expect(store.advisories.recordOperation(op(s, [{ ...good, sha256: "f".repeat(64) }], [adv("CVE-X", [pkg(`x-${run}`, "1")])]))).rejects.toThrow(/hashes to/);
      const broken = adv("CVE-Y", [{ ...pkg(`y-${run}`, "1"), ecosystem: null as unknown as string }]);
      await expect(store.advisories.recordOperation(op(s, [good], [adv("CVE-X", [pkg(`x-${run}`, "1")]), broken]))).rejects.toThrow();
      expect((await store.advisories.operations({ source: s })).length).toBe(before);
      expect(await store.advisories.rawFile(good.sha256)).toBeUndefined();
      expect(await store.advisories.candidates([{ ecosystem: "Debian:12", name: `x-${run}` }])).toEqual([]);
    });

    it("never answers withdrawn records, and drops repeated ids within one operation", async () => {
      const s = src("wd");
      const res = await store.advisories.recordOperation(op(s, [file("w.json", run)], [
        adv("GHSA-1", [pkg(`w-${run}`, "1.2.3", "npm")], { withdrawn: "2024-01-01T00:00:00Z" }),
        adv("GHSA-2", [pkg(`w-${run}`, "1.2.4", "npm")]),
        adv("GHSA-2", [pkg(`w-${run}`, "9.9.9", "npm")]),
      ], { kind: "language" }));
      expect(res.operation.stats).toMatchObject({ advisories: 2, duplicates: 1 });
      const c = await store.advisories.candidates([{ ecosystem: "npm", name: `w-${run}` }]);
      expect(c.map((x) => [x.advisory.id, x.affected.fixedVersions[0]])).toEqual([["GHSA-2", "1.2.4"]]);
    });

    it("merges enrichment by CVE and replaces a source's enrichment whole", async () => {
      const s1 = src("epss");
      const s2 = src("kev");
      const cve = `CVE-${run}`;
      await store.advisories.recordOperation(op(s1, [file("epss.csv", `1${run}`)], [], { kind: "enrichment", enrichment: { epss: [{ cve, epss: 0.5, percentile: 0.9, date: "2026-12-01" }, { cve: `${cve}-old`, epss: 0.1, percentile: 0.1, date: "2026-12-01" }] } }));
      await store.advisories.recordOperation(op(s2, [file("kev.json", `2${run}`)], [], { kind: "enrichment", enrichment: { kev: [{ cve, dateAdded: "2021-12-10" }] } }));
      expect((await store.advisories.enrichment([cve])).get(cve)).toEqual({ epss: { epss: 0.5, percentile: 0.9, date: "2026-12-01" }, kev: { dateAdded: "2021-12-10" } });
      await store.advisories.recordOperation(op(s1, [file("epss.csv", `3${run}`)], [], { kind: "enrichment", enrichment: { epss: [{ cve, epss: 0.7, percentile: 0.95, date: "2026-12-02" }] } }));
      const e = await store.advisories.enrichment([cve, `${cve}-old`]);
      expect(e.get(cve)?.epss?.epss).toBe(0.7);
      expect(e.has(`${cve}-old`)).toBe(false);
    });

    it("records a streamed operation in batches, then an incremental one on top of it, whole or not at all", async () => {
      const s = src("stream");
      const doc = (path: string, id: string, fixed: string) => {
        const f = file(path, `${id} ${fixed} ${run}`);
        return { f, a: adv(id, [pkg(`${id.toLowerCase()}-${run}`, fixed, "RHEL:9")], { origin: { file: path, record: id } }) };
      };
      const d1 = doc("2024/cve-1.json", "CVE-S1", "1.0-1");
      const d2 = doc("2024/cve-2.json", "CVE-S2", "1.0-1");
      const d3 = doc("2024/cve-3.json", "CVE-S3", "1.0-1");
      const header = { source: s, kind: "os" as const, origin: "update", parserVersion: "1", fingerprint: { k: "v1" } };
      const full = await store.advisories.recordStreamedOperation(header, async (w) => {
        await w.add([d1.f, d2.f], [d1.a, d2.a], [{ file: "2024/bad.json", record: "bad", reason: "not JSON" }]);
        // The same path twice in one batch (a tar can hold an entry twice): the last copy stays.
        await w.add([file("2024/cve-3.json", `older copy ${run}`), d3.f], [d3.a]);
      });
      expect(full.unchanged).toBe(false);
      expect(full.operation).toMatchObject({ streamed: true, fileCount: 3, files: [], stats: { advisories: 3, affected: 3, added: 3, skipped: 1, ecosystems: ["RHEL:9"] } });
      expect((await store.advisories.operationFiles(full.operation.ref)).map((f) => f.path)).toEqual(["2024/cve-1.json", "2024/cve-2.json", "2024/cve-3.json"]);
      expect((await store.advisories.rawFile(d2.f.sha256))?.equals(d2.f.bytes)).toBe(true);
      // The same files again: nothing kept.
      const again = await store.advisories.recordStreamedOperation(header, async (w) => w.add([d1.f, d2.f, d3.f], [d1.a, d2.a, d3.a]));
      expect(again).toEqual({ unchanged: true, operation: full.operation });
      // Incremental: cve-2 changed, cve-3 deleted upstream, cve-4 new; cve-1 carried over untouched.
      const d2b = doc("2024/cve-2.json", "CVE-S2", "1.0-2");
      const d4 = doc("2024/cve-4.json", "CVE-S4", "1.0-1");
      const inc = await store.advisories.recordStreamedOperation({ ...header, fingerprint: { k: "v2" }, base: full.operation }, async (w) => {
        await w.drop(["2024/cve-3.json", "2024/never-held.json"]);
        await w.add([d2b.f, d4.f], [d2b.a, d4.a]);
      });
      expect(inc.operation.stats).toMatchObject({ advisories: 3, added: 1, removed: 1, modified: 1, skipped: 1 });
      expect((await store.advisories.changes(inc.operation.ref)).changes).toEqual([
        { id: "CVE-S2", change: "modified" }, { id: "CVE-S3", change: "removed" }, { id: "CVE-S4", change: "added" },
      ]);
      expect((await store.advisories.operationFiles(inc.operation.ref)).map((f) => [f.path, f.sha256])).toEqual([
        ["2024/cve-1.json", d1.f.sha256], ["2024/cve-2.json", d2b.f.sha256], ["2024/cve-4.json", d4.f.sha256],
      ]);
      const c = await store.advisories.candidates([{ ecosystem: "RHEL:9", name: `cve-s2-${run}` }, { ecosystem: "RHEL:9", name: `cve-s1-${run}` }, { ecosystem: "RHEL:9", name: `cve-s3-${run}` }]);
      expect(c.map((x) => [x.advisory.id, x.affected.fixedVersions[0]])).toEqual([["CVE-S1", "1.0-1"], ["CVE-S2", "1.0-2"]]);
      // A fill that throws half way leaves nothing: not the operation, not its new raw file.
      const d5 = doc("2024/cve-5.json", "CVE-S5", "1.0-1");
      await expect(store.advisories.recordStreamedOperation({ ...header, base: inc.operation }, async (w) => {
        await w.add([d5.f], [d5.a]);
        throw new Error("archive truncated");
      })).rejects.toThrow("archive truncated");
      expect((await store.advisories.latestOperation(s))?.ref).toBe(inc.operation.ref);
      expect(await store.advisories.rawFile(d5.f.sha256)).toBeUndefined();
      // An incremental operation on a base that is no longer the latest is refused.
      await expect(store.advisories.recordStreamedOperation({ ...header, base: full.operation }, async () => {})).rejects.toMatchObject({ code: "ADVISORY_CONCURRENT_UPDATE" });
      // Prune keeps the files of the operations it keeps (here the incremental ones), and drops the rest.
      await store.advisories.recordStreamedOperation({ ...header, base: inc.operation }, async (w) => w.add([d5.f], [d5.a]));
      await store.advisories.prune(2);
      expect((await store.advisories.rawFile(d1.f.sha256))?.equals(d1.f.bytes)).toBe(true);
      expect(await store.advisories.rawFile(d3.f.sha256)).toBeUndefined();
    });

    it("reports status per source and prunes old operations, their orphaned records and raw files", async () => {
      const s = src("prune");
      const f1 = file("p.json", `p1-${run}`);
      await store.advisories.recordOperation(op(s, [f1], [adv("CVE-P1", [pkg(`p-${run}`, "1")])]));
      await store.advisories.recordOperation(op(s, [file("p.json", `p2-${run}`)], [adv("CVE-P1", [pkg(`p-${run}`, "2")])]));
      const last = await store.advisories.recordOperation(op(s, [file("p.json", `p3-${run}`)], [adv("CVE-P1", [pkg(`p-${run}`, "2")]), adv("CVE-P2", [pkg(`p-${run}`, "3")])]));
      const st = (await store.advisories.status()).find((x) => x.source === s);
      expect(st).toMatchObject({ operations: 3, advisories: 2, affected: 2, latest: { ref: last.operation.ref } });
      const pruned = await store.advisories.prune(2);
      expect(pruned.operations).toBeGreaterThanOrEqual(1);
      expect(await store.advisories.rawFile(f1.sha256)).toBeUndefined();
      expect((await store.advisories.operations({ source: s })).length).toBe(2);
      expect((await store.advisories.candidates([{ ecosystem: "Debian:12", name: `p-${run}` }])).map((c) => c.advisory.id)).toEqual(["CVE-P1", "CVE-P2"]);
    });
  });
}
