// The advisory store over any Db (PostgreSQL or the embedded PGlite): update operations committed whole,
// records written once and shared across operations, changes computed in SQL against the source's
// previous operation. Bulk writes go through unnest() so 100,000 records take a few hundred statements.
import { createHash, randomUUID } from "node:crypto";
import type { Advisory, AffectedPackage, SkippedRecord } from "../model/advisory.js";
import type {
  AdvisoryStore, Candidate, EnrichmentRow, Operation, OperationFile, OperationInput, OperationStats, OperationWriter, PackageKey, RecordResult,
  SourceKind, SourceStatus, StreamedOperationInput,
} from "./advisory-types.js";
import { lockKey, type Db, type Queryable } from "./db.js";
import { ParsedRecords, type CurrentRecord } from "./parsed.js";

/** Raw files are kept in chunks of this size: no single value near PostgreSQL's 1 GB field limit. */
const CHUNK = 8 << 20;
/** Rows per bulk statement. */
const BATCH = 2000;
const SKIPPED_SAMPLE = 100;

interface OperationRow {
  id: string;
  ref: string;
  source: string;
  kind: SourceKind;
  origin: string;
  parser_version: string;
  fingerprint: unknown;
  files: unknown;
  licence: string;
  attribution: string;
  stats: unknown;
  created_at: Date | string;
  checked_at: Date | string | null;
  file_count: number | string | null;
}

const OPERATION_COLUMNS = "id, ref, source, kind, origin, parser_version, fingerprint, files, licence, attribution, stats, created_at, checked_at, file_count";

/** Thrown inside a streamed operation's transaction to roll it back when it changed nothing. */
class Unchanged extends Error {
  constructor(readonly latest: Operation) {
    super("unchanged");
  }
}

/** One update of a source at a time, across processes; an update may take long, so a waiter waits up to an hour. */
function withSourceLock<T>(db: Db, source: string, fn: () => Promise<T>): Promise<T> {
  return db.withLock(lockKey(`portcullis:advisories:${source}`), fn, { what: `advisory source ${source} (being updated by another process)`, waitMs: 60 * 60_000 });
}

export class SqlAdvisoryStore implements AdvisoryStore {
  /** Records and affected rows this store object has parsed, by content hash (./parsed.ts). */
  private readonly parsed: ParsedRecords;

  /** `parsedBudget`: JSON characters of parsed records and rows kept between answers (tests make it small). */
  constructor(private readonly db: Db, opts: { parsedBudget?: number } = {}) {
    this.parsed = new ParsedRecords(opts.parsedBudget);
  }

