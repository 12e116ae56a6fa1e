// File ownership on real package databases. Debian: the test image with python3-six,
// libcommons-lang3-java and direnv (a Go program) installed by apt; every language package of its report
// must be owned exactly as `dpkg-query -S` says for its file. rpm: every owner path the rpm scanner keeps
// from the peer databases must be what `rpm -ql` lists for that package, and nothing it lists that a
// language package may be reported by is missing.
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { Indexer } from "../../src/indexer/indexer.js";
import { OWNER_REPOSITORY_KEY } from "../../src/model/index-report.js";
import { openLocalImage } from "../../src/indexer/sources/local.js";
import { packageType } from "../../src/matcher/keys.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { mayHoldLanguagePackage } from "../../src/scanners/owners/paths.js";
import { RpmScanner } from "../../src/scanners/rpm/rpm.js";
import { fixturesDir, MapLayerFiles } from "../../src/scanners/testing.js";
import { openStore } from "../../src/store/open.js";
import { describeWith } from "../env/index.js";
import { ociBookworm, rootfsBookworm } from "../env/images.js";

const run = promisify(execFile);

/** `dpkg-query -S /path` on the image's root: the owning package, or undefined when none. */
async function dpkgOwner(admindir: string, path: string): Promise<string | undefined> {
  try {
    const { stdout } = await run("dpkg-query", [`--admindir=${admindir}`, "-S", `/${path}`]);
    return stdout.split(":")[0]!.trim();
  } catch (e) {
    if (/no path found/.test((e as { stderr?: string }).stderr ?? "")) return undefined;
    throw e;
  }
}

describeWith([], "file ownership on real package databases", () => {
  it("Debian: each language package of the image is owned as dpkg-query -S says", async () => {
    const img = (await openLocalImage(`oci:${ociBookworm()}:lang`, { os: "linux", architecture: "amd64" }))!;
    const { report } = await new Indexer({ store: await openStore("memory:"), scanners: defaultScanners() }).index(img.manifest, img.source);
    expect(report.state).toBe("IndexFinished");
    const admindir = join(`${rootfsBookworm()}-lang`, "var/lib/dpkg");
    const got: string[] = [];
    const want: string[] = [];
    const files = new Set<string>();
    for (const [id, p] of Object.entries(report.packages!)) {
      const env = report.environments![id]![0]!;
      const { type, path } = packageType(env.package_db);
      if (!type || type === "dpkg") continue;
      const owner = env.repository_ids?.map((r) => report.repository![r]!).find((r) => r.key === OWNER_REPOSITORY_KEY);
      got.push(`${p.name} ${path} ${owner?.name ?? "-"}`);
      const file = path.split("!")[0]!;
      const dir = file.slice(0, file.lastIndexOf("/"));
      want.push(`${p.name} ${path} ${(await dpkgOwner(admindir, file)) ?? (/\.(dist|egg)-info$/.test(dir) ? await dpkgOwner(admindir, dir) : undefined) ?? "-"}`);
      files.add(file);
    }
    expect(got.sort()).toEqual(want.sort());
    // The three installed ecosystems are all there, owned by their Debian packages.
    expect(got.filter((g) => g.endsWith(" python3-six")).length).toBe(1);
    expect(got.some((g) => g.startsWith("org.apache.commons:commons-lang3 ") && g.endsWith(" libcommons-lang3-java"))).toBe(true);
    expect(got.filter((g) => g.includes(" usr/bin/direnv ")).every((g) => g.endsWith(" direnv"))).toBe(true);
    expect(files.size).toBeGreaterThanOrEqual(3);
  }, 120_000);

  for (const name of ["amazonlinux-2023", "cbl-mariner-2.0"]) {
    it(`rpm: the owner paths of ${name} are rpm -ql's, filtered`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "rpmdb-"));
      try {
        cpSync(fixturesDir("rpm", name, "rpmdb.sqlite"), join(dir, "rpmdb.sqlite"));
        // One query for all: each file line prefixed by its package name.
        const { stdout } = await run("rpm", ["--dbpath", dir, "-qa", "--qf", "[%{=NAME}\t%{FILENAMES}\n]"], { maxBuffer: 64 << 20 });
        const want = [...new Set(stdout.split("\n").filter((l) => l.includes("\t/")).map((l) => l.replace("\t/", "\t")).filter((l) => mayHoldLanguagePackage(l.split("\t")[1]!)))].sort();
        const out = await new RpmScanner().scan(MapLayerFiles.of({ "var/lib/rpm/rpmdb.sqlite": readFileSync(fixturesDir("rpm", name, "rpmdb.sqlite")) }));
        const got = [...new Set(out.owners!.flatMap((o) => o.paths.map((p) => `${o.package}\t${p}`)))].sort();
        expect(got).toEqual(want);
        expect(got.length).toBeGreaterThan(100);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);
  }
});
