// Java archives from peers' own test data (test/fixtures/java/README.md): trivy's nested jars with
// pom.properties outside META-INF/maven, its fat jar and Jenkins-plugin manifest, claircore's jars that only
// their file names identify, and the manifests of both peers' test tables; the expected packages are the
// peers' test expectations.
import { readdirSync, readFileSync } from "node:fs";
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { MapLayerFiles } from "../testing.js";
import { fromFileName, fromManifest, JavaScanner, javaPackages, manifest } from "./java.js";

const dir = new URL("../../../test/fixtures/java/", import.meta.url);
const tsv = (url: URL) => readFileSync(url, "utf8").split("\n").filter(Boolean).map((l) => l.split("\t"));
/** The peer's own file name (the fixture's name without the peer prefix): the file-name rule reads it. */
const original = (file: string) => file.replace(/^(trivy|claircore)-/, "");

describe("java archives of peers' test data", () => {
  const expected = tsv(new URL("expected.tsv", dir));
  const jars = readdirSync(dir).filter((f) => f.endsWith(".jar"));

  it.each(jars)("%s: the packages the peer's test expects", async (file) => {
    const want = expected.filter((l) => l[0] === file).map((l) => `${l[1]}\t${l[2]}`).sort();
    const got = (await javaPackages(readFileSync(new URL(file, dir)), `opt/app/${original(file)}`)).map((p) => `${p.name}\t${p.version}`).sort();
    expect(got).toEqual(want);
  });

  it("names nested archives by their path, three deep (trivy's nested.jar, pom.properties under META-INF/nested/)", async () => {
    const got = await javaPackages(readFileSync(new URL("trivy-nested.jar", dir)), "opt/app/nested.jar");
    expect(got.map((p) => [p.name, p.package_db, p.purl])).toEqual([
      ["test:nested", "maven:opt/app/nested.jar", "pkg:maven/test/nested@0.0.1"],
      ["test:nested2", "maven:opt/app/nested.jar!META-INF/jars/nested2.jar", "pkg:maven/test/nested2@0.0.2"],
      ["test:nested3", "maven:opt/app/nested.jar!META-INF/jars/nested2.jar!META-INF/jars/nested3.jar", "pkg:maven/test/nested3@0.0.3"],
    ]);
  });

  it("the manifests of the peers' test tables give the group and artifact they expect", () => {
    const mdir = new URL("manifests/", dir);
    const want = tsv(new URL("expected.tsv", mdir));
    for (const file of readdirSync(mdir).filter((f) => f.endsWith(".MF"))) {
      const c = fromManifest(manifest(readFileSync(new URL(file, mdir), "utf8")), "opt/app/plugin.hpi");
      const line = want.find((l) => l[0] === file);
      // A file without a line is one the peer expects nothing from (attributes only in an individual section).
      expect(c ? `${c.group ? `${c.group}:` : ""}${c.artifact}\t${c.version}` : undefined, file).toBe(line ? `${line[1]}\t${line[2]}` : undefined);
    }
  });

  it("uses the file name only when neither pom.properties nor the manifest says anything", async () => {
    expect(fromFileName("usr/share/java/log4j-api-2.14.jar")).toEqual({ artifact: "log4j-api", version: "2.14" });
    expect(fromFileName("app/heuristic-1.0.0-SNAPSHOT.jar")).toEqual({ artifact: "heuristic", version: "1.0.0-SNAPSHOT" });
    expect(fromFileName("usr/share/java/commons-lang3.jar")).toBeUndefined();
    const jar = Buffer.from(zipSync({ "META-INF/MANIFEST.MF": Buffer.from("Manifest-Version: 1.0\r\nImplementation-Title: lib\r\nImplementation-Version: 2.0\r\n\r\n") }));
    expect((await javaPackages(jar, "opt/lib-1.0.jar")).map((p) => `${p.name}\t${p.version}`)).toEqual(["lib\t2.0"]);
    // A group with a title that is no artifact id (it has spaces): the file name's artifact id joins the group.
    const spaced = Buffer.from(zipSync({ "META-INF/MANIFEST.MF": Buffer.from("Manifest-Version: 1.0\nImplementation-Title: Apache Commons Lang\nImplementation-Version: 3.17.0\nImplementation-Vendor-Id: org.apache.commons\n") }));
    expect((await javaPackages(spaced, "opt/commons-lang3-3.17.0.jar")).map((p) => [p.name, p.purl])).toEqual([["org.apache.commons:commons-lang3", "pkg:maven/org.apache.commons/commons-lang3@3.17.0"]]);
  });

  it("the scanner reads them from a layer, and a fat jar's duplicate pom.properties count once", async () => {
    const dup = Buffer.from(zipSync({
      "META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties": Buffer.from("groupId=com.fasterxml.jackson.core\nartifactId=jackson-databind\nversion=2.13.4\n"),
      "foo/bar/pom.properties": Buffer.from("groupId=com.fasterxml.jackson.core\nartifactId=jackson-databind\nversion=2.13.4\n"),
      "bar/foo/pom.properties": Buffer.from("groupId=com.fasterxml.jackson.core\nartifactId=jackson-databind\nversion=2.12.3\n"),
    }));
    const out = await new JavaScanner().scan(MapLayerFiles.of({ "opt/app/fat.jar": dup, "opt/app/nested.jar": readFileSync(new URL("trivy-nested.jar", dir)) }));
    expect(out.packages!.map((p) => `${p.name}\t${p.version}`).sort()).toEqual([
      "com.fasterxml.jackson.core:jackson-databind\t2.12.3", "com.fasterxml.jackson.core:jackson-databind\t2.13.4", "test:nested\t0.0.1", "test:nested2\t0.0.2", "test:nested3\t0.0.3",
    ]);
  });
});
