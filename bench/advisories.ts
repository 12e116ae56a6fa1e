// Advisory database benchmarks (figures for the closing note; baselines measured in the same run):
//   1. import throughput: `portcullis db import DIR` of N OSV records (the real fixture records replicated
//      with new ids and package names), as a whole process, into the embedded store and into PostgreSQL,
//      vs a node process that only reads and JSON-parses the same files (the floor of the work) and vs
//      psql \copy of the same records into one jsonb table (the floor of the database's write);
//   2. store size per 100,000 affected ranges on PostgreSQL, vs the raw JSON's size;
//   3. candidates for a 500-package report (one query) vs 500 single-key queries, on both stores.
// Usage: npm run build && npx tsx bench/advisories.ts [--records N] [--runs N] [--quick]
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { openStore } from "../src/store/open.js";
import type { PackageKey } from "../src/store/advisory-types.js";
import { findTool } from "../src/cli/tools.js";
import { ProcessSupervisor } from "../test/env/process.js";
import { startPostgres } from "../test/env/services.js";
import { fmt, median, timeIt } from "./env.js";

const { values } = parseArgs({ options: { records: { type: "string" }, runs: { type: "string", default: "3" }, quick: { type: "boolean", default: false } } });
const records = Number(values.records ?? (values.quick ? 5000 : 40000));
const runs = Number(values.runs);
const root = fileURLToPath(new URL("..", import.meta.url));
const cli = join(root, "dist/cli/bin.js");
if (!existsSync(cli)) throw new Error("dist/cli/bin.js is missing: run npm run build first");
const fixtures = fileURLToPath(new URL("../../shared/fixtures/advisories/", import.meta.url));

// The real OSV records, replicated: new ids, and package names spread over 2,000 per ecosystem.
const sources = ["osv/ghsa", "osv/go", "ubuntu"].flatMap((d) => readdirSync(join(fixtures, d)).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(fixtures, d, f), "utf8")) as Record<string, unknown>));
const work = mkdtempSync(join(tmpdir(), "portcullis-bench-adv-"));
const osvDir = join(work, "osv");
mkdirSync(osvDir);
const names = new Map<string, Set<string>>();
for (let i = 0; i < records; i++) {
  const r = structuredClone(sources[i % sources.length]!) as { id: string; aliases?: string[]; affected?: Array<{ package?: { ecosystem: string; name: string } }> };
  r.id = `${r.id}-B${i}`;
  r.aliases = (r.aliases ?? []).map((a) => `${a}-B${i}`);
  for (const a of r.affected ?? []) {
    if (!a.package) continue;
    a.package.name = `${a.package.name}-b${i % 2000}`;
    const set = names.get(a.package.ecosystem) ?? new Set();
    set.add(a.package.name);
    names.set(a.package.ecosystem, set);
  }
  writeFileSync(join(osvDir, `${r.id}.json`), JSON.stringify(r));
}
const rawBytes = readdirSync(osvDir).reduce((n, f) => n + statSync(join(osvDir, f)).size, 0);
console.log(`advisory benchmarks: ${records} OSV records (${(rawBytes / 1e6).toFixed(1)} MB of JSON), median of ${runs}`);

const sup = new ProcessSupervisor(work);
sup.startReaper(true);
const { service: pgs, stop: stopPg } = await startPostgres(sup, `bench${process.pid}`);
const admin = new pg.Client({ connectionString: pgs.url });
await admin.connect();
let dbn = 0;
const made: string[] = [];
const freshDb = async () => {
  const name = `bench_adv_${process.pid}_${dbn++}`;
  made.push(name);
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(pgs.url);
  u.pathname = `/${name}`;
  return u.toString();
};

