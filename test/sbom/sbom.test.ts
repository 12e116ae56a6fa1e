// `portcullis scan --format cyclonedx|spdx-json` on the real Debian test images (test/env/images.sh), as
// users run it, checked against oracles no one here wrote: the official JSON schemas (vendored, see
// test/fixtures/sbom-schemas/README.md), dpkg-query on the same root filesystems (packages, and the
// Depends/Pre-Depends each package declares), the copyright files' own `License:` lines read with grep,
// and the real file trees of the language packages.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith, tool } from "../env/index.js";
import { imagesDir, ociBookworm, rootfsBookworm, rootfsBookwormTwo } from "../env/images.js";
import { validateCycloneDx, validateSpdx } from "./schemas.js";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

async function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tsx, [bin, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

interface CdxComponent {
  "bom-ref": string;
  type: string;
  name: string;
  version: string;
  purl?: string;
  licenses?: Array<{ license: { name: string } }>;
  properties?: Array<{ name: string; value: string }>;
}
interface Cdx {
  metadata: { component: { "bom-ref": string; properties: Array<{ name: string; value: string }> } };
  components: CdxComponent[];
  dependencies: Array<{ ref: string; dependsOn: string[] }>;
}
interface SpdxDoc {
  packages: Array<{ SPDXID: string; name: string; versionInfo: string; licenseDeclared: string; externalRefs?: Array<{ referenceType: string; referenceLocator: string }>; annotations?: Array<{ comment: string }> }>;
  relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
  hasExtractedLicensingInfos?: Array<{ licenseId: string; extractedText: string }>;
}

const prop = (c: CdxComponent, name: string) => c.properties?.find((p) => p.name === name)?.value;

/** dpkg-query's installed packages: name -> version and the names in Pre-Depends and Depends (each group's alternatives). */
async function dpkgQuery(rootfs: string): Promise<Map<string, { version: string; depends: string[][] }>> {
  const { stdout } = await run(tool("dpkg-query"), ["--admindir", join(rootfs, "var/lib/dpkg"), "-W", "-f", "${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Pre-Depends}, ${Depends}\\n"], { maxBuffer: 16 << 20 });
  const out = new Map<string, { version: string; depends: string[][] }>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("ii")) continue;
    const [, name, version, deps] = line.split("\t");
    const depends = deps!.split(",").map((g) => g.split("|").map((a) => a.trim().split(/[\s:(]/)[0]!).filter(Boolean)).filter((g) => g.length);
    out.set(name!, { version: version!, depends });
  }
  return out;
}

/**
 * The licences a copyright file states, by grep: the first line of each License: field, without repeats;
 * in a file without any, the names of the /usr/share/common-licenses texts it points at.
 */
async function grepLicenses(file: string): Promise<string[]> {
  const { stdout } = await run("grep", ["-i", "^license:", file]).catch(() => ({ stdout: "" }));
  const fields = [...new Set(stdout.split("\n").map((l) => l.replace(/^license:/i, "").trim()).filter(Boolean))];
  if (fields.length) return fields;
  const refs = await run("grep", ["-oE", "/usr/share/common-licenses/[A-Za-z0-9_.+-]*[A-Za-z0-9+]", file]).catch(() => ({ stdout: "" }));
  return [...new Set(refs.stdout.split("\n").map((l) => l.slice("/usr/share/common-licenses/".length)).filter(Boolean))];
}