  async recordOperation(input: OperationInput): Promise<RecordResult> {
    return withSourceLock(this.db, input.source, () =>
      this.db.transaction(async (tx) => {
        const latest = await latestOperation(tx, input.source);
        if (latest && latest.parserVersion === input.parserVersion && sameFiles(latest.files, input.files)) {
          return { unchanged: true, operation: latest };
        }
        await storeRawFiles(tx, input.files);
        const stats: OperationStats = {
          advisories: 0, affected: 0, enrichment: 0, skipped: input.skipped?.length ?? 0, duplicates: 0,
          added: 0, removed: 0, modified: 0, skippedSample: (input.skipped ?? []).slice(0, SKIPPED_SAMPLE),
          ecosystems: [...new Set((input.advisories ?? []).flatMap((a) => a.affected.map((p) => p.ecosystem)))].sort(),
        };
        const { rows } = await tx.query<{ id: string }>(
          `INSERT INTO advisory_operation (ref, source, kind, origin, parser_version, fingerprint, files, licence, attribution, stats)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
          [randomUUID(), input.source, input.kind, input.origin, input.parserVersion, JSON.stringify(input.fingerprint),
            JSON.stringify(input.files.map(({ bytes: _b, ...f }) => f)), input.licence ?? "", input.attribution ?? "", JSON.stringify(stats)],
        );
        const opId = rows[0]!.id;
        const digests = [...new Set(input.files.map((f) => f.sha256))];
        await tx.query("INSERT INTO advisory_operation_raw (operation_id, sha256) SELECT $1, unnest($2::text[])", [opId, digests]);
        await writeAdvisories(tx, opId, input.source, input.advisories ?? [], stats);
        if (input.enrichment) stats.enrichment = await writeEnrichment(tx, opId, input.source, input.enrichment);
        if (input.kind !== "enrichment") {
          const counts = await writeChanges(tx, opId, input.source);
          Object.assign(stats, counts);
        }
        await tx.query("UPDATE advisory_operation SET stats = $2 WHERE id = $1", [opId, JSON.stringify(stats)]);
        const op = await operationById(tx, opId);
        return { unchanged: false, operation: op! };
      }),
    );
  }

  async recordStreamedOperation(input: StreamedOperationInput, fill: (w: OperationWriter) => Promise<void>): Promise<RecordResult> {
    try {
      return await withSourceLock(this.db, input.source, () =>
        this.db.transaction(async (tx) => {
          const latest = await latestOperation(tx, input.source);
          let base: Operation | undefined;
          if (input.base) {
            base = latest?.id === input.base.id ? latest : undefined;
            if (!base) {
              throw Object.assign(new Error(`${input.source} changed while this update ran (its latest operation is ${latest?.ref ?? "none"}, not ${input.base.ref}): run the update again`), { code: "ADVISORY_CONCURRENT_UPDATE" });
            }
            if (!base.streamed) throw new Error(`operation ${base.ref} of ${input.source} lists its files inline: an incremental operation needs a streamed one to start from`);
          }
          const { rows } = await tx.query<{ id: string }>(
            `INSERT INTO advisory_operation (ref, source, kind, origin, parser_version, fingerprint, files, licence, attribution, stats, file_count)
             VALUES ($1, $2, $3, $4, $5, $6, '[]', $7, $8, '{}', 0) RETURNING id`,
            [randomUUID(), input.source, input.kind, input.origin, input.parserVersion, JSON.stringify(input.fingerprint), input.licence ?? "", input.attribution ?? ""],
          );
          const opId = rows[0]!.id;
          const skipped: SkippedRecord[] = [...(base?.stats.skippedSample ?? [])];
          let skippedCount = base?.stats.skipped ?? 0;
          let duplicates = 0;
          if (base) {
            await tx.query(
              "INSERT INTO advisory_operation_file (operation_id, path, sha256, size, url, retrieved_at) SELECT $1, path, sha256, size, url, retrieved_at FROM advisory_operation_file WHERE operation_id = $2",
              [opId, base.id],
            );
            await tx.query("INSERT INTO advisory_operation_member (operation_id, advisory_id) SELECT $1, advisory_id FROM advisory_operation_member WHERE operation_id = $2", [opId, base.id]);
          }
          // The paths and record ids the operation holds, so only real replacements cost a DELETE (a full
          // operation of 67,000 documents would otherwise scan its members once per batch).
          const heldPaths = new Set<string>();
          const heldIds = new Set<string>();
          if (base) {
            for (const r of (await tx.query<{ path: string }>("SELECT path FROM advisory_operation_file WHERE operation_id = $1", [opId])).rows) heldPaths.add(r.path);
            const ids = await tx.query<{ ext_id: string }>("SELECT a.ext_id FROM advisory_operation_member m JOIN advisory a ON a.id = m.advisory_id WHERE m.operation_id = $1", [opId]);
            for (const r of ids.rows) heldIds.add(r.ext_id);
          }
          const dropPaths = async (all: readonly string[]) => {
            const paths = [...new Set(all)].filter((p) => heldPaths.has(p));
            for (let i = 0; i < paths.length; i += BATCH) {
              const part = paths.slice(i, i + BATCH);
              const gone = await tx.query<{ ext_id: string }>(
                `DELETE FROM advisory_operation_member m USING advisory a
                 WHERE m.operation_id = $1 AND m.advisory_id = a.id AND a.record->'origin'->>'file' = ANY($2::text[]) RETURNING a.ext_id`,
                [opId, part],
              );
              for (const r of gone.rows) heldIds.delete(r.ext_id);
              await tx.query("DELETE FROM advisory_operation_file WHERE operation_id = $1 AND path = ANY($2::text[])", [opId, part]);
              for (const p of part) heldPaths.delete(p);
            }
          };
          const writer: OperationWriter = {
            drop: dropPaths,
            rawFile: (sha256) => rawFile(tx, sha256),
            add: async (given, advisories, skips = []) => {
              // A path given twice (a tar may hold an entry twice) keeps its last copy, as tar -x would.
              const files = [...new Map(given.map((f) => [f.path, f])).values()];
              await storeRawFiles(tx, files);
              await dropPaths(files.map((f) => f.path));
              for (let i = 0; i < files.length; i += BATCH) {
                const part = files.slice(i, i + BATCH);
                await tx.query(
                  `INSERT INTO advisory_operation_file (operation_id, path, sha256, size, url, retrieved_at)
                   SELECT $1, x.path, x.sha256, x.size, x.url, x.at FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) AS x(path, sha256, size, url, at)`,
                  [opId, part.map((f) => f.path), part.map((f) => f.sha256), part.map((f) => f.size), part.map((f) => f.url ?? null), part.map((f) => f.retrievedAt ?? null)],
                );
              }
              // A record id held from another file is replaced by this one (the later document).
              const byId = new Map<string, Advisory>();
              for (const a of advisories) {
                if (byId.has(a.id)) duplicates++;
                byId.set(a.id, a);
              }
              for (const f of files) heldPaths.add(f.path);
              const ids = [...byId.keys()].filter((id) => heldIds.has(id));
              for (const id of byId.keys()) heldIds.add(id);
              for (let i = 0; i < ids.length; i += BATCH) {
                const gone = await tx.query<{ advisory_id: string }>(
                  `DELETE FROM advisory_operation_member m USING advisory a
                   WHERE m.operation_id = $1 AND m.advisory_id = a.id AND a.ext_id = ANY($2::text[]) RETURNING m.advisory_id`,
                  [opId, ids.slice(i, i + BATCH)],
                );
                duplicates += gone.rows.length;
              }
              const scratch: OperationStats = emptyStats();
              await writeAdvisories(tx, opId, input.source, [...byId.values()], scratch);
              skippedCount += skips.length;
              skipped.unshift(...skips.slice(0, SKIPPED_SAMPLE));
              skipped.length = Math.min(skipped.length, SKIPPED_SAMPLE);
            },
          };
          await fill(writer);
          await tx.query("INSERT INTO advisory_operation_raw (operation_id, sha256) SELECT DISTINCT $1::bigint, sha256 FROM advisory_operation_file WHERE operation_id = $1", [opId]);
          if (latest && latest.parserVersion === input.parserVersion && (await sameFilesAs(tx, opId, latest))) throw new Unchanged(latest);
          const counts = await tx.query<{ files: string; advisories: string; affected: string; ecosystems: string[] | null }>(
            `SELECT (SELECT count(*) FROM advisory_operation_file WHERE operation_id = $1) AS files,
                    (SELECT count(*) FROM advisory_operation_member WHERE operation_id = $1) AS advisories,
                    (SELECT count(*) FROM advisory_operation_member m JOIN advisory_affected af ON af.advisory_id = m.advisory_id WHERE m.operation_id = $1) AS affected,
                    (SELECT array_agg(DISTINCT af.ecosystem ORDER BY af.ecosystem) FROM advisory_operation_member m JOIN advisory_affected af ON af.advisory_id = m.advisory_id WHERE m.operation_id = $1) AS ecosystems`,
            [opId],
          );
          const c = counts.rows[0]!;
          const stats: OperationStats = {
            ...emptyStats(), advisories: Number(c.advisories), affected: Number(c.affected), skipped: skippedCount, duplicates,
            skippedSample: skipped, ecosystems: parseTextArray(c.ecosystems),
          };
          if (input.kind !== "enrichment") Object.assign(stats, await writeChanges(tx, opId, input.source));
          await tx.query("UPDATE advisory_operation SET stats = $2, file_count = $3 WHERE id = $1", [opId, JSON.stringify(stats), Number(c.files)]);
          const op = await operationById(tx, opId);
          return { unchanged: false, operation: op! };
        }),
      );
    } catch (e) {
      if (e instanceof Unchanged) return { unchanged: true, operation: e.latest };
      throw e;
    }
  }

  async operationFiles(operationRef: string): Promise<OperationFile[]> {
    const { rows } = await this.db.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM advisory_operation WHERE ref = $1`, [operationRef]);
    const op = rows[0] ? toOperation(rows[0]) : undefined;
    if (!op) return [];
    if (!op.streamed) return [...op.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return streamedFiles(this.db, op.id);
  }

  latestOperation(source: string): Promise<Operation | undefined> {
    return latestOperation(this.db, source);
  }

  async operations(q: { source?: string; limit?: number; after?: number } = {}): Promise<Operation[]> {
    const { rows } = await this.db.query<OperationRow>(
      `SELECT ${OPERATION_COLUMNS} FROM advisory_operation WHERE ($1::text IS NULL OR source = $1) AND id > $3 ORDER BY id DESC LIMIT $2`,
      [q.source ?? null, q.limit ?? 100, q.after ?? 0],
    );
    return rows.map(toOperation);
  }

  async candidates(keys: readonly PackageKey[]): Promise<Candidate[]> {
    if (!keys.length) return [];
    const uniq = [...new Map(keys.map((k) => [`${k.ecosystem}\0${k.name}`, k])).values()];
    // In one snapshot (a read-only repeatable-read transaction), so what is read after the first statement
    // belongs to the same state of the database as what it answered.
    return this.db.transaction(async (tx) => {
      await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
      // Which affected rows the keys have, and each current record (a member of its source's latest
      // operation, not withdrawn) they belong to, once: ids and content hashes only, as two strings. The JSON
      // is read only for what this store object has not parsed yet (below): a dense 2,000-package report is
      // 19,155 rows of 3,885 records, and reading, parsing and collecting their JSON on every match was most
      // of its time (the rows as 19,155 result rows: ~80 ms of node CPU; as one string: ~4 ms).
      const { rows } = await tx.query<{ hits: string | null; recs: string | null; ops: string | null }>(
        `WITH latest AS MATERIALIZED (SELECT DISTINCT ON (source) id, ref, source FROM advisory_operation ORDER BY source, id DESC),
         hit AS MATERIALIZED (
           SELECT r.advisory_id, r.i
           FROM unnest($1::text[], $2::text[]) AS k(ecosystem, name)
           -- One index probe per key: a LATERAL subquery the planner cannot flatten (OFFSET 0). Left to itself it
           -- scans and sorts every affected row for a large report (measured: 463 ms for 2,000 keys over 200,000
           -- rows, spilling to disk).
           CROSS JOIN LATERAL (
             SELECT af.advisory_id, af.i FROM advisory_affected af
             WHERE af.ecosystem = k.ecosystem AND af.package_name = k.name
             OFFSET 0
           ) r),
         rec AS MATERIALIZED (
           SELECT a.id, a.content_hash, l.id AS op
           FROM (SELECT DISTINCT advisory_id FROM hit) h
           JOIN advisory a ON a.id = h.advisory_id AND NOT a.withdrawn
           JOIN latest l ON l.source = a.source
           WHERE EXISTS (SELECT 1 FROM advisory_operation_member m WHERE m.operation_id = l.id AND m.advisory_id = a.id))
         -- Numbers and hex digests only in the long strings (no quoting needed); a record's id in its source
         -- is in its parsed JSON, and the source and operation are per operation (json_agg of the 3,885
         -- records of the dense report cost PostgreSQL 15 ms more than this).
         SELECT (SELECT string_agg(advisory_id || ':' || i, ',') FROM hit) AS hits,
                (SELECT string_agg(id || ':' || content_hash || ':' || op, ',') FROM rec) AS recs,
                (SELECT json_agg(json_build_array(id::text, source, ref::text))::text FROM latest) AS ops`,
        [uniq.map((k) => k.ecosystem), uniq.map((k) => k.name)],
      );
      const hits = rows[0]?.hits;
      const recList = rows[0]?.recs;
      if (!hits || !recList) return [];
      const ops = new Map((JSON.parse(rows[0]!.ops!) as Array<[string, string, string]>).map(([id, source, ref]) => [id, { source, ref }]));
      const recs = new Map<string, CurrentRecord>();
      for (const r of recList.split(",")) {
        const [id, hash, op] = r.split(":") as [string, string, string];
        const o = ops.get(op)!;
        recs.set(id, { id, hash, source: o.source, ref: o.ref, rows: [] });
      }
      for (const pair of hits.split(",")) {
        const colon = pair.indexOf(":");
        const rec = recs.get(pair.slice(0, colon));
        if (rec) rec.rows.push(Number(pair.slice(colon + 1)));
      }
      await this.parsed.fill(tx, [...recs.values()]);
      return orderedCandidates([...recs.values()], this.parsed);
    });
  }

  async ecosystems(): Promise<Set<string>> {
    // From the latest operations' stats: a scan asks this every time, and the affected rows are many.
    const { rows } = await this.db.query<{ stats: unknown }>("SELECT DISTINCT ON (source) stats FROM advisory_operation ORDER BY source, id DESC");
    return new Set(rows.flatMap((r) => parseJson<OperationStats>(r.stats).ecosystems ?? []));
  }

  async advisory(source: string, id: string): Promise<Advisory | undefined> {
    const { rows } = await this.db.query<{ id: string; record: unknown }>(
      `WITH latest AS (SELECT id FROM advisory_operation WHERE source = $1 ORDER BY id DESC LIMIT 1)
       SELECT a.id, a.record FROM advisory a
       JOIN advisory_operation_member m ON m.advisory_id = a.id JOIN latest l ON l.id = m.operation_id
       WHERE a.source = $1 AND a.ext_id = $2`,
      [source, id],
    );
    const r = rows[0];
    if (!r) return undefined;
    const affected = await this.db.query<{ affected: unknown }>("SELECT affected FROM advisory_affected WHERE advisory_id = $1 ORDER BY i", [r.id]);
    return { ...parseJson<Omit<Advisory, "affected">>(r.record), affected: affected.rows.map((x) => parseJson<AffectedPackage>(x.affected)) };
  }

  async changes(operationRef: string): Promise<{ changes: Array<{ id: string; change: "added" | "removed" | "modified" }>; packages: PackageKey[] }> {
    const { rows } = await this.db.query<{ ext_id: string; change: "added" | "removed" | "modified" }>(
      `SELECT c.ext_id, c.change FROM advisory_change c JOIN advisory_operation o ON o.id = c.operation_id WHERE o.ref = $1 ORDER BY c.ext_id`,
      [operationRef],
    );
    const keys = await this.db.query<{ ecosystem: string; package_name: string }>(
      `SELECT DISTINCT af.ecosystem, af.package_name FROM advisory_change c
       JOIN advisory_operation o ON o.id = c.operation_id
       JOIN advisory_affected af ON af.advisory_id = c.old_advisory_id OR af.advisory_id = c.new_advisory_id
       WHERE o.ref = $1 ORDER BY 1, 2`,
      [operationRef],
    );
    return { changes: rows.map((r) => ({ id: r.ext_id, change: r.change })), packages: keys.rows.map((r) => ({ ecosystem: r.ecosystem, name: r.package_name })) };
  }

  rawFile(sha256: string): Promise<Buffer | undefined> {
    return rawFile(this.db, sha256);
  }

  async enrichment(cves: readonly string[]): Promise<Map<string, EnrichmentRow>> {
    const out = new Map<string, EnrichmentRow>();
    if (!cves.length) return out;
    const { rows } = await this.db.query<{ cve: string; data: unknown }>(
      "SELECT cve, data FROM advisory_enrichment WHERE cve = ANY($1::text[]) ORDER BY source",
      [[...new Set(cves)]],
    );
    for (const r of rows) out.set(r.cve, { ...out.get(r.cve), ...parseJson<EnrichmentRow>(r.data) });
    return out;
  }

  async markChecked(ref: string): Promise<void> {
    await this.db.query("UPDATE advisory_operation SET checked_at = now() WHERE ref = $1", [ref]);
  }

  async status(): Promise<SourceStatus[]> {
    // Records and affected rows as the operation counted them when it was written (the same as counting
    // its members, without reading every affected row on each call).
    const { rows } = await this.db.query<OperationRow & { operations: string }>(
      `WITH latest AS (SELECT DISTINCT ON (source) * FROM advisory_operation ORDER BY source, id DESC)
       SELECT l.id, l.ref, l.source, l.kind, l.origin, l.parser_version, l.fingerprint, l.files, l.licence, l.attribution, l.stats, l.created_at, l.checked_at, l.file_count,
         (SELECT count(*) FROM advisory_operation o WHERE o.source = l.source) AS operations
       FROM latest l ORDER BY l.source`,
    );
    return rows.map((r) => {
      const latest = toOperation(r);
      return { source: r.source, kind: r.kind, latest, operations: Number(r.operations), advisories: latest.stats.advisories, affected: latest.stats.affected };
    });
  }

  async prune(keep = 2): Promise<{ operations: number; advisories: number; rawFiles: number }> {
    return this.db.transaction(async (tx) => {
      const ops = await tx.query<{ id: string }>(
        `DELETE FROM advisory_operation WHERE id IN (
           SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY source ORDER BY id DESC) AS n FROM advisory_operation) x WHERE n > $1)
         RETURNING id`,
        [Math.max(1, keep)],
      );
      const adv = await tx.query<{ id: string }>(
        "DELETE FROM advisory a WHERE NOT EXISTS (SELECT 1 FROM advisory_operation_member m WHERE m.advisory_id = a.id) RETURNING id",
      );
      const raw = await tx.query<{ sha256: string }>(
        "DELETE FROM advisory_raw r WHERE NOT EXISTS (SELECT 1 FROM advisory_operation_raw x WHERE x.sha256 = r.sha256) RETURNING sha256",
      );
      return { operations: ops.rows.length, advisories: adv.rows.length, rawFiles: raw.rows.length };
    });
  }
}

async function rawFile(q: Queryable, sha256: string): Promise<Buffer | undefined> {
  const { rows } = await q.query<{ b64: string }>("SELECT encode(bytes, 'base64') AS b64 FROM advisory_raw_chunk WHERE sha256 = $1 ORDER BY i", [sha256]);
  if (!rows.length) return undefined;
  const buf = Buffer.concat(rows.map((r) => Buffer.from(r.b64, "base64")));
  const got = createHash("sha256").update(buf).digest("hex");
  if (got !== sha256) throw Object.assign(new Error(`raw advisory file ${sha256} is damaged in the store (its bytes hash to ${got})`), { code: "ADVISORY_RAW_DAMAGED" });
  return buf;
}

async function latestOperation(q: Queryable, source: string): Promise<Operation | undefined> {
  const { rows } = await q.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM advisory_operation WHERE source = $1 ORDER BY id DESC LIMIT 1`, [source]);
  return rows[0] ? toOperation(rows[0]) : undefined;
}

async function operationById(q: Queryable, id: string): Promise<Operation | undefined> {
  const { rows } = await q.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM advisory_operation WHERE id = $1`, [id]);
  return rows[0] ? toOperation(rows[0]) : undefined;
}

function emptyStats(): OperationStats {
  return { advisories: 0, affected: 0, enrichment: 0, skipped: 0, duplicates: 0, added: 0, removed: 0, modified: 0, skippedSample: [], ecosystems: [] };
}

/** PostgreSQL's text[] as node-postgres (an array) or PGlite (an array, or `{a,b}` text) gives it. */
function parseTextArray(v: string[] | string | null): string[] {
  if (!v) return [];
  if (Array.isArray(v)) return v;
  return v.replace(/^\{|\}$/g, "").split(",").filter(Boolean).map((x) => x.replace(/^"|"$/g, ""));
}

async function streamedFiles(q: Queryable, opId: number | string): Promise<OperationFile[]> {
  const { rows } = await q.query<{ path: string; sha256: string; size: string | number; url: string | null; retrieved_at: string | null }>(
    "SELECT path, sha256, size, url, retrieved_at FROM advisory_operation_file WHERE operation_id = $1 ORDER BY path",
    [opId],
  );
  return rows.map((r) => ({ path: r.path, sha256: r.sha256, size: Number(r.size), ...(r.url ? { url: r.url } : {}), ...(r.retrieved_at ? { retrievedAt: r.retrieved_at } : {}) }));
}

/** Whether streamed operation `opId` holds the same (path, sha256) pairs as `other`, inline or streamed. */
async function sameFilesAs(tx: Queryable, opId: string, other: Operation): Promise<boolean> {
  if (other.streamed) {
    const { rows } = await tx.query<{ differs: boolean }>(
      `SELECT EXISTS (SELECT path, sha256 FROM advisory_operation_file WHERE operation_id = $1 EXCEPT SELECT path, sha256 FROM advisory_operation_file WHERE operation_id = $2)
           OR EXISTS (SELECT path, sha256 FROM advisory_operation_file WHERE operation_id = $2 EXCEPT SELECT path, sha256 FROM advisory_operation_file WHERE operation_id = $1) AS differs`,
      [opId, other.id],
    );
    return !rows[0]!.differs;
  }
  return sameFiles(other.files, await streamedFiles(tx, opId));
}

function sameFiles(a: ReadonlyArray<{ path: string; sha256: string }>, b: ReadonlyArray<{ path: string; sha256: string }>): boolean {
  const key = (fs: ReadonlyArray<{ path: string; sha256: string }>) => fs.map((f) => `${f.path}\0${f.sha256}`).sort().join("\n");
  return key(a) === key(b);
}

/** Stores the files not yet stored, in few statements: an import of 20,000 OSV files is 20,000 raw files. */
async function storeRawFiles(tx: Queryable, files: ReadonlyArray<{ sha256: string; bytes: Buffer }>): Promise<void> {
  const unique = new Map<string, Buffer>();
  for (const f of files) {
    const got = createHash("sha256").update(f.bytes).digest("hex");
    if (got !== f.sha256) throw Object.assign(new Error(`raw file declared as ${f.sha256} hashes to ${got}`), { code: "ADVISORY_DIGEST_MISMATCH" });
    unique.set(f.sha256, f.bytes);
  }
  const all = [...unique.keys()];
  const have = new Set<string>();
  for (let i = 0; i < all.length; i += BATCH) {
    const { rows } = await tx.query<{ sha256: string }>("SELECT sha256 FROM advisory_raw WHERE sha256 = ANY($1::text[])", [all.slice(i, i + BATCH)]);
    for (const r of rows) have.add(r.sha256);
  }
  const fresh = all.filter((d) => !have.has(d));
  // Rows of (sha256, chunk index, base64 bytes), sent in statements of at most ~32 MiB.
  // (As base64 text: PGlite moves a bytea parameter 17x slower than the same bytes as text.)
  let batch: Array<[string, number, string]> = [];
  let batchBytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    await tx.query(
      "INSERT INTO advisory_raw_chunk (sha256, i, bytes) SELECT x.sha256, x.i, decode(x.b64, 'base64') FROM unnest($1::text[], $2::int[], $3::text[]) AS x(sha256, i, b64)",
      [batch.map((b) => b[0]), batch.map((b) => b[1]), batch.map((b) => b[2])],
    );
    batch = [];
    batchBytes = 0;
  };
  for (let i = 0; i < fresh.length; i += BATCH) {
    const ds = fresh.slice(i, i + BATCH);
    await tx.query(
      "INSERT INTO advisory_raw (sha256, size, chunks) SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[])",
      [ds, ds.map((d) => unique.get(d)!.length), ds.map((d) => Math.max(1, Math.ceil(unique.get(d)!.length / CHUNK)))],
    );
  }
  for (const d of fresh) {
    const bytes = unique.get(d)!;
    const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK));
    for (let i = 0; i < chunks; i++) {
      const part = bytes.subarray(i * CHUNK, (i + 1) * CHUNK);
      if (batchBytes + part.length > 32 << 20) await flush();
      batch.push([d, i, part.toString("base64")]);
      batchBytes += part.length;
    }
  }
  await flush();
}

