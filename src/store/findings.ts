// Findings per manifest over any Db: the summary and compact list matching wrote last, and the reverse index
// from advisory package keys to manifests that re-matching reads after an update.
import type { StoredFindings } from "../model/findings.js";
import type { PackageKey } from "./advisory-types.js";
import type { Db } from "./db.js";
import type { FindingsStore } from "./types.js";

/** Keys per statement (two arrays of this many strings). */
const BATCH = 5000;

export class SqlFindingsStore implements FindingsStore {
  constructor(private readonly db: Db) {}

  async put(manifest: string, f: StoredFindings, keys?: readonly PackageKey[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string }>("SELECT id FROM manifest WHERE hash = $1", [manifest]);
      if (!rows[0]) throw new Error(`manifest ${manifest} is not in the store: index it before matching it`);
      const id = rows[0].id;
      await tx.query(
        `INSERT INTO manifest_findings (manifest_id, matched_at, coverage, summary, findings) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (manifest_id) DO UPDATE SET matched_at = EXCLUDED.matched_at, coverage = EXCLUDED.coverage, summary = EXCLUDED.summary, findings = EXCLUDED.findings`,
        [id, f.summary.matchedAt, f.summary.coverage, JSON.stringify(f.summary), JSON.stringify(f.findings)],
      );
      if (!keys) return;
      await tx.query("DELETE FROM manifest_advisory_key WHERE manifest_id = $1", [id]);
      const unique = [...new Map(keys.map((k) => [`${k.ecosystem}\0${k.name}`, k])).values()];
      for (let i = 0; i < unique.length; i += BATCH) {
        const part = unique.slice(i, i + BATCH);
        await tx.query(
          "INSERT INTO manifest_advisory_key (ecosystem, name, manifest_id) SELECT e, n, $3 FROM unnest($1::text[], $2::text[]) AS k(e, n)",
          [part.map((k) => k.ecosystem), part.map((k) => k.name), id],
        );
      }
    });
  }

  async get(manifest: string): Promise<StoredFindings | undefined> {
    const { rows } = await this.db.query<{ summary: unknown; findings: unknown }>(
      "SELECT f.summary, f.findings FROM manifest_findings f JOIN manifest m ON m.id = f.manifest_id WHERE m.hash = $1",
      [manifest],
    );
    return rows[0] ? { summary: json(rows[0].summary), findings: json(rows[0].findings) } : undefined;
  }

  async manifestsForKeys(keys: readonly PackageKey[]): Promise<string[]> {
    const out = new Set<string>();
    for (let i = 0; i < keys.length; i += BATCH) {
      const part = keys.slice(i, i + BATCH);
      const { rows } = await this.db.query<{ hash: string }>(
        `SELECT DISTINCT m.hash FROM unnest($1::text[], $2::text[]) AS k(e, n)
         JOIN manifest_advisory_key x ON x.ecosystem = k.e AND x.name = k.n JOIN manifest m ON m.id = x.manifest_id`,
        [part.map((k) => k.ecosystem), part.map((k) => k.name)],
      );
      for (const r of rows) out.add(r.hash);
    }
    return [...out].sort();
  }

  async unmatched(): Promise<string[]> {
    const { rows } = await this.db.query<{ hash: string }>(
      `SELECT m.hash FROM index_report r JOIN manifest m ON m.id = r.manifest_id
       WHERE r.state = 'IndexFinished' AND NOT EXISTS (SELECT 1 FROM manifest_findings f WHERE f.manifest_id = r.manifest_id) ORDER BY m.hash`,
    );
    return rows.map((r) => r.hash);
  }

  async cursor(): Promise<number> {
    const { rows } = await this.db.query<{ operation_id: string }>("SELECT operation_id FROM findings_cursor WHERE id = 1");
    return rows[0] ? Number(rows[0].operation_id) : 0;
  }

  async setCursor(operationId: number): Promise<void> {
    await this.db.query(
      "INSERT INTO findings_cursor (id, operation_id) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET operation_id = EXCLUDED.operation_id",
      [operationId],
    );
  }

  async notCovered(): Promise<string[]> {
    const { rows } = await this.db.query<{ hash: string }>(
      "SELECT m.hash FROM manifest_findings f JOIN manifest m ON m.id = f.manifest_id WHERE f.coverage <> 'supported' ORDER BY m.hash",
    );
    return rows.map((r) => r.hash);
  }
}

function json<T>(v: unknown): T {
  return (typeof v === "string" ? JSON.parse(v) : v) as T;
}
