import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { expectedTsv, fixtureNames, fixturesDir, MapLayerFiles } from "../testing.js";
import { DpkgScanner, parseParagraphs } from "./dpkg.js";

function layerOf(name: string): MapLayerFiles {
  const dir = fixturesDir("dpkg", name);
  const files: Record<string, Buffer> = {};
  if (statSync(join(dir, "status"), { throwIfNoEntry: false })) files["var/lib/dpkg/status"] = readFileSync(join(dir, "status"));
  const sd = join(dir, "status.d");
  if (statSync(sd, { throwIfNoEntry: false })) for (const f of readdirSync(sd)) files[`var/lib/dpkg/status.d/${f}`] = readFileSync(join(sd, f));
  return MapLayerFiles.of(files);
}

describe("dpkg scanner on peer projects' fixtures", () => {
  const scanner = new DpkgScanner();
  for (const name of fixtureNames("dpkg")) {
    it(name, async () => {
      const files = layerOf(name);
      // The layer walk asks the scanner about each path; keep only what it wants, as the walk does.
      const wanted = new MapLayerFiles(new Map(files.paths().filter((p) => scanner.wants({ path: p, size: 0, mode: 0o644, type: "file" })).map((p) => [p, files.get(p)!])));
      const out = await scanner.scan(wanted);
      expect(out.packages!.map((p) => `${p.name}\t${p.version}`).sort()).toEqual(expectedTsv("dpkg", name));
    });
  }

  it("keeps the source package and its own version", async () => {
    const out = await scanner.scan(layerOf("postgresql-source-versions"));
    const withVersionedSource = out.packages!.filter((p) => p.source && p.source.version !== p.version);
    expect(withVersionedSource.length).toBeGreaterThan(0);
    for (const p of out.packages!) {
      expect(p.package_db).toBe("var/lib/dpkg/status");
      expect(p.source?.kind).toBe("source");
    }
  });

  it("wants status and status.d control files, not their side files", () => {
    const w = (path: string) => scanner.wants({ path, size: 1, mode: 0o644, type: "file" });
    expect(w("var/lib/dpkg/status")).toBe(true);
    expect(w("var/lib/dpkg/status.d/libc6")).toBe(true);
    expect(w("var/lib/dpkg/status.d/libc6.md5sums")).toBe(false);
    expect(w("var/lib/dpkg/status-old")).toBe(false);
    expect(w("var/lib/dpkg/status.d/x/y")).toBe(false);
  });

  it("parses CRLF, continuation lines, a missing final newline and deinstalled entries", async () => {
    const text = "Package: a\r\nStatus: install ok installed\r\nMaintainer: m\r\nVersion: 1:2.3-4\r\nArchitecture: amd64\r\nDescription: x\r\n more\r\n\r\nPackage: b\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: all\n\nPackage: c:amd64\nStatus: install ok installed\nSource: csrc (9)\nVersion: 2\nArchitecture: amd64";
    const out = await scanner.scan(MapLayerFiles.of({ "var/lib/dpkg/status": text }));
    expect(out.packages!.map((p) => [p.name, p.version, p.source?.name, p.source?.version])).toEqual([["a", "1:2.3-4", "a", "1:2.3-4"], ["c", "2", "csrc", "9"]]);
    expect(parseParagraphs(text)[0]!.get("Description")).toBe("x\nmore");
  });

  it("refuses binary data in a status file with an error naming it", async () => {
    await expect(scanner.scan(MapLayerFiles.of({ "var/lib/dpkg/status": Buffer.from([0x50, 0, 1, 2]) }))).rejects.toThrow(/dpkg: var\/lib\/dpkg\/status: binary/);
  });

  it("parses the 467 KB texlive database quickly", async () => {
    const files = layerOf("ubuntu18.04-texlive");
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) await scanner.scan(files);
    // A loose bound, not a benchmark: catches an accidental quadratic parse, not a slow machine.
    expect((performance.now() - t0) / 10).toBeLessThan(250);
  });
});
