// `portcullis db update --source redhat` as users run it, into the PostgreSQL the cluster would use, from
// a loopback mirror of Red Hat's VEX folder: a real tar.zst written by `tar` and `zstd` from the real VEX
// fixture (and copies of it under other CVE ids). The streamed operation is read back by `db status`,
// re-parsed by `db reparse`, and carried by a bundle (`db export`/`import`, `db push`/`pull` through the
// real registry) into other databases, whole.
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { defaultCatalogue } from "../../src/advisories/catalogue.js";
import { startUpstream, type TestUpstream } from "../../src/advisories/testing.js";
import { advisoryRound } from "../../src/cli/advisory-round.js";
import { openStore } from "../../src/store/open.js";
import { describeWith, scratchDatabases, service } from "../env/index.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const kev = fileURLToPath(new URL("../../../shared/fixtures/advisories/enrichment/kev/known_exploited_vulnerabilities.json", import.meta.url));
const real = readFileSync(fileURLToPath(new URL("../../../shared/fixtures/advisories/redhat/cve-2024-28085.json", import.meta.url)), "utf8");

function portcullis(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(tsx, [bin, ...args], { env: { ...process.env, DOCKER_CONFIG: join(tmpdir(), `portcullis-no-docker-config-${process.pid}`) }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

describeWith(["postgres", "registryBasic"], "portcullis db update --source redhat", () => {
  const databases = scratchDatabases();
  let dir: string;
  let up: TestUpstream;
  let url = "";

  beforeAll(async () => {
    url = await databases.create("rh");
    dir = mkdtempSync(join(tmpdir(), "portcullis-rh-"));
    up = await startUpstream();
  });
  afterAll(async () => {
    await up?.close();
    await databases.dropAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("streams the archive into PostgreSQL, reports and reparses it", async () => {
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
  }, 180_000);

  /** What a database holds of each source's latest operation: its files, and its records by id and content. */
  async function tables(dbUrl: string): Promise<unknown> {
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    try {
      const latest = "SELECT DISTINCT ON (source) id, source FROM advisory_operation ORDER BY source, id DESC";
      const files = await c.query(`SELECT l.source, f.path, f.sha256, f.size FROM (${latest}) l JOIN advisory_operation_file f ON f.operation_id = l.id ORDER BY 1, 2`);
      const inline = await c.query(`SELECT l.source, o.files FROM (${latest}) l JOIN advisory_operation o ON o.id = l.id ORDER BY 1`);
      const records = await c.query(`SELECT l.source, a.ext_id, a.content_hash FROM (${latest}) l JOIN advisory_operation_member m ON m.operation_id = l.id JOIN advisory a ON a.id = m.advisory_id ORDER BY 1, 2`);
      const enrichment = await c.query("SELECT source, cve, data FROM advisory_enrichment ORDER BY 1, 2");
      return { files: files.rows, inline: inline.rows, records: records.rows, enrichment: enrichment.rows };
    } finally {
      await c.end();
    }
  }

  it("carries the streamed source in a bundle: export, import and push/pull into other databases give the same tables; a changed byte changes nothing", async () => {
    const reg = service("registryBasic");
    const other = (suffix: string) => databases.create(`rh_${suffix}`);
    expect((await portcullis(["db", "import", kev, "--database-url", url])).code).toBe(0);
    const file = join(dir, "b.tar.zst");
    const exp = await portcullis(["db", "export", file, "--database-url", url]);
    expect(exp.stderr).toBe("");
    expect(exp.code).toBe(0);
    expect(exp.stdout).toMatch(/: 2 source\(s\), 202 file\(s\)/);
    const want = await tables(url);
    expect(want).toMatchObject({ records: { length: 201 }, files: { length: 201 }, });
    expect((want as { enrichment: unknown[] }).enrichment.length).toBeGreaterThan(1);

    // One byte of one Red Hat document changed, the archive rebuilt by the real tar and zstd: nothing imported.
    const second = await other("b");
    const x = join(dir, "x");
    mkdirSync(x);
    execFileSync("sh", ["-c", `zstd -q -d -c '${file}' | tar -C '${x}' -xf -`]);
    const victim = join(x, "sources/redhat/2099/cve-2099-1100.json");
    const doc = readFileSync(victim);
    doc[doc.indexOf("util-linux")]! ^= 0x01;
    writeFileSync(victim, doc);
    execFileSync("sh", ["-c", `tar -C '${x}' -cf - manifest.json sources | zstd -q -c > '${join(dir, "bad.tar.zst")}'`]);
    const bad = await portcullis(["db", "import", join(dir, "bad.tar.zst"), "--database-url", second]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/sources\/redhat\/2099\/cve-2099-1100\.json has sha256 [a-f0-9]{64}, manifest\.json says [a-f0-9]{64}/);
    expect(await tables(second)).toEqual({ files: [], inline: [], records: [], enrichment: [] });

    const imp = await portcullis(["db", "import", file, "--database-url", second]);
    expect(imp.stderr).toBe("");
    expect(imp.code).toBe(0);
    expect(imp.stdout).toMatch(/^redhat\s+imported/m);
    expect(await tables(second)).toEqual(want);

    const ref = `${reg.host}/portcullis/rh-advisories:latest`;
    const login = ["--username", reg.username!, "--password-stdin"];
    const push = await portcullis(["db", "push", ref, "--database-url", url, ...login], `${reg.password}\n`);
    expect(push.stderr).toBe("");
    expect(push.stdout).toMatch(/@sha256:[a-f0-9]{64}: 2 source\(s\)/);
    const third = await other("c");
    const pull = await portcullis(["db", "pull", ref, "--database-url", third, ...login], `${reg.password}\n`);
    expect(pull.stderr).toBe("");
    expect(pull.code).toBe(0);
    expect(await tables(third)).toEqual(want);
    const st = JSON.parse((await portcullis(["db", "status", "--json", "--database-url", third])).stdout) as Array<{ source: string; records: number; fileCount: number }>;
    expect(st).toMatchObject([{ source: "kev", fileCount: 1 }, { source: "redhat", records: 201, fileCount: 201 }]);
    // serve --advisory-bundle: the same pull in-process (its round), into the embedded store; an unchanged digest is not pulled again.
    const embedded = await openStore("memory:");
    try {
      const round = advisoryRound({
        store: embedded, catalogue: defaultCatalogue(), sources: [], mirrors: {}, bundle: ref,
        keyring: async () => ({ lookup: async () => [{ username: reg.username!, password: reg.password!, source: "test" }] }),
      });
      expect(await round(new AbortController().signal)).toEqual([{ source: "kev", status: "imported", error: undefined }, { source: "redhat", status: "imported", error: undefined }]);
      const [, rh] = await embedded.advisories.status();
      expect(rh).toMatchObject({ source: "redhat", advisories: 201, latest: { streamed: true, fileCount: 201 } });
      expect(await round(new AbortController().signal)).toEqual([{ source: ref, status: "unchanged" }]);
    } finally {
      await embedded.close();
    }
    // Reparse and update still work on the imported operation: same parser, unchanged upstream.
    expect((await portcullis(["db", "reparse", "--database-url", third])).stdout).toMatch(/^redhat\s+unchanged/m);
  }, 240_000);
});
