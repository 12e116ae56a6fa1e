// `db update` of Red Hat against an upstream on loopback laid out like security.access.redhat.com's
// csaf/v2/vex/: archive_latest.txt, a real csaf_vex_YYYY-MM-DD.tar.zst written by the `tar` and `zstd`
// tools from the real VEX fixture (and copies of it under other CVE ids), changes.csv, deletions.csv and
// the documents by path. The oracle for every record is the import parser run over the same documents
// as they stand upstream, and the fixture README's C5 (util-linux on RHEL 8: not affected).
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../../store/open.js";
import type { Store } from "../../../store/types.js";
import { writeBundle } from "../../bundle.js";
import { defaultCatalogue, redhatSource } from "../../catalogue.js";
import { importBundle, reparseSources } from "../../import.js";
import { startUpstream, type TestUpstream } from "../../testing.js";
import { updateSource } from "../../update.js";
import { parse } from "./index.js";
import { parseChangeList, since, updateRedhat } from "./upstream.js";

const REAL = readFileSync(new URL("../../../../../shared/fixtures/advisories/redhat/cve-2024-28085.json", import.meta.url), "utf8");

/** The real document under another CVE id (and path), optionally with its status changed. */
function renamed(year: number, n: number, edit?: (doc: string) => string): { path: string; text: string } {
  const id = `CVE-${year}-${n}`;
  let text = REAL.replaceAll("CVE-2024-28085", id).replaceAll("cve-2024-28085", id.toLowerCase());
  if (edit) text = edit(text);
  return { path: `${year}/${id.toLowerCase()}.json`, text };
}
/** util-linux becomes affected (no fix) instead of not affected: a real change of state. */
const affected = (t: string) => t.replace('"known_not_affected"', '"known_affected"');

