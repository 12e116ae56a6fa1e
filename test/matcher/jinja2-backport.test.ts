// C4's jinja2 case end to end, on Debian's real python3-jinja2 (downloaded from the archive at test time and
// unpacked by the real dpkg, which writes its own info/python3-jinja2.list): `portcullis scan` of an image
// holding it and a pip-style Jinja2 3.1.2 must not report CVE-2024-22195 for the Debian package's
// egg-info (the OS advisory governs it: Debian fixed it in 3.1.2-1+deb12u1, the package's own changelog
// says), and must report it for the pip-style copy (GHSA-h5c8-rqwp-cp95: < 3.1.3). Nothing is passed to
// the matcher: the ownership comes from the IndexReport. Oracles: dpkg-query -S / -L on the unpacked root,
// the package's changelog, the GHSA record (fixture README, C4 and C8).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clairValidator } from "../../src/indexer/clair-schema.js";
import { OWNER_REPOSITORY_KEY, type IndexReport } from "../../src/model/index-report.js";
import { OS_RELEASE } from "../../src/matcher/testing.js";
import { listSink } from "../../src/scanners/dpkg/files.js";
import { mayHoldLanguagePackage } from "../../src/scanners/owners/paths.js";
import { fixturesDir } from "../../src/scanners/testing.js";
import { downloadDeb, fixedIn, ociLayout, portcullis } from "./debian-live.js";

const EGG = "usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info";
const PIP = "usr/local/lib/python3.11/dist-packages/Jinja2-3.1.2.dist-info";

describe("the jinja2 backport: Debian's python3-jinja2 is governed by Debian's advisory, a pip-style Jinja2 is not", () => {
  let dir: string;
  let root: string;
  let store: string;
  let version: string;
  let debianFix: string;
  const image = () => `oci:${join(dir, "layout")}:jinja`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-jinja2-"));
    const deb = downloadDeb("python3-jinja2");
    // Layer 1: the package unpacked by dpkg itself into an empty root (its .list and status entry are dpkg's).
    root = join(dir, "root");
    mkdirSync(join(root, "var/lib/dpkg/info"), { recursive: true });
    mkdirSync(join(root, "var/lib/dpkg/updates"), { recursive: true });
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "var/lib/dpkg/status"), "");
    writeFileSync(join(root, "etc/os-release"), OS_RELEASE.debian12);
    execFileSync("dpkg", [`--root=${root}`, "--force-depends", "--unpack", deb], { stdio: ["ignore", "ignore", "pipe"] });
    // What `dpkg --configure` records; its postinst only byte-compiles, which needs a Python in the root.
    const status = readFileSync(join(root, "var/lib/dpkg/status"), "utf8");
    expect(status).toMatch(/^Status: install ok unpacked$/m);
    writeFileSync(join(root, "var/lib/dpkg/status"), status.replace(/^Status: install ok unpacked$/m, "Status: install ok installed"));
    version = execFileSync("dpkg-query", [`--root=${root}`, "-W", "-f", "${Version}", "python3-jinja2"], { encoding: "utf8" });
    debianFix = fixedIn(gunzipSync(readFileSync(join(root, "usr/share/doc/python3-jinja2/changelog.Debian.gz"))).toString("utf8"), "CVE-2024-22195")!;
    // Layer 2: the same Jinja2 3.1.2 as pip installs it, owned by no package (its METADATA holds the same
    // core metadata as Debian's PKG-INFO; PyPI is out of reach here).
    const pip = join(dir, "pip");
    mkdirSync(join(pip, PIP), { recursive: true });
    writeFileSync(join(pip, PIP, "METADATA"), readFileSync(join(root, EGG, "PKG-INFO")));
    ociLayout(join(dir, "layout"), { jinja: [root, pip] });

    store = join(dir, "store");
    writeFileSync(join(dir, "debian.json"), JSON.stringify({ jinja2: { "CVE-2024-22195": { releases: { bookworm: { status: "resolved", fixed_version: debianFix, urgency: "medium", repositories: { bookworm: version } } } } } }));
    for (const f of [join(dir, "debian.json"), fixturesDir("advisories", "osv/ghsa/GHSA-h5c8-rqwp-cp95.json")]) {
      const r = await portcullis(["db", "import", f, "--store", store]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the package's changelog fixes CVE-2024-22195 in 3.1.2-1+deb12u1, at or below the downloaded version", () => {
    expect(debianFix).toBe("3.1.2-1+deb12u1");
    expect(() => execFileSync("dpkg", ["--compare-versions", version, "ge", debianFix])).not.toThrow();
  });

  it("keeps exactly the paths of dpkg-query -L that a language package may be reported by", () => {
    const listed = execFileSync("dpkg-query", [`--root=${root}`, "-L", "python3-jinja2"], { encoding: "utf8" }).split("\n").filter(Boolean);
    const sink = listSink(false);
    sink.write(readFileSync(join(root, "var/lib/dpkg/info/python3-jinja2.list")));
    const kept = sink.end().paths;
    expect(kept).toEqual(listed.map((p) => p.replace(/^\/+/, "")).filter((p) => p !== "." && mayHoldLanguagePackage(p)));
    expect(kept).toEqual([EGG, `${EGG}/PKG-INFO`]);
  });

  it("the IndexReport names python3-jinja2 as the egg-info's owner, as dpkg-query -S does, and nothing owns the dist-info", async () => {
    const r = await portcullis(["scan", image(), "--store", store, "--format", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as IndexReport;
    expect(clairValidator("index_report.schema.json")(report)).toEqual([]);
    const owners = Object.entries(report.packages!).map(([id, p]) => {
      const env = report.environments![id]![0]!;
      const owner = env.repository_ids?.map((x) => report.repository![x]!).find((x) => x.key === OWNER_REPOSITORY_KEY);
      return `${p.name} ${p.version} ${env.package_db} ${owner?.name ?? "-"}`;
    });
    expect(owners.sort()).toEqual([
      `Jinja2 3.1.2 python:${EGG}/PKG-INFO python3-jinja2`,
      `Jinja2 3.1.2 python:${PIP}/METADATA -`,
      `python3-jinja2 ${version} var/lib/dpkg/status -`,
    ]);
    expect(execFileSync("dpkg-query", [`--root=${root}`, "-S", `/${EGG}/PKG-INFO`], { encoding: "utf8" }).trim()).toBe(`python3-jinja2: /${EGG}/PKG-INFO`);
    expect(() => execFileSync("dpkg-query", [`--root=${root}`, "-S", `/${PIP}/METADATA`], { stdio: "pipe" })).toThrow(/no path found/);
  }, 60_000);

  it("portcullis scan reports CVE-2024-22195 for the pip-style Jinja2 only", async () => {
    const r = await portcullis(["scan", image(), "--store", store, "--format", "vuln-json"]);
    expect(r.code, r.stderr).toBe(0);
    const vr = JSON.parse(r.stdout) as {
      packages: Record<string, { name: string; version: string }>;
      environments: Record<string, Array<{ package_db: string }>>;
      vulnerabilities: Record<string, { name: string; fixed_in_version: string }>;
      package_vulnerabilities: Record<string, string[]>;
    };
    expect(clairValidator("vulnerability_report.schema.json")(vr)).toEqual([]);
    const found = Object.entries(vr.package_vulnerabilities).flatMap(([id, vs]) => vs.map((v) => `${vr.environments[id]![0]!.package_db} ${vr.vulnerabilities[v]!.name} ${vr.vulnerabilities[v]!.fixed_in_version}`));
    expect(found).toEqual([`python:${PIP}/METADATA CVE-2024-22195 3.1.3`]);
  }, 60_000);
});
