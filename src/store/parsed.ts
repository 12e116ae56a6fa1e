// The advisory records and affected rows a store object has parsed, kept for its next candidates() answers.
// A record row is written once and never changed (the store shares it between operations by its content
// hash: the hash of its JSON and of its affected rows' JSON), so a parse kept under that hash stays true for
// as long as the process lives, whatever happens to the row's id, and matching asks for the same records over
// and over (the controller after each index, re-matching, the report API, a dense report matched again).
// Bounded: two generations of at most BUDGET / 2 characters of JSON each; what is used moves to the young
// one, and when the young one is full the old one is dropped whole.
import type { AffectedPackage } from "../model/advisory.js";
import type { Candidate } from "./advisory-types.js";
import type { Queryable } from "./db.js";

/** JSON characters kept at most (parsed, roughly 2.5 bytes of heap each: about 40 MB). */
const BUDGET = 16 << 20;
/** Ids per statement when reading what is missing. */
const BATCH = 5000;

/** A current record a candidates() answer names, with the indexes of its affected rows the keys hit. */
export interface CurrentRecord {
  id: string;
  hash: string;
  source: string;
  ref: string;
  rows: number[];
}

interface Entry {
  record: Candidate["advisory"];
  rows: Map<number, AffectedPackage>;
  chars: number;
}

export class ParsedRecords {
  private young = new Map<string, Entry>();
  private old = new Map<string, Entry>();
  private youngChars = 0;

  constructor(private readonly budget = BUDGET) {}

  /** The parsed record of this content hash and the rows read so far, if kept; it becomes young. */
  get(hash: string): Entry | undefined {
    const y = this.young.get(hash);
    if (y) return y;
    const o = this.old.get(hash);
    if (!o) return undefined;
    this.old.delete(hash);
    this.admit(hash, o);
    return o;
  }

  /**
   * Reads (in `tx`, the caller's snapshot) and parses the records and affected rows of `recs` not kept yet.
   * Afterwards every record of `recs` and each of its `rows` is in the young generation: a generation dropped
   * while filling is only the old one, which holds none of them.
   */
  async fill(tx: Queryable, recs: readonly CurrentRecord[]): Promise<void> {
    const needed = recs.filter((r) => r.rows.length);
    // First what is kept, so filling cannot drop it; then the records never parsed.
    const missingRecords: CurrentRecord[] = [];
    for (const r of needed) if (!this.get(r.hash)) missingRecords.push(r);
    for (let k = 0; k < missingRecords.length; k += BATCH) {
      const part = missingRecords.slice(k, k + BATCH);
      const { rows } = await tx.query<{ id: string; record: string }>(
        "SELECT id::text AS id, (record - 'details')::text AS record FROM advisory WHERE id = ANY($1::bigint[])",
        [part.map((r) => r.id)],
      );
      const byId = new Map(rows.map((r) => [r.id, r.record]));
      for (const r of part) {
        const text = byId.get(r.id);
        if (text === undefined) throw new Error(`advisory record ${r.id} vanished inside one snapshot`);
        this.admit(r.hash, { record: JSON.parse(text) as Candidate["advisory"], rows: new Map(), chars: text.length });
      }
    }
    const ids: string[] = [];
    const idx: number[] = [];
    const owner = new Map<string, Entry>();
    for (const r of needed) {
      const e = this.young.get(r.hash)!;
      owner.set(r.id, e);
      for (const i of r.rows) {
        if (e.rows.has(i)) continue;
        ids.push(r.id);
        idx.push(i);
      }
    }
    for (let k = 0; k < ids.length; k += BATCH) {
      const { rows } = await tx.query<{ id: string; i: number; affected: string }>(
        `SELECT x.id::text AS id, x.i, af.affected::text AS affected
         FROM unnest($1::bigint[], $2::int[]) AS x(id, i) JOIN advisory_affected af ON af.advisory_id = x.id AND af.i = x.i`,
        [ids.slice(k, k + BATCH), idx.slice(k, k + BATCH)],
      );
      for (const r of rows) {
        const e = owner.get(r.id)!;
        e.rows.set(Number(r.i), JSON.parse(r.affected) as AffectedPackage);
        e.chars += r.affected.length;
        this.youngChars += r.affected.length;
      }
    }
    for (const r of needed) {
      const e = owner.get(r.id)!;
      for (const i of r.rows) if (!e.rows.has(i)) throw new Error(`affected row ${i} of advisory record ${r.id} vanished inside one snapshot`);
    }
    // Over budget: the old generation goes now, between answers, never in the middle of one.
    if (this.youngChars > this.budget / 2) this.rotate();
  }

  private admit(hash: string, e: Entry): void {
    this.young.set(hash, e);
    this.youngChars += e.chars;
  }

  private rotate(): void {
    this.old = this.young;
    this.young = new Map();
    this.youngChars = 0;
  }
}
