import { crc32, deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { JavaScanner } from "./java/java.js";
import { NpmScanner } from "./npm/npm.js";
import { PythonScanner } from "./python/python.js";
import { RubyGemScanner } from "./ruby/ruby.js";
import { MapLayerFiles } from "./testing.js";
import type { Scanner } from "../model/scanner.js";

const want = (s: Scanner, path: string, size = 100, mode = 0o644) => s.wants({ path, size, mode, type: "file" });

/** A zip with the given entries (deflated), as jar tools write them. */
function zip(entries: Record<string, Buffer | string>): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(entries)) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const comp = deflateRawSync(data);
    const n = Buffer.from(name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(8, 8);
    lh.writeUInt32LE(crc32(data), 14); lh.writeUInt32LE(comp.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(8, 10);
    ch.writeUInt32LE(crc32(data), 16); ch.writeUInt32LE(comp.length, 20); ch.writeUInt32LE(data.length, 24); ch.writeUInt16LE(n.length, 28); ch.writeUInt32LE(offset, 42);
    locals.push(lh, n, comp);
    central.push(ch, n);
    offset += 30 + n.length + comp.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(Object.keys(entries).length, 8); eocd.writeUInt16LE(Object.keys(entries).length, 10);
  eocd.writeUInt32LE(cd.length, 12); eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

describe("npm", () => {
  const s = new NpmScanner();
  it("wants installed packages' manifests only", () => {
    expect(want(s, "app/node_modules/lodash/package.json")).toBe(true);
    expect(want(s, "usr/lib/node_modules/@babel/core/package.json")).toBe(true);
    expect(want(s, "app/node_modules/a/node_modules/b/package.json")).toBe(true);
    expect(want(s, "app/package.json")).toBe(false);
    expect(want(s, "app/node_modules/lodash/fp/package.json")).toBe(false);
  });
  it("reads name and version, with scoped purls, and skips junk", async () => {
    const out = await s.scan(MapLayerFiles.of({
      "app/node_modules/@babel/core/package.json": JSON.stringify({ name: "@babel/core", version: "7.24.0" }),
      "app/node_modules/x/package.json": "{not json",
      "app/node_modules/y/package.json": JSON.stringify({ name: "y" }),
    }));
    expect(out.packages).toEqual([{ name: "@babel/core", version: "7.24.0", kind: "binary", package_db: "nodejs:app/node_modules/@babel/core/package.json", filepath: "app/node_modules/@babel/core/package.json", purl: "pkg:npm/%40babel/core@7.24.0" }]);
  });
});

describe("python", () => {
  const s = new PythonScanner();
  it("reads dist-info METADATA, egg-info PKG-INFO and egg-info files", async () => {
    expect(want(s, "usr/lib/python3/dist-packages/six-1.16.0.egg-info")).toBe(true);
    expect(want(s, "usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA")).toBe(true);
    expect(want(s, "usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/RECORD")).toBe(false);
    const out = await s.scan(MapLayerFiles.of({
      "usr/local/lib/python3.11/site-packages/Django_Rest-3.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: Django_Rest\nVersion: 3.0\n\nName: not-this\n",
      "usr/lib/python3/dist-packages/six-1.16.0.egg-info": "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\n",
    }));
    expect(out.packages!.map((p) => [p.name, p.version, p.purl])).toEqual([["Django_Rest", "3.0", "pkg:pypi/django-rest@3.0"], ["six", "1.16.0", "pkg:pypi/six@1.16.0"]]);
  });
});

describe("ruby gems", () => {
  it("wants installed and default gems' specifications, nothing else", () => {
    const s = new RubyGemScanner();
    expect(want(s, "usr/lib/ruby/gems/3.1.0/specifications/default/bundler-2.3.7.gemspec")).toBe(true);
    expect(want(s, "usr/local/bundle/specifications/rails-7.1.0.gemspec")).toBe(true);
    expect(want(s, "usr/lib/ruby/gems/3.1.0/specifications/other/x-1.gemspec")).toBe(false);
    expect(want(s, "app/x.gemspec")).toBe(false);
  });
  it("reads installed specifications", async () => {
    const out = await new RubyGemScanner().scan(MapLayerFiles.of({ "var/lib/gems/3.1.0/specifications/rake-13.0.6.gemspec": '# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = "rake".freeze\n  s.version = "13.0.6"\nend\n' }));
    expect(out.packages!.map((p) => [p.name, p.version, p.purl])).toEqual([["rake", "13.0.6", "pkg:gem/rake@13.0.6"]]);
  });
});

describe("java", () => {
  const s = new JavaScanner();
  it("reads pom.properties, the manifest as a fallback, and nested jars", async () => {
    const inner = zip({ "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nBundle-SymbolicName: org.example.inner;singleton:=true\r\nBundle-Version: 2.1.0\r\n\r\n" });
    const war = zip({
      "META-INF/maven/org.apache.commons/commons-lang3/pom.properties": "#Generated\ngroupId=org.apache.commons\nartifactId=commons-lang3\nversion=3.12.0\n",
      "WEB-INF/lib/inner.jar": inner,
    });
    expect(want(s, "opt/app/app.war")).toBe(true);
    const out = await s.scan(MapLayerFiles.of({ "opt/app/app.war": war, "opt/app/fake.jar": "not a zip" }));
    expect(out.packages!.map((p) => [p.name, p.version, p.package_db, p.purl])).toEqual([
      ["org.apache.commons:commons-lang3", "3.12.0", "maven:opt/app/app.war", "pkg:maven/org.apache.commons/commons-lang3@3.12.0"],
      ["org.example.inner", "2.1.0", "maven:opt/app/app.war!WEB-INF/lib/inner.jar", "pkg:maven/org.example.inner@2.1.0"],
    ]);
  });
});

describe("Red Hat content sets", () => {
  it("turns content_sets into repositories, once each", async () => {
    const { RhelContentSetScanner } = await import("./rhel/contentsets.js");
    const out = await new RhelContentSetScanner().scan(MapLayerFiles.of({
      "root/buildinfo/content_manifests/ubi8-container-8.4-206.json": JSON.stringify({ content_sets: ["rhel-8-for-x86_64-baseos-rpms", "rhel-8-for-x86_64-appstream-rpms"] }),
      "root/buildinfo/content_manifests/other.json": JSON.stringify({ content_sets: ["rhel-8-for-x86_64-baseos-rpms"] }),
    }));
    expect(out.repositories!.map((r) => r.name)).toEqual(["rhel-8-for-x86_64-baseos-rpms", "rhel-8-for-x86_64-appstream-rpms"]);
  });
});