async function writeAdvisories(tx: Queryable, opId: string, source: string, advisories: readonly Advisory[], stats: OperationStats): Promise<void> {
  const seen = new Set<string>();
  const unique: Array<{ a: Advisory; hash: string; record: string }> = [];
  for (const a of advisories) {
    if (seen.has(a.id)) {
      stats.duplicates++;
      continue;
    }
    seen.add(a.id);
    const { affected: _affected, ...rest } = a;
    // Plain JSON: a parser builds the same record for the same input in the same key order, and the hash
    // only has to be equal for equal records of one parser version (a new version re-parses everything).
    const record = JSON.stringify(rest);
    const hash = createHash("sha256").update(record).update("\0").update(JSON.stringify(a.affected)).digest("hex");
    unique.push({ a, hash, record });
  }
  for (let i = 0; i < unique.length; i += BATCH) {
    const batch = unique.slice(i, i + BATCH);
    const existing = await tx.query<{ id: string; content_hash: string }>(
      "SELECT id, content_hash FROM advisory WHERE source = $1 AND content_hash = ANY($2::text[])",
      [source, batch.map((b) => b.hash)],
    );
    const ids = new Map(existing.rows.map((r) => [r.content_hash, r.id]));
    const fresh = batch.filter((b) => !ids.has(b.hash));
    if (fresh.length) {
      const inserted = await tx.query<{ id: string; content_hash: string }>(
        `INSERT INTO advisory (source, ext_id, content_hash, severity, withdrawn, aliases, record)
         SELECT $1, x.ext_id, x.hash, x.severity, x.withdrawn, ARRAY(SELECT jsonb_array_elements_text(x.aliases::jsonb)), x.record::jsonb
         FROM unnest($2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[]) AS x(ext_id, hash, severity, withdrawn, aliases, record)
         RETURNING id, content_hash`,
        [source, fresh.map((b) => b.a.id), fresh.map((b) => b.hash), fresh.map((b) => b.a.severity), fresh.map((b) => Boolean(b.a.withdrawn)),
          fresh.map((b) => JSON.stringify(b.a.aliases)), fresh.map((b) => b.record)],
      );
      for (const r of inserted.rows) ids.set(r.content_hash, r.id);
      const aff = { id: [] as string[], i: [] as number[], eco: [] as string[], name: [] as string[], state: [] as string[], json: [] as string[] };
      for (const b of fresh) {
        b.a.affected.forEach((p, j) => {
          aff.id.push(ids.get(b.hash)!);
          aff.i.push(j);
          aff.eco.push(p.ecosystem);
          aff.name.push(p.name);
          aff.state.push(p.fixState);
          aff.json.push(JSON.stringify(p));
        });
      }
      for (let k = 0; k < aff.id.length; k += BATCH) {
        await tx.query(
          `INSERT INTO advisory_affected (advisory_id, i, ecosystem, package_name, fix_state, affected)
           SELECT x.id, x.i, x.eco, x.name, x.state, x.json::jsonb FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(id, i, eco, name, state, json)`,
          [aff.id.slice(k, k + BATCH), aff.i.slice(k, k + BATCH), aff.eco.slice(k, k + BATCH), aff.name.slice(k, k + BATCH), aff.state.slice(k, k + BATCH), aff.json.slice(k, k + BATCH)],
        );
      }
    }
    await tx.query(
      "INSERT INTO advisory_operation_member (operation_id, advisory_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
      [opId, batch.map((b) => ids.get(b.hash)!)],
    );
    stats.advisories += batch.length;
    for (const b of batch) stats.affected += b.a.affected.length;
  }
}

