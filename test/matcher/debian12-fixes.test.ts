// C4's live part for glibc and gnutls28 (fixture README, "C4 — Debian 12"), end to end on Debian's real
// libc6 and libgnutls30 (apt-get download from the archive at test time, cached): the fixed version of
// CVE-2023-4911, CVE-2024-2961 (glibc) and CVE-2023-5981 (gnutls28) is read from each package's own
// changelog (its oldest entry naming the CVE) and must equal the advisory data Portcullis imports, and
// `portcullis scan` must report none of them for the installed versions, comparing the SOURCE version.
// The same image with the status rewritten below the fix must report them, so the test can fail.
//
// Advisory data: CVE-2023-5981 is the real trivy-db fixture (`debian/trivy-db/CVE-2023-5981.json`, one
// data/CVE/list entry). No fixture holds DSA-5514-1 or DSA-5673-1, so their rows are written here, in the
// tracker's own CVE/list and DSA/list syntax, from the fixed versions the DSAs published (bookworm only):
// DSA-5514-1 (3 Oct 2023) glibc 2.36-9+deb12u3 for CVE-2023-4911, DSA-5673-1 (23 Apr 2024) glibc
// 2.36-9+deb12u6 for CVE-2024-2961. Oracles: the changelogs, the DSAs, the trivy-db file, dpkg itself
// (`dpkg --compare-versions`, and `dpkg --unpack` for the root the helper builds).
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matchWithStore } from "../../src/findings/match.js";
import { clairValidator } from "../../src/indexer/clair-schema.js";
import type { IndexReport } from "../../src/model/index-report.js";
import { distributionKey, packageKeys, PORTCULLIS_PACKAGE_ENRICHMENT, PORTCULLIS_VULNERABILITY_ENRICHMENT, type PackageVulnerabilityDetail, type VulnerabilityDetail, type VulnerabilityReport } from "../../src/matcher/index.js";
import { OS_RELEASE } from "../../src/matcher/testing.js";
import { fixturesDir } from "../../src/scanners/testing.js";
import { openStore } from "../../src/store/open.js";
import { changelogEntries, controlFields, debChangelog, downloadDeb, dpkgHolds, fixedIn, installDebs, ociLayout, portcullis } from "./debian-live.js";

/** What each DSA published for bookworm (debian-security-announce; the tracker's data/DSA/list). */
const DSAS = [
  { id: "DSA-5673-1", date: "23 Apr 2024", cve: "CVE-2024-2961", source: "glibc", bookworm: "2.36-9+deb12u6" },
  { id: "DSA-5514-1", date: "03 Oct 2023", cve: "CVE-2023-4911", source: "glibc", bookworm: "2.36-9+deb12u3" },
] as const;

const TRIVY_DB = fixturesDir("advisories", "debian/trivy-db/CVE-2023-5981.json");

/** The bookworm fix of the trivy-db entry, as its `[bookworm] - gnutls28 …` annotation gives it. */
function trivyDbBookwormFix(): string {
  const doc = JSON.parse(readFileSync(TRIVY_DB, "utf8")) as { Annotations: Array<{ Release?: string; Package?: string; Kind?: string; Version?: string }> };
  const rows = doc.Annotations.filter((a) => a.Release === "bookworm" && a.Package === "gnutls28" && a.Kind === "fixed");
  expect(rows).toHaveLength(1);
  return rows[0]!.Version!;
}

interface Case {
  binary: string;
  source: string;
  cve: string;
  /** The advisory's bookworm fix, from the DSA or the trivy-db file. */
  advisoryFix: () => string;
  /** The record's cross-references (`{…}` in the CVE list). */
  advisoryIds: string[];
  /** The advisories that fixed the bookworm row: a match names only these (src/matcher/match.ts). */
  bookwormAdvisoryIds: string[];
}

const CASES: Case[] = [
  { binary: "libc6", source: "glibc", cve: "CVE-2023-4911", advisoryFix: () => DSAS[1].bookworm, advisoryIds: ["DSA-5514-1"], bookwormAdvisoryIds: ["DSA-5514-1"] },
  { binary: "libc6", source: "glibc", cve: "CVE-2024-2961", advisoryFix: () => DSAS[0].bookworm, advisoryIds: ["DSA-5673-1"], bookwormAdvisoryIds: ["DSA-5673-1"] },
  // DLA-3660-1 is bullseye's (LTS); bookworm got 3.7.9-2+deb12u1 in a point release ("bookworm", not
  // "bookworm-security", in the changelog), so its row names no advisory.
  { binary: "libgnutls30", source: "gnutls28", cve: "CVE-2023-5981", advisoryFix: trivyDbBookwormFix, advisoryIds: ["DLA-3660-1"], bookwormAdvisoryIds: [] },
];
const BINARIES = ["libc6", "libgnutls30"];

