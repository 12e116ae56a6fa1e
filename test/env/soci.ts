// SOCI zTOCs for the tests, from real tools: no SOCI producer is packaged in Debian, so a zTOC is assembled
// from what each part's own tool says of a gzip'd tar:
// - the checkpoints (compressed and uncompressed offsets, leftover bits, 32 KiB windows): gztool's index
//   (Debian's gztool, zran.c's access points; its index format is in its README: big-endian, windows
//   zlib-compressed);
// - the entries (name, type, size, mode, link target, where the content starts in the tar): Python's tarfile;
// - the FlatBuffers encoding: flatc (Debian's flatbuffers-compiler) from JSON, with test/env/soci/ztoc.fbs.
// What is ours: the span digests (sha256 of each span's bytes, as the SOCI specification defines spans) and
// the zinfo blob's layout (count, span size, then per checkpoint in, out, bits, window; little-endian).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gunzipSync, inflateSync } from "node:zlib";
import { SOCI_INDEX_DIGEST, SOCI_INDEX_V1, SOCI_INDEX_V2, SOCI_LAYER_DIGEST } from "../../src/indexer/sources/soci.js";
import { sha256, type RegistryPusher } from "./oci-push.js";

const run = promisify(execFile);
const SCHEMA = fileURLToPath(new URL("./soci/ztoc.fbs", import.meta.url));
const WINDOW = 32 * 1024;

export interface GzCheckpoint {
  in: number;
  out: number;
  bits: number;
  window: Buffer;
}