async function writeEnrichment(tx: Queryable, opId: string, source: string, e: NonNullable<OperationInput["enrichment"]>): Promise<number> {
  const rows = new Map<string, EnrichmentRow>();
  const put = (cve: string, f: (r: EnrichmentRow) => void) => {
    const r = rows.get(cve) ?? {};
    f(r);
    rows.set(cve, r);
  };
  for (const x of e.epss ?? []) put(x.cve, (r) => (r.epss = { epss: x.epss, percentile: x.percentile, date: x.date }));
  for (const x of e.kev ?? []) put(x.cve, (r) => (r.kev = { dateAdded: x.dateAdded, dueDate: x.dueDate, ransomware: x.ransomware }));
  for (const x of e.cvss ?? []) put(x.cve, (r) => (r.cvss = x.cvss));
  await tx.query("DELETE FROM advisory_enrichment WHERE source = $1", [source]);
  const all = [...rows];
  for (let i = 0; i < all.length; i += BATCH) {
    const b = all.slice(i, i + BATCH);
    await tx.query(
      "INSERT INTO advisory_enrichment (source, cve, operation_id, data) SELECT $1, x.cve, $2, x.data::jsonb FROM unnest($3::text[], $4::text[]) AS x(cve, data)",
      [source, opId, b.map(([c]) => c), b.map(([, r]) => JSON.stringify(r))],
    );
  }
  return all.length;
}

