// .NET deps.json files from trivy's test suite (test/fixtures/dotnet/README.md). Expected libraries: trivy's
// pkg/dependency/parser/dotnet/core_deps/parse_test.go (TestParse, by fixture) and
// pkg/fanal/analyzer/language/dotnet/deps/deps_test.go (datacollector.deps.json).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { mayHoldLanguagePackage } from "../owners/paths.js";
import { MapLayerFiles } from "../testing.js";
import { ScannerError } from "../errors.js";
import { DotnetDepsScanner } from "./dotnet.js";

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../../test/fixtures/dotnet/${name}`, import.meta.url)));
const s = new DotnetDepsScanner();

const TRIVY: Record<string, string[]> = {
  "trivy-happy.deps.json": ["ExampleApp1/1.0.0", "Newtonsoft.Json/13.0.1"],
  "trivy-without-runtime.deps.json": ["hello2/1.0.0", "JsonDiffPatch/2.0.61", "Libuv/1.9.1", "System.Collections.Immutable/1.3.0"],
  "trivy-no-libraries.deps.json": [],
  "trivy-missing-target.deps.json": ["ExampleApp1/1.0.0", "Newtonsoft.Json/13.0.1"],
  "trivy-self-contained.deps.json": ["ExampleApp1/1.0.0", "Microsoft.AspNetCore.App.Runtime.linux-x64/8.0.0", "Microsoft.NETCore.App.Runtime.linux-x64/8.0.0", "Newtonsoft.Json/13.0.1"],
  "trivy-multi-project.deps.json": ["Web/1.0.0", "Api/1.0.0", "Data/1.0.0", "Newtonsoft.Json/13.0.3"],
  "trivy-ambiguous-root.deps.json": ["Newtonsoft.Json/13.0.3", "Web/1.0.0", "Worker/1.0.0"],
  "trivy-datacollector.deps.json": ["Microsoft.VisualStudio.TestPlatform.Common/17.2.0-release-20220408-11", "Newtonsoft.Json/9.0.1"],
};

describe("dotnet deps.json", () => {
  it("OS file lists keep the file for ownership (an OS package that installed it governs its packages)", () => {
    expect(mayHoldLanguagePackage("usr/lib/dotnet/sdk/8.0.100/dotnet.deps.json")).toBe(true);
  });

  it("wants *.deps.json", () => {
    expect(s.wants({ path: "app/MyApp.deps.json", size: 100, mode: 0o644, type: "file" })).toBe(true);
    expect(s.wants({ path: "app/MyApp.runtimeconfig.json", size: 100, mode: 0o644, type: "file" })).toBe(false);
  });

  for (const [file, want] of Object.entries(TRIVY)) {
    it(`${file}: the runtime libraries trivy expects`, async () => {
      const out = await s.scan(MapLayerFiles.of({ [`app/${file}`]: fixture(file) }));
      expect(out.packages!.map((p) => `${p.name}/${p.version}`).sort()).toEqual([...want].sort());
    });
  }

  it("purls and package_db", async () => {
    const out = await s.scan(MapLayerFiles.of({ "app/ExampleApp1.deps.json": fixture("trivy-happy.deps.json") }));
    expect(out.packages!.find((p) => p.name === "Newtonsoft.Json")).toEqual({
      name: "Newtonsoft.Json", version: "13.0.1", kind: "binary", package_db: "nuget:app/ExampleApp1.deps.json", filepath: "app/ExampleApp1.deps.json", purl: "pkg:nuget/Newtonsoft.Json@13.0.1",
    });
  });

  it("names the file and the fault: trivy's invalid.deps.json (cut short), wrong shapes", async () => {
    const bad = (content: string | Buffer) => s.scan(MapLayerFiles.of({ "app/x.deps.json": content })).then(() => undefined, (e: unknown) => e as Error);
    const cut = await bad(fixture("trivy-invalid.deps.json"));
    expect(cut).toBeInstanceOf(ScannerError);
    expect(cut!.message).toMatch(/^dotnet-deps: app\/x\.deps\.json: not JSON/);
    expect((await bad("[]"))!.message).toMatch(/not a JSON object/);
    expect((await bad('{"libraries": []}'))!.message).toMatch(/libraries is not an object/);
  });
});