/** A tar.zst of the documents, written by the real tools. */
function archive(docs: ReadonlyArray<{ path: string; text: string }>): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-rh-test-"));
  try {
    for (const d of docs) {
      mkdirSync(join(dir, d.path.split("/")[0]!), { recursive: true });
      writeFileSync(join(dir, d.path), d.text);
    }
    const years = [...new Set(docs.map((d) => d.path.split("/")[0]!))].sort();
    const tarball = execFileSync("tar", ["-C", dir, "-cf", "-", ...years], { maxBuffer: 1 << 30 });
    return execFileSync("zstd", ["-q", "-c", "-19"], { input: tarball, maxBuffer: 1 << 30 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const csv = (rows: Array<[string, string]>) => rows.map(([p, t]) => `"${p}","${t}"`).join("\n") + "\n";

describe("Red Hat updater", () => {
  let store: Store;
  let up: TestUpstream;
  const mirrors = () => ({ redhat: `${up.url}/vex` });
  const docs = [{ path: "2024/cve-2024-28085.json", text: REAL }, ...[1000, 1001, 1002, 1003, 1004].map((n) => renamed(2099, n))];
  /** What the documents upstream say now, by path: the oracle's input. */
  const current = new Map<string, string>();

  beforeAll(async () => {
    store = await openStore("memory:");
    up = await startUpstream();
  });
  afterAll(async () => {
    await up?.close();
    await store?.close();
  });

  /** The store's current Red Hat records equal the import parser's over the documents upstream. */
  async function expectMatchesParser(): Promise<void> {
    const oracle = parse([...current].map(([path, text]) => ({ path, bytes: Buffer.from(text) })));
    expect(oracle.advisories.length).toBe(current.size);
    for (const a of oracle.advisories) expect(await store.advisories.advisory("redhat", a.id)).toEqual(a);
    const st = (await store.advisories.status()).find((s) => s.source === "redhat");
    expect(st?.advisories).toBe(current.size);
  }

  it("builds the source from the archive plus what changed and was deleted since its date", async () => {
    for (const d of docs) current.set(d.path, d.text);
    up.put("vex/csaf_vex_2026-11-30.tar.zst", archive(docs));
    up.put("vex/archive_latest.txt", "csaf_vex_2026-11-30.tar.zst\n");
    // After the archive was built: 1001 changed, 1002 deleted. Rows before its date are in it already.
    const changed = renamed(2099, 1001, affected);
    up.put(`vex/${changed.path}`, changed.text);
    current.set(changed.path, changed.text);
    current.delete("2099/cve-2099-1002.json");
    up.put("vex/changes.csv", csv([["2099/cve-2099-1001.json", "2026-12-01T10:00:00+00:00"], ["2024/cve-2024-28085.json", "2025-07-05T10:06:38+00:00"]]));
    up.put("vex/deletions.csv", csv([["2099/cve-2099-1002.json", "2026-12-01T11:00:00+00:00"]]));

    const r = await updateSource(store.advisories, redhatSource, { mirrors: mirrors() });
    expect(r).toMatchObject({ source: "redhat", status: "updated", files: 5 });
    expect(r.operation).toMatchObject({ streamed: true, fileCount: 5, stats: { advisories: 5, added: 5, skipped: 0 } });
    // C5: util-linux on RHEL 8 is not affected by CVE-2024-28085 (vulnerable_code_not_present).
    const c = await store.advisories.candidates([{ ecosystem: "RHEL:8", name: "util-linux" }]);
    expect(c.filter((x) => x.advisory.id === "CVE-2024-28085").map((x) => [x.affected.fixState, x.affected.detail?.flags])).toEqual([["not_affected", ["vulnerable_code_not_present"]]]);
    // The changed document replaced the archive's copy; the deleted one is gone.
    expect(c.filter((x) => x.advisory.id === "CVE-2099-1001").map((x) => x.affected.fixState)).toEqual(["not_fixed"]);
    expect(c.some((x) => x.advisory.id === "CVE-2099-1002")).toBe(false);
    await expectMatchesParser();
    // Each document is kept raw under its path, with the URL it is published at (the attribution link).
    const files = await store.advisories.operationFiles(r.operation!.ref);
    expect(files.map((f) => f.path)).toEqual([...current.keys()].sort());
    const f0 = files.find((f) => f.path === "2024/cve-2024-28085.json")!;
    expect(f0.url).toBe(`${up.url}/vex/2024/cve-2024-28085.json`);
    expect((await store.advisories.rawFile(f0.sha256))?.toString()).toBe(REAL);
    expect(up.requests.filter((q) => q.path.endsWith(".json")).map((q) => q.path)).toEqual(["vex/2099/cve-2099-1001.json"]);
  });

  it("asks changes.csv and deletions.csv conditionally and writes nothing when neither changed", async () => {
    const before = up.requests.length;
    const latest = await store.advisories.latestOperation("redhat");
    const r = await updateSource(store.advisories, redhatSource, { mirrors: mirrors() });
    expect(r).toMatchObject({ status: "unchanged" });
    expect(r.operation?.ref).toBe(latest?.ref);
    expect(up.requests.slice(before).map((q) => [q.path, q.status, q.conditional])).toEqual([
      ["vex/archive_latest.txt", 200, false], ["vex/changes.csv", 304, true], ["vex/deletions.csv", 304, true],
    ]);
  });

  it("applies a later change and deletion as an incremental operation, without the archive", async () => {
    const before = up.requests.length;
    const prev = (await store.advisories.latestOperation("redhat"))!;
    const changed = renamed(2099, 1003, affected);
    up.put(`vex/${changed.path}`, changed.text);
    current.set(changed.path, changed.text);
    current.delete("2099/cve-2099-1004.json");
    up.put("vex/changes.csv", csv([["2099/cve-2099-1003.json", "2026-12-03T08:00:00+00:00"], ["2099/cve-2099-1001.json", "2026-12-01T10:00:00+00:00"]]));
    up.put("vex/deletions.csv", csv([["2099/cve-2099-1004.json", "2026-12-03T09:00:00+00:00"], ["2099/cve-2099-1002.json", "2026-12-01T11:00:00+00:00"]]));
    const r = await updateSource(store.advisories, redhatSource, { mirrors: mirrors() });
    expect(r).toMatchObject({ status: "updated", files: 4 });
    expect(r.operation!.stats).toMatchObject({ advisories: 4, added: 0, modified: 1, removed: 1 });
    expect((await store.advisories.changes(r.operation!.ref)).changes).toEqual([{ id: "CVE-2099-1003", change: "modified" }, { id: "CVE-2099-1004", change: "removed" }]);
    const asked = up.requests.slice(before).map((q) => q.path);
    expect(asked.some((p) => p.endsWith(".tar.zst"))).toBe(false);
    // 1003, and 1001 again: the next update looks back an hour before the newest change it saw (11:00),
    // and a document fetched again unchanged changes nothing.
    expect(asked.filter((p) => p.endsWith(".json")).sort()).toEqual(["vex/2099/cve-2099-1001.json", "vex/2099/cve-2099-1003.json"]);
    // The unchanged documents are the same rows: the operation carried them over.
    expect((await store.advisories.operationFiles(r.operation!.ref)).find((f) => f.path === "2024/cve-2024-28085.json")).toEqual(
      (await store.advisories.operationFiles(prev.ref)).find((f) => f.path === "2024/cve-2024-28085.json"),
    );
    await expectMatchesParser();
  });

  it("fails a truncated or hostile archive with a clear error and writes nothing", async () => {
    const prev = (await store.advisories.latestOperation("redhat"))!;
    const fresh = renamed(2098, 5000);
    const whole = archive([...[...current].map(([path, text]) => ({ path, text })), fresh]);
    up.put("vex/archive_latest.txt", "csaf_vex_2026-12-07.tar.zst\n");
    up.put("vex/csaf_vex_2026-12-07.tar.zst", whole.subarray(0, whole.length - 100));
    const cut = await updateSource(store.advisories, redhatSource, { mirrors: mirrors() });
    expect(cut).toMatchObject({ status: "failed", error: "csaf_vex_2026-12-07.tar.zst is truncated: it ends inside a zstd frame [ZSTD_TRUNCATED]" });
    // A frame whose header declares a 2 GiB window (fzstd would allocate it) is refused before decoding.
    const hostile = Buffer.from(whole);
    hostile[5] = 21 << 3;
    up.put("vex/csaf_vex_2026-12-07.tar.zst", hostile);
    const big = await updateSource(store.advisories, redhatSource, { mirrors: mirrors() });
    expect(big.error).toMatch(/^csaf_vex_2026-12-07\.tar\.zst: a zstd frame declares a window of 2147483648 bytes, more than the 134217728 accepted .*\[ZSTD_WINDOW_TOO_LARGE\]$/);
    // A tar cut at a frame boundary: valid zstd, truncated tar.
    const tarball = execFileSync("zstd", ["-dc"], { input: whole, maxBuffer: 1 << 30 });
    up.put("vex/csaf_vex_2026-12-07.tar.zst", execFileSync("zstd", ["-q", "-c"], { input: tarball.subarray(0, 512 * 5 + 100) }));
    const torn = await updateSource(store.advisories, redhatSource, { mirrors: mirrors() });
    expect(torn.error).toMatch(/^csaf_vex_2026-12-07\.tar\.zst cannot be read as a tar archive: .* \[REDHAT_UPSTREAM\]$/);
    for (const r of [cut, big, torn]) expect(r.status).toBe("failed");
    expect((await store.advisories.latestOperation("redhat"))?.ref).toBe(prev.ref);
    // The new archive's document was stored by none of the failed attempts.
    expect(await store.advisories.advisory("redhat", "CVE-2098-5000")).toBeUndefined();
    // The whole archive then updates: a new archive means a full operation.
    up.put("vex/csaf_vex_2026-12-07.tar.zst", whole);
    const ok = await updateSource(store.advisories, redhatSource, { mirrors: mirrors() });
    expect(ok).toMatchObject({ status: "updated", files: current.size + 1 });
    expect(ok.operation!.stats).toMatchObject({ added: 1, removed: 0 });
    current.set(fresh.path, fresh.text);
    await expectMatchesParser();
  });

  it("reparses its stored documents a batch at a time", async () => {
    const prev = (await store.advisories.latestOperation("redhat"))!;
    const catalogue = defaultCatalogue();
    expect(await reparseSources(store.advisories, catalogue, ["redhat"])).toMatchObject([{ source: "redhat", status: "unchanged" }]);
    const newer = { all: () => [{ ...redhatSource, parserVersion: "2" }], get: (n: string) => (n === "redhat" ? { ...redhatSource, parserVersion: "2" } : undefined) };
    const [r] = await reparseSources(store.advisories, newer, ["redhat"]);
    expect(r).toMatchObject({ status: "imported", files: prev.fileCount, operation: { origin: "reparse of update", parserVersion: "2", streamed: true, stats: { advisories: current.size, added: 0, removed: 0, modified: 0 } } });
    await expectMatchesParser();
  });

  it("goes into a bundle whole and comes out of it as the same streamed operation; a changed byte in one document changes nothing", async () => {
    const latest = (await store.advisories.latestOperation("redhat"))!;
    const tmp = mkdtempSync(join(tmpdir(), "portcullis-rh-bundle-"));
    const fresh = await openStore("memory:");
    try {
      const file = join(tmp, "b.tar.zst");
      const w = await writeBundle(store.advisories, file, { sources: ["redhat"], generator: "test" });
      expect(w.manifest.sources).toMatchObject([{ name: "redhat", streamed: true, fingerprint: latest.fingerprint }]);
      expect(w.manifest.sources[0]!.files.map((f) => f.path)).toEqual([...current.keys()].sort());
      // The real zstd reads the frames as one stream, and the real tar lists manifest.json first.
      const listed = execFileSync("sh", ["-c", `zstd -q -d -c '${file}' | tar -tf -`]).toString().trim().split("\n");
      expect(listed).toEqual(["manifest.json", ...[...current.keys()].sort().map((p) => `sources/redhat/${p}`)]);

      // Tampered: one byte of one Red Hat document changed, the tar and zstd rebuilt by the real tools.
      const unpacked = join(tmp, "x");
      mkdirSync(unpacked);
      execFileSync("sh", ["-c", `zstd -q -d -c '${file}' | tar -C '${unpacked}' -xf -`]);
      const victim = join(unpacked, "sources/redhat/2024/cve-2024-28085.json");
      const doc = readFileSync(victim);
      doc[doc.indexOf("util-linux")]! ^= 0x01;
      writeFileSync(victim, doc);
      const bad = join(tmp, "bad.tar.zst");
      execFileSync("sh", ["-c", `tar -C '${unpacked}' -cf - manifest.json sources | zstd -q -c > '${bad}'`]);
      await expect(importBundle(fresh.advisories, defaultCatalogue(), bad, "t")).rejects.toThrow(/^sources\/redhat\/2024\/cve-2024-28085\.json has sha256 [a-f0-9]{64}, manifest\.json says [a-f0-9]{64}: the bundle was changed or damaged$/);
      expect(await fresh.advisories.status()).toEqual([]);

      const [r] = await importBundle(fresh.advisories, defaultCatalogue(), file, "bundle test");
      expect(r).toMatchObject({ source: "redhat", status: "imported", files: current.size, operation: { streamed: true, fileCount: current.size, fingerprint: latest.fingerprint } });
      const [st] = await fresh.advisories.status();
      expect(st).toMatchObject({ source: "redhat", advisories: current.size, affected: latest.stats.affected });
      expect(await fresh.advisories.operationFiles(st!.latest.ref)).toEqual(await store.advisories.operationFiles(latest.ref));
      const oracle = parse([...current].map(([path, text]) => ({ path, bytes: Buffer.from(text) })));
      for (const a of oracle.advisories) expect(await fresh.advisories.advisory("redhat", a.id)).toEqual(a);
      // Imported again: the same files and parser, nothing written.
      expect(await importBundle(fresh.advisories, defaultCatalogue(), file, "bundle test")).toMatchObject([{ source: "redhat", status: "unchanged" }]);
      // The imported operation reparses like an updated one, and the next update starts from it.
      const newer = { all: () => [{ ...redhatSource, parserVersion: "3" }], get: (n: string) => (n === "redhat" ? { ...redhatSource, parserVersion: "3" } : undefined) };
      expect(await reparseSources(fresh.advisories, newer, ["redhat"])).toMatchObject([{ source: "redhat", status: "imported", operation: { streamed: true, stats: { advisories: current.size, added: 0, removed: 0, modified: 0 } } }]);
    } finally {
      await fresh.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it("caps the archive's size, and makes a document over the cap a skipped record", async () => {
    const prev = (await store.advisories.latestOperation("redhat"))!;
    up.put("vex/archive_latest.txt", "csaf_vex_2026-12-14.tar.zst\n");
    up.put("vex/csaf_vex_2026-12-14.tar.zst", archive([...current].map(([path, text]) => ({ path, text }))));
    const info = { name: "redhat", kind: "os" as const, parserVersion: "1", licence: "", attribution: "" };
    await expect(updateRedhat(store.advisories, info, { mirror: `${up.url}/vex`, limits: { archiveBytes: 1000 } })).rejects.toMatchObject({
      code: "ADVISORY_TOO_LARGE", message: expect.stringMatching(/csaf_vex_2026-12-14\.tar\.zst is \d+ bytes, more than the 1000 accepted$/),
    });
    expect((await store.advisories.latestOperation("redhat"))?.ref).toBe(prev.ref);
    const r = await updateRedhat(store.advisories, info, { mirror: `${up.url}/vex`, limits: { documentBytes: 5000 } });
    expect(r.operation!.stats).toMatchObject({ advisories: 0, skipped: current.size, removed: current.size });
    expect(r.operation!.stats.skippedSample[0]!.reason).toMatch(/^\d+ bytes, more than the 5000 accepted for one document$/);
  });
});

describe("changes.csv and deletions.csv", () => {
  it("reads rows, refuses a path that is not a document path, and lets the later event win", () => {
    const rows = parseChangeList(csv([["2024/cve-2024-1001.json", "2026-12-01T10:00:00+00:00"], ["2024/cve-2024-1002.json", "2026-11-01T00:00:00Z"]]), "changes.csv");
    expect(rows).toEqual([{ path: "2024/cve-2024-1001.json", at: Date.parse("2026-12-01T10:00:00Z") }, { path: "2024/cve-2024-1002.json", at: Date.parse("2026-11-01T00:00:00Z") }]);
    expect(() => parseChangeList('"https://elsewhere.example/x.json","2026-12-01T10:00:00Z"\n', "changes.csv")).toThrow('changes.csv line 1 names "https://elsewhere.example/x.json", which is not a document path (YYYY/cve-YYYY-N.json)');
    expect(() => parseChangeList('"2024/../../etc/cve-2024-1001.json","2026-12-01T10:00:00Z"\n', "changes.csv")).toThrow(/not a document path/);
    expect(() => parseChangeList('"2024/cve-2024-1001.json","yesterday"\n', "deletions.csv")).toThrow('deletions.csv line 1 has the time "yesterday", which is not an RFC 3339 time');
    const at = (s: string) => Date.parse(s);
    const d = since(
      [{ path: "2024/cve-2024-1001.json", at: at("2026-12-02T00:00:00Z") }, { path: "2024/cve-2024-1002.json", at: at("2026-12-01T00:00:00Z") }, { path: "2024/cve-2024-1003.json", at: at("2026-11-01T00:00:00Z") }],
      [{ path: "2024/cve-2024-1001.json", at: at("2026-12-01T12:00:00Z") }, { path: "2024/cve-2024-1002.json", at: at("2026-12-01T06:00:00Z") }],
      at("2026-11-30T00:00:00Z"),
    );
    // 1: deleted, then published again; 2: changed, then deleted; 3: before the cutoff.
    expect(d).toEqual({ changed: ["2024/cve-2024-1001.json"], deleted: ["2024/cve-2024-1002.json"] });
  });
});
