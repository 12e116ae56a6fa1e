import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expectedTsv, fixtureNames, fixturesDir, MapLayerFiles } from "../testing.js";
import { readBdbHashValues } from "./bdb.js";
import { parseRpmHeader, parseSourceRpm } from "./header.js";
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

  it("file ownership from the headers' file lists: Amazon Linux 2023's python3-* egg-info (as rpm -ql lists them)", async () => {
    const out = await scanner.scan(MapLayerFiles.of({ "var/lib/rpm/rpmdb.sqlite": readFileSync(fixturesDir("rpm", "amazonlinux-2023", "rpmdb.sqlite")) }));
    const py = out.owners!.flatMap((o) => o.paths.filter((p) => p.includes("-info")).map((p) => `${o.package}\t${p}`));
    // `rpm --dbpath D -ql python3-libcomps` (and -gpg, -rpm) on this database, filtered to the .egg-info paths; test/scanners/ownership.test.ts compares every package with rpm itself.
    expect(py).toEqual([
      "python3-gpg\tusr/lib64/python3.9/site-packages/gpg-1.15.1-py3.9.egg-info",
      "python3-libcomps\tusr/lib64/python3.9/site-packages/libcomps-0.1.18-py3.9.egg-info",
      "python3-libcomps\tusr/lib64/python3.9/site-packages/libcomps-0.1.18-py3.9.egg-info/PKG-INFO",
      "python3-rpm\tusr/lib64/python3.9/site-packages/rpm-4.16.1.3-py3.9.egg-info",
    ].sort((a, b) => (a < b ? -1 : 1)));
    expect(out.owners!.every((o) => o.db === "var/lib/rpm/rpmdb.sqlite" && o.packageDb === o.db && o.paths.length > 0)).toBe(true);
    expect(out.owners!.find((o) => o.package === "bash")!.paths).toContain("usr/bin/bash");
  });

  it("refuses a header whose file list points outside itself", () => {
    // One index entry per tag: NAME, VERSION, RELEASE, then DIRINDEXES pointing at directory 5 of 1.
    const strings = Buffer.from("n\0" + "1\0" + "1\0" + "/usr/bin/\0" + "x\0");
    const idx = Buffer.alloc(4);
    idx.writeInt32BE(5);
    const data = Buffer.concat([strings, idx]);
    const entries: Array<[number, number, number, number]> = [[1000, 6, 0, 1], [1001, 6, 2, 1], [1002, 6, 4, 1], [1116, 4, strings.length, 1], [1117, 8, 16, 1], [1118, 8, 6, 1]];
    const head = Buffer.alloc(8 + entries.length * 16);
    head.writeUInt32BE(entries.length, 0);
    head.writeUInt32BE(data.length, 4);
    entries.forEach(([tag, type, off, count], i) => {
      head.writeUInt32BE(tag, 8 + i * 16);
      head.writeUInt32BE(type, 12 + i * 16);
      head.writeInt32BE(off, 16 + i * 16);
      head.writeUInt32BE(count, 20 + i * 16);
    });
    const blob = Buffer.concat([head, data]);
    expect(parseRpmHeader(blob).name).toBe("n");
    expect(() => parseRpmHeader(blob, { files: () => true })).toThrow(/DIRINDEXES\[0\] = 5, but there are 1 DIRNAMES/);
    blob.writeInt32BE(0, head.length + strings.length);
    expect(parseRpmHeader(blob, { files: () => true }).files).toEqual(["usr/bin/x"]);
  });
});
