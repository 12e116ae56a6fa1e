import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fixtureNames, fixturesDir, MapLayerFiles } from "../testing.js";
import { OsReleaseScanner, parseKeyValues, RELEASE_PRECEDENCE } from "./osrelease.js";

interface Expected {
  id: string | null;
  version_id: string | null;
  name: string | null;
  pretty_name: string | null;
  release_files?: Record<string, string | Record<string, string>>;
}

describe("os-release scanner on 155 release files from peer projects", () => {
  const scanner = new OsReleaseScanner();
  for (const name of fixtureNames("osrelease")) {
    it(name, async () => {
      const dir = fixturesDir("osrelease", name);
      const expected = JSON.parse(readFileSync(`${dir}/expected.json`, "utf8")) as Expected;
      const files: Record<string, Buffer> = {};
      for (const f of readdirSync(dir).filter((f) => f !== "expected.json")) files[`etc/${f}`] = readFileSync(`${dir}/${f}`);
      const out = await scanner.scan(MapLayerFiles.of(files));
      const d = out.distributions?.[0];
      if (expected.id !== null || expected.name !== null) {
        expect(d).toBeDefined();
        // A Debian os-release without VERSION_ID (old distroless) takes the release from debian_version beside
        // it, as syft does (syft/linux/identify_release_test.go, "from-debian_version": VersionID 10.8); the
        // major, as for a debian_version-only image.
        const dv = expected.release_files?.debian_version;
        const versionId = expected.id === "debian" && expected.version_id === null && typeof dv === "string" && /^\d+(\.\d+)*$/.test(dv) ? dv.split(".")[0]! : expected.version_id;
        expect({ id: d!.did, version_id: d!.version_id, name: d!.name, pretty_name: d!.pretty_name }).toEqual({
          id: expected.id ?? "", version_id: versionId ?? "", name: expected.name ?? "", pretty_name: expected.pretty_name ?? "",
        });
        return;
      }
      // No os-release: the distribution comes from the other release files, as written there.
      const rf = expected.release_files ?? {};
      const lsb = rf["lsb-release"] as Record<string, string> | undefined;
      if (lsb?.DISTRIB_ID) {
        expect(d).toMatchObject({ did: lsb.DISTRIB_ID.toLowerCase(), version_id: lsb.DISTRIB_RELEASE ?? "" });
      } else if (typeof rf["alpine-release"] === "string") {
        expect(d).toMatchObject({ did: "alpine", version_id: rf["alpine-release"] });
      } else {
        const file = RELEASE_PRECEDENCE.map((p) => p.slice(4)).find((k) => typeof rf[k] === "string");
        const line = file ? (rf[file] as string) : undefined;
        if (line) {
          expect(d?.pretty_name).toBe(line.split("\n")[0]!.trim());
          expect(line).toContain(d!.version);
        } else if (typeof rf.debian_version === "string" && /^\d/.test(rf.debian_version)) {
          expect(d).toMatchObject({ did: "debian", version_id: rf.debian_version.split(".")[0] });
        } else if (typeof rf.debian_version === "string") {
          // testing/unstable: "buster/sid" names the release it leads to.
          expect(d).toMatchObject({ did: "debian", version_code_name: rf.debian_version.split("/")[0] });
        } else {
          expect(d).toBeUndefined();
        }
      }
    });
  }

  it("Amazon Linux from system-release alone, in etc/ or usr/lib/ (the contents of trivy's amazonlinux_test.go)", async () => {
    // trivy pkg/fanal/analyzer/os/amazonlinux/amazonlinux_test.go: Name "AMI release 2018.03", "2 (Karoo)",
    // "2022 (Amazon Linux)", "2023 (Amazon Linux)".
    const cases: Array<[string, string, string]> = [
      ["etc/system-release", "Amazon Linux AMI release 2018.03", "2018.03"],
      ["etc/system-release", "Amazon Linux release 2 (Karoo)", "2"],
      ["usr/lib/system-release", "Amazon Linux release 2022 (Amazon Linux)", "2022"],
      ["usr/lib/system-release", "Amazon Linux release 2023 (Amazon Linux)", "2023"],
    ];
    const s = new OsReleaseScanner();
    for (const [path, line, version] of cases) {
      expect(s.wants({ path, size: line.length, mode: 0o644, type: "file" })).toBe(true);
      const d = (await s.scan(MapLayerFiles.of({ [path]: `${line}\n` }))).distributions![0]!;
      expect({ did: d.did, version_id: d.version_id, pretty_name: d.pretty_name }).toEqual({ did: "amzn", version_id: version, pretty_name: line });
    }
  });

  it("a distroless os-release without VERSION_ID and a debian_version that is not a number (testing) stays without a release", async () => {
    const os = readFileSync(fixturesDir("osrelease", "debian-distroless-with-debian_version", "os-release"));
    const out = await new OsReleaseScanner().scan(MapLayerFiles.of({ "etc/os-release": os, "etc/debian_version": "bookworm/sid\n" }));
    expect(out.distributions![0]).toMatchObject({ did: "debian", version_id: "", pretty_name: "Distroless" });
  });

  it("unquotes values the way a shell does and ignores comments", () => {
    const kv = parseKeyValues(`# c\nA="x y"\nB='it''s'\nC=plain # trailing\nD="a \\"q\\" \\$v"\nbad line\n`);
    expect(Object.fromEntries(kv)).toEqual({ A: "x y", B: "its", C: "plain", D: 'a "q" $v' });
  });

  it("prefers etc/os-release over usr/lib/os-release and over lsb-release", async () => {
    const out = await new OsReleaseScanner().scan(MapLayerFiles.of({ "etc/os-release": "ID=a\n", "usr/lib/os-release": "ID=b\n", "etc/lsb-release": "DISTRIB_ID=c\n" }));
    expect(out.distributions![0]!.did).toBe("a");
  });
});
