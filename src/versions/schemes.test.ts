// Properties every scheme must have, on the edge strings of testing.ts: a total order on what it reads
// (reflexive, antisymmetric, transitive), UnmatchableVersionError for the rest, exact big numbers, bounded
// input length, and schemeFor's mapping of OSV ecosystems.
import { describe, expect, it } from "vitest";
import { MAX_VERSION_LENGTH } from "./common.js";
import { apk, dpkg, golang, maven, nuget, packagist, pep440, rpm, rubygems, schemeFor, semver } from "./index.js";
import { EDGE_STRINGS, LONG } from "./testing.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const SCHEMES: VersionScheme[] = [dpkg, rpm, apk, pep440, semver, golang, maven, rubygems, nuget, packagist];

function throwsUnmatchable(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    if (e instanceof UnmatchableVersionError) return true;
    throw e;
  }
}

describe.each(SCHEMES.map((s) => [s.name, s] as const))("%s", (name, scheme) => {
  const edges = EDGE_STRINGS[name]!;
  const valid = edges.filter((s) => scheme.valid(s));

  it("valid() agrees with compare, and a version equals itself", () => {
    for (const s of edges) {
      const ok = scheme.valid(s);
      expect(throwsUnmatchable(() => scheme.compare(s, s)), JSON.stringify(s)).toBe(!ok);
      expect(throwsUnmatchable(() => scheme.compare(s, valid[0]!)), JSON.stringify(s)).toBe(!ok);
      expect(throwsUnmatchable(() => scheme.compare(valid[0]!, s)), JSON.stringify(s)).toBe(!ok);
      if (ok) expect(scheme.compare(s, s)).toBe(0);
    }
    expect(valid.length).toBeGreaterThan(5);
    expect(valid.length).toBeLessThan(edges.length);
  });

  it("orders its edge strings: antisymmetric, and transitive but for Maven", () => {
    for (const a of valid) for (const b of valid) expect(Math.sign(scheme.compare(a, b)), `${a} vs ${b}`).toBe(-Math.sign(scheme.compare(b, a)) || 0);
    if (scheme === maven) {
      // ComparableVersion is not transitive: maven-artifact 3.8.7 itself says 1-a1 < 1 < 1.x.2 but 1-a1 > 1.x.2
      // (a sub-list sorts above a qualifier, while alpha sorts below a missing item and x above it).
      expect([maven.compare("1-a1", "1"), maven.compare("1", "1.x.2"), maven.compare("1-a1", "1.x.2")]).toEqual([-1, -1, 1]);
      return;
    }
    const sorted = [...valid].sort((a, b) => scheme.compare(a, b));
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) expect(scheme.compare(sorted[i]!, sorted[j]!), `${sorted[i]} vs ${sorted[j]}`).toBeLessThanOrEqual(0);
    }
  });

  it("refuses the empty string, and strings longer than 256 characters without parsing them", () => {
    expect(scheme.valid("")).toBe(false);
    expect(() => scheme.compare("", valid[0]!)).toThrow(UnmatchableVersionError);
    const [max, over] = LONG[name]!;
    expect(max.length).toBe(MAX_VERSION_LENGTH);
    expect(scheme.valid(max)).toBe(true);
    expect(scheme.valid(over)).toBe(false);
    const huge = max.repeat(4000);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) expect(() => scheme.compare(huge, max)).toThrow(UnmatchableVersionError);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it("refuses control and non-ASCII characters", () => {
    for (const s of ["1.0\u0000", "1.0\u00e9", "１.0", "1.0\u200b"]) {
      expect(scheme.valid(s), JSON.stringify(s)).toBe(false);
      expect(() => scheme.compare(s, valid[0]!)).toThrow(UnmatchableVersionError);
    }
  });

  it("compares 30-digit numbers exactly", () => {
    const lo = "999999999999999999999999999991";
    const hi = "999999999999999999999999999999";
    const pairs: Record<string, [string, string]> = {
      dpkg: [`1.${lo}`, `1.${hi}`],
      rpm: [`1.${lo}`, `1.${hi}`],
      apk: [`1.${lo}-r0`, `1.${hi}-r0`],
      pep440: [`1.${lo}`, `1.${hi}`],
      go: [`v1.${lo}.0`, `v1.${hi}.0`],
      maven: [`1.${lo}`, `1.${hi}`],
      rubygems: [`1.${lo}`, `1.${hi}`],
      nuget: [`1.${lo}`, `1.${hi}`],
      packagist: [`1.${lo}`, `1.${hi}`],
    };
    const p = pairs[name];
    if (!p) {
      // npm's semver refuses numbers above 2^53-1 rather than compare them inexactly.
      expect(scheme.valid(`1.${lo}.0`)).toBe(false);
      expect(scheme.valid(`1.0.0-${lo}`)).toBe(false);
      return;
    }
    expect(scheme.compare(p[0], p[1])).toBeLessThan(0);
    expect(scheme.compare(p[1], p[0])).toBeGreaterThan(0);
    expect(scheme.compare(p[1], p[1])).toBe(0);
  });
});

describe("schemeFor", () => {
  it("maps OSV ecosystems to schemes", () => {
    const cases: Record<string, VersionScheme | undefined> = {
      Debian: dpkg,
      "Debian:12": dpkg,
      "Ubuntu:22.04:LTS": dpkg,
      "Ubuntu:Pro:18.04:LTS": dpkg,
      Alpine: apk,
      "Alpine:v3.18": apk,
      Wolfi: apk,
      Chainguard: apk,
      "RHEL:9": rpm,
      "Red Hat:enterprise_linux:9::appstream": rpm,
      "Rocky Linux:9": rpm,
      "AlmaLinux:8": rpm,
      "openSUSE:Leap 15.5": rpm,
      "SUSE:Linux Enterprise Server 15 SP5": rpm,
      npm: semver,
      "crates.io": semver,
      "Node.js": semver,
      PyPI: pep440,
      Go: golang,
      Maven: maven,
      RubyGems: rubygems,
      "": undefined,
      pypi: undefined,
      NuGet: nuget,
      Packagist: packagist,
      GIT: undefined,
      "Debian12": undefined,
      Ubuntu: undefined,
      "Alpine Linux": undefined,
    };
    for (const [eco, want] of Object.entries(cases)) expect(schemeFor(eco)?.name, eco).toBe(want?.name);
  });
});
