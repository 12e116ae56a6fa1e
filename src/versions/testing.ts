// Test helpers for the version schemes: the comparison vectors of ../shared/fixtures/advisories/versions/
// (format in that folder's README: `A OP B` per line, OP one of < > = ==, `#` and `//` comments).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Vector {
  file: string;
  /** 1-based line number in the file. */
  line: number;
  a: string;
  b: string;
  /** -1, 0 or 1: the sign of compare(a, b) the file expects. */
  want: number;
}

export function vectorsDir(): string {
  const dir = fileURLToPath(new URL("../../../shared/fixtures/advisories/versions/", import.meta.url));
  if (!existsSync(dir)) throw new Error(`the shared fixtures are not at ${dir}: the shared/ folder must sit beside the repository`);
  return dir;
}

const OPS: Record<string, number> = { "<": -1, ">": 1, "=": 0, "==": 0 };

/** The vectors of `file` in `dir` (default: the shared vectors folder). */
export function readVectors(file: string, dir = vectorsDir()): Vector[] {
  const text = readFileSync(join(dir, file), "utf8");
  const out: Vector[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("//")) return;
    const parts = line.split(/\s+/);
    const want = OPS[parts[1] ?? ""];
    if (parts.length !== 3 || want === undefined) throw new Error(`${file}:${i + 1}: not "A OP B": ${raw}`);
    out.push({ file, line: i + 1, a: parts[0]!, b: parts[2]!, want });
  });
  return out;
}

/** A deterministic sample of up to n items, spread evenly over the list (first and last included). */
export function sample<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items.slice();
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(items[Math.floor((i * (items.length - 1)) / (n - 1))]!);
  return out;
}

