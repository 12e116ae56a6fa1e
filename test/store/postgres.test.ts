import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PostgresDb } from "../../src/store/postgres.js";
import { migrate, MIGRATIONS } from "../../src/store/migrations.js";
import { openStore } from "../../src/store/open.js";
import { storeSuite } from "../../src/store/suite.js";
import { advisoryStoreSuite } from "../../src/store/advisory-suite.js";
import { findingsSuite } from "../../src/findings/suite.js";
import { describeWith, scratchDatabases, service } from "../env/index.js";

describeWith(["postgres"], "PostgreSQL store", () => {
  storeSuite("the store suite on PostgreSQL", () => openStore(service("postgres").url));
  advisoryStoreSuite("the advisory store suite on PostgreSQL", () => openStore(service("postgres").url));
  // Re-matching keeps one cursor per database: the findings suite gets a database of its own.
  const own = scratchDatabases();
  findingsSuite("the findings suite on PostgreSQL", async () => openStore(await own.create("findings")));

  // A database of its own, so the migration test starts from nothing.
  let url = "";
  let admin: pg.Client;
  const name = `migr_${process.pid}_${Date.now().toString(36)}`;
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: service("postgres").url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const u = new URL(service("postgres").url);
    u.pathname = `/${name}`;
    url = u.toString();
  });
  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await own.dropAll();
    await admin.end();
  });

  it("applies migrations exactly once when several replicas start at the same moment", async () => {
    const dbs = Array.from({ length: 4 }, () => new PostgresDb({ url, max: 2 }));
    const applied = await Promise.all(dbs.map((db) => migrate(db)));
    expect(applied.flat().sort()).toEqual(MIGRATIONS.map((m) => m.version));
    const { rows } = await dbs[0]!.query<{ n: string }>("SELECT count(*) AS n FROM portcullis_schema_migrations");
    expect(Number(rows[0]!.n)).toBe(MIGRATIONS.length);
    await Promise.all(dbs.map((db) => db.close()));
  });

  it("refuses a database whose schema is newer than this build", async () => {
    const db = new PostgresDb({ url });
    await db.query("INSERT INTO portcullis_schema_migrations (version, name) VALUES (999, 'from the future')");
    await expect(migrate(db)).rejects.toThrow(/version 999, newer than this Portcullis knows/);
    await db.query("DELETE FROM portcullis_schema_migrations WHERE version = 999");
    await db.close();
  });

  it("holds a manifest's lock across connections (two processes would wait the same way)", async () => {
    const a = await openStore(url);
    const b = await openStore(url);
    const order: string[] = [];
    const job = (s: typeof a, n: string) => s.withManifestLock("sha256:abc", async () => {
      order.push(`${n}+`);
      await new Promise((r) => setTimeout(r, 50));
      order.push(`${n}-`);
    });
    await Promise.all([job(a, "a"), job(b, "b")]);
    expect(order.join(" ")).toMatch(/^(a\+ a- b\+ b-|b\+ b- a\+ a-)$/);
    await Promise.all([a.close(), b.close()]);
  });
});
