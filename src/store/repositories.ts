// What the ImageRepository controller learned about watched repositories, over any Db: the last listing's time
// and, per tag, the digest and image creation time once resolved. Small rows; a listing that changed nothing
// writes one row (its time).
import type { Db } from "./db.js";
import type { WatchedRepository, WatchedRepositoryStore, WatchedTag } from "./types.js";

/** Tags per statement. */
const BATCH = 2000;

export class SqlWatchedRepositoryStore implements WatchedRepositoryStore {
  constructor(private readonly db: Db) {}

  async get(key: string): Promise<WatchedRepository | undefined> {
    const { rows } = await this.db.query<{ id: string; image: string; listed_at: Date | string | null }>("SELECT id, image, listed_at FROM watched_repository WHERE key = $1", [key]);
    const r = rows[0];
    if (!r) return undefined;
    const tags = await this.db.query<{ tag: string; digest: string | null; created: Date | string | null; checked_at: Date | string | null }>(
      "SELECT tag, digest, created, checked_at FROM watched_repository_tag WHERE repository_id = $1 ORDER BY tag",
      [r.id],
    );
    return {
      key, image: r.image, ...(r.listed_at ? { listedAt: iso(r.listed_at) } : {}),
      tags: tags.rows.map((t) => ({ tag: t.tag, ...(t.digest ? { digest: t.digest } : {}), ...(t.created ? { created: iso(t.created) } : {}), ...(t.checked_at ? { checkedAt: iso(t.checked_at) } : {}) })),
    };
  }

  async record(key: string, image: string, change: { listedAt?: string; upsert?: readonly WatchedTag[]; remove?: readonly string[] }): Promise<void> {
    await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string; image: string }>(
        `INSERT INTO watched_repository (key, image) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id, image`,
        [key, image],
      );
      const id = rows[0]!.id;
      if (rows[0]!.image !== image) {
        await tx.query("DELETE FROM watched_repository_tag WHERE repository_id = $1", [id]);
        await tx.query("UPDATE watched_repository SET image = $2, listed_at = NULL WHERE id = $1", [id, image]);
      }
      if (change.listedAt) await tx.query("UPDATE watched_repository SET listed_at = $2 WHERE id = $1", [id, change.listedAt]);
      const remove = change.remove ?? [];
      for (let i = 0; i < remove.length; i += BATCH) {
        await tx.query("DELETE FROM watched_repository_tag WHERE repository_id = $1 AND tag = ANY($2::text[])", [id, remove.slice(i, i + BATCH)]);
      }
      const upsert = change.upsert ?? [];
      for (let i = 0; i < upsert.length; i += BATCH) {
        const part = upsert.slice(i, i + BATCH);
        await tx.query(
          `INSERT INTO watched_repository_tag (repository_id, tag, digest, created, checked_at)
           SELECT $1, t, d, c::timestamptz, k::timestamptz FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS x(t, d, c, k)
           ON CONFLICT (repository_id, tag) DO UPDATE SET digest = EXCLUDED.digest, created = EXCLUDED.created, checked_at = EXCLUDED.checked_at`,
          [id, part.map((t) => t.tag), part.map((t) => t.digest ?? null), part.map((t) => t.created ?? null), part.map((t) => t.checkedAt ?? null)],
        );
      }
    });
  }

  async delete(key: string): Promise<void> {
    await this.db.query("DELETE FROM watched_repository WHERE key = $1", [key]);
  }

  async keys(): Promise<string[]> {
    return (await this.db.query<{ key: string }>("SELECT key FROM watched_repository ORDER BY key")).rows.map((r) => r.key);
  }
}

function iso(v: Date | string): string {
  return (v instanceof Date ? v : new Date(v)).toISOString();
}
