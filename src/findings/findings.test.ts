// The findings suite on the embedded store (PostgreSQL runs it in test/store/postgres.test.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openCliStore, openStore } from "../store/open.js";
import { seriousDiff } from "./rematch.js";
import { findingsSuite } from "./suite.js";

findingsSuite("findings (PGlite, in memory)", () => openStore("memory:"));
const dir = mkdtempSync(join(tmpdir(), "portcullis-findings-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// The CLI's folder store: reports in files, findings in its PGlite.
findingsSuite("findings (CLI folder store)", () => openCliStore(join(dir, "store")));

describe("seriousDiff", () => {
  it("names the Critical and High ids gained and lost", () => {
    const f = (id: string, severity: "Critical" | "High" | "Medium") => ({ id, severity, package: "p", version: "1", fixState: "fixed" as const });
    expect(seriousDiff([f("A", "Critical"), f("B", "Medium")], [f("B", "High"), f("C", "Medium")])).toEqual({ gained: [f("B", "High")], lost: [f("A", "Critical")] });
    const two = [{ ...f("D", "High"), package: "apt" }, { ...f("D", "High"), package: "libapt-pkg6.0" }];
    expect(seriousDiff([], two).gained).toEqual(two);
    expect(seriousDiff(undefined, [f("A", "High")]).gained).toHaveLength(1);
  });
});
