import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expectedTsv, fixtureNames, fixturesDir, MapLayerFiles } from "../testing.js";
import { readBdbHashValues } from "./bdb.js";
import { parseSourceRpm } from "./header.js";
import { readNdbBlobs } from "./ndb.js";
import { RpmScanner } from "./rpm.js";

describe("rpm scanner on peer projects' databases (sqlite, Berkeley DB, ndb)", () => {
  const scanner = new RpmScanner();
  for (const name of fixtureNames("rpm")) {
    it(name, async () => {
      const dir = fixturesDir("rpm", name);
      const file = readdirSync(dir).find((f) => f !== "expected.tsv" && !f.endsWith(".md"))!;
      const out = await scanner.scan(MapLayerFiles.of({ [`var/lib/rpm/${file}`]: readFileSync(`${dir}/${file}`) }));
      expect(out.packages!.map((p) => `${p.name}\t${p.version}`).sort()).toEqual(expectedTsv("rpm", name));
    });
  }

  it("reads the same database under usr/lib/sysimage/rpm, with source packages and arch", async () => {
    const dir = fixturesDir("rpm", "cbl-mariner-2.0");
    const out = await scanner.scan(MapLayerFiles.of({ "usr/lib/sysimage/rpm/rpmdb.sqlite": readFileSync(`${dir}/rpmdb.sqlite`) }));
    expect(out.packages!.length).toBe(129);
    const withSource = out.packages!.filter((p) => p.source);
    expect(withSource.length).toBeGreaterThan(100);
    expect(out.packages!.every((p) => p.package_db === "usr/lib/sysimage/rpm/rpmdb.sqlite")).toBe(true);
  });

  it("splits source rpm names with dashes", () => {
    expect(parseSourceRpm("perl-Text-Tabs+Wrap-2013.0523-395.el8.src.rpm")).toEqual({ name: "perl-Text-Tabs+Wrap", version: "2013.0523", release: "395.el8" });
    expect(parseSourceRpm("nonsense")).toBeUndefined();
  });

  it("refuses damaged databases with an error naming the file, quickly", async () => {
    const ndb = readFileSync(fixturesDir("rpm", "sle15-bci-2023", "Packages.db"));
    const truncated = ndb.subarray(0, 9000);
    await expect(scanner.scan(MapLayerFiles.of({ "var/lib/rpm/Packages.db": truncated }))).rejects.toThrow(/rpm: var\/lib\/rpm\/Packages\.db:/);
    const bdb = Buffer.from(readFileSync(fixturesDir("rpm", "converted-bdb-from-cbl-mariner-2.0", "Packages")));
    // Point an overflow chain back at itself: a loop must be refused, not followed forever.
    const looped = Buffer.from(bdb);
    for (let pg = 1; pg * 4096 < looped.length; pg++) {
      if (looped[pg * 4096 + 25] === 7) {
        looped.writeUInt32LE(pg, pg * 4096 + 16);
        break;
      }
    }
    expect(() => readBdbHashValues(looped)).toThrow(/loops|ends after/);
    await expect(scanner.scan(MapLayerFiles.of({ "var/lib/rpm/rpmdb.sqlite": Buffer.from("SQLite format 3\0garbage") }))).rejects.toThrow(/not a readable sqlite rpm database/);
    expect(() => readNdbBlobs(Buffer.alloc(100))).toThrow(/bad magic/);
    expect(() => readBdbHashValues(Buffer.alloc(4096))).toThrow(/bad magic/);
  });
});
