// SOCI zTOCs: no SOCI producer is packaged here, so the zTOCs are built from real tools' words (test/env/soci.ts:
// gztool's checkpoints, Python's tarfile's entries, flatc's encoding) over gzip files the `gzip` command wrote.
// Inflating from a checkpoint, bit offsets included, is checked against gzip's own output; a partial walk
// against the tar walk; and the zTOC's checks against what a hostile producer or registry could do.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { flatcZtoc, gztoolCheckpoints, ztocJson, ztocParts } from "../../../test/env/soci.js";
import { defaultScanners } from "../../scanners/index.js";
import { digestOf, makeTar } from "../testing.js";
import { walkLayer } from "../walk.js";
import { inflateFrom, primedStream } from "./checkpoint.js";
import { walkPartial } from "./index.js";
import { expectSameAsFullWalk } from "./testing.js";
import { parseZtoc, tarHeaderMismatch } from "./soci.js";

const dir = mkdtempSync(join(tmpdir(), "soci-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fixture = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));
const GZIP_MEDIA = "application/vnd.oci.image.layer.v1.tar+gzip";

/** `data` gzip'd by the gzip command, as a file. */
function gzipFile(data: Buffer, name: string, level = 6): string {
  const raw = join(dir, name);
  writeFileSync(raw, data);
  execFileSync("gzip", [`-${level}`, "-n", "-f", raw]);
  return `${raw}.gz`;
}

/** Deterministic bytes: hex text (deflate's Huffman blocks) and hash output (stored blocks), in stretches. */
function mixed(size: number, seed: string): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const h = createHash("sha256").update(`${seed}:${i}`).digest();
    const piece = i % 5 === 4 ? Buffer.concat(Array.from({ length: 512 }, (_, j) => createHash("sha256").update(`${seed}:${i}:${j}`).digest())) : Buffer.from(Array.from({ length: 256 }, (_, j) => `${h.toString("hex")} line ${i}.${j % (h[0]! + 1)}\n`).join(""));
    parts.push(piece);
    n += piece.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

describe("inflating from a checkpoint", () => {
  it("gives gzip's own bytes from every checkpoint gztool writes, whatever the bit offset", async () => {
    const seen = new Set<number>();
    for (const level of [1, 6, 9]) {
      const path = gzipFile(mixed(24 * 1024 * 1024, `l${level}`), `mixed-${level}`, level);
      const blob = readFileSync(path);
      const plain = gunzipSync(blob);
      const cps = await gztoolCheckpoints(path, 1);
      expect(cps.length).toBeGreaterThan(10);
      for (let i = 0; i < cps.length; i++) {
        const cp = cps[i]!;
        const next = cps[i + 1];
        const data = blob.subarray(cp.in - (cp.bits ? 1 : 0), next ? next.in : blob.length);
        const got = await inflateFrom(cp, data, next ? { exact: next.out - cp.out, max: 64 << 20 } : { max: 64 << 20 });
        expect(got.equals(plain.subarray(cp.out, next ? next.out : plain.length)), `level ${level}, checkpoint ${i} (bits ${cp.bits})`).toBe(true);
        seen.add(cp.bits);
      }
    }
    // Every leftover-bit count, each needing its own prefix of empty blocks (odd ones a dynamic block).
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  }, 120_000);

  it("keeps later byte boundaries where they were (a stored block after the checkpoint still decodes)", () => {
    for (let bits = 1; bits <= 7; bits++) {
      const data = Buffer.from([0xa5, 1, 2, 3]);
      const primed = primedStream(data, bits);
      // The original byte's high `bits` bits end the prefix's last byte; the rest follows byte for byte.
      expect(primed[primed.length - 4]! >> (8 - bits)).toBe(0xa5 >> (8 - bits));
      expect([...primed.subarray(-3)]).toEqual([1, 2, 3]);
    }
  });

  it("refuses a span that inflates short of its checkpoint's successor", async () => {
    const path = gzipFile(mixed(4 * 1024 * 1024, "short"), "short");
    const blob = readFileSync(path);
    const cps = await gztoolCheckpoints(path, 1);
    const [a, b] = [cps[1]!, cps[2]!];
    await expect(inflateFrom(a, blob.subarray(a.in - (a.bits ? 1 : 0), b.in - 100), { exact: b.out - a.out, max: 64 << 20 })).rejects.toThrow(/gave \d+ bytes, not/);
  });
});

const status = "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: b\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n";
const statusOld = status.replace("Version: 2", "Version: 1");

/** A layer: the gzip'd tar, its descriptor with a zTOC from gztool/tarfile/flatc, and a reader of its bytes. */
async function sociLayer(tar: Buffer, name: string, lie?: (json: ReturnType<typeof ztocJson>) => void) {
  const path = gzipFile(tar, name);
  const blob = readFileSync(path);
  const json = ztocJson(await ztocParts(path, 1));
  lie?.(json);
  const ztoc = await flatcZtoc(json);
  const desc = { digest: digestOf(blob), size: blob.length, mediaType: GZIP_MEDIA, soci: { index: `sha256:${"1".repeat(64)}`, ztoc: digestOf(ztoc), bytes: ztoc } };
  return { path, blob, json, ztoc, desc };
}

describe("SOCI partial walk", () => {
  it("gives the scanners what the tar walk gives them, whiteouts, opaque directories and links included", async () => {
    const python = readFileSync("/usr/bin/python3.11");
    const tar = await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/os-release", content: 'ID=debian\nVERSION_ID="12"\n' },
      { name: "usr/lib/os-release", type: "symlink", linkname: "../../etc/os-release" },
      { name: "usr/bin/python3.11", content: python, mode: 0o755 },
      { name: "var/lib/dpkg/status", content: status },
      { name: "var/lib/dpkg/status-old", type: "link", linkname: "var/lib/dpkg/status" },
      { name: "usr/bin/go115", content: gunzipSync(readFileSync(fixture("gobin/trivy-test.elf.gz"))), mode: 0o755 },
      { name: "usr/bin/gomod", content: gunzipSync(readFileSync(fixture("gobin/scalibr-binary_with_module_replacement-linux-amd64.gz"))), mode: 0o755 },
      { name: "usr/bin/rusty", content: readFileSync(fixture("cargo/trivy-workspace.elf")), mode: 0o755 },
      { name: "usr/share/filler", content: mixed(3 * 1024 * 1024, "filler") },
      { name: "usr/bin/ls", content: readFileSync("/bin/ls"), mode: 0o755 },
      { name: "usr/share/.wh.doc", content: "" },
      { name: "opt/app/.wh..wh..opq", content: "" },
      { name: `usr/lib/python3/dist-packages/${"long-".repeat(30)}six-1.16.0.dist-info/METADATA`, content: "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n" },
    ]);
    const { desc, blob } = await sociLayer(tar, "walk.tar");
    const asked: Array<[number, number]> = [];
    const reader = { read: async (s: number, e: number) => (asked.push([s, e]), blob.subarray(s, e)) };
    const partial = await walkPartial(desc, reader, { scanners: defaultScanners(), tuning: { maxFraction: 2 } });
    expect(partial.format).toBe("soci");
    expect(partial.compression).toBe("gzip");
    const full = await walkLayer(createReadStream(join(dir, "walk.tar.gz")), { digest: desc.digest, size: desc.size, mediaType: GZIP_MEDIA, scanners: defaultScanners() });
    await expectSameAsFullWalk(partial, full, asked, desc.size);
    expect(partial.files.paths()).toEqual(expect.arrayContaining(["var/lib/dpkg/status", "etc/os-release"]));
    // The filler's spans are never fetched, and no span twice (pieces of a span the decoder still holds are
    // not fetched again; neighbouring spans share a byte when the later one starts mid-byte).
    expect(partial.compressedBytes).toBeLessThan(blob.length);
    const sorted = asked.slice().sort((x, y) => x[0] - y[0]);
    const overlap = sorted.slice(1).reduce((n, [s], i) => n + Math.max(0, sorted[i]![1] - s), 0);
    expect(overlap).toBeLessThanOrEqual(asked.length);
  }, 120_000);

  it("refuses a span whose bytes differ from the zTOC's digest (a registry serving other bytes)", async () => {
    const tar = await makeTar([{ name: "usr/share/filler", content: mixed(2 * 1024 * 1024, "f2") }, { name: "var/lib/dpkg/status", content: status }]);
    const { desc, blob, json } = await sociLayer(tar, "tampered.tar");
    const at = (json.toc.metadata.find((m) => m.name === "var/lib/dpkg/status")!.uncompressed_offset as number);
    expect(at).toBeGreaterThan(2 * 1024 * 1024);
    const bad = Buffer.from(blob);
    bad[bad.length - 40] = bad[bad.length - 40]! ^ 0x55;
    await expect(walkPartial(desc, { read: async (s: number, e: number) => bad.subarray(s, e) }, { scanners: defaultScanners(), tuning: { maxFraction: 2 } })).rejects.toThrow(/span \d+ \(bytes \d+-\d+\) has digest sha256:[0-9a-f]{64}, but the zTOC says/);
  }, 60_000);

  it("refuses a zTOC that gives a file another entry's content (the tar header before it names the other)", async () => {
    const tar = await makeTar([{ name: "var/lib/dpkg/status-old", content: statusOld }, { name: "var/lib/dpkg/status", content: status }]);
    const { desc, blob } = await sociLayer(tar, "lie.tar", (json) => {
      const m = json.toc.metadata;
      const old = m.find((x) => x.name === "var/lib/dpkg/status-old")!;
      const cur = m.find((x) => x.name === "var/lib/dpkg/status")!;
      // status at status-old's bytes (same length), and status-old out of the way
      Object.assign(cur, { uncompressed_offset: old.uncompressed_offset });
      Object.assign(old, { uncompressed_size: 0 });
      m.splice(m.indexOf(cur), 1);
      m.splice(m.indexOf(old) + 1, 0, cur);
    });
    await expect(walkPartial(desc, { read: async (s: number, e: number) => blob.subarray(s, e) }, { scanners: defaultScanners(), tuning: { maxFraction: 2 } })).rejects.toThrow(/the tar header before the content the zTOC gives var\/lib\/dpkg\/status: it names "var\/lib\/dpkg\/status-old"/);
  }, 60_000);

  it("refuses zTOCs a hostile producer could write", async () => {
    const tar = await makeTar([{ name: "etc/os-release", content: "ID=debian\n" }, { name: "usr/share/filler", content: mixed(1536 * 1024, "f3") }, { name: "var/lib/dpkg/status", content: status }]);
    const { desc, json } = await sociLayer(tar, "hostile.tar");
    const layer = { digest: desc.digest, size: desc.size };
    const variant = async (change: (j: ReturnType<typeof ztocJson>) => void) => {
      const j = structuredClone(json);
      change(j);
      return parseZtoc(layer, await flatcZtoc(j));
    };
    const ok = await parseZtoc(layer, desc.soci.bytes);
    expect(ok.checkpoints.length).toBeGreaterThan(1);
    expect(ok.files.map((f) => f.name)).toEqual(["etc/os-release", "usr/share/filler", "var/lib/dpkg/status"]);
    await expect(parseZtoc(layer, desc.soci.bytes.subarray(0, 200))).rejects.toThrow(/SOCI zTOC: .*(outside|past)/);
    await expect(parseZtoc({ ...layer, size: layer.size + 1 }, desc.soci.bytes)).rejects.toThrow(/made for a blob of \d+ bytes, but the layer has/);
    await expect(variant((j) => (j.version = "1.0"))).rejects.toThrow(/version "1.0" is not read/);
    await expect(variant((j) => (j.compression_info.span_digests as string[]).pop())).rejects.toThrow(/span digests for \d+ spans/);
    await expect(variant((j) => (j.compression_info.compression_algorithm = "Uncompressed"))).rejects.toThrow(/compression algorithm 2 is not gzip/);
    await expect(variant((j) => (j.toc.metadata[0]!.type = "sock"))).rejects.toThrow(/has type "sock"/);
    await expect(variant((j) => (j.toc.metadata[2]!.uncompressed_offset = 1024))).rejects.toThrow(/is not after the previous content/);
    await expect(variant((j) => (j.toc.metadata[2]!.uncompressed_size = 1e9))).rejects.toThrow(/inside the \d+-byte tar/);
    await expect(variant((j) => {
      // the second checkpoint's compressed offset moved before the first's
      const blob = Buffer.from(j.compression_info.checkpoints as number[]);
      blob.writeBigInt64LE(1n, 12 + 17 + 32768);
      j.compression_info.checkpoints = [...blob];
    })).rejects.toThrow(/checkpoint 1 \(1\/\d+\) is not after the one before it/);
    await expect(variant((j) => (j.compression_info.checkpoints = (j.compression_info.checkpoints as number[]).slice(0, -1)))).rejects.toThrow(/cannot hold \d+ checkpoints/);
    // A version 1 checkpoint blob leaves the first checkpoint out (it is at byte 10, out 0: gzip -n's header).
    const v1 = await variant((j) => {
      const blob = Buffer.from(j.compression_info.checkpoints as number[]);
      const first = blob.subarray(12, 12 + 17 + 32768);
      expect([Number(first.readBigInt64LE(0)), Number(first.readBigInt64LE(8)), first[16]]).toEqual([10, 0, 0]);
      j.compression_info.checkpoints = [...Buffer.concat([blob.subarray(0, 12), blob.subarray(12 + 17 + 32768)])];
    });
    expect(v1.checkpoints.map((c) => [c.in, c.out, c.bits])).toEqual(ok.checkpoints.map((c) => [c.in, c.out, c.bits]));
    // The index's own failure, carried by the descriptor: the layer's partial read fails with it.
    await expect(walkPartial({ ...desc, soci: { error: "SOCI index sha256:x: the registry answered 404" } }, { read: async () => Buffer.alloc(0) }, { scanners: defaultScanners() })).rejects.toThrow(/SOCI index sha256:x: the registry answered 404/);
  }, 60_000);

  it("checks tar headers as GNU tar writes them", () => {
    const d = mkdtempSync(join(dir, "gnu-"));
    writeFileSync(join(d, "short"), "abc");
    const long = "x".repeat(120);
    writeFileSync(join(d, long), "defg");
    const tar = execFileSync("tar", ["-C", d, "--format=gnu", "-cf", "-", "short", long]);
    expect(tarHeaderMismatch(tar.subarray(0, 512), "short", 3)).toBeUndefined();
    expect(tarHeaderMismatch(tar.subarray(0, 512), "short", 4)).toMatch(/a file of 3 bytes, not 4/);
    expect(tarHeaderMismatch(tar.subarray(0, 512), "other", 3)).toMatch(/it names "short"/);
    const bad = Buffer.from(tar.subarray(0, 512));
    bad[0] = bad[0]! ^ 1;
    expect(tarHeaderMismatch(bad, "short", 3)).toMatch(/checksum fails/);
    // The long name: a ././@LongLink entry, then the real header with the name cut at 100 bytes.
    const longHeader = tar.subarray(1024 + 512 + 512, 1024 + 512 + 1024);
    expect(tarHeaderMismatch(longHeader, long, 4)).toBeUndefined();
  });
});