/** Fills advisory_change for `opId` against the source's previous operation and returns the counts. */
async function writeChanges(tx: Queryable, opId: string, source: string): Promise<Pick<OperationStats, "added" | "removed" | "modified">> {
  const prev = await tx.query<{ id: string }>("SELECT id FROM advisory_operation WHERE source = $1 AND id < $2 ORDER BY id DESC LIMIT 1", [source, opId]);
  await tx.query(
    `WITH o AS (SELECT a.ext_id, a.id FROM advisory_operation_member m JOIN advisory a ON a.id = m.advisory_id WHERE m.operation_id = $2),
          n AS (SELECT a.ext_id, a.id FROM advisory_operation_member m JOIN advisory a ON a.id = m.advisory_id WHERE m.operation_id = $1)
     INSERT INTO advisory_change (operation_id, ext_id, change, old_advisory_id, new_advisory_id)
     SELECT $1, coalesce(n.ext_id, o.ext_id),
            CASE WHEN o.id IS NULL THEN 'added' WHEN n.id IS NULL THEN 'removed' ELSE 'modified' END, o.id, n.id
     FROM o FULL JOIN n ON o.ext_id = n.ext_id WHERE o.id IS DISTINCT FROM n.id`,
    [opId, prev.rows[0]?.id ?? null],
  );
  const { rows } = await tx.query<{ change: string; n: string }>("SELECT change, count(*) AS n FROM advisory_change WHERE operation_id = $1 GROUP BY change", [opId]);
  const count = (c: string) => Number(rows.find((r) => r.change === c)?.n ?? 0);
  return { added: count("added"), removed: count("removed"), modified: count("modified") };
}

