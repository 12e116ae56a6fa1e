// `portcullis db update --source redhat` as users run it, into the PostgreSQL the cluster would use, from
// a loopback mirror of Red Hat's VEX folder: a real tar.zst written by `tar` and `zstd` from the real VEX
// fixture (and copies of it under other CVE ids). The streamed operation is read back by `db status`,
// re-parsed by `db reparse`, and left out of `db export` with a note.
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startUpstream, type TestUpstream } from "../../src/advisories/testing.js";
import { describeWith, service } from "../env/index.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const kev = fileURLToPath(new URL("../../../shared/fixtures/advisories/enrichment/kev/known_exploited_vulnerabilities.json", import.meta.url));
const real = readFileSync(fileURLToPath(new URL("../../../shared/fixtures/advisories/redhat/cve-2024-28085.json", import.meta.url)), "utf8");

function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tsx, [bin, ...args], { env: process.env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describeWith(["postgres"], "portcullis db update --source redhat", () => {
  let admin: pg.Client;
  let dir: string;
  let up: TestUpstream;
  let url = "";
  const name = `rh_${process.pid}_${Date.now().toString(36)}`;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: service("postgres").url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const u = new URL(service("postgres").url);
    u.pathname = `/${name}`;
    url = u.toString();
    dir = mkdtempSync(join(tmpdir(), "portcullis-rh-"));
    up = await startUpstream();
  });
  afterAll(async () => {
    await up?.close();
    await admin?.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin?.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it("streams the archive into PostgreSQL, reports and reparses it, and leaves it out of a bundle", async () => {
    const docs = join(dir, "docs");
    mkdirSync(join(docs, "2024"), { recursive: true });
    mkdirSync(join(docs, "2099"), { recursive: true });
    writeFileSync(join(docs, "2024/cve-2024-28085.json"), real);
    for (let n = 1000; n < 1200; n++) writeFileSync(join(docs, `2099/cve-2099-${n}.json`), real.replaceAll("CVE-2024-28085", `CVE-2099-${n}`).replaceAll("cve-2024-28085", `cve-2099-${n}`));
    up.put("vex/csaf_vex_2026-11-30.tar.zst", execFileSync("sh", ["-c", `tar -C '${docs}' -cf - 2024 2099 | zstd -q -c -19`], { maxBuffer: 1 << 26 }));
    up.put("vex/archive_latest.txt", "csaf_vex_2026-11-30.tar.zst\n");
    up.put("vex/changes.csv", '"2024/cve-2024-28085.json","2025-07-05T10:06:38+00:00"\n');
    up.put("vex/deletions.csv", "");
    const args = ["db", "update", "--source", "redhat", "--mirror", `redhat=${up.url}/vex`, "--database-url", url];
    const first = await portcullis(args);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^redhat\s+updated\s+.*201 records, 1005 affected \(\+201 -0 ~0\)/m);
    const again = await portcullis(args);
    expect(again.stdout).toMatch(/^redhat\s+unchanged/m);
    const st = JSON.parse((await portcullis(["db", "status", "--json", "--database-url", url])).stdout) as Array<{ source: string; records: number; fileCount: number; files?: unknown; origin: string }>;
    expect(st).toMatchObject([{ source: "redhat", records: 201, fileCount: 201, origin: "update" }]);
    expect(st[0]!.files).toBeUndefined();
    // The rows PostgreSQL holds: one file row per document, each document's raw bytes once.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const n = await c.query<{ files: string; raw: string }>("SELECT (SELECT count(*) FROM advisory_operation_file) AS files, (SELECT count(*) FROM advisory_raw) AS raw");
      expect(n.rows[0]).toEqual({ files: "201", raw: "201" });
    } finally {
      await c.end();
    }
    const reparse = await portcullis(["db", "reparse", "--database-url", url]);
    expect(reparse.stdout).toMatch(/^redhat\s+unchanged/m);
    const exp = await portcullis(["db", "export", join(dir, "b.tar.zst"), "--database-url", url]);
    expect(exp.code).toBe(1);
    expect(exp.stderr).toBe("portcullis: nothing to export: redhat is a streamed source, which bundles do not carry yet [BUNDLE_INVALID]\n");
    // Beside a source a bundle carries, it is left out with a note; named, it is an error.
    expect((await portcullis(["db", "import", kev, "--database-url", url])).code).toBe(0);
    const both = await portcullis(["db", "export", join(dir, "b.tar.zst"), "--database-url", url]);
    expect(both.code).toBe(0);
    expect(both.stderr).toBe("portcullis: redhat left out of the bundle: streamed sources are not carried by bundles yet\n");
    expect(both.stdout).toMatch(/: 1 source\(s\), 1 file\(s\)/);
    const named = await portcullis(["db", "export", join(dir, "c.tar.zst"), "--source", "redhat", "--database-url", url]);
    expect(named.stderr).toMatch(/^portcullis: redhat \(201 files\) cannot go into a bundle/);
  }, 180_000);
});
