// The ecosystems of issue 18 through `portcullis scan` on an OCI image, as a user runs it: a Rust program
// built with cargo-auditable, a .NET app's deps.json, Composer's installed.json and an old distroless
// os-release with debian_version beside it, all real files from peers' test suites (test/fixtures/*/README.md).
// Expected packages are the peers' own test expectations; the NuGet finding is GHSA-5crp-9r3c-p9vr as GitHub
// publishes it (Newtonsoft.Json < 13.0.1), imported with `portcullis db import`.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { clairValidator } from "../../src/indexer/clair-schema.js";
import type { IndexReport } from "../../src/model/index-report.js";
import { fixturesDir } from "../../src/scanners/testing.js";
import { describeWith } from "../env/index.js";
import { ociLayout, portcullis } from "../matcher/debian-live.js";

const fixture = (rel: string) => fileURLToPath(new URL(`../fixtures/${rel}`, import.meta.url));

describeWith([], "new ecosystems through portcullis scan", () => {
  let dir: string;
  let store: string;
  const image = () => `oci:${join(dir, "layout")}:apps`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-ecosystems-"));
    const root = join(dir, "root");
    const put = (from: string, to: string, mode = 0o644) => {
      mkdirSync(dirname(join(root, to)), { recursive: true });
      copyFileSync(from, join(root, to));
      chmodSync(join(root, to), mode);
    };
    put(fixturesDir("osrelease", "debian-distroless-with-debian_version", "os-release"), "etc/os-release");
    put(fixturesDir("osrelease", "debian-distroless-with-debian_version", "debian_version"), "etc/debian_version");
    put(fixture("cargo/scalibr-uses_serde_json"), "usr/local/bin/uses_json", 0o755);
    put(fixture("cargo/trivy-workspace.elf"), "usr/local/bin/workspace", 0o755);
    put(fixture("dotnet/trivy-datacollector.deps.json"), "app/datacollector.deps.json");
    put(fixture("dotnet/trivy-happy.deps.json"), "app/ExampleApp1.deps.json");
    put(fixture("composer/syft-composer_2.installed.json"), "var/www/vendor/composer/installed.json");
    ociLayout(join(dir, "layout"), { apps: [root] });
    store = join(dir, "store");
    const r = await portcullis(["db", "import", fixture("advisories/GHSA-5crp-9r3c-p9vr.json"), "--store", store]);
    expect(r.code, r.stderr).toBe(0);
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the IndexReport has every peer-expected package, with its package database, and Debian 10 from debian_version", async () => {
    const r = await portcullis(["scan", image(), "--store", store, "--format", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as IndexReport;
    expect(clairValidator("index_report.schema.json")(report)).toEqual([]);
    const by = (prefix: string) => Object.entries(report.packages!).filter(([id]) => report.environments![id]![0]!.package_db.startsWith(prefix)).map(([, p]) => `${p.name}@${p.version}`).sort();
    // osv-scalibr cargoauditable_test.go (uses_serde_json) + trivy parse_test.go (workspace).
    expect(by("cargo:")).toEqual([
      "crate_with_features@0.1.0", "itoa@1.0.14", "library_crate@0.1.0", "memchr@2.7.4", "proc-macro2@1.0.92", "quote@1.0.38", "ryu@1.0.18",
      "serde@1.0.217", "serde_derive@1.0.217", "serde_json@1.0.135", "syn@2.0.95", "unicode-ident@1.0.14", "uses_json@0.1.0",
    ]);
    // trivy deps_test.go (datacollector) and parse_test.go (happy).
    expect(by("nuget:")).toEqual(["ExampleApp1@1.0.0", "Microsoft.VisualStudio.TestPlatform.Common@17.2.0-release-20220408-11", "Newtonsoft.Json@13.0.1", "Newtonsoft.Json@9.0.1"]);
    // syft parse_installed_json_test.go.
    expect(by("composer:")).toEqual(["asm89/stack-cors@1.3.0", "behat/mink@v1.8.1"]);
    const dist = Object.values(report.distributions!)[0]!;
    expect({ did: dist.did, version_id: dist.version_id, pretty_name: dist.pretty_name }).toEqual({ did: "debian", version_id: "10", pretty_name: "Distroless" });
  }, 120_000);

  it("vuln-json: GHSA-5crp-9r3c-p9vr for Newtonsoft.Json 9.0.1 only (13.0.1 is the fix); every ecosystem in the coverage", async () => {
    const r = await portcullis(["scan", image(), "--store", store, "--format", "vuln-json"]);
    expect(r.code, r.stderr).toBe(0);
    const vr = JSON.parse(r.stdout) as {
      packages: Record<string, { name: string; version: string }>;
      vulnerabilities: Record<string, { name: string; fixed_in_version: string }>;
      package_vulnerabilities: Record<string, string[]>;
      enrichments: Record<string, unknown[]>;
    };
    expect(clairValidator("vulnerability_report.schema.json")(vr)).toEqual([]);
    const found = Object.entries(vr.package_vulnerabilities).flatMap(([id, vs]) => vs.map((v) => `${vr.packages[id]!.name}@${vr.packages[id]!.version} ${vr.vulnerabilities[v]!.name} ${vr.vulnerabilities[v]!.fixed_in_version}`));
    expect(found).toEqual(["Newtonsoft.Json@9.0.1 GHSA-5crp-9r3c-p9vr 13.0.1"]);
    const table = await portcullis(["scan", image(), "--store", store]);
    expect(table.code, table.stderr).toBe(0);
    // crates.io and Packagist were looked up with no data imported for them: said, not "clean".
    expect(table.stdout).toMatch(/coverage:.*NuGet supported/);
    expect(table.stdout).toMatch(/crates\.io no data/);
    expect(table.stdout).toMatch(/Packagist no data/);
  }, 120_000);
});