/** gztool's access points for the gzip file `path`, one every `spanMiB` MiB of uncompressed data; windows padded to 32 KiB. */
export async function gztoolCheckpoints(path: string, spanMiB: number): Promise<GzCheckpoint[]> {
  const dir = mkdtempSync(join(tmpdir(), "gztool-"));
  try {
    const gzi = join(dir, "index.gzi");
    await run("gztool", ["-z", "-f", "-s", String(spanMiB), "-I", gzi, path]);
    const idx = readFileSync(gzi);
    if (idx.subarray(8, 16).toString("latin1") !== "gzipindx") throw new Error("not a gztool index without line numbers");
    const have = Number(idx.readBigUInt64BE(16));
    let p = 32;
    const out: GzCheckpoint[] = [];
    for (let i = 0; i < have; i++) {
      const o = Number(idx.readBigUInt64BE(p));
      const inn = Number(idx.readBigUInt64BE(p + 8));
      const bits = idx.readUInt32BE(p + 16);
      const wl = idx.readUInt32BE(p + 20);
      p += 24;
      let window = wl ? inflateSync(idx.subarray(p, p + wl)) : Buffer.alloc(0);
      p += wl;
      if (window.length < WINDOW) window = Buffer.concat([Buffer.alloc(WINDOW - window.length), window]);
      out.push({ in: inn, out: o, bits, window });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TarMember {
  name: string;
  type: string;
  offset: number;
  size: number;
  mode: number;
  linkname: string;
}

const PY_LIST = `
import json, sys, tarfile
types = {b"0": "reg", b"\\0": "reg", b"7": "reg", b"5": "dir", b"2": "symlink", b"1": "hardlink", b"3": "char", b"4": "block", b"6": "fifo"}
with tarfile.open(sys.argv[1], "r:gz") as t:
    print(json.dumps([{"name": m.name + ("/" if m.isdir() else ""), "type": types[m.type], "offset": m.offset_data, "size": m.size, "mode": m.mode, "linkname": m.linkname} for m in t.getmembers()]))
`;

/** The entries of a gzip'd tar as Python's tarfile reads them, content offsets included. */
export async function tarMembers(path: string): Promise<TarMember[]> {
  const { stdout } = await run("python3", ["-c", PY_LIST, path], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(stdout) as TarMember[];
}

export interface ZtocParts {
  checkpoints: GzCheckpoint[];
  members: TarMember[];
  compressedSize: number;
  uncompressedSize: number;
  spanDigests: string[];
}

/** What a zTOC of the gzip file `path` says, from gztool and tarfile. */
export async function ztocParts(path: string, spanMiB = 1): Promise<ZtocParts> {
  const blob = readFileSync(path);
  const checkpoints = await gztoolCheckpoints(path, spanMiB);
  const members = await tarMembers(path);
  const spanDigests = checkpoints.map((c, i) => {
    const start = c.in - (c.bits ? 1 : 0);
    const end = checkpoints[i + 1]?.in ?? blob.length;
    return `sha256:${createHash("sha256").update(blob.subarray(start, end)).digest("hex")}`;
  });
  return { checkpoints, members, compressedSize: blob.length, uncompressedSize: gunzipSync(blob).length, spanDigests };
}

/** The zinfo blob (version 2: every checkpoint written). */
export function zinfoBlob(cps: readonly GzCheckpoint[], spanSize: number): Buffer {
  const b = Buffer.alloc(12 + cps.length * (17 + WINDOW));
  b.writeInt32LE(cps.length, 0);
  b.writeBigInt64LE(BigInt(spanSize), 4);
  let p = 12;
  for (const c of cps) {
    b.writeBigInt64LE(BigInt(c.in), p);
    b.writeBigInt64LE(BigInt(c.out), p + 8);
    b[p + 16] = c.bits;
    c.window.copy(b, p + 17);
    p += 17 + WINDOW;
  }
  return b;
}

/** The zTOC's JSON for flatc (mutable, for tests that make it lie). */
export function ztocJson(z: ZtocParts, spanMiB = 1): Record<string, unknown> & { toc: { metadata: Array<Record<string, unknown>> }; compression_info: Record<string, unknown> } {
  return {
    version: "0.9",
    build_tool_identifier: "portcullis tests: gztool, python3 tarfile, flatc",
    compressed_archive_size: z.compressedSize,
    uncompressed_archive_size: z.uncompressedSize,
    toc: {
      metadata: z.members.map((m) => ({ name: m.name, type: m.type, uncompressed_offset: m.offset, uncompressed_size: m.size, linkname: m.linkname, mode: m.mode, mod_time: "2024-01-01T00:00:00Z" })),
    },
    compression_info: { compression_algorithm: "Gzip", max_span_id: z.checkpoints.length - 1, span_digests: z.spanDigests, checkpoints: [...zinfoBlob(z.checkpoints, spanMiB * 1024 * 1024)] },
  };
}

/** flatc's binary of a zTOC JSON. */
export async function flatcZtoc(json: unknown): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), "ztoc-"));
  try {
    writeFileSync(join(dir, "ztoc.json"), JSON.stringify(json));
    await run("flatc", ["-b", "-o", dir, SCHEMA, join(dir, "ztoc.json")], { maxBuffer: 16 * 1024 * 1024 });
    return readFileSync(join(dir, "ztoc.bin"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A zTOC of the gzip'd tar at `path`, built from gztool's checkpoints and tarfile's entries, encoded by flatc. */
export async function buildZtoc(path: string, spanMiB = 1): Promise<Buffer> {
  return flatcZtoc(ztocJson(await ztocParts(path, spanMiB), spanMiB));
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

export interface SociLayer {
  digest: string;
  size: number;
  mediaType: string;
}

/**
 * Builds and pushes a zTOC for each gzip layer of an image already in `repo` (the layer blobs read from the
 * OCI layout `layout`), `spanMiB` MiB apart. Returns each layer's zTOC descriptor.
 */
export async function pushZtocs(pusher: RegistryPusher, repo: string, layout: string, layers: readonly SociLayer[], spanMiB = 4): Promise<Map<string, { digest: string; size: number }>> {
  const out = new Map<string, { digest: string; size: number }>();
  for (const l of layers) {
    const ztoc = await buildZtoc(join(layout, "blobs/sha256", l.digest.slice(7)), spanMiB);
    out.set(l.digest, { digest: await pusher.pushBlob(repo, ztoc), size: ztoc.length });
  }
  return out;
}

/** A SOCI index of `ztocs` as soci-snapshotter writes one: v2, or v1 with `subject` (the image manifest); pushed by digest. */
export async function pushSociIndex(pusher: RegistryPusher, repo: string, version: "v1" | "v2", layers: readonly SociLayer[], ztocs: Map<string, { digest: string; size: number }>, subject?: { digest: string; size: number }): Promise<{ digest: string; size: number }> {
  const type = version === "v2" ? SOCI_INDEX_V2 : SOCI_INDEX_V1;
  const config = await pusher.pushBlob(repo, Buffer.from("{}"));
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: type, digest: config, size: 2 },
    layers: layers.filter((l) => ztocs.has(l.digest)).map((l) => ({ mediaType: "application/octet-stream", ...ztocs.get(l.digest)!, annotations: { [SOCI_LAYER_DIGEST]: l.digest, "com.amazon.soci.image-layer-mediaType": l.mediaType } })),
    ...(version === "v1" && subject ? { subject: { mediaType: OCI_MANIFEST, ...subject } } : {}),
    annotations: { "com.amazon.soci.build-tool-identifier": "portcullis tests" },
  });
  return { digest: await pusher.pushManifest(repo, sha256(body), body, OCI_MANIFEST), size: Buffer.byteLength(body) };
}

/** `manifest` (an image manifest's JSON) with SOCI's v2 annotation naming `indexDigest`, pushed as `tag`. */
export async function pushSociImage(pusher: RegistryPusher, repo: string, tag: string, manifest: Record<string, unknown>, indexDigest: string): Promise<string> {
  const m = structuredClone(manifest) as { annotations?: Record<string, string> };
  m.annotations = { ...m.annotations, [SOCI_INDEX_DIGEST]: indexDigest };
  return pusher.pushManifest(repo, tag, JSON.stringify(m), OCI_MANIFEST);
}

/** The referrers tag schema's index (`sha256-<hex>` of the image) listing a v1 SOCI index, for registries without the referrers API. */
export async function pushReferrersTag(pusher: RegistryPusher, repo: string, imageDigest: string, index: { digest: string; size: number }): Promise<void> {
  const listing = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, ...index, artifactType: SOCI_INDEX_V1 }] });
  await pusher.pushManifest(repo, imageDigest.replace(":", "-"), listing, OCI_INDEX);
}
