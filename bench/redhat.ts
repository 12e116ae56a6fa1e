// Red Hat update benchmark: `portcullis db update --source redhat` from an upstream on loopback serving a
// csaf_vex tar.zst of N documents (the real VEX fixture under N CVE ids, so every document is a real one),
// as a whole process into the embedded store, with its peak RSS (VmHWM, polled from /proc) and time, next
// to the same archive extracted to disk by `zstd -dc | tar -x` in the same run (the floor of reading the
// archive at all). Then the bundle: `db export` of the store (Red Hat's streamed operation) and `db import`
// of it into a fresh store, each with its peak RSS against the bundle's size, next to `tar -c | zstd` of
// the same files and `zstd -dc | tar -x` of the bundle in the same run; and what compressing the bundle
// a 4 MiB frame at a time costs against one frame (the same tar, `zstd -10`), on these documents and on
// the real fixture tree. Then an incremental update of 1% of the documents.
// Usage: npm run build && npx tsx bench/redhat.ts [--documents N] [--postgres]  (--postgres: into a PostgreSQL
// the test environment starts, instead of the embedded store)
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { startUpstream } from "../src/advisories/testing.js";
import { fmt } from "./env.js";
import { ProcessSupervisor } from "../test/env/process.js";
import { startPostgres } from "../test/env/services.js";

const { values } = parseArgs({ options: { documents: { type: "string", default: "20000" }, postgres: { type: "boolean", default: false } } });
const documents = Number(values.documents);
const root = fileURLToPath(new URL("..", import.meta.url));
const cli = join(root, "dist/cli/bin.js");
if (!existsSync(cli)) throw new Error("dist/cli/bin.js is missing: run npm run build first");
const real = readFileSync(fileURLToPath(new URL("../../shared/fixtures/advisories/redhat/cve-2024-28085.json", import.meta.url)), "utf8");

const work = mkdtempSync(join(tmpdir(), "portcullis-bench-rh-"));
const docs = join(work, "docs");
const doc = (n: number, tag = "") => {
  const id = `CVE-2099-${10000 + n}`;
  return { path: `2099/${id.toLowerCase()}.json`, text: real.replaceAll("CVE-2024-28085", id).replaceAll("cve-2024-28085", id.toLowerCase()).replace("Last generated version", `Last generated version${tag}`) };
};
mkdirSync(join(docs, "2099"), { recursive: true });
let jsonBytes = 0;
for (let i = 0; i < documents; i++) {
  const d = doc(i);
  writeFileSync(join(docs, d.path), d.text);
  jsonBytes += d.text.length;
}
const archivePath = join(work, "csaf_vex_2026-12-01.tar.zst");
execFileSync("sh", ["-c", `tar -C '${docs}' -cf - 2099 | zstd -q -19 -T2 -o '${archivePath}'`]);
const archive = readFileSync(archivePath);
console.log(`Red Hat update benchmark: ${documents.toLocaleString("en")} VEX documents, ${(jsonBytes / 1e6).toFixed(1)} MB of JSON, archive ${(archive.length / 1e6).toFixed(2)} MB (zstd -19)`);