describeWith(["registryBasic"], "SBOMs of the real Debian test images", () => {
  let dir: string;
  let store: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-sbom-"));
    store = join(dir, "store");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes a schema-valid CycloneDX 1.5 document: every package with its purl and layer, dependencies as dpkg declares them", async () => {
    const r = await portcullis(["scan", `oci:${ociBookworm()}:two`, "--format", "cyclonedx", "--store", store]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const bom = JSON.parse(r.stdout) as Cdx;
    expect(validateCycloneDx(bom)).toEqual([]);
    const want = await dpkgQuery(rootfsBookwormTwo());
    const libs = bom.components.filter((c) => c.type === "library");
    expect(new Map(libs.map((c) => [c.name, c.version]))).toEqual(new Map([...want].map(([n, p]) => [n, p.version])));
    expect(bom.components.find((c) => c.type === "operating-system")).toMatchObject({ name: "debian", version: "12" });
    const layers = bom.metadata.component.properties.filter((p) => p.name === "portcullis:LayerDigest").map((p) => p.value);
    expect(layers).toHaveLength(2);
    for (const c of libs) {
      expect(c.purl).toBe(`pkg:deb/debian/${encodeURIComponent(c.name)}@${encodeURIComponent(c.version).replace(/%3A/g, ":")}?arch=${c.purl!.match(/arch=([^&]+)/)![1]}&distro=debian-12`);
      expect(layers).toContain(prop(c, "portcullis:LayerDigest"));
    }
    const byName = new Map(libs.map((c) => [c.name, c]));
    // jq came with the second layer; libc6 was in the first, and the second layer's status file kept it.
    expect(prop(byName.get("jq")!, "portcullis:LayerDigest")).toBe(layers[1]);
    expect(prop(byName.get("libc6")!, "portcullis:LayerDigest")).toBe(layers[0]);
    // Dependencies: each Depends/Pre-Depends group dpkg-query prints resolves to its first installed
    // alternative (provides aside: a group no alternative of which is installed by name is not checked).
    const deps = new Map(bom.dependencies.map((d) => [d.ref, d.dependsOn]));
    let checked = 0;
    for (const [name, p] of want) {
      const got = deps.get(byName.get(name)!["bom-ref"])!;
      const expected = new Set<string>();
      for (const group of p.depends) {
        const first = group.find((a) => want.has(a));
        if (first && first !== name) expected.add(byName.get(first)!["bom-ref"]);
      }
      for (const e of expected) expect(got, `${name} depends on ${e}`).toContain(e);
      checked += expected.size;
    }
    expect(checked).toBeGreaterThan(100);
    expect(deps.get(byName.get("jq")!["bom-ref"])).toContain(byName.get("libjq1")!["bom-ref"]);
  });

  it("gives each Debian package the licences its copyright file states (License: fields, else common-licenses references)", async () => {
    const r = await portcullis(["scan", `oci:${ociBookworm()}:base`, "--format", "cyclonedx", "--store", store]);
    expect(r.code).toBe(0);
    const bom = JSON.parse(r.stdout) as Cdx;
    const root = rootfsBookworm();
    let withLicences = 0;
    for (const c of bom.components.filter((x) => x.type === "library")) {
      const file = join(root, "usr/share/doc", c.name, "copyright");
      // find's view, no symlinks followed: a package whose doc folder links to another package's has no
      // copyright file of its own in the layer.
      const { stdout } = await run("find", [join(root, "usr/share/doc", c.name), "-maxdepth", "1", "-name", "copyright", "-type", "f"]).catch(() => ({ stdout: "" }));
      const want = stdout.trim() ? await grepLicenses(file) : [];
      expect((c.licenses ?? []).map((l) => l.license.name), c.name).toEqual(want);
      if (want.length) withLicences++;
    }
    expect(withLicences).toBeGreaterThan(50);
  });

  it("writes a schema-valid SPDX 2.3 document with purls, licences as LicenseRefs and DEPENDS_ON", async () => {
    const r = await portcullis(["scan", `oci:${ociBookworm()}:two`, "--format", "spdx-json", "--store", store]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as SpdxDoc;
    expect(validateSpdx(doc)).toEqual([]);
    const want = await dpkgQuery(rootfsBookwormTwo());
    const pkgs = doc.packages.filter((p) => p.externalRefs?.some((e) => e.referenceType === "purl"));
    expect(pkgs.map((p) => `${p.name} ${p.versionInfo}`).sort()).toEqual([...want].map(([n, p]) => `${n} ${p.version}`).sort());
    for (const p of pkgs) expect(p.annotations?.some((a) => /^LayerDigest: sha256:[0-9a-f]{64}$/.test(a.comment)), p.name).toBe(true);
    const refs = new Map((doc.hasExtractedLicensingInfos ?? []).map((l) => [l.licenseId, l.extractedText]));
    const jq = pkgs.find((p) => p.name === "jq")!;
    expect(jq.licenseDeclared.split(" AND ").map((id) => refs.get(id))).toEqual(await grepLicenses(join(rootfsBookwormTwo(), "usr/share/doc/jq/copyright")));
    const libjq = pkgs.find((p) => p.name === "libjq1")!;
    expect(doc.relationships).toContainEqual({ spdxElementId: jq.SPDXID, relationshipType: "DEPENDS_ON", relatedSpdxElement: libjq.SPDXID });
    expect(doc.relationships.filter((x) => x.relationshipType === "CONTAINS")).toHaveLength(pkgs.length + 1);
  });

  it("describes the language packages of the lang image with their own purls and owning Debian package", async () => {
    const lang = join(imagesDir(), "rootfs-bookworm-lang");
    expect(existsSync(lang)).toBe(true);
    const r = await portcullis(["scan", `oci:${ociBookworm()}:lang`, "--format", "cyclonedx", "--store", store]);
    expect(r.code).toBe(0);
    const bom = JSON.parse(r.stdout) as Cdx;
    expect(validateCycloneDx(bom)).toEqual([]);
    const six = bom.components.find((c) => c.purl?.startsWith("pkg:pypi/six@"))!;
    expect(six).toBeDefined();
    // The egg-info/dist-info the scanner read is really there, and dpkg says python3-six owns it.
    const file = prop(six, "portcullis:FilePath")!;
    expect(existsSync(join(lang, file))).toBe(true);
    const { stdout } = await run(tool("dpkg-query"), ["--admindir", join(lang, "var/lib/dpkg"), "-S", `/${file.replace(/\/(METADATA|PKG-INFO)$/, "")}`]).catch((e: { stdout: string }) => e);
    expect(stdout).toMatch(/^python3-six: /);
    expect(prop(six, "portcullis:OwnedBy")).toBe("python3-six");
    expect(bom.components.some((c) => c.purl?.startsWith("pkg:maven/"))).toBe(true);
    expect(bom.components.some((c) => c.purl?.startsWith("pkg:golang/"))).toBe(true);
    expect(bom.components.filter((c) => c.type === "library").every((c) => c.purl && prop(c, "portcullis:LayerDigest"))).toBe(true);
  });
});
