import pg from "pg";
import { expect, it } from "vitest";
import { describeWith, service } from "../env/index.js";

describeWith(["postgres"], "the test PostgreSQL", () => {
  it("gives this run a fresh, empty database of its own", async () => {
    const { url, database } = service("postgres");
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const res = await client.query<{ db: string; tables: string }>(
        "SELECT current_database() AS db, (SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public') AS tables",
      );
      expect(res.rows[0]).toEqual({ db: database, tables: "0" });
      const v = await client.query<{ server_version_num: string }>("SHOW server_version_num");
      expect(Number(v.rows[0]!.server_version_num)).toBeGreaterThanOrEqual(130000);
    } finally {
      await client.end();
    }
  });
});
