// cargo-auditable data in real Rust programs from peers' test suites, read through the layer walk as in an
// image. Expected crates: trivy's pkg/dependency/parser/rust/binary/parse_test.go and osv-scalibr's
// extractor/filesystem/language/rust/cargoauditable/cargoauditable_test.go (test/fixtures/cargo/README.md).
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { digestOf, makeTar } from "../../layers/testing.js";
import { walkLayer } from "../../layers/walk.js";
import { GoBinaryScanner } from "../gobin/gobin.js";
import { ScannerError } from "../errors.js";
import { CargoAuditableScanner, MAX_JSON, MAX_PROBES, parseDepInfo, plausible, type DepInfo } from "./cargo.js";

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../../test/fixtures/cargo/${name}`, import.meta.url)));

/** One layer with `files` as executables, walked in 16 KiB chunks with the Go and the Rust scanner. */
async function scanLayer(files: Record<string, Buffer>) {
  const tar = await makeTar(Object.entries(files).map(([name, content]) => ({ name, content, mode: 0o755 })));
  const chunks = Array.from({ length: Math.ceil(tar.length / 16384) }, (_, i) => tar.subarray(i * 16384, (i + 1) * 16384));
  const cargo = new CargoAuditableScanner();
  const walk = await walkLayer(Readable.from(chunks), { digest: digestOf(tar), scanners: [new GoBinaryScanner(), cargo] });
  return { walk, scan: () => cargo.scan(walk.files) };
}

/**
 * A minimal 64-bit little-endian ELF: header, `data` at offset 64, then a section table (null, `.dep-v0` over
 * `data` with `flags`, `.shstrtab`). `at` moves the section's start away from the data's (a section that
 * does not begin where the zlib stream does).
 */
function tinyElf(data: Buffer, opts: { flags?: number; at?: number } = {}): Buffer {
  const names = Buffer.from("\0.dep-v0\0.shstrtab\0");
  const body = Buffer.concat([data, names]);
  const shoff = 64 + body.length;
  const h = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(h);
  h.writeUInt16LE(2, 16); h.writeUInt16LE(62, 18); h.writeUInt32LE(1, 20);
  h.writeBigUInt64LE(BigInt(shoff), 0x28); h.writeUInt16LE(64, 0x34); h.writeUInt16LE(64, 0x3a); h.writeUInt16LE(3, 0x3c); h.writeUInt16LE(2, 0x3e);
  const sh = Buffer.alloc(64 * 3);
  const sec = (i: number, name: number, type: number, flags: number, off: number, size: number) => {
    sh.writeUInt32LE(name, i * 64); sh.writeUInt32LE(type, i * 64 + 4); sh.writeBigUInt64LE(BigInt(flags), i * 64 + 8);
    sh.writeBigUInt64LE(BigInt(off), i * 64 + 24); sh.writeBigUInt64LE(BigInt(size), i * 64 + 32);
  };
  sec(1, 1, 1, opts.flags ?? 0, 64 + (opts.at ?? 0), data.length);
  sec(2, 9, 3, 0, 64 + data.length, names.length);
  // Padding so the walk's 16 KiB size floor is passed.
  return Buffer.concat([h, body, sh, Buffer.alloc(20_000)]);
}

describe("cargo-auditable", () => {
  it("wants executables only", () => {
    const s = new CargoAuditableScanner();
    expect(s.wants({ path: "usr/bin/rg", size: 5 << 20, mode: 0o755, type: "file" })).toBe(true);
    expect(s.wants({ path: "usr/share/doc/rg/README", size: 5 << 20, mode: 0o644, type: "file" })).toBe(false);
  });

  it("reads the crates of peers' test programs as trivy and osv-scalibr expect", async () => {
    const { walk, scan } = await scanLayer({
      "usr/local/bin/workspace": fixture("trivy-workspace.elf"),
      "usr/local/bin/uses_serde_json": fixture("scalibr-uses_serde_json"),
      "usr/local/bin/no_deps": fixture("scalibr-no_deps"),
      "usr/local/bin/not_binary": fixture("scalibr-not_binary"),
    });
    const out = await scan();
    const by = (path: string) => out.packages!.filter((p) => p.filepath === path).map((p) => `${p.name}@${p.version}`).sort();
    // trivy: crate_with_features 0.1.0 (root) and library_crate 0.1.0.
    expect(by("usr/local/bin/workspace")).toEqual(["crate_with_features@0.1.0", "library_crate@0.1.0"]);
    // osv-scalibr TestExtract "uses_serde_json" and "no_deps"; "not_binary" has none.
    expect(by("usr/local/bin/uses_serde_json")).toEqual([
      "itoa@1.0.14", "memchr@2.7.4", "proc-macro2@1.0.92", "quote@1.0.38", "ryu@1.0.18", "serde@1.0.217", "serde_derive@1.0.217",
      "serde_json@1.0.135", "syn@2.0.95", "unicode-ident@1.0.14", "uses_json@0.1.0",
    ]);
    expect(by("usr/local/bin/no_deps")).toEqual(["no_deps@0.1.0"]);
    expect(by("usr/local/bin/not_binary")).toEqual([]);
    const serde = out.packages!.find((p) => p.name === "serde_json")!;
    expect(serde).toEqual({ name: "serde_json", version: "1.0.135", kind: "binary", package_db: "cargo:usr/local/bin/uses_serde_json", filepath: "usr/local/bin/uses_serde_json", purl: "pkg:cargo/serde_json@1.0.135" });
    // Nothing of the programs was buffered; the Go scanner read the same files in the same pass and found no Go.
    expect(walk.files.paths()).toEqual([]);
    expect([...(walk.files.consumed?.("gobin") ?? new Map()).keys()]).toEqual([]);
  });

  it("finds the section whatever the chunking, across chunk boundaries (chunks of 7 bytes to 64 KiB)", () => {
    const elf = fixture("trivy-workspace.elf");
    for (const size of [7, 255, 256, 257, 1000, 4096, 65536]) {
      // Shifted so the section's zlib header falls at different places in the chunks.
      for (const shift of [0, 100, 200]) {
        const sink = new CargoAuditableScanner().consume();
        sink.write(elf.subarray(0, shift || size));
        for (let i = shift || size; i < elf.length; i += size) sink.write(elf.subarray(i, i + size));
        const out = sink.end() as DepInfo;
        expect("crates" in out && out.crates.map((c) => c.name), `${size}/${shift}`).toEqual(["crate_with_features", "library_crate"]);
      }
    }
  });

  it("the cheap pre-check before inflating accepts every stream zlib itself writes for such JSON (levels 0-9)", () => {
    let dynamic = 0;
    for (let n = 0; n < 300; n++) {
      const doc = { packages: Array.from({ length: n }, (_, i) => ({ name: `crate-${(i * 7919) % 1000}`, version: `1.${i}.0`, source: "crates.io", dependencies: i ? [i - 1] : [] })) };
      const z = deflateSync(Buffer.from(JSON.stringify(doc)), { level: n % 10 });
      if (((z[2]! >> 1) & 3) === 2) dynamic++;
      expect(plausible(z, 0), `${n} crates, level ${n % 10}`).toBe(true);
    }
    expect(dynamic).toBeGreaterThan(100);
  });

  it("leaves out build-time crates", () => {
    const crates = parseDepInfo(Buffer.from(JSON.stringify({ packages: [{ name: "app", version: "1.0.0", source: "local", root: true, dependencies: [1] }, { name: "cc", version: "1.0.83", source: "crates.io", kind: "build" }] })));
    expect(crates.map((c) => [c.name, c.kind, c.source])).toEqual([["app", "runtime", "local"], ["cc", "build", "crates.io"]]);
  });

  it("reads the section in a minimal ELF, and only where a non-loaded section starts", async () => {
    const json = deflateSync(Buffer.from('{"packages":[{"name":"regex","version":"1.10.2","source":"crates.io"}]}'));
    expect((await (await scanLayer({ "bin/a": tinyElf(json) })).scan()).packages!.map((p) => p.purl)).toEqual(["pkg:cargo/regex@1.10.2"]);
    // The same bytes inside a loaded section, or not at a section's start, are some other data.
    expect((await (await scanLayer({ "bin/a": tinyElf(json, { flags: 2 }) })).scan()).packages).toEqual([]);
    expect((await (await scanLayer({ "bin/a": tinyElf(json, { at: 1 }) })).scan()).packages).toEqual([]);
  });

  it("fails the layer with a clear error on hostile data: a zlib bomb, wrong shapes", async () => {
    const bomb = deflateSync(Buffer.concat([Buffer.from('{"packages":['), Buffer.alloc(MAX_JSON + 1, 0x20), Buffer.from("]}")]), { level: 9 });
    expect(bomb.length).toBeLessThan(100_000);
    const cases: Array<[Buffer, RegExp]> = [
      [bomb, /cargo-auditable: bin\/a: the \.dep-v0 data at offset 64 inflates to more than 16777216 bytes/],
      [deflateSync(Buffer.from('{"packages":{"name":"x"}}')), /the \.dep-v0 JSON has no packages array/],
      [deflateSync(Buffer.from('{"packages":[{"name":"x","version":"1","dependencies":[7]}]}')), /crate 0: dependencies are not indices into the packages array/],
      [deflateSync(Buffer.from('{"packages":[{"name":"x"}]}')), /crate 0: version is not a string/],
      [deflateSync(Buffer.from('{"packages":[{"name":"x","version":"1"}]')), /the \.dep-v0 data is not JSON/],
    ];
    for (const [data, message] of cases) {
      const err = await (await scanLayer({ "bin/a": tinyElf(data) })).scan().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ScannerError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it(`probes at most ${MAX_PROBES} zlib headers in a file made of them, and says so`, async () => {
    // A stored deflate block of "{xxxxxxx" after a zlib header, 16 bytes: plausible() passes it, the probe
    // inflates it and finds no JSON. 128 KiB of them are 8,192 headers.
    const one = Buffer.from([0x78, 0x01, 0x00, 8, 0, 0xf7, 0xff, 0x7b, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78]);
    expect(plausible(one, 0)).toBe(true);
    const headers = Buffer.concat(Array.from({ length: 8192 }, () => one));
    const err = await (await scanLayer({ "bin/a": tinyElf(headers) })).scan().then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: "SCAN_LIMIT", message: `cargo-auditable: bin/a: more than ${MAX_PROBES} places in it read as the start of zlib data: not searched further for the .dep-v0 section` });
    // A few hundred of them, then the real section: found.
    const data = deflateSync(Buffer.from('{"packages":[{"name":"x","version":"1"}]}'));
    const found = await (await scanLayer({ "bin/a": tinyElf(Buffer.concat([data, headers.subarray(0, 300 * 16)])) })).scan();
    expect(found.packages?.map((p) => p.name)).toEqual(["x"]);
  });
});
