// Manifests waiting to be indexed, as a queue in the database the cluster already runs: the controller asks
// for a manifest (enqueue), the indexer processes of every replica take work (claim: FOR UPDATE SKIP LOCKED,
// priority lane first), keep it with a lease they renew (heartbeat), and say how it ended (finish). A job
// whose owner died is taken by the next claim once its lease expired; each claim counts an attempt, so a
// manifest that kills whoever indexes it stops being handed out after max_attempts.
import type { Db } from "./db.js";
import type { IndexJob, IndexJobInput, IndexJobOutcome, IndexJobStore, IndexJobQueueStats } from "./types.js";

interface Row {
  id: string;
  manifest: string;
  scanner_set: string;
  reference: string;
  platform: string | null;
  namespace: string;
  pull_secrets: string[];
  priority: boolean;
  state: IndexJob["state"];
  attempts: number;
  max_attempts: number;
  not_before: Date | string;
  owner: string | null;
  lease_expires: Date | string | null;
  code: string | null;
  message: string | null;
  stats: unknown;
  created: Date | string;
  updated: Date | string;
}

const COLUMNS = "id, manifest, scanner_set, reference, platform, namespace, pull_secrets, priority, state, attempts, max_attempts, not_before, owner, lease_expires, code, message, stats, created, updated";
/** A job asked for again: when this holds (it is finished), it starts over with the new request's values. */
const FINISHED = "index_job.state IN ('done', 'failed')";
/** What a finished job takes when it starts over (column, value); a queued or running one keeps its own. */
const RESTART: ReadonlyArray<readonly [string, string]> = [
  ["reference", "EXCLUDED.reference"], ["platform", "EXCLUDED.platform"], ["namespace", "EXCLUDED.namespace"],
  ["pull_secrets", "EXCLUDED.pull_secrets"], ["max_attempts", "EXCLUDED.max_attempts"], ["attempts", "0"], ["not_before", "now()"],
  ["code", "NULL"], ["message", "NULL"], ["state", "'queued'"],
];
/** The SET list of that (every expression of an UPDATE reads the row as it was). */
const RESTART_SET = RESTART.map(([column, fresh]) => `${column} = CASE WHEN ${FINISHED} THEN ${fresh} ELSE index_job.${column} END`).join(",\n         ");
/** How long finished jobs are kept (their outcome is what the controller reads). */
const KEEP_FINISHED = "1 day";

export class SqlIndexJobStore implements IndexJobStore {
  constructor(private readonly db: Db) {}

  async enqueue(job: IndexJobInput): Promise<IndexJob> {
    // A job already queued or running is joined (the priority lane wins); a finished one starts over.
    const { rows } = await this.db.query<Row>(
      `INSERT INTO index_job (manifest, scanner_set, reference, platform, namespace, pull_secrets, priority, max_attempts)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (manifest, scanner_set) DO UPDATE SET
         priority = CASE WHEN ${FINISHED} THEN EXCLUDED.priority ELSE index_job.priority OR EXCLUDED.priority END,
         ${RESTART_SET},
         updated = now()
       RETURNING ${COLUMNS}`,
      [job.manifest, job.scannerSet, job.reference, job.platform ?? null, job.namespace, job.pullSecrets, job.priority, job.maxAttempts],
    );
    return toJob(rows[0]!);
  }

