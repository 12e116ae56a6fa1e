// Go build info on peers' own test binaries (test/fixtures/gobin/README.md: trivy's go1.15 binary in the
// pre-1.18 pointer layout and its GOEXPERIMENT binary, osv-scalibr's binary with a replaced module),
// against the packages those peers' tests expect. Built-here binaries (GOPATH mode, GOEXPERIMENT, a
// directory replacement) are in test/scanners/language.test.ts with `go version -m` as the oracle.
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { digestOf, makeTar } from "../../layers/testing.js";
import { walkLayer } from "../../layers/walk.js";
import { stdlibVersion } from "./buildinfo.js";
import { GoBinaryScanner, type GoBuildInfo, goPackages } from "./gobin.js";

const dir = new URL("../../../test/fixtures/gobin/", import.meta.url);
const tsv = (name: string) => readFileSync(new URL(name, dir), "utf8").split("\n").filter(Boolean).map((l) => l.split("\t"));
const binary = (name: string) => gunzipSync(readFileSync(new URL(name, dir)));

/** Streams `buf` through a sink in `chunk`-byte pieces; the build info and how many bytes it took. */
function feed(scanner: GoBinaryScanner, buf: Buffer, chunk: number): { info: GoBuildInfo | undefined; read: number } {
  const sink = scanner.consume();
  let read = 0;
  for (let i = 0; i < buf.length; i += chunk) {
    read = Math.min(buf.length, i + chunk);
    if (!sink.write(buf.subarray(i, i + chunk))) break;
  }
  return { info: sink.end() as GoBuildInfo | undefined, read };
}

describe("Go build info of peers' test binaries", () => {
  const expected = tsv("expected.tsv");
  const files = [...new Set(expected.map((l) => l[0]!))];

  it.each(files)("%s: the packages the peer's test expects, whatever the chunking", (file) => {
    const want = expected.filter((l) => l[0] === file).map((l) => `${l[1]}\t${l[2]}`).sort();
    const buf = binary(file);
    for (const chunk of [509, 4096, 65_536, 1 << 20]) {
      const { info } = feed(new GoBinaryScanner(), buf, chunk);
      expect(info, `chunk ${chunk}`).toBeDefined();
      expect(goPackages(info!, "app").map((p) => `${p.name}\t${p.version}`).sort(), `chunk ${chunk}`).toEqual(want);
    }
  });

  it("reads the replacement module, never the replaced one (osv-scalibr's binary)", () => {
    const { info } = feed(new GoBinaryScanner(), binary("scalibr-binary_with_module_replacement-linux-amd64.gz"), 65_536);
    const pkgs = goPackages(info!, "usr/bin/app");
    expect(pkgs.map((p) => p.name)).not.toContain("golang.org/x/xerrors");
    expect(pkgs.find((p) => p.name === "github.com/golang/xerrors")!.purl).toBe("pkg:golang/github.com/golang/xerrors@v0.0.0-20220907171357-04be3eba64a2");
  });

  it("pre-1.18 binaries need the bytes before the build info: within the cap they are read, over it nothing is", () => {
    const old = binary("trivy-test.elf.gz");
    expect(feed(new GoBinaryScanner(), old, 65_536).info?.goVersion).toBe("go1.15.2");
    // Its read-only data is ~0.8 MB: a 256 KiB cap cannot hold it, and nothing half-read comes out.
    expect(feed(new GoBinaryScanner(256 * 1024), old, 65_536).info).toBeUndefined();
    // A 1.18+ binary needs none of it: the same cap does not matter.
    expect(feed(new GoBinaryScanner(256 * 1024), binary("trivy-goexperiment.gz"), 65_536).info?.goVersion).toBe("go1.22.1 X:loopvar");
  });

  it("stops reading once it has the build info", () => {
    const buf = binary("scalibr-binary_with_module_replacement-linux-amd64.gz");
    const { read } = feed(new GoBinaryScanner(), buf, 65_536);
    expect(read).toBeLessThan(buf.length);
  });

  it("through the layer walk, a pre-1.18 binary is read and nothing of it is buffered as a file", async () => {
    const tar = await makeTar([{ name: "usr/local/bin/old", content: binary("trivy-test.elf.gz"), mode: 0o755 }]);
    const s = new GoBinaryScanner();
    const walk = await walkLayer(Readable.from([tar]), { digest: digestOf(tar), scanners: [s] });
    const out = await s.scan(walk.files);
    expect(out.packages!.map((p) => `${p.name}\t${p.version}`)).toContain("stdlib\tv1.15.2");
    expect(walk.files.paths()).toEqual([]);
  });

  it("ignores non-ELF files, ELF files without build info and a stray magic outside a writable segment", () => {
    const s = new GoBinaryScanner();
    expect(feed(s, Buffer.from("#!/bin/sh\necho hi\n".repeat(5000)), 4096).info).toBeUndefined();
    const buf = Buffer.from(binary("trivy-goexperiment.gz"));
    // Put a copy of the magic at a 16-aligned offset in the code segment (offset 0x1000): still the real one is found.
    buf.write("\xff Go buildinf:", 0x1000, "latin1");
    expect(feed(s, buf, 65_536).info?.goVersion).toBe("go1.22.1 X:loopvar");
  });
});

describe("Go package identities", () => {
  it("cuts experiment and vendor suffixes off the Go version (trivy's table)", () => {
    for (const [given, want] of tsv("stdlib-versions.tsv")) expect(stdlibVersion(given!), given).toBe(want);
  });

  it("reports a GOPATH build's main package at (devel), and a directory replacement by its path", () => {
    const names = (info: GoBuildInfo) => goPackages(info, "x").map((p) => `${p.name}\t${p.version}`);
    expect(names({ goVersion: "go1.19.8", path: "github.com/junegunn/fzf", deps: [] })).toEqual(["stdlib\tv1.19.8", "github.com/junegunn/fzf\t(devel)"]);
    expect(names({ goVersion: "go1.19.8", path: "command-line-arguments", deps: [] })).toEqual(["stdlib\tv1.19.8"]);
    expect(names({ goVersion: "go1.19.8", path: "cmd/gofmt", deps: [] })).toEqual(["stdlib\tv1.19.8"]);
    expect(names({ goVersion: "go1.19.8", main: { path: "example.com/app", version: "(devel)" }, deps: [{ path: "example.com/lib", version: "v1.2.3", replacedBy: { path: "./lib", version: "" } }] }))
      .toEqual(["stdlib\tv1.19.8", "example.com/app\t(devel)", "./lib\t(devel)"]);
  });
});
