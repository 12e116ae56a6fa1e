// Every version scheme against the real tool it follows (oracles.ts: dpkg, rpm, go-apk-version, Python's
// packaging, Ruby's Gem::Version, Maven's ComparableVersion, x/mod/semver), on the shared comparison
// vectors and on the edge strings of src/versions/testing.ts. Where a scheme and its tool disagree, the
// difference is listed here with the reason, and the test checks that it still occurs (a list that no
// longer matches the tools fails too). npm's semver has no oracle: the scheme is npm's own code.
// The tools are part of the test environment (test/env/setup.sh installs them): a missing one fails its
// scheme's test with the reason, on every machine; nothing here is skipped.
import { describe, expect, it } from "vitest";
import { apk, canonicalGoVersion, dpkg, golang, maven, pep440, rpm, rubygems, UnmatchableVersionError, type VersionScheme } from "../../src/versions/index.js";
import { EDGE_STRINGS, goVectors, LONG, readVectors, sample, type Vector } from "../../src/versions/testing.js";
import { apkOracle, dpkgOracle, goOracle, mavenOracle, pep440Oracle, rpmOracle, rubygemsOracle, type Answer, type Oracle, type Pair } from "./oracles.js";

type Outcome = Answer;

interface Case {
  scheme: VersionScheme;
  oracle: Oracle;
  files: string[];
  /** How many pairs of each vector file to send (evenly spread); all when undefined. */
  perFile?: number;
  /** Extra vectors (Go's C7 cases). */
  vectors?: Vector[];
  /** Edge pairs: every pair (true), or each edge against three anchors plus our sorted order's neighbours (slow tools). */
  allEdgePairs: boolean;
  /** The string handed to the tool for one of ours (Go: with its `v`, release tags canonicalised). */
  toTool?: (v: string) => string;
  /** Strings read by one side only: "ours" = the tool refuses what we read, "tool" = we refuse what the tool reads. */
  validity: Record<string, ["ours" | "tool", string]>;
  /** Pairs ordered differently: [a, b, tool's answer, ours, why]; sent to the tool on their own. */
  orderDifferences?: Array<[string, string, number, number, string]>;
}

const TOO_LONG = "longer than 256 characters: refused here before parsing (no package manager makes such versions)";
const EMPTY = "the empty string names no version (the tool reads it as the lowest one)";

const CASES: Case[] = [
  {
    scheme: dpkg,
    oracle: dpkgOracle,
    files: ["debian-versions.txt", "debian-versions-generated.txt"],
    perFile: 300,
    allEdgePairs: false,
    validity: { "": ["tool", EMPTY], [LONG.dpkg![1]]: ["tool", TOO_LONG] },
  },
  {
    scheme: rpm,
    oracle: rpmOracle,
    files: ["rpm-versions-generated.txt"],
    allEdgePairs: true,
    validity: { [LONG.rpm![1]]: ["tool", TOO_LONG] },
  },
  {
    scheme: apk,
    oracle: apkOracle,
    files: ["alpine-versions-generated.txt"],
    allEdgePairs: true,
    validity: {
      "": ["tool", EMPTY],
      [LONG.apk![1]]: ["tool", TOO_LONG],
      "1.0-r": ["tool", "apk-package(5): -r is followed by a number"],
      ".1-r0": ["tool", "apk-package(5): a version starts with a number"],
      "1..1-r0": ["tool", "apk-package(5): a '.' is followed by a number"],
      "1.0~abc123-r0": ["ours", "apk-package(5)'s ~hash (apk-tools 2.14+) is newer than go-apk-version, which refuses it"],
    },
    orderDifferences: [
      ["1.0_rc1", "1.0", 1, -1, "go-apk-version puts a pre-release suffix above the end of a version without -r; apk-package(5) puts _rc before the release, and go-apk-version agrees once -r is there (1.0_rc1-r0 < 1.0-r0)"],
      ["1.0", "1.0-r0", -1, 0, "Gentoo's rules (which apk-package(5) cites) read a missing revision as -r0; go-apk-version sorts it lower"],
      ["1.0-r0", "1.00-r0", 1, 0, "Gentoo compares zero-led numbers as strings without trailing zeros (0 = 00); go-apk-version counts the zeros"],
      ["1.02-r0", "1.010-r0", -1, 1, "Gentoo: .02 vs .010 as strings without trailing zeros, 02 > 01; go-apk-version compares 2 with 10 after one zero each. Neither case occurs in the 13,979 real apk pairs"],
    ],
  },
  {
    scheme: pep440,
    oracle: pep440Oracle,
    files: ["pypi-versions.txt", "pypi-versions-generated.txt"],
    allEdgePairs: true,
    validity: { [LONG.pep440![1]]: ["tool", TOO_LONG] },
  },
  {
    scheme: rubygems,
    oracle: rubygemsOracle,
    files: ["rubygems-versions.txt", "rubygems-versions-generated.txt"],
    allEdgePairs: true,
    validity: { "": ["tool", "Gem::Version reads the empty string as 0; it names no version"], " ": ["tool", "Gem::Version reads a blank string as 0"], [LONG.rubygems![1]]: ["tool", TOO_LONG] },
  },
  {
    scheme: maven,
    oracle: mavenOracle,
    files: ["maven-versions.txt", "maven-compare.list", "maven-versions-generated.txt"],
    allEdgePairs: true,
    validity: { "": ["tool", "ComparableVersion reads the empty string as 0; it names no version"], [LONG.maven![1]]: ["tool", TOO_LONG] },
  },
  {
    scheme: golang,
    oracle: goOracle,
    files: [],
    vectors: goVectors(),
    allEdgePairs: true,
    // x/mod/semver wants the `v`; OSV's bare versions get it, Go release tags are canonicalised.
    toTool: (v) => (v.startsWith("v") || v === "" ? v : v.startsWith("go") ? (golang.valid(v) ? canonicalGoVersion(v) : v) : `v${v}`),
    validity: { [LONG.go![1]]: ["tool", TOO_LONG] },
  },
];

