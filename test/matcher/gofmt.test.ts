// C7 on a real binary: Debian's own gofmt, built with go1.19.8 (golang-go, installed by test/env/setup.sh),
// indexed by the real Go scanner and matched against golang/vulndb's records. Oracle: `go version` of the
// binary says go1.19.8; GO-2023-1752 is fixed in 1.19.9, GO-2022-0969 in 1.19.1 (fixture README, C7).
import { existsSync, readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { parseOsv } from "../../src/advisories/sources/osv/index.js";
import { matchReport } from "../../src/matcher/match.js";
import { advisoryFile, candidatesOf, indexImage } from "../../src/matcher/testing.js";

const gofmt = "/usr/lib/go-1.19/bin/gofmt";

it("matches the stdlib of Debian's go1.19.8 gofmt: GO-2023-1752 only", async () => {
  if (!existsSync(gofmt)) throw new Error(`${gofmt} is missing: install golang-go (npm run env:setup)`);
  const report = await indexImage([[{ name: "usr/lib/go-1.19/bin/gofmt", mode: 0o755, content: readFileSync(gofmt) }]]);
  const parsed = parseOsv(["GO-2023-1752", "GO-2022-0969", "GO-2022-0907"].map((id) => advisoryFile(`osv/go/${id}.json`)));
  expect(parsed.skipped).toEqual([]);
  const r = matchReport(report, candidatesOf("osv-go", parsed.advisories), { ecosystemsWithData: () => true, now: new Date("2025-01-01T00:00:00Z") });
  expect(r.matches.map((m) => `${m.package.name} ${m.id} ${m.fixedIn ?? "-"}`)).toEqual(["stdlib CVE-2023-24540 1.19.9"]);
  expect(r.matches[0]).toMatchObject({ installedVersionCompared: "v1.19.8", package: { packageDb: "go:usr/lib/go-1.19/bin/gofmt" } });
});