/** The tracker's data/CVE/list entries for the DSA rows (only the bookworm lines the DSAs published). */
function cveList(): string {
  return DSAS.map((d) => `${d.cve}\n\t{${d.id}}\n\t[bookworm] - ${d.source} ${d.bookworm}\n`).join("");
}

/** The tracker's data/DSA/list entries of the two DSAs (newest first, as the list is kept). */
function dsaList(): string {
  return DSAS.map((d) => `[${d.date}] ${d.id} ${d.source} - security update\n\t{${d.cve}}\n\t[bookworm] - ${d.source} ${d.bookworm}\n`).join("");
}

/** A status file with the `Version:` and `Source:` lines of some packages rewritten. */
function rewriteStatus(status: string, edits: Record<string, { version?: string; source?: string }>): string {
  return status
    .replace(/\n+$/, "")
    .split("\n\n")
    .map((para) => {
      const name = controlFields(para).get("Package")!;
      const e = edits[name];
      if (!e) return para;
      let out = para;
      if (e.version !== undefined) out = out.replace(/^Version: .*$/m, `Version: ${e.version}`);
      if (e.source !== undefined) out = out.replace(/^Source: .*$/m, `Source: ${e.source}`);
      expect(out).not.toBe(para);
      return out;
    })
    .join("\n\n")
    .concat("\n");
}

type Found = { binary: string; cve: string; compared: string; fixed: string; advisoryIds: string[] };