try {
  // 1. import throughput
  const floor: number[] = [];
  const copy: number[] = [];
  const intoEmbedded: number[] = [];
  const intoPg: number[] = [];
  let lastPg = "";
  const psql = findTool("psql") ?? "psql";
  const lines = join(work, "records.jsonl");
  writeFileSync(lines, readdirSync(osvDir).map((f) => readFileSync(join(osvDir, f), "utf8").replace(/\\/g, "\\\\")).join("\n"));
  for (let i = 0; i < runs; i++) {
    floor.push(await timeIt(async () => execFileSync(process.execPath, ["-e", `const fs=require("fs"),p=require("path");let n=0;for(const f of fs.readdirSync(${JSON.stringify(osvDir)}))n+=JSON.parse(fs.readFileSync(p.join(${JSON.stringify(osvDir)},f),"utf8")).id.length;`])));
    const cdb = await freshDb();
    copy.push(await timeIt(async () => execFileSync(psql, [cdb, "-q", "-c", "CREATE TABLE r (doc jsonb)", "-c", `\\copy r (doc) FROM '${lines}' WITH (FORMAT text)`, "-c", "CREATE INDEX ON r ((doc->>'id'))"])));
    const store = join(work, `store-${i}`);
    intoEmbedded.push(await timeIt(async () => execFileSync(process.execPath, [cli, "db", "import", osvDir, "--store", store], { stdio: "pipe" })));
    rmSync(store, { recursive: true, force: true });
    lastPg = await freshDb();
    intoPg.push(await timeIt(async () => execFileSync(process.execPath, [cli, "db", "import", osvDir, "--database-url", lastPg], { stdio: "pipe" })));
  }
  const rate = (ms: number) => `${Math.round(records / (ms / 1000)).toLocaleString("en")} records/s`;
  console.log(`1. import of ${records} OSV records, whole processes`);
  console.log(`   node: read + JSON.parse every file (floor):       ${fmt(median(floor))}  ${rate(median(floor))}`);
  console.log(`   psql \\copy into one jsonb table + id index:       ${fmt(median(copy))}  ${rate(median(copy))}`);
  console.log(`   portcullis db import, embedded store (new):       ${fmt(median(intoEmbedded))}  ${rate(median(intoEmbedded))}  ratio to read+parse ${(median(intoEmbedded) / median(floor)).toFixed(1)}`);
  console.log(`   portcullis db import, PostgreSQL (fsync off):     ${fmt(median(intoPg))}  ${rate(median(intoPg))}  ratio to read+parse ${(median(intoPg) / median(floor)).toFixed(1)}, to psql copy ${(median(intoPg) / median(copy)).toFixed(1)}`);

  // 2. size on PostgreSQL
  const c = new pg.Client({ connectionString: lastPg });
  await c.connect();
  const size = await c.query<{ bytes: string; ranges: string; raw: string }>(`SELECT
    (SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(ARRAY['advisory','advisory_affected','advisory_operation','advisory_operation_member','advisory_change']) t) AS bytes,
    (SELECT count(*) FROM advisory_affected) AS ranges,
    (SELECT coalesce(sum(pg_total_relation_size(t::regclass)), 0) FROM unnest(ARRAY['advisory_raw','advisory_raw_chunk']) t) AS raw`);
  await c.end();
  const s = size.rows[0]!;
  const per100k = (Number(s.bytes) / Number(s.ranges)) * 100_000;
  console.log(`2. PostgreSQL size: ${Number(s.ranges).toLocaleString("en")} affected ranges in ${(Number(s.bytes) / 1e6).toFixed(1)} MB of tables and indexes (raw files kept apart: ${(Number(s.raw) / 1e6).toFixed(1)} MB)`);
  console.log(`   per 100,000 affected ranges: ${(per100k / 1e6).toFixed(1)} MB; ratio to the records' JSON ${(Number(s.bytes) / rawBytes).toFixed(2)}`);

  // 3. candidates for a 500-package report: 50 keys that have advisories, 450 that do not (a typical image).
  const known = [...names].flatMap(([eco, ns]) => [...ns].slice(0, 20).map((name) => ({ ecosystem: eco, name })));
  const keys: PackageKey[] = [...known.slice(0, 50), ...Array.from({ length: 450 }, (_, i) => ({ ecosystem: "npm", name: `absent-${i}` }))];
  for (const [label, where] of [["PostgreSQL", lastPg], ["embedded", join(work, "store-q")]] as const) {
    if (label === "embedded") execFileSync(process.execPath, [cli, "db", "import", osvDir, "--store", where], { stdio: "pipe" });
    const store = await openStore(where);
    const one: number[] = [];
    const each: number[] = [];
    let found = 0;
    for (let i = 0; i < Math.max(5, runs * 5); i++) {
      one.push(await timeIt(async () => (found = (await store.advisories.candidates(keys)).length)));
      each.push(await timeIt(async () => {
        for (const k of keys) await store.advisories.candidates([k]);
      }));
    }
    await store.close();
    console.log(`3. candidates of a 500-package report (${found} rows), ${label}: ${median(one).toFixed(1)} ms in one query vs ${median(each).toFixed(1)} ms as 500 queries (ratio ${(median(one) / median(each)).toFixed(3)})`);
  }
} finally {
  // The databases are the machine's server's: dropped once measured, not left behind run after run.
  for (const name of made) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
  await stopPg();
  await sup.stopAll();
  rmSync(work, { recursive: true, force: true });
}
