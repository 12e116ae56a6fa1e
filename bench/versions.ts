// Version comparison cost: each scheme compares every pair of its biggest comparison vector file
// (../shared/fixtures/advisories/versions/), after a warm-up; the median of the runs is printed with
// the cost per comparison (both versions parsed every time, as the matcher calls compare). Files smaller
// than 20,000 pairs are timed over repeated passes.
// Usage: npx tsx bench/versions.ts [--runs N]
import { parseArgs } from "node:util";
import { apk, dpkg, golang, maven, pep440, rpm, rubygems, semver, type VersionScheme } from "../src/versions/index.js";
import { goVectors, readVectors, type Vector } from "../src/versions/testing.js";
import { median } from "./env.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "7" } } });
const runs = Number(values.runs);

const cases: Array<[VersionScheme, string, Vector[]]> = [
  [dpkg, "debian-versions-generated.txt", readVectors("debian-versions-generated.txt")],
  [rpm, "rpm-versions-generated.txt", readVectors("rpm-versions-generated.txt")],
  [apk, "alpine-versions-generated.txt", readVectors("alpine-versions-generated.txt")],
  [pep440, "pypi-versions-generated.txt", readVectors("pypi-versions-generated.txt").filter((v) => pep440.valid(v.a) && pep440.valid(v.b))],
  [semver, "semver-versions.txt", readVectors("semver-versions.txt").filter((v) => semver.valid(v.a) && semver.valid(v.b))],
  [golang, "C7 cases", goVectors()],
  [maven, "maven-versions-generated.txt", readVectors("maven-versions-generated.txt")],
  [rubygems, "rubygems-versions-generated.txt", readVectors("rubygems-versions-generated.txt")],
];

let sink = 0;
for (const [scheme, file, vectors] of cases) {
  const pass = () => {
    for (const v of vectors) sink += scheme.compare(v.a, v.b);
  };
  // Small files are run several times per measurement, so every measurement covers >= 20,000 compares.
  const repeat = Math.ceil(20_000 / vectors.length);
  for (let i = 0; i < 5 * repeat; i++) pass();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    for (let r = 0; r < repeat; r++) pass();
    times.push((performance.now() - t0) / repeat);
  }
  const ms = median(times);
  console.log(`${scheme.name.padEnd(9)} ${String(vectors.length).padStart(6)} pairs of ${file.padEnd(32)} ${ms.toFixed(2).padStart(7)} ms  ${((ms * 1e6) / vectors.length).toFixed(0).padStart(5)} ns/compare`);
}
if (Number.isNaN(sink)) console.log(sink);
