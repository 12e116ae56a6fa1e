// SBOM documents from images made of real tar layers walked by the default scanners: licence files stack
// like package databases, duplicate purls stay distinct, the output is deterministic, and both formats
// validate against the official schemas (test/fixtures/sbom-schemas).
import { describe, expect, it } from "vitest";
import type { Coalesced } from "../indexer/coalesce.js";
import { coalescedImage, OS_RELEASE, type TarEntry } from "../matcher/testing.js";
import { validateCycloneDx, validateSpdx } from "../../test/sbom/schemas.js";
import { writeSbom } from "./index.js";
import type { SbomInput } from "./types.js";

function status(pkgs: Array<{ name: string; depends?: string; provides?: string }>): string {
  return pkgs.map((p) => `Package: ${p.name}\nStatus: install ok installed\nMaintainer: m <m@example.org>\nArchitecture: amd64\nVersion: 1:1.0-1\n${p.depends ? `Depends: ${p.depends}\n` : ""}${p.provides ? `Provides: ${p.provides}\n` : ""}`).join("\n");
}
const dep5 = (...licences: string[]) => `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n${licences.map((l) => `Files: *\nCopyright: 2024 X\nLicense: ${l}\n text\n`).join("\n")}`;
const base: TarEntry[] = [{ name: "etc/os-release", content: OS_RELEASE.debian12 }];
const licences = (c: Coalesced) => Object.fromEntries(c.packages.map((p) => [p.pkg.name, p.pkg.licenses ?? []]));
const input = (c: Coalesced & { layers: string[] }): SbomInput => ({
  image: { name: "example.com/app:1 <test>", manifest: `sha256:${"b".repeat(64)}`, layers: c.layers },
  packages: c.packages,
  distribution: c.distribution,
  tool: { name: "portcullis", version: "0.0.0-test" },
  timestamp: "2026-12-04T00:00:00Z",
  uuid: "3b241101-e2bb-4255-8caf-4136c566a962",
});

describe("SBOMs", () => {
  it("licence files stack like package databases: kept under a rewritten status, replaced by a newer copy, removed by a whiteout", async () => {
    const lower: TarEntry[] = [...base, { name: "var/lib/dpkg/status", content: status([{ name: "libfoo" }, { name: "bar" }]) }, { name: "usr/share/doc/libfoo/copyright", content: dep5("GPL-2+", "BSD-3-clause") }, { name: "usr/share/doc/bar/copyright", content: dep5("MIT") }];
    const rewritten = await coalescedImage([lower, [{ name: "var/lib/dpkg/status", content: status([{ name: "libfoo" }, { name: "bar" }, { name: "jq", depends: "libfoo (>= 1), virt | bar" }]) }]]);
    expect(licences(rewritten)).toEqual({ bar: ["MIT"], jq: [], libfoo: ["GPL-2+", "BSD-3-clause"] });
    const replaced = await coalescedImage([lower, [{ name: "usr/share/doc/libfoo/copyright", content: dep5("Apache-2.0") }]]);
    expect(licences(replaced).libfoo).toEqual(["Apache-2.0"]);
    const removed = await coalescedImage([lower, [{ name: "usr/share/doc/libfoo/.wh.copyright", content: "" }]]);
    expect(licences(removed)).toEqual({ bar: ["MIT"], libfoo: [] });
    // distroless: one status.d file per package; the copyright file speaks for it too.
    const distroless = await coalescedImage([[...base, { name: "var/lib/dpkg/status.d/libfoo", content: status([{ name: "libfoo" }]).replace(/Status: .*\n/, "") }, { name: "usr/share/doc/libfoo/copyright", content: dep5("Zlib") }]]);
    expect(licences(distroless)).toEqual({ libfoo: ["Zlib"] });
  });

  it("resolves dpkg alternatives and Provides, keeps duplicate npm purls apart, and writes the same bytes for the same input", async () => {
    const pj = (name: string, deps: Record<string, string> = {}) => JSON.stringify({ name, version: "1.0.0", license: "MIT", dependencies: deps });
    const c = await coalescedImage([[
      ...base,
      { name: "var/lib/dpkg/status", content: status([{ name: "jq", depends: "libfoo, virt | bar, missing" }, { name: "libfoo" }, { name: "impl", provides: "virt (= 1)" }, { name: "bar" }]) },
      { name: "app/node_modules/a/package.json", content: pj("a", { b: "^1" }) },
      { name: "app/node_modules/b/package.json", content: pj("b") },
      { name: "app/node_modules/a/node_modules/b/package.json", content: pj("b") },
    ]]);
    const cdx = JSON.parse(writeSbom("cyclonedx", input(c))) as { components: Array<{ "bom-ref": string; name: string; properties?: Array<{ name: string; value: string }> }>; dependencies: Array<{ ref: string; dependsOn: string[] }> };
    expect(validateCycloneDx(cdx)).toEqual([]);
    const refs = cdx.components.map((x) => x["bom-ref"]);
    expect(new Set(refs).size).toBe(refs.length);
    const dep = (name: string) => cdx.dependencies.find((d) => d.ref === cdx.components.find((x) => x.name === name && !x["bom-ref"].includes("#"))!["bom-ref"])!.dependsOn;
    expect(dep("jq").map((r) => r.replace(/@.*/, ""))).toEqual(["pkg:deb/debian/impl", "pkg:deb/debian/libfoo"]);
    // a's b is its own nested copy, not the top-level one.
    const nested = cdx.components.find((x) => x.properties?.some((p) => p.name === "portcullis:FilePath" && p.value === "app/node_modules/a/node_modules/b/package.json"))!;
    expect(dep("a")).toEqual([nested["bom-ref"]]);
    expect(refs.filter((r) => r.startsWith("pkg:npm/b@1.0.0"))).toHaveLength(2);
    const spdx = JSON.parse(writeSbom("spdx-json", input(c))) as { packages: Array<{ SPDXID: string }> };
    expect(validateSpdx(spdx)).toEqual([]);
    expect(new Set(spdx.packages.map((p) => p.SPDXID)).size).toBe(spdx.packages.length);
    expect(writeSbom("cyclonedx", input(c))).toBe(writeSbom("cyclonedx", input(c)));
    expect(writeSbom("spdx-json", input(c))).toBe(writeSbom("spdx-json", input(c)));
  });
});
