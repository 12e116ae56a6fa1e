import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expectedTsv, fixtureNames, fixturesDir, MapLayerFiles } from "../testing.js";
import { ApkScanner, parseApkOwners } from "./apk.js";

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

  it("file ownership: F: directories and F:+R: files, per package (syft's alpine-baselayout entry)", () => {
    const text = readFileSync(fixturesDir("apk", "alpine-3.12-baselayout-only", "installed"), "utf8");
    const all = parseApkOwners(text, undefined, () => true);
    expect(all.map((o) => o.package)).toEqual(["alpine-baselayout"]);
    const lines = text.split("\n");
    expect(all[0]!.paths.length).toBe(lines.filter((l) => l.startsWith("F:") || l.startsWith("R:")).length);
    expect(all[0]!.paths).toEqual(expect.arrayContaining(["etc", "etc/fstab", "etc/group"]));
    // Of it, only the executable is where a language package (a Go program) could live.
    expect(parseApkOwners(text)).toEqual([{ db: "lib/apk/db/installed", packageDb: "lib/apk/db/installed", package: "alpine-baselayout", paths: ["sbin/mkmntdirs"] }]);
  });

  it("file ownership keeps a py3 package's dist-info and its executables; refuses R: names that are paths", async () => {
    const db = "P:py3-six\nV:1.16.0-r7\nF:usr/lib/python3.11/site-packages/six-1.16.0.dist-info\nR:METADATA\nR:RECORD\nR:../../../../usr/bin/x\nF:usr/bin\nR:six-tool\n\nP:musl\nV:1.2.4-r0\nF:lib\nR:ld-musl-x86_64.so.1\n";
    const out = await scanner.scan(MapLayerFiles.of({ "lib/apk/db/installed": db }));
    expect(out.owners).toEqual([{
      db: "lib/apk/db/installed", packageDb: "lib/apk/db/installed", package: "py3-six",
      paths: ["usr/lib/python3.11/site-packages/six-1.16.0.dist-info", "usr/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA", "usr/bin/six-tool"],
    }]);
  });
});
