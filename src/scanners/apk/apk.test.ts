import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expectedTsv, fixtureNames, fixturesDir, MapLayerFiles } from "../testing.js";
import { ApkScanner } from "./apk.js";

describe("apk scanner on peer projects' fixtures", () => {
  const scanner = new ApkScanner();
  for (const name of fixtureNames("apk")) {
    it(name, async () => {
      const out = await scanner.scan(MapLayerFiles.of({ "lib/apk/db/installed": readFileSync(fixturesDir("apk", name, "installed")) }));
      expect(out.packages!.map((p) => `${p.name}\t${p.version}`).sort()).toEqual(expectedTsv("apk", name));
    });
  }

  it("records arch, origin as the source package, and the database path", async () => {
    const out = await scanner.scan(MapLayerFiles.of({ "lib/apk/db/installed": "C:Q1x=\nP:libcrypto3\nV:3.1.4-r1\nA:x86_64\no:openssl\nF:usr/lib\nR:libcrypto.so.3\n\nP:broken\n" }));
    expect(out.packages).toEqual([{ name: "libcrypto3", version: "3.1.4-r1", kind: "binary", arch: "x86_64", package_db: "lib/apk/db/installed", source: { name: "openssl", version: "3.1.4-r1", kind: "source" } }]);
  });
});
