// `portcullis db` as users run it (child processes) against the PostgreSQL the cluster would use, an
// upstream on loopback serving the real fixture files, and the real registry for push and pull.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startUpstream, type TestUpstream } from "../../src/advisories/testing.js";
import { describeWith, service } from "../env/index.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const fixtures = fileURLToPath(new URL("../../../shared/fixtures/advisories", import.meta.url));

function portcullis(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(tsx, [bin, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

interface StatusRow {
  source: string;
  records: number;
  affected: number;
  origin: string;
  files: Array<{ path: string; sha256: string }>;
}

describeWith(["postgres", "registryBasic"], "portcullis db", () => {
  let admin: pg.Client;
  let dir: string;
  let up: TestUpstream;
  const dbs: string[] = [];
  /** A database of its own, dropped at the end. */
  const freshDb = async () => {
    const name = `adv_${process.pid}_${dbs.length}_${Date.now().toString(36)}`;
    await admin.query(`CREATE DATABASE ${name}`);
    dbs.push(name);
    const u = new URL(service("postgres").url);
    u.pathname = `/${name}`;
    return u.toString();
  };
  const status = async (store: string[]) => {
    const r = await portcullis(["db", "status", "--json", ...store]);
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as StatusRow[]).map((s) => ({ source: s.source, records: s.records, affected: s.affected, files: s.files.map((f) => [f.path, f.sha256]) }));
  };

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: service("postgres").url });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), "portcullis-db-"));
    up = await startUpstream();
  });
  afterAll(async () => {
    await up?.close();
    for (const d of dbs) await admin.query(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`);
    await admin?.end();
    rmSync(dir, { recursive: true, force: true });
  });

  let source = "";
  it("imports the upstream files as published, and says what it did not recognise", async () => {
    source = await freshDb();
    const r = await portcullis(["db", "import", fixtures, "--database-url", source]);
    expect(r.stderr).toMatch(/file\(s\) not recognised and left out/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^debian\s+imported\s+6\s+6 records/m);
    expect(r.stdout).toMatch(/^nodejs\s+imported\s+1\s+170 records, 170 affected \(\+170 -0 ~0\), 1 skipped/m);
    const st = await status(["--database-url", source]);
    expect(st.map((s) => s.source)).toEqual(["alpine", "debian", "epss", "kev", "nodejs", "nvd", "osv", "redhat"]);
    const again = await portcullis(["db", "import", fixtures, "--database-url", source]);
    expect(again.stdout).toMatch(/^debian\s+unchanged/m);
  });

  it("updates from a mirror with conditional requests, and fails a source whose upstream fails without touching it", async () => {
    const url = await freshDb();
    up.put("debian/debian.json", readFileSync(join(fixtures, "debian/vunnel/debian.json")));
    up.put("debian/DSA/list", readFileSync(join(fixtures, "debian/vunnel/DSA")));
    const args = ["db", "update", "--source", "debian", "--mirror", `debian=${up.url}/debian`, "--database-url", url];
    const first = await portcullis(args);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^debian\s+updated\s+8\.5 kB/m);
    const second = await portcullis(args);
    expect(second.stdout).toMatch(/^debian\s+unchanged\s+0\.0 kB/m);
    expect(up.requests.filter((r) => r.path === "debian/debian.json").map((r) => r.status)).toEqual([200, 304]);
    up.fail("debian/debian.json", 503);
    const failed = await portcullis(args);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(new RegExp(`^debian\\s+failed.*GET ${up.url}/debian/debian.json answered 503`, "m"));
    up.fail("debian/debian.json", undefined);
    expect((await status(["--database-url", url]))[0]).toMatchObject({ source: "debian", records: 6 });
  });

  it("exports a bundle that gives the same tables on PostgreSQL and on the embedded store, and refuses a changed one", async () => {
    const file = join(dir, "advisories.tar.zst");
    const exp = await portcullis(["db", "export", file, "--database-url", source]);
    expect(exp.code).toBe(0);
    expect(exp.stdout).toMatch(/8 source\(s\)/);
    const want = await status(["--database-url", source]);
    const other = await freshDb();
    const imp = await portcullis(["db", "import", file, "--database-url", other]);
    expect(imp.code).toBe(0);
    expect(await status(["--database-url", other])).toEqual(want);
    const embedded = join(dir, "store");
    expect((await portcullis(["db", "import", file, "--store", embedded])).code).toBe(0);
    expect(await status(["--store", embedded])).toEqual(want);

    // One byte changed in the compressed bundle: nothing is imported.
    const bytes = readFileSync(file);
    const mid = bytes.length >> 1;
    bytes[mid] = bytes[mid]! ^ 0xff;
    writeFileSync(join(dir, "bad.tar.zst"), bytes);
    const third = await freshDb();
    const bad = await portcullis(["db", "import", join(dir, "bad.tar.zst"), "--database-url", third]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bundle|sha256|zstd/);
    expect((await portcullis(["db", "status", "--database-url", third])).stdout).toMatch(/no advisory data yet/);
  }, 180_000);

  it("pushes the bundle to a registry and pulls it into another cluster's database", async () => {
    const reg = service("registryBasic");
    const ref = `${reg.host}/portcullis/advisories:latest`;
    const noConfig = { DOCKER_CONFIG: join(dir, "no-docker-config") };
    const push = await portcullis(["db", "push", ref, "--database-url", source, "--username", reg.username!, "--password-stdin"], noConfig, `${reg.password}\n`);
    expect(push.stderr).toBe("");
    expect(push.code).toBe(0);
    expect(push.stdout).toMatch(/@sha256:[a-f0-9]{64}: 8 source\(s\)/);
    const target = await freshDb();
    const pull = await portcullis(["db", "pull", ref, "--database-url", target, "--username", reg.username!, "--password-stdin"], noConfig, `${reg.password}\n`);
    expect(pull.code).toBe(0);
    expect(await status(["--database-url", target])).toEqual(await status(["--database-url", source]));
    const anonymous = await portcullis(["db", "pull", ref, "--database-url", target], noConfig);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/AUTH_FAILED/);
  }, 180_000);

  it("exits 2 for usage errors", async () => {
    expect((await portcullis(["db"])).code).toBe(2);
    expect((await portcullis(["db", "frobnicate"])).stderr).toMatch(/unknown db command "frobnicate"/);
    expect((await portcullis(["db", "update", "--source", "nope"])).stderr).toMatch(/unknown --source nope; known: debian, alpine/);
    expect((await portcullis(["db", "update", "--mirror", "debian"])).stderr).toMatch(/--mirror must be NAME=http/);
    expect((await portcullis(["db", "status", "--store", "x", "--database-url", "postgres://y"])).code).toBe(2);
  });
});
