import pg from "pg";
import { expect, it } from "vitest";
import { describeWith, service } from "../env/index.js";

describeWith(["postgres"], "the test PostgreSQL", () => {
  it("gives this run a database of its own, named for it", async () => {
    const { url, database } = service("postgres");
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const res = await client.query<{ db: string }>("SELECT current_database() AS db");
      expect(res.rows[0]).toEqual({ db: database });
      // Created by this run's runner (its pid is in the name), so a later run can clean up after a crash.
      expect(database).toMatch(/^portcullis_test_\d+_[a-z0-9]+$/);
      const v = await client.query<{ server_version_num: string }>("SHOW server_version_num");
      expect(Number(v.rows[0]!.server_version_num)).toBeGreaterThanOrEqual(130000);
    } finally {
      await client.end();
    }
  });
});
