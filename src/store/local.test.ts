// The CLI's folder store beyond the shared suite: records that are damaged, locks left by dead processes,
// the advisory marker that lets a scan skip PGlite, and folders made by earlier versions (PGlite at the top).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EmbeddedDb } from "./embedded.js";
import { FileIndex } from "./file-index.js";
import { acquireLock, LockTimeoutError } from "./lockfile.js";
import { LocalStore, storeLayout } from "./local.js";
import { readRecord, RecordError, writeRecord } from "./record.js";
import { SqlStore } from "./sql-store.js";
import type { ScannerInfo } from "../model/scanner.js";

const dir = mkdtempSync(join(tmpdir(), "portcullis-local-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const d = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
const dpkg: ScannerInfo = { name: "dpkg", version: "2", kind: "package" };

describe("records", () => {
  it("reads back what was written, and refuses a truncated, altered or misplaced file by name", async () => {
    const p = join(dir, "rec", "a.rec");
    await writeRecord(p, "key a", { x: [1, 2, 3] });
    expect(await readRecord(p, "key a", 1000)).toEqual({ x: [1, 2, 3] });
    expect(await readRecord(join(dir, "rec", "none.rec"), "key a", 1000)).toBeUndefined();
    await expect(readRecord(p, "key b", 1000)).rejects.toThrow(/holds "key a", not "key b"/);
    const whole = readFileSync(p);
    writeFileSync(p, whole.subarray(0, whole.length - 3));
    await expect(readRecord(p, "key a", 1000)).rejects.toThrow(/a\.rec has \d+ bytes of payload where its header says \d+ \(truncated or damaged\)/);
    writeFileSync(p, Buffer.from(whole.toString("utf8").replace("[1,2,3]", "[1,2,4]")));
    await expect(readRecord(p, "key a", 1000)).rejects.toThrow(/does not match its checksum/);
    await expect(readRecord(p, "key a", 10)).rejects.toThrow(RecordError);
    // No temporary file is left behind.
    expect(readdirSync(join(dir, "rec"))).toEqual(["a.rec"]);
  });
});

describe("file index", () => {
  it("treats a damaged layer result as not scanned (the layer is scanned again), and names a damaged report", async () => {
    const idx = await FileIndex.open(join(dir, "idx"));
    await idx.registerScanners([dpkg]);
    const l = d("layer");
    await idx.setLayerScanned(l, { whiteouts: [], opaqueDirs: [], files: ["var/lib/dpkg/status"] }, [{ scanner: dpkg, output: { packages: [] } }]);
    expect((await idx.scannedLayers([l], [dpkg])).size).toBe(1);
    const result = join(dir, "idx", "layers", "sha256", l.slice(7), "dpkg@2.rec");
    writeFileSync(result, readFileSync(result).subarray(0, 40));
    expect((await idx.scannedLayers([l], [dpkg])).size).toBe(0);
    expect(existsSync(result)).toBe(false);
    const m = d("manifest");
    await idx.setIndexReport({ manifest_hash: m, state: "IndexFinished", success: true }, "s");
    const report = join(dir, "idx", "reports", "sha256", `${m.slice(7)}.rec`);
    writeFileSync(report, "garbage");
    await expect(idx.indexReport(m)).rejects.toThrow(`store file ${report} has no record header (damaged)`);
    await expect(idx.indexReport("../../etc/passwd")).rejects.toThrow(/not a digest/);
  });
});

describe("lock files", () => {
  it("waits for a live owner and names it; breaks the lock of a process that is gone", async () => {
    const p = join(dir, "x.lock");
    const held = await acquireLock(p, { what: "thing" });
    const err = await acquireLock(p, { what: "thing", timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect((err as Error).message).toMatch(new RegExp(`^thing is locked by process ${process.pid} on .* since .*x\\.lock\\); gave up after 0 s$`));
    // A waiter is told who it waits for, once, after a second.
    const told: string[] = [];
    await acquireLock(p, { what: "thing", timeoutMs: 1500, onWait: (o) => told.push(o) }).catch(() => undefined);
    expect(told).toEqual([`process ${process.pid} on ${(await import("node:os")).hostname()}`]);
    held.release();
    // A lock left by a process that exited without releasing it (killed): its pid is gone.
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    writeFileSync(p, JSON.stringify({ pid: dead, host: (await import("node:os")).hostname(), since: new Date().toISOString(), token: "t" }));
    const again = await acquireLock(p, { what: "thing", timeoutMs: 2000 });
    expect(JSON.parse(readFileSync(p, "utf8")).pid).toBe(process.pid);
    again.release();
    expect(existsSync(p)).toBe(false);
  });
});

describe("the advisory marker", () => {
  it("says there is no advisory data without a database, and after the database closes knows its state until something else opens it", async () => {
    const root = join(dir, "marker");
    const s = await LocalStore.open(root);
    expect(await s.matchCache.state()).toEqual({ data: false });
    expect(existsSync(join(root, "pg"))).toBe(false);
    // Touching the advisory data opens PGlite (empty here); closing writes the marker.
    expect((await s.advisories.ecosystems()).size).toBe(0);
    await s.close();
    expect(existsSync(join(root, "database.lock"))).toBe(false);
    const t = await LocalStore.open(root);
    expect(await t.matchCache.state()).toEqual({ data: false });
    await t.close();
    // Another program opened the database (an earlier version, or serve): the marker is out of date.
    const other = await EmbeddedDb.open(storeLayout(root).pgDir);
    await other.query("SELECT 1");
    await other.close();
    const u = await LocalStore.open(root);
    expect(await u.matchCache.state()).toBeUndefined();
    await u.close();
  }, 120_000);

  it("opens a folder made by an earlier version (PGlite at its top) in place, advisory data and all", async () => {
    const root = join(dir, "legacy");
    const old = await SqlStore.open(await EmbeddedDb.open(root));
    const bytes = Buffer.from("x");
    await old.advisories.recordOperation({
      source: "legacy-src", kind: "os", origin: "test", parserVersion: "1", fingerprint: {},
      files: [{ path: "f.json", bytes, sha256: createHash("sha256").update(bytes).digest("hex"), size: 1 }],
      advisories: [{ id: "CVE-1", aliases: [], advisoryIds: [], severity: "High", cvss: [], references: [], details: "", origin: { file: "f.json", record: "CVE-1" },
        affected: [{ ecosystem: "Debian:12", name: "glibc", nameKind: "source", fixState: "fixed", fixedVersions: ["2"], ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "2" }] }] }] }],
    });
    await old.close();
    expect(storeLayout(root).pgDir).toBe(root);
    const s = await LocalStore.open(root);
    expect(await s.matchCache.state()).toBeUndefined();
    expect([...(await s.advisories.ecosystems())]).toEqual(["Debian:12"]);
    await s.close();
    const t = await LocalStore.open(root);
    expect(await t.matchCache.state()).toMatchObject({ data: true });
    await t.close();
    expect(existsSync(join(root, "pg"))).toBe(false);
  }, 120_000);
});
