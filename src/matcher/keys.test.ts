// Lookup keys and compared versions for inventories the real scanners produce (images indexed through
// walkLayer → default scanners → coalesce → buildReport).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { distributionKey } from "./distribution.js";
import { lookupKeys, packageKeys, unsupportedEcosystem, type PackageKeys } from "./keys.js";
import { matchReport } from "./match.js";
import { ownershipFromDpkgLists } from "./ownership.js";
import { goBinary, indexImage, OS_RELEASE, packageFixture } from "./testing.js";

const keyed = (keys: PackageKeys[], name: string): PackageKeys => {
  const k = keys.find((x) => x.package.name === name);
  if (!k) throw new Error(`no package ${name}`);
  return k;
};
const targets = (k: PackageKeys) => k.targets.map((t) => ({ ecosystem: t.ecosystem, name: t.name, nameKind: t.nameKind, version: t.version, ...(t.module ? { module: t.module } : {}) }));
const dist = (text: string) => {
  const kv = Object.fromEntries(text.trim().split("\n").map((l) => l.split("=") as [string, string]).map(([k, v]) => [k, v.replace(/^"|"$/g, "")]));
  return distributionKey({ did: kv.ID ?? "", version_id: kv.VERSION_ID ?? "", pretty_name: kv.PRETTY_NAME ?? "", cpe: kv.CPE_NAME ?? "" }).key;
};