function ours(scheme: VersionScheme, a: string, b: string): Outcome {
  try {
    return Math.sign(scheme.compare(a, b)) as -1 | 0 | 1;
  } catch (e) {
    if (e instanceof UnmatchableVersionError) return "invalid";
    throw e;
  }
}

function edgePairs(c: Case): Pair[] {
  const edges = EDGE_STRINGS[c.scheme.name]!.filter((s) => !s.includes("\n"));
  if (c.allEdgePairs) return edges.flatMap((a, i) => edges.slice(i).map((b) => [a, b] as const));
  const valid = edges.filter((s) => c.scheme.valid(s)).sort((a, b) => c.scheme.compare(a, b));
  const anchors = [valid[0]!, valid[Math.floor(valid.length / 2)]!, valid.at(-1)!];
  return [...edges.flatMap((e) => anchors.map((a) => [e, a] as const)), ...valid.slice(1).map((v, i) => [valid[i]!, v] as const)];
}

describe("version schemes against the real tools", () => {
  for (const c of CASES) {
    const title = `${c.scheme.name} agrees with ${c.oracle.label}`;
    const missing = c.oracle.missing();
    it(title, async () => {
      // The oracles are part of the test environment (test/env/setup.sh installs them): a missing one is a failure.
      if (missing) throw new Error(`${c.oracle.label} is missing: ${missing}; run \`npm run env:setup\` as root`);
      const vectors = [...c.files.flatMap((f) => (c.perFile ? sample(readVectors(f), c.perFile) : readVectors(f))), ...(c.vectors ?? [])];
      const pairs: Pair[] = [...vectors.map((v) => [v.a, v.b] as const), ...edgePairs(c)];
      const toTool = c.toTool ?? ((v: string) => v);
      const t0 = performance.now();
      const answers = await c.oracle.compare(pairs.map(([a, b]) => [toTool(a), toTool(b)] as const));
      const ms = performance.now() - t0;

      const disagreements: string[] = [];
      const used = new Set<string>();
      pairs.forEach(([a, b], i) => {
        const tool = answers[i]!;
        const mine = ours(c.scheme, a, b);
        if (tool === mine) return;
        if (tool !== "invalid" && mine !== "invalid") {
          disagreements.push(`${JSON.stringify(a)} vs ${JSON.stringify(b)}: ${c.oracle.label} ${tool}, ours ${mine}`);
          return;
        }
        // One side refused: the refused string must be a listed one, refused by the listed side.
        const side = mine === "invalid" ? "tool" : "ours";
        const listed = [a, b].filter((s) => c.validity[s]?.[0] === side);
        if (listed.length === 0) disagreements.push(`${JSON.stringify(a)} vs ${JSON.stringify(b)}: ${c.oracle.label} ${tool}, ours ${mine}`);
        listed.forEach((s) => used.add(s));
      });
      expect(disagreements).toEqual([]);
      expect([...used].sort(), "every listed validity difference still occurs").toEqual(Object.keys(c.validity).sort());

      const known = c.orderDifferences ?? [];
      if (known.length) {
        const got = await c.oracle.compare(known.map(([a, b]) => [toTool(a), toTool(b)] as const));
        known.forEach(([a, b, tool, mine, why], i) => {
          expect(got[i], `${c.oracle.label}: ${a} vs ${b} (${why})`).toBe(tool);
          expect(ours(c.scheme, a, b), `ours: ${a} vs ${b}`).toBe(mine);
        });
      }
      console.log(`[versions] ${c.scheme.name}: ${pairs.length} pairs agree with ${c.oracle.label} (${vectors.length} from vectors) in ${Math.round(ms)} ms`);
    });
  }
});
