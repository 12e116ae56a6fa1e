import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { EntryInfo, Scanner } from "../model/scanner.js";
import { LayerError } from "./errors.js";
import { CaptureBudget } from "./entries.js";
import { digestOf, gzip, makeTar, wantedFilesTar, zstd, zstdDeclaringWindow, type TarEntry } from "./testing.js";
import { walkLayer, type LayerWalkOptions } from "./walk.js";

/** A scanner that wants the paths it is given, and records what it was asked about. */
function wanting(paths: string[], maxFileSize?: number): Scanner & { asked: EntryInfo[] } {
  const asked: EntryInfo[] = [];
  return {
    name: "test", version: "1", kind: "package", maxFileSize, asked,
    wants: (e) => (asked.push({ ...e }), paths.includes(e.path)),
    scan: async () => ({}),
  };
}

async function walk(blob: Buffer, scanner: Scanner, extra: Partial<LayerWalkOptions> = {}) {
  return walkLayer(Readable.from([blob]), { digest: digestOf(blob), size: blob.length, scanners: [scanner], ...extra });
}

const statusFile = "Package: a\nStatus: install ok installed\nVersion: 1\n";

describe("walkLayer", () => {
  it("caps the bytes of wanted files held from one layer, all files together", async () => {
    // Ten wanted files of 100 KiB, each under its own cap: 1,000 KiB in all, over a 512 KiB layer budget.
    const tar = await wantedFilesTar(10, 100 * 1024);
    const paths = Array.from({ length: 10 }, (_, i) => `usr/lib/node_modules/p${i}/package.json`);
    await expect(walk(gzip(tar), wanting(paths), { limits: { maxCapturedBytes: 512 * 1024 } })).rejects.toMatchObject({
      code: "CAPTURED_TOO_LARGE",
      message: expect.stringMatching(/the files the scanners read from it exceed 524288 bytes in all \(at usr\/lib\/node_modules\/p5\/package\.json\)$/),
    });
    expect((await walk(gzip(tar), wanting(paths), { limits: { maxCapturedBytes: 1024 * 1024 } })).files.paths()).toHaveLength(10);
  });

  it("refuses a zstd layer whose frame declares a huge window, before the decoder allocates it", async () => {
    // A real zstd layer with its window descriptor rewritten to 2 GiB: 2.0 GiB RSS before the bound.
    const tar = await makeTar([{ name: "etc/os-release", content: "ID=debian\n" }]);
    const z = zstdDeclaringWindow(tar, 31);
    expect(z.length).toBeLessThan(1024);
    const before = process.memoryUsage().arrayBuffers;
    await expect(walk(z, wanting(["etc/os-release"]))).rejects.toMatchObject({
      code: "ZSTD_WINDOW_TOO_LARGE",
      message: expect.stringMatching(/refused: the layer: a zstd frame declares a window of 2147483648 bytes, more than the 134217728 accepted \(zstd's own default limit\)$/),
    });
    // Nothing near the window was allocated.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
    // 128 MiB, zstd's own default limit (what `zstd --long` writes), is read; a lower limit is configurable.
    expect((await walk(zstdDeclaringWindow(tar, 27), wanting(["etc/os-release"]))).files.paths()).toEqual(["etc/os-release"]);
    await expect(walk(zstd(tar), wanting(["etc/os-release"]), { limits: { maxZstdWindow: 1024 } })).rejects.toMatchObject({ code: "ZSTD_WINDOW_TOO_LARGE" });
    // The same layer as written is read.
    expect((await walk(zstd(tar), wanting(["etc/os-release"]))).files.paths()).toEqual(["etc/os-release"]);
  });

  it("stops a layer made only of wanted files at the layer's cap, at the header past it", async () => {
    // 64 files of 1 MiB each, every one under its own cap: 64 MiB to hold, from a gzip layer of ~70 KB.
    const blob = gzip(await wantedFilesTar(64, 1 << 20));
    expect(blob.length).toBeLessThan(128 * 1024);
    const paths = Array.from({ length: 64 }, (_, i) => `usr/lib/node_modules/p${i}/package.json`);
    await expect(walk(blob, wanting(paths), { limits: { maxCapturedBytes: 16 << 20 } })).rejects.toMatchObject({
      code: "CAPTURED_TOO_LARGE",
      message: expect.stringMatching(/exceed 16777216 bytes in all \(at usr\/lib\/node_modules\/p16\/package\.json\)$/),
    });
  });

  it("bounds the wanted files of a whole image, over its layers, with one CaptureBudget per scan", async () => {
    const paths = Array.from({ length: 8 }, (_, i) => `usr/lib/node_modules/p${i}/package.json`);
    const a = gzip(await wantedFilesTar(6, 100 * 1024));
    const b = gzip(await wantedFilesTar(6, 100 * 1024));
    const budget = new CaptureBudget(1000 * 1024);
    await walk(a, wanting(paths), { limits: { scanCapture: budget } });
    expect(budget.used).toBe(600 * 1024);
    await expect(walk(b, wanting(paths), { limits: { scanCapture: budget } })).rejects.toMatchObject({
      code: "CAPTURED_TOO_LARGE",
      message: expect.stringMatching(/the files the scanners read from this image's layers exceed 1024000 bytes in all \(at usr\/lib\/node_modules\/p4\/package\.json\)$/),
    });
    // The failed layer's bytes are given back: nothing of it is held.
    expect(budget.used).toBe(600 * 1024);
    // A layer whose walk fails later (a digest that does not match) gives back what it counted, too.
    const c = gzip(await wantedFilesTar(2, 100 * 1024));
    await expect(walkLayer(Readable.from([c]), { digest: digestOf(a), size: c.length, scanners: [wanting(paths)], limits: { scanCapture: budget } })).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(budget.used).toBe(600 * 1024);
  });

  it("keeps only wanted files, from gzip, zstd and plain tar alike", async () => {
    const tar = await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/os-release", content: "ID=debian\n" },
      { name: "usr/bin/big", content: Buffer.alloc(1 << 20) },
      { name: "./var/lib/dpkg/status", content: statusFile },
    ]);
    for (const blob of [tar, gzip(tar), zstd(tar)]) {
      const s = wanting(["etc/os-release", "var/lib/dpkg/status"]);
      const res = await walk(blob, s);
      expect(res.files.paths().sort()).toEqual(["etc/os-release", "var/lib/dpkg/status"]);
      expect(res.files.get("var/lib/dpkg/status")?.toString()).toBe(statusFile);
      expect(res.entries).toBe(4);
      expect(res.uncompressedBytes).toBe(tar.length);
      expect(res.compressedBytes).toBe(blob.length);
    }
  });

  it("streams a file to every scanner that consumes it, each stopping on its own", async () => {
    // An executable is both a possible Go program and a possible Rust one: both streaming scanners read it.
    const content = Buffer.alloc(300_000, 7);
    const tar = await makeTar([{ name: "usr/bin/app", content, mode: 0o755 }]);
    const streaming = (name: string, stopAfter: number): Scanner => ({
      name, version: "1", kind: "package",
      wants: (e) => e.path === "usr/bin/app",
      consume: () => {
        let n = 0;
        return { write: (c) => (n += c.length) < stopAfter, end: () => n };
      },
      scan: async () => ({}),
    });
    const chunks = Array.from({ length: Math.ceil(tar.length / 16384) }, (_, i) => tar.subarray(i * 16384, (i + 1) * 16384));
    const res = await walkLayer(Readable.from(chunks), { digest: digestOf(tar), scanners: [streaming("a", 1), streaming("b", Infinity)] });
    expect(res.files.consumed("b").get("usr/bin/app")).toBe(content.length);
    expect(res.files.consumed("a").get("usr/bin/app")).toBeGreaterThan(0);
    expect(res.files.consumed("a").get("usr/bin/app")).toBeLessThan(content.length);
    expect(res.files.paths()).toEqual([]);
  });

  it("names the compression it found", async () => {
    const tar = await makeTar([{ name: "a", content: "x" }]);
    expect((await walk(gzip(tar), wanting([]))).compression).toBe("gzip");
    expect((await walk(zstd(tar), wanting([]))).compression).toBe("zstd");
    expect((await walk(tar, wanting([]))).compression).toBe("none");
  });

  it("records whiteouts and opaque directories without treating them as files", async () => {
    const tar = await makeTar([
      { name: "var/lib/dpkg/.wh.status", content: "" },
      { name: "opt/app/.wh..wh..opq", content: "" },
      { name: ".wh.toplevel", content: "" },
    ]);
    const s = wanting([]);
    const res = await walk(gzip(tar), s);
    expect(res.whiteouts).toEqual(["var/lib/dpkg/status", "toplevel"]);
    expect(res.opaqueDirs).toEqual(["opt/app"]);
    expect(s.asked).toEqual([]);
  });

  it("follows symlinks and hard links to wanted files", async () => {
    const tar = await makeTar([
      { name: "etc/os-release", type: "symlink", linkname: "../usr/lib/os-release" },
      { name: "usr/lib/os-release", content: "ID=alpine\n" },
      { name: "lib/apk/db/installed", content: "P:musl\nV:1\n" },
      { name: "lib/apk/db/installed-copy", type: "link", linkname: "lib/apk/db/installed" },
      { name: "var/lib/rpm", type: "symlink", linkname: "/usr/lib/sysimage/rpm" },
      { name: "usr/lib/sysimage/rpm/rpmdb.sqlite", content: "SQLite format 3\0" },
    ]);
    const s = wanting(["etc/os-release", "lib/apk/db/installed", "lib/apk/db/installed-copy", "usr/lib/sysimage/rpm/rpmdb.sqlite"]);
    const res = await walk(gzip(tar), s);
    // The symlink came first: its target was wanted because of it, even though no scanner named the target.
    expect(res.files.get("etc/os-release")?.toString()).toBe("ID=alpine\n");
    expect(res.files.get("lib/apk/db/installed-copy")?.toString()).toBe("P:musl\nV:1\n");
    // A directory symlink resolves on lookup.
    expect(res.files.get("var/lib/rpm/rpmdb.sqlite")?.toString()).toBe("SQLite format 3\0");
    expect(res.files.get("missing")).toBeUndefined();
  });

  it("reads PAX and GNU long names", async () => {
    const long = `${"d".repeat(120)}/${"e".repeat(120)}/var/lib/dpkg/status`;
    const pax = await makeTar([{ name: long, content: statusFile }]);
    expect((await walk(gzip(pax), wanting([long]))).files.get(long)?.toString()).toBe(statusFile);

    const dir = mkdtempSync(join(tmpdir(), "gnu-tar-"));
    try {
      const nested = join(dir, "root", "d".repeat(120), "e".repeat(120));
      mkdirSync(nested, { recursive: true });
      writeFileSync(join(nested, "f"), "gnu");
      const gnu = execFileSync("tar", ["--format=gnu", "-cf", "-", "-C", join(dir, "root"), "."]);
      expect(gnu.includes(Buffer.from("././@LongLink"))).toBe(true);
      const want = `${"d".repeat(120)}/${"e".repeat(120)}/f`;
      expect((await walk(gzip(gnu), wanting([want]))).files.get(want)?.toString()).toBe("gnu");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ignores entries that climb out of the root and never asks scanners about them", async () => {
    const tar = await makeTar([
      { name: "../../etc/passwd", content: "evil" },
      { name: "/etc/os-release", content: "ID=ok\n" },
      { name: "a/../../b", content: "evil" },
    ]);
    const s = wanting(["etc/passwd", "etc/os-release", "b"]);
    const res = await walk(gzip(tar), s);
    expect(res.files.paths()).toEqual(["etc/os-release"]);
    expect(s.asked.map((e) => e.path)).toEqual(["etc/os-release"]);
  });

  it("keeps the last of two entries with the same path", async () => {
    const tar = await makeTar([{ name: "etc/os-release", content: "ID=one\n" }, { name: "etc/os-release", content: "ID=two\n" }]);
    expect((await walk(tar, wanting(["etc/os-release"]))).files.get("etc/os-release")?.toString()).toBe("ID=two\n");
  });

  it("refuses a blob whose digest or size differs from its descriptor", async () => {
    const blob = gzip(await makeTar([{ name: "a", content: "x" }]));
    const other = digestOf(Buffer.from("something else"));
    await expect(walk(blob, wanting([]), { digest: other })).rejects.toMatchObject({ code: "DIGEST_MISMATCH", message: expect.stringContaining(other) });
    await expect(walk(blob, wanting([]), { size: blob.length - 1 })).rejects.toMatchObject({ code: "SIZE_MISMATCH" });
    await expect(walk(blob, wanting([]), { size: blob.length + 1 })).rejects.toMatchObject({ code: "SIZE_MISMATCH" });
  });

  it("stops a decompression bomb by ratio and by total size", async () => {
    const tar = await makeTar([{ name: "zeros", content: Buffer.alloc(8 << 20) }]);
    const blob = gzip(tar);
    expect(tar.length / blob.length).toBeGreaterThan(100);
    await expect(walk(blob, wanting([]), { limits: { maxExpansionRatio: 100, expansionCheckAfterBytes: 1 << 20 } })).rejects.toMatchObject({ code: "EXPANSION_RATIO" });
    await expect(walk(blob, wanting([]), { limits: { maxDecompressedBytes: 4 << 20 } })).rejects.toMatchObject({ code: "DECOMPRESSED_TOO_LARGE" });
  });

  it("refuses a wanted file over the scanner's limit before reading it", async () => {
    const tar = await makeTar([{ name: "var/lib/rpm/Packages", content: Buffer.alloc(4096) }]);
    const err = await walk(tar, wanting(["var/lib/rpm/Packages"], 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LayerError);
    expect(err).toMatchObject({ code: "FILE_TOO_LARGE", message: expect.stringContaining("var/lib/rpm/Packages is 4096 bytes") });
  });

  it("gives clear errors for corrupt compression, a lying media type, and a non-tar", async () => {
    const blob = gzip(await makeTar([{ name: "a", content: "x".repeat(10000) }]));
    const corrupt = Buffer.from(blob);
    corrupt.fill(0x41, 20, 40);
    await expect(walk(corrupt, wanting([]))).rejects.toMatchObject({ code: "BAD_COMPRESSION" });
    const tar = await makeTar([{ name: "a", content: "x" }]);
    await expect(walk(tar, wanting([]), { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" })).rejects.toMatchObject({ code: "BAD_COMPRESSION" });
    await expect(walk(gzip(Buffer.from("this is not a tar archive at all, just some text that goes on ".repeat(20))), wanting([]))).rejects.toMatchObject({ code: "BAD_TAR" });
  });

  it("refuses an archive cut off in the middle of an entry, and ignores what follows the end marker", async () => {
    const tar = await makeTar([{ name: "var/lib/dpkg/status", content: "x".repeat(5000) }]);
    const cut = tar.subarray(0, 512 + 1000);
    await expect(walk(cut, wanting(["var/lib/dpkg/status"]))).rejects.toMatchObject({ code: "BAD_TAR", message: expect.stringContaining("truncated") });
    const trailing = Buffer.concat([tar, Buffer.from("trailing junk after the end-of-archive blocks")]);
    expect((await walk(trailing, wanting(["var/lib/dpkg/status"]))).files.get("var/lib/dpkg/status")?.length).toBe(5000);
  });

  it("accepts an empty layer", async () => {
    const empty = await makeTar([]);
    const res = await walk(gzip(empty), wanting([]));
    expect(res.entries).toBe(0);
  });
});

export type { TarEntry };