describe("OS packages", () => {
  it("dpkg: the source name and SOURCE version (postgresql-client 11+200+deb10u5 is compared as postgresql-common 200+deb10u5)", async () => {
    const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.debian10 }, { name: "var/lib/dpkg/status", content: packageFixture("dpkg/postgresql-source-versions/status") }]]);
    const keys = packageKeys(report, { distribution: dist(OS_RELEASE.debian10) });
    expect(targets(keyed(keys, "postgresql-client"))).toEqual([
      { ecosystem: "Debian:10", name: "postgresql-common", nameKind: "source", version: "200+deb10u5" },
      { ecosystem: "Debian:10", name: "postgresql-client", nameKind: "binary", version: "11+200+deb10u5" },
    ]);
    // Source without a version: the binary's version is the source's.
    expect(targets(keyed(keys, "postgresql-client-common"))[0]).toEqual({ ecosystem: "Debian:10", name: "postgresql-common", nameKind: "source", version: "200+deb10u5" });
    expect(targets(keyed(keys, "postgresql-client-11"))[0]).toEqual({ ecosystem: "Debian:10", name: "postgresql-11", nameKind: "source", version: "11.22-0+deb10u2" });
    expect(lookupKeys(keys)).toEqual(
      expect.arrayContaining([
        { ecosystem: "Debian:10", name: "postgresql-common" },
        { ecosystem: "Debian:10", name: "postgresql-11" },
      ]),
    );
  });

  it("dpkg on Ubuntu: liblzma5 is looked up as xz-utils 5.1.1alpha+20120614-2 (its Source: field), gzip as itself", async () => {
    const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.ubuntu1804 }, { name: "var/lib/dpkg/status", content: packageFixture("dpkg/ubuntu18.04-trivy/status") }]]);
    const keys = packageKeys(report, { distribution: dist(OS_RELEASE.ubuntu1804) });
    expect(targets(keyed(keys, "liblzma5"))[0]).toEqual({ ecosystem: "Ubuntu:18.04:LTS", name: "xz-utils", nameKind: "source", version: "5.1.1alpha+20120614-2" });
    expect(targets(keyed(keys, "gzip"))[0]).toEqual({ ecosystem: "Ubuntu:18.04:LTS", name: "gzip", nameKind: "source", version: "1.6-5ubuntu1" });
    // With Ubuntu Pro sources the ESM ecosystem is looked up too.
    const pro = packageKeys(report, { distribution: distributionKey({ did: "ubuntu", version_id: "18.04" }, { ubuntuPro: true }).key });
    expect(keyed(pro, "gzip").targets.map((t) => t.ecosystem)).toEqual(["Ubuntu:18.04:LTS", "Ubuntu:Pro:18.04:LTS", "Ubuntu:18.04:LTS", "Ubuntu:Pro:18.04:LTS"]);
  });

  it("apk: the origin (o:) and the package version", async () => {
    const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.alpine318 }, { name: "lib/apk/db/installed", content: packageFixture("apk/alpine-3.18/installed") }]]);
    const keys = packageKeys(report, { distribution: dist(OS_RELEASE.alpine318) });
    expect(targets(keyed(keys, "libssl3"))[0]).toEqual({ ecosystem: "Alpine:v3.18", name: "openssl", nameKind: "source", version: "3.1.0-r4" });
    expect(targets(keyed(keys, "ssl_client"))[0]).toEqual({ ecosystem: "Alpine:v3.18", name: "busybox", nameKind: "source", version: "1.36.0-r9" });
    expect(targets(keyed(keys, "scanelf"))[0]).toMatchObject({ name: "pax-utils" });
  });

  it("rpm: the source RPM name, the binary EVR, the module stream", async () => {
    const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.ubi8 }, { name: "var/lib/rpm/Packages", content: packageFixture("rpm/ubi8-libuuid/Packages") }]]);
    const keys = packageKeys(report, { distribution: dist(OS_RELEASE.ubi8) });
    expect(targets(keyed(keys, "libuuid"))).toEqual([
      { ecosystem: "RHEL:8", name: "util-linux", nameKind: "source", version: "2.32.1-42.el8_8" },
      { ecosystem: "RHEL:8", name: "libuuid", nameKind: "binary", version: "2.32.1-42.el8_8" },
    ]);
  });

  it("rpm from a report by hand: module stream carried; a subpackage with its own version compares its source's version-release without epochs", () => {
    const report = {
      manifest_hash: `sha256:${"b".repeat(64)}`, state: "IndexFinished" as const, success: true,
      packages: {
        "1": { id: "1", name: "nodejs", version: "1:18.19.0-1.module+el8.9.0+20473+c4e3d824", module: "nodejs:18", source: { id: "s1", name: "nodejs", version: "1:18.19.0-1.module+el8.9.0+20473+c4e3d824", kind: "SOURCE" as const } },
        "2": { id: "2", name: "perl-Errno", version: "1.30-481.el9", source: { id: "s2", name: "perl", version: "5.32.1-481.el9", kind: "SOURCE" as const } },
      },
      environments: {
        "1": [{ package_db: "var/lib/rpm/rpmdb.sqlite", introduced_in: `sha256:${"c".repeat(64)}`, distribution_id: "" }],
        "2": [{ package_db: "var/lib/rpm/rpmdb.sqlite", introduced_in: `sha256:${"c".repeat(64)}`, distribution_id: "" }],
      },
    }; // prettier-ignore
    const keys = packageKeys(report, { distribution: { family: "rhel", ecosystem: "RHEL:8", extra: [], release: "8" } });
    expect(targets(keyed(keys, "nodejs"))[0]).toEqual({ ecosystem: "RHEL:8", name: "nodejs", nameKind: "source", version: "1:18.19.0-1.module+el8.9.0+20473+c4e3d824", module: "nodejs:18" });
    const errno = keyed(keys, "perl-Errno").targets[0]!;
    expect(errno).toMatchObject({ name: "perl", version: "5.32.1-481.el9", versionFrom: expect.stringContaining("epochs ignored") });
    expect(errno.scheme.compare("5.32.1-481.el9", "4:5.32.1-482.el9")).toBeLessThan(0);
    expect(errno.scheme.compare("5.32.1-481.el9", "4:5.32.1-481.el9")).toBe(0);
  });

  it("without a distribution key OS packages are unsupported, not unmatchable", async () => {
    const report = await indexImage([[{ name: "lib/apk/db/installed", content: packageFixture("apk/alpine-3.18/installed") }]]);
    const keys = packageKeys(report, {});
    expect(keys.every((k) => k.targets.length === 0 && k.unsupported && !k.unmatchable)).toBe(true);
  });

  it("an apk database on a Debian image is not looked up in Debian's data", async () => {
    const report = await indexImage([[{ name: "etc/os-release", content: OS_RELEASE.debian12 }, { name: "lib/apk/db/installed", content: "P:x\nV:1.0-r0\no:x\n\n" }]]);
    expect(packageKeys(report, { distribution: dist(OS_RELEASE.debian12) })[0]).toMatchObject({ targets: [], unsupported: expect.stringContaining("apk package on Debian:12") });
  });
});