/** A small seeded PRNG (mulberry32), so generated test strings are the same on every run. */
export function prng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` random strings of 1..maxLen tokens drawn from `tokens`, reproducible from `seed`. */
export function randomVersions(seed: number, tokens: readonly string[], count: number, maxLen = 6): string[] {
  const rnd = prng(seed);
  const out = new Set<string>();
  while (out.size < count) {
    const n = 1 + Math.floor(rnd() * maxLen);
    let s = "";
    for (let i = 0; i < n; i++) s += tokens[Math.floor(rnd() * tokens.length)];
    out.add(s);
  }
  return [...out];
}

/**
 * Go cases from the fixture README's C7 section (OSV records GO-2023-1752, GO-2022-0969, GO-2022-0907),
 * in the vector format; every answer was computed with golang.org/x/mod/semver (the oracle test checks
 * them again). OSV writes Go versions without the `v`; stdlib versions are Go release tags.
 */
export const GO_C7_VECTORS = `
# GO-2023-1752 (html/template): [0, 1.19.9) [1.20.0-0, 1.20.4); Debian's go1.19.8 is affected
go1.19.8 < 1.19.9
go1.19.8 < 1.20.0-0
v1.19.8 = go1.19.8
1.20.0-0 < go1.20
go1.20 < 1.20.4
go1.20.3 < 1.20.4
go1.20.4 = 1.20.4
# GO-2022-0969 (net/http): [0, 1.18.6) [1.19.0-0, 1.19.1); go1.19.8 is not affected, go1.19.0 and go1.19rc2 are
go1.19.8 > 1.19.1
1.19.0-0 < go1.19
go1.19 < 1.19.1
1.19.0-0 < go1.19rc2
go1.19rc2 < 1.19.1
go1.19rc2 = v1.19.0-rc.2
go1.19beta1 < go1.19rc1
go1.19rc1 < go1.19rc2
go1.19rc2 < go1.19
go1.18.5 < 1.18.6
# golang.org/x/net: [0, 0.0.0-20220906165146-f3363e06e74c); a pseudo-version sorts below v0.0.0
v0.0.0-20220722155237-a158d28d115b < 0.0.0-20220906165146-f3363e06e74c
v0.0.0-20220722155237-a158d28d115b < v0.0.0
v0.0.0-20220906165146-f3363e06e74c = 0.0.0-20220906165146-f3363e06e74c
v0.1.0 > 0.0.0-20220906165146-f3363e06e74c
v0.0.0 > 0.0.0-20220906165146-f3363e06e74c
# GO-2022-0907 (k8s.io/kubernetes): [0, 1.18.18) [1.19.0, 1.19.10) [1.20.0, 1.20.6)
v1.18.17 < 1.18.18
v1.18.18 = 1.18.18
v1.19.9 > 1.19.0
v1.19.9 < 1.19.10
v1.19.10 = 1.19.10
v1.20.5 < 1.20.6
v1.20.6 = 1.20.6
v1.21.0 > 1.20.6
# +incompatible is build metadata; shorthands; 30-digit numbers
v2.0.0+incompatible = v2.0.0
v2.0.1+incompatible > v2.0.0
v1 = v1.0.0
v1.2 = v1.2.0
v1.2 < v1.2.1
v1.999999999999999999999999999991.0 < v1.999999999999999999999999999999.0
v1.0.0-999999999999999999999999999991 < v1.0.0-999999999999999999999999999999
v1.0.0-rc.1 < v1.0.0-rc.1a
v1.0.0-rc.9 < v1.0.0-rc.10
`;

/** GO_C7_VECTORS as Vector records (file name "C7"). */
export function goVectors(): Vector[] {
  return GO_C7_VECTORS.split("\n").flatMap((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return [];
    const [a, op, b] = line.split(/\s+/);
    return [{ file: "C7", line: i, a: a!, b: b!, want: OPS[op!]! }];
  });
}

/** `prefix` padded with `fill` to exactly `length` characters, then `suffix`. */
function padded(prefix: string, fill: string, suffix: string, length: number): string {
  let s = prefix;
  while (s.length + fill.length + suffix.length <= length) s += fill;
  s += "1".repeat(length - s.length - suffix.length);
  return s + suffix;
}

/** A valid version of each scheme of exactly 256 characters (MAX_VERSION_LENGTH), and one of 257. */
export const LONG: Record<string, readonly [string, string]> = Object.fromEntries(
  (
    [
      ["dpkg", "1", ".0", "-1"],
      ["rpm", "1", ".0", "-1"],
      ["apk", "1", ".0", "-r1"],
      ["pep440", "1", ".0", ""],
      ["semver", "1.0.0-", "a.", "b"],
      ["go", "v1.0.0-", "a.", "b"],
      ["maven", "1", ".0", "-x"],
      ["rubygems", "1", ".0", ".a"],
      ["nuget", "1.0.0-", "a.", "b"],
      ["packagist", "1", ".0", "-beta1"],
    ] as const
  ).map(([scheme, prefix, fill, suffix]) => [scheme, [padded(prefix, fill, suffix, 256), padded(prefix, fill, suffix, 257)]]),
);

const HUGE1 = "999999999999999999999999999991";
const HUGE9 = "999999999999999999999999999999";

/**
 * Edge strings per scheme: unit tests assert facts about them, and the oracle test compares every pair
 * of them with the real tool. Each list mixes valid and invalid strings; newlines are left out because
 * the oracles read one pair per line.
 */
export const EDGE_STRINGS: Record<string, readonly string[]> = {
  dpkg: [
    "1.0", "1.0-0", "0:1.0", "1.0~rc1", "1.0~", "1.0~~", "1.0~~a", "1.0a", "1.0+", "1.0+b1", "1.0-1+b1", "1.0-1~bpo11+1",
    "1.0-1ubuntu0.1", "1.0-1+deb12u1", "1:0.9", "0001:1.0", "+1:1.0", "2147483647:0", "1.0-a:b", "1:1.0-a:b", "abc", "1:1:1", "1-1-1",
    "1.0-1.", "1.0.", "1.0-~", " 1.0 ", "1.0\t", `1.${HUGE1}`, `1.${HUGE9}`, `1.0-${HUGE1}`,
    "", " ", "1 0", ":1", "1:", "a:1", "1a:1", "2147483648:1", "-1:1", "1.0-", "-1", "1:-1", ...LONG.dpkg!,
  ],
  rpm: [
    "1.0", "1.0-1", "1.0-1.el8", "1.0-1.el8_8", "1.0-1.el8_10", "1.0-1.module+el8.9.0+19500+8a2e3cb4", "1.0~rc1", "1.0~rc1-1",
    "1.0^git1", "1.0~rc1^git1", "1.0^", "1.0~", "1.0.", "1.0_1", "1.0a", "1.0A", "1.0.a", "01.0", "0:1.0", "1:0.1", ":1.0",
    "1:", "a:1.0", "1.0-", "-1", "1-2-3", `${HUGE9}:1`, `1.${HUGE1}`, `1.${HUGE9}`, " ", "1 0", "1.0%", "", ...LONG.rpm!,
  ],
  apk: [
    "1.0-r0", "1.0-r1", "1.0-r10", "1.0.1-r0", "1.0.0-r0", "1.0a-r0", "1.0z-r0", "1.0p1-r0", "1.0p-r0", "1.0_alpha-r0",
    "1.0_alpha1-r0", "1.0_beta2-r0", "1.0_pre3-r0", "1.0_rc1-r0", "1.0_rc1_p2-r0", "1.0_cvs-r0", "1.0_svn1-r0",
    "1.0_git20230101-r0", "1.0_hg2-r0", "1.0_p1-r0", "6.5_p20250503-r0", "1.01-r0", "1.1-r0", "1.05-r0", "1.5-r0", "01.0-r0",
    `1.${HUGE1}-r0`, `1.${HUGE9}-r0`, `1.0-r${HUGE9}`, "1.0~abc123-r0",
    "", "1.0_foo-r0", "1.0A-r0", "1.0-r", "1.0-", ".1-r0", "1..1-r0", "1.0-r1a", ...LONG.apk!,
  ],
  pep440: [
    "1.0", "1.0.0", "v1.0", "V1.0", " 1.0 ", "1.0\t", "1!0.1", "0!2.0", "1.0a1", "1.0alpha1", "1.0-a.1", "1.0b2", "1.0c3",
    "1.0rc3", "1.0pre3", "1.0preview3", "1.0RC1", "1.0.dev0", "1.0dev", "1.0a1.dev1", "1.0.post1", "1.0-1", "1.0post",
    "1.0.post1.dev1", "1.0r1", "1.0rev1", "1.0+local", "1.0+local.1", "1.0+1", "1.0+LOCAL", "1.0+0x1", "1.0+abc-1_2",
    `1.${HUGE1}`, `1.${HUGE9}`, `1.0a${HUGE1}`, `1.0+${HUGE9}`,
    "", " ", "1.0-bulbasaur", "1.0+", "1.0+-a", "1..0", "a", "1.0.x", ...LONG.pep440!,
  ],
  nuget: [
    "1", "1.0", "1.0.0", "1.0.0.0", "1.0.01", "1.0.0.1", "1.0.0-beta", "1.0.0-BETA", "1.0.0-beta2", "1.0.0-beta.1", "1.0.0-beta.a",
    "1.0.0-1", "1.0.0-rc-1", "1.0.0+meta", "1.0.0-beta+meta.1", " 1.0 ", `1.${HUGE1}`, `1.${HUGE9}`, `1.0.0-${HUGE1}`,
    "", " ", "v1.0", "1.0.0.0.0", "1.0.0-", "1.0.0-a..b", "1.0.0+", "1.0.0-a_b", ".1", "1..0", "a", ...LONG.nuget!,
  ],
  packagist: [
    "1", "1.0", "1.0.0", "v1.0.0", "V1.0", "1.0.0.0", "1.0-dev", "1.0a1", "1.0alpha1", "1.0b1", "1.0-beta.1", "1.0RC1", "1.0rc1",
    "1.0-RC2", "1.0pl1", "1.0p1", "1.0.0-patch1", "1.0_1", "1.0+1", "2.x-dev", " 1.0 ", `1.${HUGE1}`, `1.${HUGE9}`,
    "", " ", "dev-main", "dev-master", "latest", "1.0 beta", "1.0/2", "1.0#", "v", ...LONG.packagist!,
  ],
  rubygems: [
    "1", "1.0", "1.0.0", "1.a", "1.B", "1.0.a10", "1.0.a.9", "1.0.a9", "1.0.b1", "1.0-1", "1.0-pre", "1.0.pre", "1.0.0a",
    "01.0", " 1.0 ", "1.0\t", "1.0.RC1", "1.0.rc1", `1.${HUGE1}`, `1.${HUGE9}`,
    "", " ", "1beta", "1.0-", "1..2", "a", ".1", "1.0_1", ...LONG.rubygems!,
  ],
  maven: [
    "1", "1.0", "1.0.0", "1-0", "1.ga", "1-ga", "1.final", "1.RELEASE", "1-SNAPSHOT", "1-sp", "1-sp-1", "1-ga-1", "1-1",
    "1.1", "1.foo", "1-foo", "1-a1", "1-alpha-1", "1.0alpha1", "1-cr1", "1-rc1", "1-m1", "1-milestone-1", "1-b1",
    "1-beta-1", "1.x.2", "1..2", ".1", "1-", "1.", "1.0.0.RC1", "1.0.0-RC2", "2.0.a", "2.0.0.a", "1-xyz", "1-XYZ", "1 2",
    `1.${HUGE1}`, `1.${HUGE9}`, "1.1234567890123456789", "1.12345678901234567890", "~", "1-~", "", ...LONG.maven!,
  ],
  go: [
    "v1.0.0", "v1.0", "v1", "1.0.0", "v0.0.0", "v0.0.0-20220722155237-a158d28d115b", "v0.0.0-0", "v1.0.0-rc.1",
    "v1.0.0-rc.1+build", "v1.0.0+build", "v2.0.0+incompatible", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta",
    "v1.0.0-1", "v1.0.0-a-b", "go1.19.8", "go1.20", "go1.21rc2", "go1.21beta1", "go1", `v1.${HUGE1}.0`, `v1.${HUGE9}.0`,
    `v1.0.0-${HUGE1}`,
    "", "v", "v1.0.0.0", "v01.0.0", "v1.0.0-01", "v1.0.0-", "v1.0.0+", "V1.0.0", " v1.0.0", "v1-rc.1", "v1.2-rc.1",
    "go1.21.0rc", "go", "goX", ...LONG.go!,
  ],
  semver: [
    "1.0.0", "v1.0.0", " 1.0.0 ", "1.0.0-rc.1", "1.0.0-rc.1+build", "1.0.0+build", "9007199254740991.0.0", "1.0.0-9007199254740990",
    "", "=1.0.0", "V1.0.0", "1.0", "1", "1.0.0.0", "01.0.0", "9007199254740992.0.0", "1.0.0-9007199254740991", `1.0.0-${HUGE9}`,
    ...LONG.semver!,
  ],
};

/**
 * "a < b = c < d" -> the neighbour comparisons [a, -1, b], [b, 0, c], [c, -1, d]; versions are separated
 * by spaces around the operator, so they cannot contain " < ", " = " or " > ".
 */
export function chain(spec: string): Array<[string, number, string]> {
  const parts = spec.trim().split(/ ([<=>]) /);
  const out: Array<[string, number, string]> = [];
  for (let i = 0; i + 2 < parts.length; i += 2) out.push([parts[i]!, OPS[parts[i + 1]!]!, parts[i + 2]!]);
  return out;
}

/** The comparisons of chain(spec) that `scheme` gets wrong, in either orientation ([] when all hold). */
export function orderMismatches(scheme: { compare(a: string, b: string): number }, ...specs: string[]): string[] {
  const bad: string[] = [];
  for (const spec of specs) {
    for (const [a, want, b] of chain(spec)) {
      let got: string;
      try {
        const r = Math.sign(scheme.compare(a, b));
        const back = Math.sign(scheme.compare(b, a));
        if (r === want && back === (-want || 0)) continue;
        got = `${r} (reversed ${back})`;
      } catch (e) {
        got = (e as Error).message;
      }
      bad.push(`${a} vs ${b}: want ${want}, got ${got}`);
    }
  }
  return bad;
}