describe("C4 live: Debian 12's libc6 and libgnutls30 against their changelogs and Debian's advisories", () => {
  let dir: string;
  let store: string;
  const debs: Record<string, string> = {};
  const changelogs: Record<string, string> = {};
  /** The installed (downloaded) version of each binary package, and its source's. */
  const installed: Record<string, { version: string; source: string; sourceVersion: string }> = {};
  /** Per variant image: the status's (binary version, source version) per package. */
  const variants: Record<string, Record<string, { version: string; sourceVersion: string }>> = {};
  const image = (name: string) => `oci:${join(dir, "layout")}:${name}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-c4-"));
    for (const b of BINARIES) {
      debs[b] = downloadDeb(b);
      changelogs[b] = debChangelog(debs[b], b);
    }
    // Layer 1: the packages' files. Layer 2: what dpkg would record for them, and os-release; the variants
    // below differ in layer 2 only.
    const files = join(dir, "files");
    const db = join(dir, "db-installed");
    mkdirSync(files, { recursive: true });
    for (const b of BINARIES) execFileSync("dpkg-deb", ["-x", debs[b]!, files]);
    const fields = installDebs(db, BINARIES.map((b) => debs[b]!), { files: false });
    mkdirSync(join(db, "etc"), { recursive: true });
    writeFileSync(join(db, "etc/os-release"), OS_RELEASE.debian12);
    for (const f of fields) {
      const source = /^(\S+)(?: \((\S+)\))?$/.exec(f.get("Source") ?? f.get("Package")!)!;
      installed[f.get("Package")!] = { version: f.get("Version")!, source: source[1]!, sourceVersion: source[2] ?? f.get("Version")! };
    }
    const status = readFileSync(join(db, "var/lib/dpkg/status"), "utf8");

    // The version just below each package's oldest fix: the changelog entry before it.
    const below: Record<string, string> = {};
    const fixOf: Record<string, string[]> = {};
    for (const c of CASES) (fixOf[c.binary] ??= []).push(fixedIn(changelogs[c.binary]!, c.cve)!);
    for (const b of BINARIES) {
      const entries = changelogEntries(changelogs[b]!).map((e) => e.version);
      const oldestFix = fixOf[b]!.reduce((a, v) => (dpkgHolds(v, "lt", a) ? v : a));
      below[b] = entries[entries.indexOf(oldestFix) + 1]!;
    }
    const layouts: Record<string, string[]> = {};
    const variant = (name: string, per: (b: string) => { version: string; sourceVersion: string }) => {
      const root = join(dir, `db-${name}`);
      if (name !== "installed") {
        cpSync(db, root, { recursive: true });
        const edits: Record<string, { version?: string; source?: string }> = {};
        for (const b of BINARIES) {
          const v = per(b);
          edits[b] = { version: v.version, source: `${installed[b]!.source} (${v.sourceVersion})` };
        }
        writeFileSync(join(root, "var/lib/dpkg/status"), rewriteStatus(status, edits));
      }
      variants[name] = Object.fromEntries(BINARIES.map((b) => [b, per(b)]));
      layouts[name] = [files, root];
    };
    variant("installed", (b) => ({ version: installed[b]!.version, sourceVersion: installed[b]!.sourceVersion }));
    // The source below the fix, the binary version as downloaded: only a source-version comparison matches.
    variant("source-below", (b) => ({ version: installed[b]!.version, sourceVersion: below[b]! }));
    // The binary version below the fix, the source as downloaded: a binary-version comparison would match.
    variant("binary-below", (b) => ({ version: below[b]!, sourceVersion: installed[b]!.sourceVersion }));
    // The source at exactly the oldest fix: that CVE is fixed (not "<="), glibc's later one is not.
    variant("source-at-fix", (b) => ({ version: installed[b]!.version, sourceVersion: fixOf[b]!.reduce((a, v) => (dpkgHolds(v, "lt", a) ? v : a)) }));
    ociLayout(join(dir, "layout"), layouts);

    // One import, one operation of the debian source: the DSA rows written here and the trivy-db file.
    const adv = join(dir, "advisories");
    mkdirSync(join(adv, "CVE"), { recursive: true });
    mkdirSync(join(adv, "DSA"), { recursive: true });
    writeFileSync(join(adv, "CVE/list"), cveList());
    writeFileSync(join(adv, "DSA/list"), dsaList());
    store = join(dir, "store");
    const r = await portcullis(["db", "import", adv, TRIVY_DB, "--store", store]);
    expect(r.code, r.stderr).toBe(0);
    // Two glibc rows (bookworm) and the trivy-db entry's three gnutls28 rows (sid, bookworm, bullseye).
    expect(r.stdout).toMatch(/^debian\s+imported\s+3\s+3 records, 5 affected\b/m);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("each changelog's oldest entry naming the CVE is the advisory's bookworm fix, at or below the downloaded version", () => {
    const seen = CASES.map((c) => {
      const fix = fixedIn(changelogs[c.binary]!, c.cve);
      expect(changelogEntries(changelogs[c.binary]!)[0]).toEqual({ source: installed[c.binary]!.source, version: installed[c.binary]!.sourceVersion });
      expect(dpkgHolds(installed[c.binary]!.sourceVersion, "ge", fix!)).toBe(true);
      return `${c.source} ${c.cve} ${fix} ${c.advisoryFix()}`;
    });
    // The values the fixture README recorded on 2026-12-04, for the reader; the equalities are the test.
    expect(seen).toEqual([
      "glibc CVE-2023-4911 2.36-9+deb12u3 2.36-9+deb12u3",
      "glibc CVE-2024-2961 2.36-9+deb12u6 2.36-9+deb12u6",
      "gnutls28 CVE-2023-5981 3.7.9-2+deb12u1 3.7.9-2+deb12u1",
    ]);
  });

  it("the status and .list the helper writes are what dpkg --unpack writes (python3-jinja2, which has no preinst)", () => {
    const deb = downloadDeb("python3-jinja2");
    const ours = join(dir, "helper-root");
    const theirs = join(dir, "dpkg-root");
    installDebs(ours, [deb]);
    mkdirSync(join(theirs, "var/lib/dpkg/updates"), { recursive: true });
    writeFileSync(join(theirs, "var/lib/dpkg/status"), "");
    execFileSync("dpkg", [`--root=${theirs}`, "--force-depends", "--unpack", deb], { stdio: ["ignore", "ignore", "pipe"] });
    const list = (root: string) => readFileSync(join(root, "var/lib/dpkg/info/python3-jinja2.list"), "utf8");
    expect(list(ours)).toBe(list(theirs));
    const status = (root: string) => {
      const f = controlFields(readFileSync(join(root, "var/lib/dpkg/status"), "utf8"));
      f.delete("Status");
      return Object.fromEntries([...f].sort(([a], [b]) => (a < b ? -1 : 1)));
    };
    expect(status(ours)).toEqual(status(theirs));
    expect(execFileSync("dpkg-query", [`--root=${ours}`, "-W", "-f", "${Status} ${Version}", "python3-jinja2"], { encoding: "utf8" })).toMatch(/^install ok installed 3\.1\.2-1\+deb12u\d+$/);
  });

  it("the store holds each CVE's bookworm row under the source package, fixed at the changelog's version", async () => {
    const s = await openStore(store);
    try {
      const rows = await s.advisories.candidates([...new Set(CASES.map((c) => c.source))].map((name) => ({ ecosystem: "Debian:12", name })));
      const got = rows.map((r) => `${r.affected.name} ${r.advisory.id} ${r.affected.nameKind} ${r.affected.fixState} ${r.affected.fixedVersions.join(",")} ${r.advisory.advisoryIds.join(",")}`).sort();
      const want = CASES.map((c) => `${c.source} ${c.cve} source fixed ${fixedIn(changelogs[c.binary]!, c.cve)} ${c.advisoryIds.join(",")}`).sort();
      expect(got).toEqual(want);
    } finally {
      await s.close();
    }
  });

  /** `portcullis scan --format vuln-json` of a variant: each match with the version compared. */
  async function scanVulns(name: string): Promise<Found[]> {
    const r = await portcullis(["scan", image(name), "--store", store, "--format", "vuln-json"]);
    expect(r.code, r.stderr).toBe(0);
    const vr = JSON.parse(r.stdout) as VulnerabilityReport;
    expect(clairValidator("vulnerability_report.schema.json")(vr)).toEqual([]);
    const details = (vr.enrichments?.[PORTCULLIS_PACKAGE_ENRICHMENT]?.[0] ?? {}) as Record<string, PackageVulnerabilityDetail[]>;
    const vdetails = (vr.enrichments?.[PORTCULLIS_VULNERABILITY_ENRICHMENT]?.[0] ?? {}) as Record<string, VulnerabilityDetail[]>;
    return Object.entries(vr.package_vulnerabilities)
      .flatMap(([id, vs]) =>
        vs.map((v) => {
          const d = details[id]!.find((x) => x.vulnerability === v)!;
          return { binary: vr.packages[id]!.name, cve: vr.vulnerabilities[v]!.name, compared: d.installed_version_compared, fixed: vr.vulnerabilities[v]!.fixed_in_version!, advisoryIds: vdetails[v]![0]!.advisory_ids };
        }),
      )
      .sort((a, b) => (`${a.binary} ${a.cve}` < `${b.binary} ${b.cve}` ? -1 : 1));
  }

  /** What dpkg says each variant must report: the CVEs whose fix is above the status's source version. */
  function expected(name: string): Found[] {
    return CASES.filter((c) => dpkgHolds(variants[name]![c.binary]!.sourceVersion, "lt", c.advisoryFix()))
      .map((c) => ({ binary: c.binary, cve: c.cve, compared: variants[name]![c.binary]!.sourceVersion, fixed: fixedIn(changelogs[c.binary]!, c.cve)!, advisoryIds: c.bookwormAdvisoryIds }))
      .sort((a, b) => (`${a.binary} ${a.cve}` < `${b.binary} ${b.cve}` ? -1 : 1));
  }

  it("portcullis scan reports none of the three CVEs for the downloaded versions", async () => {
    expect(expected("installed")).toEqual([]);
    expect(await scanVulns("installed")).toEqual([]);
  }, 120_000);

  it("the downloaded versions are compared as their source packages' versions, and each has advisory rows", async () => {
    const r = await portcullis(["scan", image("installed"), "--store", store, "--format", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as IndexReport;
    const dist = distributionKey(Object.values(report.distributions ?? {})[0]);
    expect(dist.key?.ecosystem).toBe("Debian:12");
    const targets = packageKeys(report, { distribution: dist.key }).map((k) => {
      const t = k.targets.find((x) => x.nameKind === "source")!;
      return `${k.package.name} ${t.ecosystem} ${t.name} ${t.version} ${t.versionFrom}`;
    });
    expect(targets.sort()).toEqual(BINARIES.map((b) => `${b} Debian:12 ${installed[b]!.source} ${installed[b]!.sourceVersion} source version`));
    const s = await openStore(store);
    try {
      const m = (await matchWithStore(s.advisories, report))!;
      expect(m.result.matches).toEqual([]);
      expect(m.result.withoutAdvisoryData).toEqual([]);
      expect(m.result.coverage.distribution).toMatchObject({ state: "supported", ecosystem: "Debian:12" });
    } finally {
      await s.close();
    }
  }, 120_000);

  it("with the source version rewritten below the fix, all three are reported, compared as that source version", async () => {
    const want = expected("source-below");
    expect(want.map((f) => `${f.binary} ${f.cve}`)).toEqual(["libc6 CVE-2023-4911", "libc6 CVE-2024-2961", "libgnutls30 CVE-2023-5981"]);
    expect(await scanVulns("source-below")).toEqual(want);
  }, 120_000);

  it("with only the binary version rewritten below the fix, none is reported (the binary version is not compared)", async () => {
    expect(expected("binary-below")).toEqual([]);
    expect(await scanVulns("binary-below")).toEqual([]);
  }, 120_000);

  it("with the source version at the oldest fix, only glibc's later CVE is reported", async () => {
    const want = expected("source-at-fix");
    expect(want.map((f) => `${f.binary} ${f.cve} ${f.compared}`)).toEqual(["libc6 CVE-2024-2961 2.36-9+deb12u3"]);
    expect(await scanVulns("source-at-fix")).toEqual(want);
  }, 120_000);
});
