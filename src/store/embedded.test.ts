import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { EmbeddedDb } from "./embedded.js";
import { migrate } from "./migrations.js";
import { openCliStore, openStore } from "./open.js";
import { storeSuite } from "./suite.js";
import { advisoryStoreSuite } from "./advisory-suite.js";

const dir = mkdtempSync(join(tmpdir(), "portcullis-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

storeSuite("embedded store (PGlite, in memory)", () => openStore("memory:"));
// The CLI's folder store: the index as files, PGlite (in the folder's pg/) for watched repositories.
storeSuite("CLI folder store (file index + PGlite)", () => openCliStore(join(dir, "cli-suite")));

it("keeps its data in the folder across opens, and migrations run once", async () => {
  const path = join(dir, "store");
  const a = await openStore(path);
  await a.setIndexReport({ manifest_hash: `sha256:${"1".repeat(64)}`, state: "IndexFinished", success: true }, "s");
  await a.close();
  const db = await EmbeddedDb.open(join(path, "pg"));
  expect(await migrate(db)).toEqual([]);
  await db.close();
  const b = await openStore(path);
  expect((await b.indexReport(`sha256:${"1".repeat(64)}`))?.report.state).toBe("IndexFinished");
  await b.close();
}, 60_000);

advisoryStoreSuite("advisory store (PGlite, in memory)", () => openStore("memory:"));
// The advisory store of the CLI's folder store is PGlite's, reached through the lazy opener.
advisoryStoreSuite("advisory store (CLI folder store)", () => openCliStore(join(dir, "cli-advisories")));