describe("language packages", () => {
  const jar = (files: Record<string, string>) => Buffer.from(zipSync(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]))));

  it("npm, PyPI (PEP 503), Maven (group:artifact), RubyGems, Go (module path; stdlib as v1.19.8), by package_db prefix", async () => {
    const report = await indexImage([
      [
        { name: "app/node_modules/lodash/package.json", content: JSON.stringify({ name: "lodash", version: "4.17.15" }) },
        { name: "app/node_modules/@scope/pkg/package.json", content: JSON.stringify({ name: "@scope/pkg", version: "1.0.0" }) },
        { name: "usr/local/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA", content: "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n" },
        { name: "usr/local/lib/python3.11/site-packages/zope.interface-5.5.2.dist-info/METADATA", content: "Name: zope.interface\nVersion: 5.5.2\n" },
        { name: "app/lib/log4j-core-2.14.1.jar", content: jar({ "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties": "groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n" }) },
        { name: "app/lib/jackson-databind.jar", content: jar({ "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nBundle-SymbolicName: com.fasterxml.jackson.core.jackson-databind\nBundle-Version: 2.9.10.8\n\n" }) },
        { name: "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", content: 's.name = "rake".freeze\ns.version = "13.0.6"\n' },
        { name: "usr/local/bin/app", mode: 0o755, content: goBinary("go1.19.8", { path: "example.com/app", version: "(devel)" }, [{ path: "golang.org/x/net", version: "v0.0.0-20220722155237-a158d28d115b" }]) },
        { name: "usr/local/bin/rc", mode: 0o755, content: goBinary("go1.21rc2", { path: "example.com/rc", version: "v1.0.0" }) },
      ],
    ]);
    const keys = packageKeys(report, {});
    const t = (name: string, version?: string) => {
      const k = keys.find((x) => x.package.name === name && (version === undefined || x.package.version === version));
      if (!k) throw new Error(`no ${name}`);
      return k;
    };
    expect(targets(t("lodash"))).toEqual([{ ecosystem: "npm", name: "lodash", nameKind: "binary", version: "4.17.15" }]);
    expect(targets(t("@scope/pkg"))[0]).toMatchObject({ ecosystem: "npm", name: "@scope/pkg" });
    expect(targets(t("Jinja2"))).toEqual([{ ecosystem: "PyPI", name: "jinja2", nameKind: "binary", version: "3.1.2" }]);
    expect(targets(t("zope.interface"))[0]).toMatchObject({ ecosystem: "PyPI", name: "zope-interface" });
    expect(targets(t("org.apache.logging.log4j:log4j-core"))).toEqual([{ ecosystem: "Maven", name: "org.apache.logging.log4j:log4j-core", nameKind: "binary", version: "2.14.1" }]);
    expect(t("com.fasterxml.jackson.core.jackson-databind")).toMatchObject({ targets: [], unmatchable: expect.stringContaining("no Maven coordinates") });
    expect(targets(t("rake"))).toEqual([{ ecosystem: "RubyGems", name: "rake", nameKind: "binary", version: "13.0.6" }]);
    expect(targets(t("stdlib", "v1.19.8"))).toEqual([{ ecosystem: "Go", name: "stdlib", nameKind: "binary", version: "v1.19.8" }]);
    // The gobin scanner records go1.21rc2 as v1.21rc2; it is read as the release tag it was.
    expect(targets(t("stdlib", "v1.21rc2"))).toEqual([{ ecosystem: "Go", name: "stdlib", nameKind: "binary", version: "v1.21.0-rc.2" }]);
    expect(targets(t("golang.org/x/net"))[0]).toMatchObject({ ecosystem: "Go", version: "v0.0.0-20220722155237-a158d28d115b" });
    expect(t("example.com/app")).toMatchObject({ targets: [], unmatchable: expect.stringContaining("(devel)") });
    expect(t("lodash").path).toBe("app/node_modules/lodash/package.json");
    expect(t("lodash").introducedIn).toMatch(/^sha256:/);
  });

  it("crates linked into a Rust program (cargo-auditable) are looked up in crates.io with SemVer", async () => {
    const elf = readFileSync(fileURLToPath(new URL("../../test/fixtures/cargo/scalibr-uses_serde_json", import.meta.url)));
    const report = await indexImage([[{ name: "usr/local/bin/uses_json", mode: 0o755, content: elf }]]);
    const keys = packageKeys(report, {});
    expect(targets(keyed(keys, "serde_json"))).toEqual([{ ecosystem: "crates.io", name: "serde_json", nameKind: "binary", version: "1.0.135" }]);
    expect(keyed(keys, "serde_json").path).toBe("usr/local/bin/uses_json");
    expect(keys).toHaveLength(11);
  });

  it("NuGet and Packagist packages are looked up in their OSV ecosystems (NuGet ids lower-cased)", async () => {
    const report = await indexImage([[
      { name: "app/App.deps.json", content: JSON.stringify({ libraries: { "Newtonsoft.Json/13.0.1": { type: "package" } } }) },
      { name: "var/www/vendor/composer/installed.json", content: JSON.stringify({ packages: [{ name: "guzzlehttp/guzzle", version: "v7.4.0" }, { name: "acme/wip", version: "dev-main" }] }) },
    ]]); // prettier-ignore
    const keys = packageKeys(report, {});
    // NuGet ids are case-insensitive: looked up lower-cased, as the OSV parser stores them.
    expect(targets(keyed(keys, "Newtonsoft.Json"))).toEqual([{ ecosystem: "NuGet", name: "newtonsoft.json", nameKind: "binary", version: "13.0.1" }]);
    expect(targets(keyed(keys, "guzzlehttp/guzzle"))).toEqual([{ ecosystem: "Packagist", name: "guzzlehttp/guzzle", nameKind: "binary", version: "v7.4.0" }]);
    // A branch checkout has no place among releases: unmatchable, not "affected by everything".
    expect(keyed(keys, "acme/wip")).toMatchObject({ targets: [], unmatchable: expect.stringContaining("a development branch, not a release") });
    const { coverage } = matchReport(report, [], { ecosystemsWithData: (e) => e === "NuGet" });
    expect(coverage.ecosystems).toEqual([
      { ecosystem: "NuGet", state: "supported", packages: 1 },
      { ecosystem: "Packagist", state: "no_data", packages: 1 },
    ]);
  });

  it("every language package type has a version scheme (else its packages would be reported unsupported)", () => {
    for (const t of ["npm", "python", "maven", "go", "ruby", "node", "cargo", "nuget", "composer"] as const) expect(unsupportedEcosystem(t), t).toBeUndefined();
  });

  it("a version the ecosystem cannot read makes the package unmatchable (never 'not vulnerable')", async () => {
    const report = await indexImage([[{ name: "usr/lib/python3/dist-packages/weird-0.1.dist-info/METADATA", content: "Name: weird\nVersion: 0.1-bulbasaur\n" }]]);
    expect(packageKeys(report, {})[0]).toMatchObject({ targets: [], unmatchable: expect.stringContaining("0.1-bulbasaur") });
  });

  it("an OS-owned language package gets no targets and names its owner", async () => {
    const egg = "usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info";
    const status = "Package: python3-jinja2\nStatus: install ok installed\nMaintainer: Debian Python Team <team+python@tracker.debian.org>\nArchitecture: all\nSource: jinja2\nVersion: 3.1.2-1+deb12u3\n\n";
    const report = await indexImage([[
      { name: "etc/os-release", content: OS_RELEASE.debian12 },
      { name: "var/lib/dpkg/status", content: status },
      { name: `${egg}/PKG-INFO`, content: "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n" },
    ]]); // prettier-ignore
    const own = ownershipFromDpkgLists(report, new Map([["var/lib/dpkg/info/python3-jinja2.list", `/.\n/usr\n/usr/lib/python3/dist-packages\n/${egg}\n/${egg}/PKG-INFO\n/usr/lib/python3/dist-packages/jinja2/__init__.py\n`]]));
    const k = keyed(packageKeys(report, { distribution: dist(OS_RELEASE.debian12), ownership: own }), "Jinja2");
    expect(k).toMatchObject({ targets: [], governedBy: { type: "dpkg", name: "python3-jinja2", version: "3.1.2-1+deb12u3", source: { name: "jinja2", version: "3.1.2-1+deb12u3" } } });
  });

  it("a .NET deps.json and a Composer installed.json an OS package installed are governed by it", async () => {
    const status = "Package: dotnet-sdk-8.0\nStatus: install ok installed\nMaintainer: M <m@example.org>\nVersion: 8.0.100-1\n\nPackage: php-app\nStatus: install ok installed\nMaintainer: M <m@example.org>\nVersion: 1.0-1\n\n";
    const deps = "usr/lib/dotnet/sdk/8.0.100/dotnet.deps.json";
    const installed = "usr/share/php-app/vendor/composer/installed.json";
    const report = await indexImage([[
      { name: "var/lib/dpkg/status", content: status },
      { name: deps, content: JSON.stringify({ libraries: { "Newtonsoft.Json/13.0.1": { type: "package" } } }) },
      { name: installed, content: JSON.stringify([{ name: "guzzlehttp/guzzle", version: "7.4.0" }]) },
    ]]); // prettier-ignore
    const own = ownershipFromDpkgLists(report, new Map([["var/lib/dpkg/info/dotnet-sdk-8.0.list", `/${deps}\n`], ["var/lib/dpkg/info/php-app.list", `/${installed}\n`]]));
    const keys = packageKeys(report, { ownership: own });
    expect(keyed(keys, "Newtonsoft.Json")).toMatchObject({ targets: [], governedBy: { type: "dpkg", name: "dotnet-sdk-8.0" } });
    expect(keyed(keys, "guzzlehttp/guzzle")).toMatchObject({ targets: [], governedBy: { type: "dpkg", name: "php-app" } });
  });

  it("a directory many packages list (usr/bin) does not make a Go binary in it OS-owned", async () => {
    const status = "Package: coreutils\nStatus: install ok installed\nMaintainer: M <m@example.org>\nVersion: 9.1-1\n\n";
    const report = await indexImage([[
      { name: "var/lib/dpkg/status", content: status },
      { name: "usr/bin/app", mode: 0o755, content: goBinary("go1.19.8", { path: "example.com/app", version: "v1.0.0" }) },
    ]]); // prettier-ignore
    const own = ownershipFromDpkgLists(report, new Map([["var/lib/dpkg/info/coreutils.list", "/.\n/usr\n/usr/bin\n/usr/bin/ls\n"]]));
    const keys = packageKeys(report, { ownership: own });
    const app = keys.find((k) => k.package.name === "example.com/app");
    expect(app?.governedBy).toBeUndefined();
    expect(app?.targets).toMatchObject([{ ecosystem: "Go" }]);
  });

  it("a package database no scanner prefix names is unmatchable", () => {
    const report = {
      manifest_hash: `sha256:${"b".repeat(64)}`, state: "IndexFinished" as const, success: true,
      packages: { "1": { id: "1", name: "x", version: "1" } },
      environments: { "1": [{ package_db: "conan:somewhere", introduced_in: `sha256:${"c".repeat(64)}`, distribution_id: "" }] },
    }; // prettier-ignore
    expect(packageKeys(report)[0]).toMatchObject({ unmatchable: 'unknown package database "conan:somewhere"' });
  });
});
