import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { digestOf, makeTar } from "../../layers/testing.js";
import { walkLayer } from "../../layers/walk.js";
import { mayHoldLanguagePackage } from "../owners/paths.js";
import { fixturesDir } from "../testing.js";
import { DpkgFilesScanner, listOwner, listSink, MAX_KEPT, MAX_LINE } from "./files.js";

const EGG = "usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info";

function feed(text: string | Buffer, chunk: number, md5sums = false, keep?: (p: string) => boolean) {
  const sink = listSink(md5sums, keep);
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
  for (let i = 0; i < buf.length; i += chunk) sink.write(buf.subarray(i, i + chunk));
  return sink.end();
}

describe("dpkg file lists", () => {
  const list = ["/.", "/usr", "/usr/lib/python3/dist-packages", `/${EGG}`, `/${EGG}/PKG-INFO`, `/${EGG}/top_level.txt`, "/usr/lib/python3/dist-packages/jinja2/__init__.py", "/usr/share/doc/python3-jinja2/copyright", "/usr/bin/direnv", "/usr/share/java/commons-lang3-3.12.0.jar", "/usr/lib/go-1.19/pkg/tool/linux_amd64/vet"].join("\n");
  const kept = [EGG, `${EGG}/PKG-INFO`, "usr/bin/direnv", "usr/share/java/commons-lang3-3.12.0.jar", "usr/lib/go-1.19/pkg/tool/linux_amd64/vet"];

  it("keeps only the paths a language package may be reported by, whatever the chunking", () => {
    for (const chunk of [1, 2, 7, 64, 1 << 20]) expect(feed(`${list}\n`, chunk)).toEqual({ paths: kept });
    // No final newline, CRLF.
    expect(feed(list.replaceAll("\n", "\r\n"), 5)).toEqual({ paths: kept });
  });

  it("drops a line longer than PATH_MAX without holding it, and caps the kept paths", () => {
    const long = `/usr/bin/${"x".repeat(MAX_LINE * 3)}`;
    expect(feed(`${long}\n/usr/bin/ok\n${long}`, 1000)).toEqual({ paths: ["usr/bin/ok"], dropped: 2 });
    const many = Array.from({ length: MAX_KEPT + 5 }, (_, i) => `/usr/bin/p${i}`).join("\n");
    const r = feed(many, 4096);
    expect(r.paths.length).toBe(MAX_KEPT);
    expect(r.dropped).toBe(5);
  });

  it("reads the second column of a distroless md5sums file (syft's libsqlite3-0 fixture)", () => {
    const text = readFileSync(fixturesDir("dpkg", "distroless-debian11-sqlite", "status.d", "libsqlite3-0.md5sums"));
    const want = text.toString("utf8").split("\n").filter(Boolean).map((l) => l.slice(34));
    expect(want.length).toBeGreaterThan(0);
    expect(feed(text, 13, true, () => true)).toEqual({ paths: want });
    expect(feed(text, 13, true)).toEqual({ paths: [] }); // a C library: nothing a language package lives in
  });

  it("names the owner by the list's file name, without the architecture", () => {
    expect(listOwner("var/lib/dpkg/info/libc6:amd64.list")).toEqual({ package: "libc6", packageDb: "var/lib/dpkg/status", md5sums: false });
    expect(listOwner("var/lib/dpkg/status.d/libsqlite3-0.md5sums")).toEqual({ package: "libsqlite3-0", packageDb: "var/lib/dpkg/status.d/libsqlite3-0", md5sums: true });
    expect(listOwner("var/lib/dpkg/info/libc6:amd64.md5sums")).toBeUndefined();
    expect(listOwner("var/lib/dpkg/info/../x.list")).toBeUndefined();
  });

  it("streams the lists of a layer, buffering none, and records an empty list too", async () => {
    const tar = await makeTar([
      { name: "var/lib/dpkg/info/python3-jinja2.list", content: `${list}\n` },
      { name: "var/lib/dpkg/info/libc6:amd64.list", content: "/.\n/usr/lib/x86_64-linux-gnu/libc.so.6\n" },
      { name: "var/lib/dpkg/info/python3-jinja2.md5sums", content: `d41d8cd98f00b204e9800998ecf8427e  ${EGG}/PKG-INFO\n` },
      { name: "var/lib/dpkg/status.d/base.md5sums", content: "d41d8cd98f00b204e9800998ecf8427e  usr/bin/true\n" },
    ]);
    const scanner = new DpkgFilesScanner();
    const walk = await walkLayer(Readable.from([tar]), { digest: digestOf(tar), scanners: [scanner] });
    expect(walk.files.paths()).toEqual([]);
    expect((await scanner.scan(walk.files)).owners).toEqual([
      { db: "var/lib/dpkg/info/libc6:amd64.list", packageDb: "var/lib/dpkg/status", package: "libc6", paths: [] },
      { db: "var/lib/dpkg/info/python3-jinja2.list", packageDb: "var/lib/dpkg/status", package: "python3-jinja2", paths: kept },
      { db: "var/lib/dpkg/status.d/base.md5sums", packageDb: "var/lib/dpkg/status.d/base", package: "base", paths: ["usr/bin/true"] },
    ]);
  });

  it("the path filter takes what the language scanners report, and not documentation or libraries", () => {
    for (const p of [
      `${EGG}`, `${EGG}/PKG-INFO`, "usr/lib/python3.11/site-packages/six-1.16.0.dist-info", "usr/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA",
      "usr/lib/node_modules/npm/package.json", "usr/share/nodejs/node_modules/@babel/core/package.json", "usr/share/rubygems-integration/all/specifications/rake-13.0.6.gemspec",
      "usr/share/java/log4j-core.jar", "usr/bin/fzf", "usr/sbin/runc", "usr/libexec/docker/cli-plugins/docker-buildx", "bin/ls",
    ]) expect(mayHoldLanguagePackage(p), p).toBe(true);
    for (const p of [`${EGG}/top_level.txt`, "usr/share/doc/python3-jinja2/copyright", "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/share/nodejs/x/package.json", "usr/bin", "etc/passwd"]) {
      expect(mayHoldLanguagePackage(p), p).toBe(false);
    }
  });
});