  async get(manifest: string, scannerSet: string): Promise<IndexJob | undefined> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM index_job WHERE manifest = $1 AND scanner_set = $2`, [manifest, scannerSet]);
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async claim(owner: string, leaseMs: number, scannerSet: string): Promise<IndexJob | undefined> {
    const { rows } = await this.db.query<Row>(
      `UPDATE index_job SET state = 'running', owner = $1, lease_expires = now() + make_interval(secs => $2::double precision / 1000),
         attempts = attempts + 1, updated = now()
       WHERE id = (
         SELECT id FROM index_job
         WHERE scanner_set = $3 AND ((state = 'queued' AND not_before <= now()) OR (state = 'running' AND lease_expires < now()))
         ORDER BY priority DESC, id
         FOR UPDATE SKIP LOCKED
         LIMIT 1)
       RETURNING ${COLUMNS}`,
      [owner, leaseMs, scannerSet],
    );
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async heartbeat(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const { rows } = await this.db.query<{ id: string }>(
      `UPDATE index_job SET lease_expires = now() + make_interval(secs => $3::double precision / 1000), updated = now()
       WHERE id = $1 AND owner = $2 AND state = 'running' RETURNING id`,
      [id, owner, leaseMs],
    );
    return rows.length > 0;
  }

  async finish(id: string, owner: string, outcome: IndexJobOutcome): Promise<boolean> {
    const retryMs = outcome.state === "retry" ? outcome.afterMs : 0;
    const { rows } = await this.db.query<{ id: string }>(
      `UPDATE index_job SET
         state = $3, owner = NULL, lease_expires = NULL, code = $4, message = $5, stats = $6,
         not_before = now() + make_interval(secs => $7::double precision / 1000),
         attempts = CASE WHEN $8 THEN attempts - 1 ELSE attempts END, updated = now()
       WHERE id = $1 AND owner = $2 AND state = 'running' RETURNING id`,
      [
        id, owner, outcome.state === "retry" || outcome.state === "release" ? "queued" : outcome.state,
        outcome.state === "failed" || outcome.state === "retry" ? outcome.code : null,
        outcome.state === "failed" || outcome.state === "retry" ? outcome.message.slice(0, 4000) : null,
        outcome.state === "done" ? JSON.stringify(outcome.stats) : null, retryMs, outcome.state === "release",
      ],
    );
    return rows.length > 0;
  }

  async stats(): Promise<IndexJobQueueStats> {
    const { rows } = await this.db.query<{ queued: string; running: string; done: string; failed: string; oldest: number | null }>(
      `SELECT count(*) FILTER (WHERE state = 'queued') AS queued, count(*) FILTER (WHERE state = 'running') AS running,
         count(*) FILTER (WHERE state = 'done') AS done, count(*) FILTER (WHERE state = 'failed') AS failed,
         extract(epoch FROM now() - min(created) FILTER (WHERE state = 'queued'))::float8 AS oldest
       FROM index_job`,
    );
    const r = rows[0]!;
    return { queued: Number(r.queued), running: Number(r.running), done: Number(r.done), failed: Number(r.failed), oldestQueuedMs: r.oldest ? Math.round(r.oldest * 1000) : 0 };
  }

  async prune(): Promise<number> {
    const { rows } = await this.db.query<{ id: string }>(`DELETE FROM index_job WHERE state IN ('done', 'failed') AND updated < now() - interval '${KEEP_FINISHED}' RETURNING id`);
    return rows.length;
  }
}

function toJob(r: Row): IndexJob {
  return {
    id: String(r.id), manifest: r.manifest, scannerSet: r.scanner_set, reference: r.reference, ...(r.platform ? { platform: r.platform } : {}),
    namespace: r.namespace, pullSecrets: r.pull_secrets ?? [], priority: r.priority, state: r.state, attempts: r.attempts, maxAttempts: r.max_attempts,
    notBefore: iso(r.not_before), ...(r.owner ? { owner: r.owner } : {}), ...(r.lease_expires ? { leaseExpires: iso(r.lease_expires) } : {}),
    ...(r.code ? { code: r.code } : {}), ...(r.message ? { message: r.message } : {}),
    ...(r.stats ? { stats: (typeof r.stats === "string" ? JSON.parse(r.stats) : r.stats) as IndexJobStats } : {}),
    created: iso(r.created), updated: iso(r.updated),
  };
}

type IndexJobStats = NonNullable<IndexJob["stats"]>;

function iso(v: Date | string): string {
  return (v instanceof Date ? v : new Date(v)).toISOString();
}
