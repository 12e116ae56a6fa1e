// `portcullis scan` with advisory data: the real CLI imports a Debian tracker JSON into the scan's store
// (`db import`), then scans the debootstrapped bookworm image. The tracker file names source packages of
// that image with their installed source versions (glibc 2.36-9+deb12u14, gnutls28 3.7.9-2+deb12u7,
// apt 2.6.1): a fix above the installed version, a fix at it, and no fix.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clairValidator } from "../../src/indexer/clair-schema.js";
import { ociBookworm } from "../env/images.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tsx, [bin, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const TRACKER = {
  glibc: { "CVE-2099-0001": { description: "fixed above the installed version", releases: { bookworm: { status: "resolved", fixed_version: "2.36-9+deb12u99", urgency: "high", repositories: { bookworm: "2.36-9+deb12u99" } } } } },
  gnutls28: { "CVE-2099-0002": { description: "fixed at the installed version", releases: { bookworm: { status: "resolved", fixed_version: "3.7.9-2+deb12u7", urgency: "medium", repositories: { bookworm: "3.7.9-2+deb12u7" } } } } },
  apt: { "CVE-2099-0003": { description: "not fixed", releases: { bookworm: { status: "open", urgency: "low", repositories: { bookworm: "2.6.1" } } } } },
};

describe("portcullis scan: vulnerabilities", () => {
  let dir: string;
  let store: string;
  const image = () => `oci:${ociBookworm()}:base`;
  const scan = (...args: string[]) => portcullis(["scan", image(), "--store", store, ...args]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-scan-vulns-"));
    store = join(dir, "store");
    writeFileSync(join(dir, "debian.json"), JSON.stringify(TRACKER));
    const imported = await portcullis(["db", "import", join(dir, "debian.json"), "--store", store]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/^debian\s+imported\s+1\s+3 records/m);
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("lists the findings by severity after the summary, with the data's age and the coverage", async () => {
    const r = await scan();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const block = r.stdout.slice(r.stdout.indexOf("vulnerabilities:"));
    expect(r.stdout.indexOf("vulnerabilities:")).toBeGreaterThan(r.stdout.indexOf("time:"));
    expect(block.split("\n")[0]).toBe("vulnerabilities: 2 (Critical 0, High 1, Medium 0, Low 1, Negligible 0, Unknown 0; fixable 1)");
    expect(block).toMatch(/^ {2}High\n {4}CVE-2099-0001 +libc-bin +2\.36-9\+deb12u14 +fixed in 2\.36-9\+deb12u99\n {4}CVE-2099-0001 +libc6 +2\.36-9\+deb12u14 +fixed in 2\.36-9\+deb12u99\n {2}Low\n {4}CVE-2099-0003 +apt +2\.6\.1 +not fixed\n/m);
    expect(block).not.toMatch(/CVE-2099-0002|gnutls/);
    expect(block).toMatch(/^advisory data: debian \d+[smhd] old$/m);
    expect(block).toMatch(/^coverage: +Debian:12 supported; 0 packages unmatchable$/m);
  }, 60_000);

  it("prints exactly one Clair VulnerabilityReport with --format vuln-json", async () => {
    const r = await scan("--format", "vuln-json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    const report = JSON.parse(r.stdout) as { vulnerabilities: Record<string, { name: string; fixed_in_version: string; normalized_severity: string }> };
    expect(clairValidator("vulnerability_report.schema.json")(report)).toEqual([]);
    const vulns = Object.values(report.vulnerabilities);
    expect([...new Set(vulns.map((v) => v.name))].sort()).toEqual(["CVE-2099-0001", "CVE-2099-0003"]);
    expect(vulns.find((v) => v.name === "CVE-2099-0001")).toMatchObject({ fixed_in_version: "2.36-9+deb12u99", normalized_severity: "High" });
    // --format json stays the IndexReport.
    const json = JSON.parse((await scan("--format", "json")).stdout) as object;
    expect(clairValidator("index_report.schema.json")(json)).toEqual([]);
    expect(json).not.toHaveProperty("vulnerabilities");
  }, 60_000);

  it("filters with --severity and --ignore-unfixed, and exits --exit-code only when a finding remains", async () => {
    const high = await scan("--severity", "critical,HIGH", "--exit-code", "3");
    expect(high.code).toBe(3);
    expect(high.stdout).toMatch(/^vulnerabilities: 1 \(Critical 0, High 1; fixable 1\)$/m);
    expect(high.stdout).not.toMatch(/CVE-2099-0003/);
    const fixed = await scan("--ignore-unfixed", "--format", "vuln-json", "--exit-code", "3");
    expect(fixed.code).toBe(3);
    expect(Object.values((JSON.parse(fixed.stdout) as { vulnerabilities: Record<string, { name: string }> }).vulnerabilities).map((v) => v.name)).toEqual(["CVE-2099-0001"]);
    const none = await scan("--severity", "CRITICAL,MEDIUM", "--exit-code", "3");
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/^vulnerabilities: 0 \(Critical 0, Medium 0; fixable 0\)$/m);
    const low = await scan("--severity", "LOW", "--ignore-unfixed", "--exit-code", "3");
    expect(low.code).toBe(0);
    // Findings without --exit-code do not change the exit code.
    expect((await scan()).code).toBe(0);
  }, 120_000);

  it("says in one line that there is no advisory data, and exits 0", async () => {
    const r = await portcullis(["scan", image(), "--store", join(dir, "empty"), "--exit-code", "3"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.filter((l) => /vulnerabilit|advisory/i.test(l))).toEqual([
      "vulnerabilities: not checked: the store has no advisory data; run `portcullis db update` (or `portcullis db import FILE` / `portcullis db pull REF` for an offline bundle)",
    ]);
    expect(lines.at(-1)).toBe(lines.find((l) => l.startsWith("vulnerabilities:")));
  }, 60_000);

  it("answers a second scan against the same data from the match cache, without opening the database", async () => {
    const first = await scan("--format", "vuln-json");
    // PGlite rewrites its pg_control whenever it closes: unchanged, it was not opened.
    const control = join(store, "pg", "global", "pg_control");
    const before = statSync(control).mtimeMs;
    const second = await scan("--format", "vuln-json");
    expect(second.stdout).toBe(first.stdout);
    expect(statSync(control).mtimeMs).toBe(before);
    // New advisory data (another `db import`) makes the cache miss: the scan matches again and sees it.
    writeFileSync(join(dir, "debian2.json"), JSON.stringify({ ...TRACKER, gnutls28: { "CVE-2099-0004": { description: "new", releases: { bookworm: { status: "open", urgency: "medium", repositories: { bookworm: "3.7.9-2+deb12u7" } } } } } }));
    expect((await portcullis(["db", "import", join(dir, "debian2.json"), "--store", store])).code).toBe(0);
    const third = await scan("--format", "vuln-json");
    const names = Object.values((JSON.parse(third.stdout) as { vulnerabilities: Record<string, { name: string }> }).vulnerabilities).map((v) => v.name);
    expect(names).toContain("CVE-2099-0004");
  }, 120_000);

  it("refuses bad filters as usage errors", async () => {
    expect((await scan("--severity", "SEVERE")).code).toBe(2);
    expect((await scan("--exit-code", "x")).code).toBe(2);
    expect((await scan("--format", "json", "--exit-code", "1")).code).toBe(2);
  });
});