function toOperation(r: OperationRow): Operation {
  const files = parseJson<OperationFile[]>(r.files);
  const streamed = r.file_count !== null && r.file_count !== undefined;
  return {
    id: Number(r.id), ref: r.ref, source: r.source, kind: r.kind, origin: r.origin, parserVersion: r.parser_version,
    fingerprint: parseJson(r.fingerprint), files, fileCount: streamed ? Number(r.file_count) : files.length, streamed, licence: r.licence, attribution: r.attribution,
    stats: parseJson(r.stats), createdAt: iso(r.created_at),
    ...(r.checked_at ? { checkedAt: iso(r.checked_at) } : {}),
  };
}

/**
 * The candidates in the store's order (source, record id, index in the record), each affected row with its
 * record, from what `parsed` holds. Sorted here, not in SQL: the records are ranked once, then each one's rows
 * sorted by index; no string compared per row.
 */
function orderedCandidates(all: readonly CurrentRecord[], parsed: ParsedRecords): Candidate[] {
  const byte = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  // A record's id in its source is its parsed JSON's `id` (the store writes ext_id from it).
  const recs = all.filter((r) => r.rows.length).map((r) => ({ r, p: parsed.get(r.hash)! }));
  recs.sort((x, y) => byte(x.r.source, y.r.source) || byte(x.p.record.id, y.p.record.id));
  const out: Candidate[] = [];
  for (const { r, p } of recs) {
    if (r.rows.length > 1) r.rows.sort((x, y) => x - y);
    // Candidates share the parsed record and rows (also with later answers): readers must not modify them.
    for (const i of r.rows) out.push({ source: r.source, operationRef: r.ref, advisory: p.record, affected: p.rows.get(i)! });
  }
  return out;
}

function iso(v: Date | string): string {
  return v instanceof Date ? v.toISOString() : new Date(v).toISOString();
}

function parseJson<T>(v: unknown): T {
  return (typeof v === "string" ? JSON.parse(v) : v) as T;
}
