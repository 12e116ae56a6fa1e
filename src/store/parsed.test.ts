// The parsed records a store object keeps between candidates() answers (./parsed.ts): whatever it holds, and
// however small its budget, each answer is what was written for the records current at the time of asking.
// The oracle is the operations' own input. Embedded PGlite here; the advisory suite runs on PostgreSQL too.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Advisory, AffectedPackage } from "../model/advisory.js";
import { SqlAdvisoryStore } from "./advisories.js";
import type { Candidate, OperationInput, PackageKey } from "./advisory-types.js";
import { EmbeddedDb } from "./embedded.js";
import { migrate } from "./migrations.js";

let db: EmbeddedDb;
beforeAll(async () => {
  db = await EmbeddedDb.open();
  await migrate(db);
}, 60_000);
afterAll(async () => db?.close());

const row = (name: string, fixed: string, ecosystem = "npm"): AffectedPackage => ({
  ecosystem, name, nameKind: "binary", fixState: "fixed", fixedVersions: [fixed], ranges: [{ type: "SEMVER", events: [{ introduced: "0" }, { fixed }] }],
});

/** Record r<i> names packages p<i>, p<i+1>, p<i+2> (so records share packages), fixed in 1.<i>.<generation>. */
function records(n: number, generation: number, skip: (i: number) => boolean = () => false): Advisory[] {
  const out: Advisory[] = [];
  for (let i = 0; i < n; i++) {
    if (skip(i)) continue;
    out.push({
      id: `GHSA-r${i}`, aliases: [`CVE-2024-${1000 + i}`], advisoryIds: [], severity: "High", cvss: [], references: [],
      details: "long text", origin: { file: "x.json", record: `GHSA-r${i}` },
      affected: [0, 1, 2].map((j) => row(`p${i + j}`, `1.${i}.${generation}`)),
    });
  }
  return out;
}

function op(source: string, tag: string, advisories: Advisory[]): OperationInput {
  const bytes = Buffer.from(tag);
  return {
    source, kind: "language", origin: "test", parserVersion: "1", fingerprint: {}, advisories,
    files: [{ path: "x.json", bytes, sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length }],
  };
}

/** What candidates() must answer for `keys`, from the operation's input: source, record id, then row index. */
function expected(written: readonly Advisory[], keys: readonly PackageKey[]): Array<{ id: string; name: string; fixed: string[] }> {
  const want = new Set(keys.map((k) => `${k.ecosystem}\0${k.name}`));
  return [...written].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .flatMap((a) => a.affected.filter((p) => want.has(`${p.ecosystem}\0${p.name}`)).map((p) => ({ id: a.id, name: p.name, fixed: p.fixedVersions })));
}

const shape = (cs: readonly Candidate[]) => cs.map((c) => ({ id: c.advisory.id, name: c.affected.name, fixed: c.affected.fixedVersions }));
const keysOf = (from: number, to: number): PackageKey[] => Array.from({ length: to - from }, (_, k) => ({ ecosystem: "npm", name: `p${from + k}` }));

it("answers what was written for the current records, whatever it kept parsed and however small its budget", async () => {
  const stores = [new SqlAdvisoryStore(db), new SqlAdvisoryStore(db, { parsedBudget: 2_000 }), new SqlAdvisoryStore(db, { parsedBudget: 0 })];
  const first = records(60, 1);
  await stores[0]!.recordOperation(op("parsed-osv", "1", first));
  // Overlapping key sets, asked in turn, so kept records are reused, extended with rows and dropped.
  const ranges: Array<[number, number]> = [[0, 20], [10, 40], [0, 62], [30, 35], [0, 20]];
  for (const [a, b] of ranges) {
    for (const s of stores) expect(shape(await s.candidates(keysOf(a, b)))).toEqual(expected(first, keysOf(a, b)));
  }
  // A new operation: records 0-9 changed (a new fix), 10-14 removed, the rest the same rows as before.
  const second = records(60, 1, (i) => i >= 10 && i < 15).map((a) => (Number(a.id.slice(6)) < 10 ? records(60, 2).find((x) => x.id === a.id)! : a));
  await stores[0]!.recordOperation(op("parsed-osv", "2", second));
  for (const [a, b] of ranges) {
    for (const s of stores) expect(shape(await s.candidates(keysOf(a, b)))).toEqual(expected(second, keysOf(a, b)));
  }
  // The whole record is one call away; candidates leave its long text out.
  const c = await stores[1]!.candidates([{ ecosystem: "npm", name: "p3" }]);
  expect(c[0]!.advisory).not.toHaveProperty("details");
  expect(c[0]!.advisory.aliases).toEqual(["CVE-2024-1001"]);
}, 60_000);
