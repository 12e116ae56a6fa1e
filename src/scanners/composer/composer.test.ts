// Composer's installed.json, both shapes, from peers' test suites (test/fixtures/composer/README.md).
// Expected packages and purls: syft's syft/pkg/cataloger/php/parse_installed_json_test.go (the same two
// packages from the Composer 1 and the Composer 2 file) and trivy's
// pkg/fanal/analyzer/language/php/composer/vendor_test.go.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { mayHoldLanguagePackage } from "../owners/paths.js";
import { MapLayerFiles } from "../testing.js";
import { ScannerError } from "../errors.js";
import { ComposerScanner } from "./composer.js";

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../../test/fixtures/composer/${name}`, import.meta.url)));
const s = new ComposerScanner();

describe("composer", () => {
  it("OS file lists keep the file for ownership (an OS package that installed it governs its packages)", () => {
    expect(mayHoldLanguagePackage("usr/share/php/app/vendor/composer/installed.json")).toBe(true);
  });

  it("wants vendor/composer/installed.json only", () => {
    const want = (path: string) => s.wants({ path, size: 100, mode: 0o644, type: "file" });
    expect(want("var/www/html/vendor/composer/installed.json")).toBe(true);
    expect(want("vendor/composer/installed.json")).toBe(true);
    expect(want("var/www/html/composer.lock")).toBe(false);
    expect(want("var/www/html/vendor/composer/installed.php")).toBe(false);
    expect(want("srv/installed.json")).toBe(false);
  });

  it("reads Composer 1 (an array) and Composer 2 ({packages}) as syft expects", async () => {
    for (const f of ["syft-composer_1.installed.json", "syft-composer_2.installed.json"]) {
      const out = await s.scan(MapLayerFiles.of({ "app/vendor/composer/installed.json": fixture(f) }));
      expect(out.packages!.map((p) => [p.name, p.version, p.purl])).toEqual([
        ["asm89/stack-cors", "1.3.0", "pkg:composer/asm89/stack-cors@1.3.0"],
        ["behat/mink", "v1.8.1", "pkg:composer/behat/mink@v1.8.1"],
      ]);
      expect(out.packages![0]).toMatchObject({ kind: "binary", package_db: "composer:app/vendor/composer/installed.json", filepath: "app/vendor/composer/installed.json" });
    }
  });

  it("reads trivy's vendor fixture as trivy expects", async () => {
    const out = await s.scan(MapLayerFiles.of({ "vendor/composer/installed.json": fixture("trivy-happy.installed.json") }));
    expect(out.packages!.map((p) => `${p.name}@${p.version}`)).toEqual(["pear/log@1.13.3", "pear/pear_exception@v1.0.2"]);
  });

  it("names the file and the fault for what Composer cannot have written; skips entries without name or version", async () => {
    const bad = async (content: string) => s.scan(MapLayerFiles.of({ "vendor/composer/installed.json": content })).then(() => undefined, (e: unknown) => e);
    // trivy's sad-path fixture is a single "a" (decode error).
    expect(await bad("a")).toBeInstanceOf(ScannerError);
    expect(((await bad("a")) as Error).message).toMatch(/^composer: vendor\/composer\/installed\.json: not JSON/);
    expect(((await bad('{"dev": true}')) as Error).message).toMatch(/neither a JSON array of packages \(Composer 1\) nor an object with a packages array/);
    const out = await s.scan(MapLayerFiles.of({ "vendor/composer/installed.json": JSON.stringify({ packages: [{ name: "a/b" }, { version: "1" }, { name: "nonamespace", version: "1" }, null, { name: "c/d", version: "2.0.0" }] }) }));
    expect(out.packages!.map((p) => p.name)).toEqual(["c/d"]);
  });
});
