// The zstd:chunked and eStargz readers against layers their producers write (skopeo; containerd's estargz
// package through test/env/estargz; nothing here writes either format): a hand-made tar with the cases a
// table of contents must carry (whiteouts, an opaque directory, a symlink to a wanted file, a hard link, an
// executable cut in pieces) walked partially gives what the tar walk gives; and the tables' own checks refuse
// what a hostile producer could write.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { defaultScanners } from "../../scanners/index.js";
import { digestOf, gzip, makeTar } from "../testing.js";
import { walkLayer } from "../walk.js";
import { walkPartial } from "./index.js";
import { expectSameAsFullWalk } from "./testing.js";
import { estargzEntries, parseFooter } from "./estargz.js";
import { tocEntries } from "./zstd-chunked.js";

const dir = mkdtempSync(join(tmpdir(), "toc-unit-"));
const fixture = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Format = "zstd:chunked" | "estargz";
const estargzLayout = join(process.env.PORTCULLIS_TOOLS ?? "/var/cache/portcullis/tools", "bin", "estargz-layout");

/**
 * An OCI layout of one gzip layer, converted by its format's producer (skopeo for zstd:chunked; for eStargz
 * test/env/estargz with 64 KiB pieces); returns the converted layer's descriptor and blob path.
 */