/** Runs a command to its end; returns wall time and the peak RSS of the process tree's largest member. */
async function measure(cmd: string, args: string[]): Promise<{ ms: number; peakMiB: number; stderr: string }> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  let peak = 0;
  const poll = setInterval(() => {
    for (const pid of [child.pid!, ...children(child.pid!)]) {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited between the listing and the read
      }
    }
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  clearInterval(poll);
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${code}: ${stderr}`);
  return { ms: performance.now() - t0, peakMiB: peak, stderr };
}

/** A second database on the same PostgreSQL, for the import. */
async function freshDatabase(url: string, drop = false): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(drop ? `DROP DATABASE IF EXISTS bundle_import_${process.pid} WITH (FORCE)` : `CREATE DATABASE bundle_import_${process.pid}`);
  } finally {
    await c.end();
  }
  const u = new URL(url);
  u.pathname = `/bundle_import_${process.pid}`;
  return u.toString();
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const up = await startUpstream();
const sup = new ProcessSupervisor(work);
sup.startReaper(true);
const pgService = values.postgres ? await startPostgres(sup, `benchrh${process.pid}`) : undefined;
try {
  up.put("vex/archive_latest.txt", "csaf_vex_2026-12-01.tar.zst\n");
  up.put("vex/csaf_vex_2026-12-01.tar.zst", archive);
  up.put("vex/changes.csv", "");
  up.put("vex/deletions.csv", "");
  const out = join(work, "extracted");
  mkdirSync(out);
  const floor = await measure("sh", ["-c", `zstd -dc '${archivePath}' | tar -x -C '${out}'`]);
  const store = pgService ? ["--database-url", pgService.service.url] : ["--store", join(work, "store")];
  const args = [cli, "db", "update", "--source", "redhat", "--mirror", `redhat=${up.url}/vex`, ...store];
  const full = await measure(process.execPath, args);
  console.log(`full update (archive), ${pgService ? "PostgreSQL" : "embedded store"}:`);
  console.log(`  zstd -dc | tar -x to disk (floor):   ${fmt(floor.ms)}  peak RSS ${floor.peakMiB.toFixed(0)} MiB (largest process)`);
  console.log(`  portcullis db update --source redhat: ${fmt(full.ms)}  peak RSS ${full.peakMiB.toFixed(0)} MiB  ${Math.round(documents / (full.ms / 1000)).toLocaleString("en")} documents/s`);
  console.log(`  ratio to the floor: time ${(full.ms / floor.ms).toFixed(1)}`);
  // What opening the same store costs without any update: the process and the store's own memory.
  const status = await measure(process.execPath, [cli, "db", "status", ...store]);
  // The bundle, both ways, against the tools on the same files.
  const bundle = join(work, "bundle.tar.zst");
  const exp = await measure(process.execPath, [cli, "db", "export", bundle, ...store]);
  const bundleBytes = statSync(bundle).size;
  const baseline = await measure("sh", ["-c", `tar -C '${docs}' -cf - 2099 | zstd -q -10 -o '${join(work, "baseline.tar.zst")}'`]);
  const baselineBytes = statSync(join(work, "baseline.tar.zst")).size;
  const oneFrame = Number(execFileSync("sh", ["-c", `zstd -dc '${bundle}' | zstd -q -10 -c | wc -c`]).toString().trim());
  const fresh = pgService ? ["--database-url", await freshDatabase(pgService.service.url)] : ["--store", join(work, "fresh")];
  const imp = await measure(process.execPath, [cli, "db", "import", bundle, ...fresh]);
  const untar = join(work, "untarred");
  mkdirSync(untar);
  const unpack = await measure("sh", ["-c", `zstd -dc '${bundle}' | tar -x -C '${untar}'`]);
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  console.log(`bundle of the store (db export): ${mb(bundleBytes)}; ${documents.toLocaleString("en")} documents, ${mb(jsonBytes)} of JSON:`);
  console.log(`  tar -c | zstd -10 of the same files:  ${fmt(baseline.ms)}  peak RSS ${baseline.peakMiB.toFixed(0)} MiB  ${mb(baselineBytes)}`);
  console.log(`  portcullis db export:                 ${fmt(exp.ms)}  peak RSS ${exp.peakMiB.toFixed(0)} MiB  (${(exp.peakMiB * 1048576 / bundleBytes).toFixed(2)}x the bundle, ${(exp.peakMiB * 1048576 / jsonBytes).toFixed(2)}x its JSON)`);
  console.log(`  zstd -dc | tar -x of the bundle:      ${fmt(unpack.ms)}  peak RSS ${unpack.peakMiB.toFixed(0)} MiB`);
  console.log(`  portcullis db import (fresh store):   ${fmt(imp.ms)}  peak RSS ${imp.peakMiB.toFixed(0)} MiB  (${(imp.peakMiB * 1048576 / bundleBytes).toFixed(2)}x the bundle, ${(imp.peakMiB * 1048576 / jsonBytes).toFixed(2)}x its JSON)`);
  console.log(`  over db status alone (${status.peakMiB.toFixed(0)} MiB, the process and the store): export +${(exp.peakMiB - status.peakMiB).toFixed(0)} MiB, import +${(imp.peakMiB - status.peakMiB).toFixed(0)} MiB`);
  console.log(`  4 MiB frames vs one frame (zstd -10 of the same tar): ${mb(bundleBytes)} vs ${mb(oneFrame)}, ${((bundleBytes / oneFrame - 1) * 100).toFixed(1)}% larger`);
  // The same on the real fixture tree (every source, Red Hat's document included).
  const fixtures = fileURLToPath(new URL("../../shared/fixtures/advisories", import.meta.url));
  execFileSync(process.execPath, [cli, "db", "import", fixtures, "--store", join(work, "fixtures")], { stdio: "ignore" });
  execFileSync(process.execPath, [cli, "db", "export", join(work, "fixtures.tar.zst"), "--store", join(work, "fixtures")], { stdio: "ignore" });
  const fx = statSync(join(work, "fixtures.tar.zst")).size;
  const fxOne = Number(execFileSync("sh", ["-c", `zstd -dc '${join(work, "fixtures.tar.zst")}' | zstd -q -10 -c | wc -c`]).toString().trim());
  const fxTar = Number(execFileSync("sh", ["-c", `zstd -dc '${join(work, "fixtures.tar.zst")}' | wc -c`]).toString().trim());
  const kb = (n: number) => `${(n / 1e3).toFixed(1)} kB`;
  console.log(`  the real fixture tree (${kb(fxTar)} of tar, ${Math.ceil(fxTar / (4 << 20))} frame(s)): ${kb(fx)} vs one frame by the zstd CLI ${kb(fxOne)}, ${((fx / fxOne - 1) * 100).toFixed(1)}% larger`);
  // Incremental: 1% of the documents changed after the archive's date.
  const changed = Math.max(1, Math.floor(documents / 100));
  const rows: string[] = [];
  for (let i = 0; i < changed; i++) {
    const d = doc(i * 97 % documents, " (changed)");
    up.put(`vex/${d.path}`, d.text);
    rows.push(`"${d.path}","2026-12-02T10:00:00+00:00"`);
  }
  up.put("vex/changes.csv", `${rows.join("\n")}\n`);
  const inc = await measure(process.execPath, args);
  console.log(`incremental update, ${changed} documents changed: ${fmt(inc.ms)}  peak RSS ${inc.peakMiB.toFixed(0)} MiB  ratio to the full update ${(inc.ms / full.ms).toFixed(2)}`);
  console.log(`db status on the same store (the process and store alone): ${fmt(status.ms)}  peak RSS ${status.peakMiB.toFixed(0)} MiB; the full update's peak is ${(full.peakMiB / status.peakMiB).toFixed(1)}x that`);
} finally {
  await up.close();
  if (pgService) await freshDatabase(pgService.service.url, true);
  await pgService?.stop();
  await sup.stopAll();
  rmSync(work, { recursive: true, force: true });
}