function convertedLayer(tar: Buffer, format: Format): { desc: { digest: string; size: number; mediaType: string; annotations: Record<string, string> }; path: string } {
  const src = join(dir, "src");
  rmSync(src, { recursive: true, force: true });
  mkdirSync(join(src, "blobs/sha256"), { recursive: true });
  const put = (b: Buffer) => (writeFileSync(join(src, "blobs/sha256", digestOf(b).slice(7)), b), { digest: digestOf(b), size: b.length });
  const layer = gzip(tar);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [digestOf(tar)] } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", ...put(config) }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...put(layer) }] }));
  writeFileSync(join(src, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...put(manifest), annotations: { "org.opencontainers.image.ref.name": "t" } }] }));
  writeFileSync(join(src, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const dest = join(dir, "dest");
  rmSync(dest, { recursive: true, force: true });
  if (format === "zstd:chunked") execFileSync("skopeo", ["copy", "--quiet", "--dest-compress", "--dest-compress-format", "zstd:chunked", `oci:${src}:t`, `oci:${dest}:t`]);
  else execFileSync(estargzLayout, [src, "t", dest, String(64 * 1024)]);
  const index = JSON.parse(readFileSync(join(dest, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  const m = JSON.parse(readFileSync(join(dest, "blobs/sha256", index.manifests[0]!.digest.slice(7)), "utf8")) as { layers: Array<{ digest: string; size: number; mediaType: string; annotations: Record<string, string> }> };
  const desc = m.layers[0]!;
  return { desc, path: join(dest, "blobs/sha256", desc.digest.slice(7)) };
}

const status = "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: b\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n";
// Not ELF, big enough for the Go scanner to want it, random enough that skopeo cuts it in pieces; the same
// bytes every run (sha256 in counter mode), so where skopeo's rolling checksum cuts, and so the first piece's
// size, does not change between runs (with /dev/urandom one run in eight cut a first piece over half the layer).
const noise = (i: number) => Buffer.concat(Array.from({ length: 256 }, (_, j) => createHash("sha256").update(`${i}:${j}`).digest()));
const bigExecutable = Buffer.concat(Array.from({ length: 64 }, (_, i) => noise(i).map((b) => (i % 2 ? b : b & 0x0f))));

describe.each(["zstd:chunked", "estargz"] as const)("%s partial walk", (format) => {
  it("gives the scanners what the tar walk gives them, from a layer its producer wrote", async () => {
    const tar = await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/os-release", content: 'ID=debian\nVERSION_ID="12"\n' },
      { name: "usr/lib/os-release", type: "symlink", linkname: "../../etc/os-release" },
      { name: "var/lib/dpkg/status", content: status },
      { name: "var/lib/dpkg/status-old", type: "link", linkname: "var/lib/dpkg/status" },
      { name: "usr/bin/tool", content: bigExecutable, mode: 0o755 },
      // Real programs the executable scanners read only parts of: a Go 1.15 program (its build info held
      // until the pointers resolve), a later one with a replaced module, a Rust program with cargo-auditable's
      // .dep-v0, and this machine's ls (neither).
      { name: "usr/bin/go115", content: gunzipSync(readFileSync(fixture("gobin/trivy-test.elf.gz"))), mode: 0o755 },
      { name: "usr/bin/gomod", content: gunzipSync(readFileSync(fixture("gobin/scalibr-binary_with_module_replacement-linux-amd64.gz"))), mode: 0o755 },
      { name: "usr/bin/rusty", content: readFileSync(fixture("cargo/trivy-workspace.elf")), mode: 0o755 },
      { name: "usr/bin/ls", content: readFileSync("/bin/ls"), mode: 0o755 },
      { name: "usr/share/.wh.doc", content: "" },
      { name: "opt/app/.wh..wh..opq", content: "" },
      { name: "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", content: "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n" },
    ]);
    const { desc, path } = convertedLayer(tar, format);
    if (format === "zstd:chunked") expect(desc.annotations["io.containers.zstd-chunked.manifest-position"]).toMatch(/^\d+:\d+:\d+:1$/);
    else expect(desc.annotations["containerd.io/snapshot/stargz/toc.digest"]).toMatch(/^sha256:[0-9a-f]{64}$/);
    const blob = readFileSync(path);
    const asked: Array<[number, number]> = [];
    const reader = { read: async (s: number, e: number) => (asked.push([s, e]), blob.subarray(s, e)) };
    const partial = await walkPartial(desc, reader, { scanners: defaultScanners(), tuning: { maxFraction: 2 } });
    expect(partial.format).toBe(format);
    const full = await walkLayer(createReadStream(path), { digest: desc.digest, size: desc.size, mediaType: desc.mediaType, scanners: defaultScanners() });
    await expectSameAsFullWalk(partial, full, asked, desc.size);
    expect(partial.files.paths().length).toBeGreaterThanOrEqual(3);
    expect(partial.files.get("usr/lib/os-release")?.toString()).toContain("ID=debian");
  }, 120_000);

  it("fetches of an ELF program that is neither Go nor Rust only its headers, writable data and what follows its loaded part (under a fifth of the layer)", async () => {
    // python3.11: 2.8 MB of code and 2.5 MB of read-only data the scanners skip, 1.3 MB of data the Go
    // scanner searches for a build info; and a file that is not ELF (its first piece only).
    const python = readFileSync("/usr/bin/python3.11");
    const tar = await makeTar([{ name: "usr/bin/python3.11", content: python, mode: 0o755 }, { name: "usr/bin/tool", content: bigExecutable, mode: 0o755 }]);
    const { desc, path } = convertedLayer(tar, format);
    const blob = readFileSync(path);
    const partial = await walkPartial(desc, { read: async (s: number, e: number) => blob.subarray(s, e) }, { scanners: defaultScanners(), tuning: { maxFraction: 2 } });
    const full = await walkLayer(createReadStream(path), { digest: desc.digest, size: desc.size, mediaType: desc.mediaType, scanners: defaultScanners() });
    for (const s of defaultScanners()) expect(await s.scan(partial.files), s.name).toEqual(await s.scan(full.files));
    expect(partial.compressedBytes).toBeLessThan(desc.size * 0.2);
  }, 120_000);

  it("fetches each program's end with its start (tailBytes): programs in a row cost fewer requests, for the same answer", async () => {
    // Programs back to back: a program's end (its section headers, for the Rust scanner) and the next one's
    // first piece are neighbours in the blob, so with the end fetched in the first round they merge.
    const programs = ["ls", "cp", "mv", "cat", "chmod", "date", "dd", "df"].map((p) => ({ name: `usr/bin/${p}`, content: readFileSync(`/bin/${p}`), mode: 0o755 }));
    const { desc, path } = convertedLayer(await makeTar(programs), format);
    const blob = readFileSync(path);
    const walk = async (tailBytes: number) => {
      const asked: Array<[number, number]> = [];
      const w = await walkPartial(desc, { read: async (s: number, e: number) => (asked.push([s, e]), blob.subarray(s, e)) }, { scanners: defaultScanners(), tuning: { maxFraction: 2, maxGap: 0, tailBytes } });
      return { w, asked };
    };
    const without = await walk(0);
    const withTail = await walk(64 * 1024);
    // Rounds of 16 KiB: the ends fetched ahead and not yet fed count against the next rounds, same answer.
    const asked: Array<[number, number]> = [];
    const small = await walkPartial(desc, { read: async (s: number, e: number) => (asked.push([s, e]), blob.subarray(s, e)) }, { scanners: defaultScanners(), tuning: { maxFraction: 2, maxGap: 0, tailBytes: 64 * 1024, roundBytes: 16 * 1024 } });
    const full = await walkLayer(createReadStream(path), { digest: desc.digest, size: desc.size, mediaType: desc.mediaType, scanners: defaultScanners() });
    for (const s of defaultScanners()) {
      expect(await s.scan(withTail.w.files), s.name).toEqual(await s.scan(full.files));
      expect(await s.scan(small.files), s.name).toEqual(await s.scan(full.files));
      expect(await s.scan(without.w.files), s.name).toEqual(await s.scan(full.files));
    }
    expect(withTail.asked.every(([s, e]) => e > s && e <= desc.size)).toBe(true);
    // zstd:chunked cuts programs in pieces of a few KiB: every end fits; eStargz's 64 KiB pieces here: some.
    if (format === "zstd:chunked") expect(withTail.w.requests).toBeLessThan(without.w.requests * 0.75);
    else expect(withTail.w.requests).toBeLessThanOrEqual(without.w.requests);
  }, 120_000);
});

describe("zstd:chunked tables of contents", () => {
  it("refuses a table of contents a hostile producer could write", async () => {
    const file = (o: Record<string, unknown> = {}) => ({ type: "reg", name: "a", size: 10, digest: `sha256:${"a".repeat(64)}`, offset: 100, endOffset: 200, ...o });
    const piece = (o: Record<string, unknown> = {}) => ({ type: "chunk", name: "a", offset: 150, chunkOffset: 4, chunkSize: 6, chunkDigest: `sha256:${"b".repeat(64)}`, ...o });
    const t = (raws: unknown[]) => tocEntries("sha256:x", raws, 1000);
    await expect(t([file({ endOffset: 2000 })])).rejects.toThrow(/outside the file data/);
    await expect(t([file({ offset: 200 })])).rejects.toThrow(/outside the file data/);
    await expect(t([file({ digest: undefined })])).rejects.toThrow(/has no digest or range/);
    await expect(t([piece()])).rejects.toThrow(/does not follow its file/);
    await expect(t([file({ chunkSize: 4, chunkDigest: `sha256:${"c".repeat(64)}` }), piece({ offset: 90 })])).rejects.toThrow(/out of order/);
    await expect(t([file({ chunkSize: 4, chunkDigest: `sha256:${"c".repeat(64)}` }), piece({ chunkSize: 5 })])).rejects.toThrow(/add up to 9 bytes, not its 10/);
    await expect(t([file({ chunkSize: 4 }), piece()])).rejects.toThrow(/has no digest/);
    await expect(t([file({ chunkSize: 4, chunkDigest: `sha256:${"c".repeat(64)}` }), piece({ chunkType: "holes" })])).rejects.toThrow(/piece type "holes" is not read/);
    // Each field's type and range (checked by hand: parseRawEntry), named with the entry.
    await expect(t([file(), file({ name: "b", offset: -1 })])).rejects.toThrow(/entry 1: offset: not a whole number/);
    await expect(t([file({ size: 1.5 })])).rejects.toThrow(/entry 0: size: not a whole number/);
    await expect(t([file({ endOffset: 2 ** 53 })])).rejects.toThrow(/endOffset: not a whole number/);
    await expect(t([file({ mode: "755" })])).rejects.toThrow(/mode: not a whole number/);
    await expect(t([file({ name: "" })])).rejects.toThrow(/name: not a string of 1 to 4096/);
    await expect(t([file({ name: "x".repeat(4097) })])).rejects.toThrow(/name: not a string of 1 to 4096/);
    await expect(t([file({ linkName: 7 })])).rejects.toThrow(/linkName: not a string/);
    await expect(t([file({ digest: `sha256:${"A".repeat(64)}` })])).rejects.toThrow(/digest: not sha256/);
    await expect(t([file({ type: "socket" })])).rejects.toThrow(/type: not one of/);
    await expect(t([file({ chunkType: 1 })])).rejects.toThrow(/chunkType: not a string/);
    await expect(t([null])).rejects.toThrow(/entry 0: \(entry\): not an object/);
    await expect(t([[file()]])).rejects.toThrow(/not an object/);
    const ok = await tocEntries("sha256:x", [file({ chunkSize: 4, chunkDigest: `sha256:${"c".repeat(64)}` }), piece({ chunkType: "zeros" })], 1000);
    expect(ok[0]!.content!.chunks.map((c) => [c.offset, c.end, c.at, c.size])).toEqual([[100, 150, 0, 4], [150, 200, 4, 6]]);
  });
});

describe("eStargz tables of contents", () => {
  it("reads the table's offset only from eStargz's 51-byte footer", () => {
    // The footer containerd's writer puts at the end: an empty gzip member whose extra field says where the table is.
    const footer = (sub: string, o: { flags?: number; xlen?: number; id?: string } = {}) => {
      const b = Buffer.alloc(51);
      b.set([0x1f, 0x8b, 8, o.flags ?? 4, 0, 0, 0, 0, 0, 0xff]);
      b.writeUInt16LE(o.xlen ?? 26, 10);
      b.write(o.id ?? "SG", 12, "latin1");
      b.writeUInt16LE(22, 14);
      b.write(sub, 16, "latin1");
      return b;
    };
    expect(parseFooter("sha256:x", footer("00000000000003e8STARGZ"), 5000)).toBe(1000);
    expect(() => parseFooter("sha256:x", footer("00000000000003e8STARGZ"), 1000)).toThrow(/outside the 1000-byte blob/);
    expect(() => parseFooter("sha256:x", footer("0000000000000000STARGZ"), 5000)).toThrow(/outside/);
    expect(() => parseFooter("sha256:x", footer("zz000000000003e8STARGZ"), 5000)).toThrow(/not 16 hex digits and STARGZ/);
    expect(() => parseFooter("sha256:x", footer("00000000000003e8STARGX"), 5000)).toThrow(/not 16 hex digits and STARGZ/);
    expect(() => parseFooter("sha256:x", footer("00000000000003e8STARGZ", { flags: 0 }), 5000)).toThrow(/no extra field/);
    expect(() => parseFooter("sha256:x", footer("00000000000003e8STARGZ", { id: "XY" }), 5000)).toThrow(/'SG' subfield/);
    expect(() => parseFooter("sha256:x", footer("00000000000003e8STARGZ").subarray(1), 5000)).toThrow(/50 bytes, not 51/);
  });

  it("refuses a table of contents a hostile producer could write", async () => {
    const d = (c: string) => `sha256:${c.repeat(64)}`;
    const file = (o: Record<string, unknown> = {}) => ({ type: "reg", name: "a", size: 10, digest: d("a"), offset: 100, ...o });
    const piece = (o: Record<string, unknown> = {}) => ({ type: "chunk", name: "a", offset: 150, chunkOffset: 4, chunkDigest: d("b"), ...o });
    const t = (raws: unknown[]) => estargzEntries("sha256:x", raws, 1000);
    await expect(t([file({ offset: 1000 })])).rejects.toThrow(/before the table \(1000\)/);
    await expect(t([file(), file({ name: "b", offset: 100 })])).rejects.toThrow(/offset 100 is not after the previous piece/);
    await expect(t([file({ digest: undefined })])).rejects.toThrow(/has no digest or offset/);
    await expect(t([piece()])).rejects.toThrow(/does not follow its file/);
    await expect(t([file({ chunkSize: 4, chunkDigest: d("c") }), piece({ chunkOffset: 5 })])).rejects.toThrow(/starts at 5, not 4/);
    await expect(t([file({ chunkSize: 4, chunkDigest: d("c") }), piece({ chunkSize: 5 })])).rejects.toThrow(/add up to 9 bytes, not its 10/);
    await expect(t([file({ chunkSize: 4, chunkDigest: d("c") }), piece({ chunkSize: 7 })])).rejects.toThrow(/lies outside its 10-byte file/);
    await expect(t([file({ chunkSize: 4 }), piece()])).rejects.toThrow(/first piece of a has no digest/);
    await expect(t([file({ chunkSize: 4, chunkDigest: d("c") }), piece({ chunkDigest: undefined })])).rejects.toThrow(/without offset, position or digest/);
    await expect(t([{ type: "dir", name: "d", offset: 300 }])).rejects.toThrow(/dir entry d has content/);
    // Pieces end where the next begins; the last where the table does; the headers in between are slack.
    const ok = await estargzEntries("sha256:x", [file({ chunkSize: 4, chunkDigest: d("c") }), piece(), { type: "dir", name: "d" }, { type: "symlink", name: "l", linkName: "a" }, file({ name: "b", size: 3, offset: 400 })], 1000);
    expect(ok.map((e) => e.name)).toEqual(["a", "d", "l", "b"]);
    expect(ok[0]!.content!.chunks.map((c) => [c.offset, c.end, c.at, c.size, c.digest])).toEqual([[100, 150, 0, 4, d("c")], [150, 400, 4, 6, d("b")]]);
    expect(ok[0]!.content!.end).toBe(400);
    expect(ok[0]!.content!.slack).toBeGreaterThan(2 * 2048);
    expect(ok[3]!.content!.chunks).toEqual([{ offset: 400, end: 1000, at: 0, size: 3 }]);
  });
});
