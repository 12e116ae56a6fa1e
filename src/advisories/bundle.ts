// The offline bundle: a tar (zstd-compressed) of `manifest.json` and the raw upstream files of each
// source's latest operation, under `sources/<name>/<path>`. The manifest names every file with its sha256
// and size, the source's fetch time, fingerprint, licence and attribution. Import checks every digest
// before it writes anything, then parses the files with this build's parsers (a bundle carries no parsed
// data, so a newer Portcullis reads an older bundle with its newer parsers).
//
// Both ways are streams, so a bundle may carry Red Hat's tens of thousands of documents (GBs): export
// reads one raw file at a time from the store into the tar, compressed as independent zstd frames
// (zstd.ts) onto a file; import walks the file (bounded zstd decoder, tar-stream) and never holds more
// than one document of a streamed source. The manifest comes first in the tar, so it is checked before
// any file is read. Every bundle an earlier Portcullis wrote has it first too (its exporter wrote it
// first and its reader refused anything else), in one zstd frame, which this reader reads as well;
// a source's `streamed` flag is new and optional (absent: listed inline), so format 1 is unchanged.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { z } from "zod";
import { createDecompressor, sniffCompression } from "../layers/decompress.js";
import { boundedZstdDecoder, DEFAULT_MAX_ZSTD_WINDOW } from "../layers/zstd.js";
import type { AdvisoryStore, OperationFile } from "../store/advisory-types.js";
import type { RawFile } from "../model/advisory.js";
import { zstdFrames } from "./zstd.js";
import { PortcullisError } from "../errors.js";

export const BUNDLE_FORMAT = 1;
export const BUNDLE_MEDIA_TYPE = "application/vnd.portcullis.advisory-bundle.v1.tar+zstd";
export const BUNDLE_ARTIFACT_TYPE = "application/vnd.portcullis.advisory-bundle.v1";

const SOURCE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const fileSchema = z.object({
  path: z.string().min(1).max(512).refine(safePath, "must be a relative path without '..'"),
  sha256: z.string().regex(/^[a-f0-9]{64}$/),
  size: z.number().int().nonnegative(),
  url: z.string().max(2048).optional(),
  retrievedAt: z.string().max(64).optional(),
});

const manifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  created: z.string(),
  generator: z.string().max(200),
  sources: z.array(z.object({
    name: z.string().regex(SOURCE_NAME),
    kind: z.enum(["os", "language", "enrichment"]),
    parserVersion: z.string().max(64),
    origin: z.string().max(1024),
    operationCreated: z.string(),
    fingerprint: z.record(z.string(), z.string()),
    licence: z.string().max(4096),
    attribution: z.string().max(16384),
    /** The operation's files are listed in their own table (Red Hat); imported as a streamed operation. */
    streamed: z.boolean().optional(),
    files: z.array(fileSchema).max(1_000_000),
  })).max(1000),
});

export type BundleManifest = z.infer<typeof manifestSchema>;

export interface BundleLimits {
  /** Most bytes of the bundle's files, all together (streamed: this bounds work and time, not memory). */
  maxBytes: number;
  maxFiles: number;
  /** Most bytes of one file (a file is held whole to be parsed), and of manifest.json. */
  maxFileBytes?: number;
  /** Largest window a zstd frame may declare. */
  zstdWindow?: number;
}

/** 64 GiB of files, as Red Hat's own archive may decompress to (sources/redhat/upstream.ts). */
export const DEFAULT_BUNDLE_LIMITS: BundleLimits = { maxBytes: 64 * 1024 ** 3, maxFiles: 1_000_000, maxFileBytes: 512 * 1024 ** 2, zstdWindow: DEFAULT_MAX_ZSTD_WINDOW };

export class BundleError extends PortcullisError {
  readonly domain = "advisory";
  override name = "BundleError";
  readonly code = "BUNDLE_INVALID";
}

function safePath(p: string): boolean {
  return !p.startsWith("/") && !p.split("/").some((s) => s === ".." || s === "." || s === "") && !p.includes("\\") && !p.includes("\0");
}

export interface WrittenBundle {
  manifest: BundleManifest;
  /** The compressed bundle's size and digest (`sha256:…`), as written: what a push names. */
  size: number;
  digest: string;
}

/**
 * Writes the latest operation of each source (all, or those named) with its raw files to `file`, as a
 * stream: the tar is built a raw file at a time (read from the store one by one), compressed a frame at
 * a time, and written with backpressure, so memory holds the manifest and one file, whatever the
 * bundle's size. The file appears whole (written beside it, then renamed) or not at all.
 */
export async function writeBundle(store: AdvisoryStore, file: string, o: { sources?: readonly string[]; generator: string; level?: number }): Promise<WrittenBundle> {
  const status = await store.status();
  const unknown = (o.sources ?? []).filter((n) => !status.some((s) => s.source === n));
  if (unknown.length) throw new BundleError(`no operation in the store for source(s) ${unknown.join(", ")}: run portcullis db update or db import first`);
  const wanted = o.sources?.length ? status.filter((s) => o.sources!.includes(s.source)) : status;
  if (!wanted.length) throw new BundleError("the store has no advisory data to export: run portcullis db update or db import first");
  const sources: BundleManifest["sources"] = [];
  for (const s of wanted) {
    const files = s.latest.streamed ? await store.operationFiles(s.latest.ref) : s.latest.files;
    sources.push({
      name: s.source, kind: s.kind, parserVersion: s.latest.parserVersion, origin: s.latest.origin, operationCreated: s.latest.createdAt,
      fingerprint: s.latest.fingerprint, licence: s.latest.licence, attribution: s.latest.attribution,
      ...(s.latest.streamed ? { streamed: true } : {}), files: files.map(cleanFile),
    });
  }
  const manifest: BundleManifest = { format: BUNDLE_FORMAT, created: new Date().toISOString(), generator: o.generator, sources };
  const pack = tar.pack();
  const entry = (name: string, bytes: Buffer) =>
    // The callback comes when the pack's reader has taken the bytes: the backpressure of the whole pipeline.
    new Promise<void>((resolve, reject) => pack.entry({ name, size: bytes.length, mode: 0o644, mtime: new Date(0) }, bytes, (e) => (e ? reject(e) : resolve())));
  const fill = async () => {
    await entry("manifest.json", Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
    for (const s of manifest.sources) {
      for (const f of s.files) {
        const bytes = await store.rawFile(f.sha256);
        if (!bytes) throw new BundleError(`the store lost raw file ${f.path} (${f.sha256}) of source ${s.name}`);
        await entry(`sources/${s.name}/${f.path}`, bytes);
      }
    }
    pack.finalize();
  };
  const hash = createHash("sha256");
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const tmp = `${file}.partial-${process.pid}`;
  try {
    const filling = fill().catch((e: unknown) => {
      pack.destroy(e as Error);
      throw e;
    });
    await Promise.all([filling, pipeline(pack, zstdFrames({ level: o.level }), count, createWriteStream(tmp))]);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return { manifest, size, digest: `sha256:${hash.digest("hex")}` };
}

function cleanFile(f: OperationFile): OperationFile {
  return { path: f.path, sha256: f.sha256, size: f.size, ...(f.url ? { url: f.url } : {}), ...(f.retrievedAt ? { retrievedAt: f.retrievedAt } : {}) };
}

/** A bundle to read: its bytes, or the path of a file (read as a stream, as often as needed). */
export type BundleInput = Buffer | string;

/** One verified file of the bundle: its source and entry in the manifest, and its bytes when asked for. */
export interface BundleEntry {
  source: BundleManifest["sources"][number];
  file: BundleManifest["sources"][number]["files"][number];
  bytes?: Buffer;
}

async function head(input: BundleInput): Promise<Buffer> {
  if (typeof input !== "string") return input.subarray(0, 4);
  const parts: Buffer[] = [];
  for await (const c of createReadStream(input, { start: 0, end: 3 })) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function compressedStream(input: BundleInput): Readable {
  return typeof input === "string" ? createReadStream(input, { highWaterMark: 1 << 20 }) : Readable.from([input]);
}

/**
 * Walks a bundle (zstd, gzip or plain tar) as a stream, checking as it goes: manifest.json is the first
 * file, valid, within the limits; every other file is one the manifest names, once, with its size (from
 * the tar header, before its bytes are read) and its sha256 (as they are read); a source's files come
 * together. Yields the manifest, then each file once verified, with its bytes when `keep(source)` says so
 * (the others are hashed and dropped); throws BundleError naming the first problem, at the latest after
 * the last file (a file the manifest names that the tar lacks).
 */
export async function* walkBundle(
  input: BundleInput, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS, keep: (source: string) => boolean = () => false,
): AsyncGenerator<{ manifest: BundleManifest } | BundleEntry> {
  const kind = sniffCompression(await head(input));
  if (!kind) throw new BundleError("not an advisory bundle: too short");
  const maxFile = limits.maxFileBytes ?? DEFAULT_BUNDLE_LIMITS.maxFileBytes!;
  // The tar's own bytes (headers, padding) on top of the files' and the manifest's: past this, no valid bundle.
  const maxTar = limits.maxBytes + (limits.maxFiles + 2) * 2048 + maxFile;
  const decoder = kind === "zstd"
    ? boundedZstdDecoder({ maxWindow: limits.zstdWindow ?? DEFAULT_MAX_ZSTD_WINDOW, maxOutput: maxTar, name: "the bundle" })
    : createDecompressor(kind, "the bundle");
  let out = 0;
  const capped = new Transform({
    transform(chunk: Buffer, _e, cb) {
      out += chunk.length;
      if (out > maxTar) cb(new BundleError(`bundle is larger than ${limits.maxBytes} bytes decompressed`));
      else cb(null, chunk);
    },
  });
  const extract = tar.extract();
  const source = compressedStream(input);
  const piped = pipeline(source, decoder, capped, extract).catch((e: unknown) => e as Error);
  let manifest: BundleManifest | undefined;
  const where = new Map<string, { s: number; f: number }>();
  const seen = new Set<string>();
  const done = new Set<number>();
  let current = -1;
  let files = 0;
  let total = 0;
  try {
    try {
      for await (const e of extract) {
        const name = e.header.name.replace(/^\.\//, "");
        if (e.header.type !== "file") {
          e.resume();
          continue;
        }
        if (++files > limits.maxFiles + 1) throw new BundleError(`bundle has more than ${limits.maxFiles} files`);
        const size = e.header.size ?? 0;
        if (!manifest) {
          if (name !== "manifest.json") throw new BundleError("not an advisory bundle: manifest.json is not its first file");
          if (size > maxFile) throw new BundleError(`manifest.json is ${size} bytes, more than the ${maxFile} accepted`);
          manifest = parseManifest(await readAll(e, size), limits);
          manifest.sources.forEach((s, i) => s.files.forEach((f, j) => where.set(`sources/${s.name}/${f.path}`, { s: i, f: j })));
          yield { manifest };
          continue;
        }
        if (name === "manifest.json") throw new BundleError("manifest.json must come first in the bundle, once");
        const at = where.get(name);
        if (!at) throw new BundleError(`bundle holds files manifest.json does not name: ${name.slice(0, 300)}`);
        if (seen.has(name)) throw new BundleError(`bundle holds ${name} twice`);
        seen.add(name);
        const s = manifest.sources[at.s]!;
        const f = s.files[at.f]!;
        if (at.s !== current) {
          if (done.has(at.s)) throw new BundleError(`the files of source ${s.name} do not come together in the bundle (${name} comes after another source's)`);
          if (current >= 0) done.add(current);
          current = at.s;
        }
        if (size !== f.size) throw new BundleError(`${name} is ${size} bytes, manifest.json says ${f.size}`);
        total += size;
        if (total > limits.maxBytes) throw new BundleError(`bundle is larger than ${limits.maxBytes} bytes decompressed`);
        const wantBytes = keep(s.name);
        if (wantBytes && size > maxFile) throw new BundleError(`${name} is ${size} bytes, more than the ${maxFile} accepted for one file`);
        const h = createHash("sha256");
        const parts: Buffer[] = [];
        for await (const c of e) {
          h.update(c as Buffer);
          if (wantBytes) parts.push(c as Buffer);
        }
        const got = h.digest("hex");
        if (got !== f.sha256) throw new BundleError(`${name} has sha256 ${got}, manifest.json says ${f.sha256}: the bundle was changed or damaged`);
        yield wantBytes ? { source: s, file: f, bytes: Buffer.concat(parts, size) } : { source: s, file: f };
      }
    } catch (e) {
      const failed = await Promise.race([piped, Promise.resolve(undefined)]);
      if (e instanceof BundleError) throw e;
      throw new BundleError(`bundle cannot be read: ${((failed as Error | undefined) ?? (e as Error)).message}`);
    }
    const failed = await piped;
    if (failed) throw new BundleError(`bundle cannot be read: ${failed.message}`);
    if (!manifest) throw new BundleError("not an advisory bundle: no manifest.json");
    for (const [name] of where) if (!seen.has(name)) throw new BundleError(`${name} is named in manifest.json but missing from the bundle`);
  } finally {
    source.destroy();
    extract.destroy();
  }
}

async function readAll(stream: AsyncIterable<unknown>, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts, size);
}

function parseManifest(data: Buffer, limits: BundleLimits): BundleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString("utf8"));
  } catch (e) {
    throw new BundleError(`manifest.json is not JSON: ${(e as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new BundleError(`manifest.json: ${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  const m = parsed.data;
  const names = new Set<string>();
  let files = 0;
  let bytes = 0;
  for (const s of m.sources) {
    if (names.has(s.name)) throw new BundleError(`manifest.json names source ${s.name} twice`);
    names.add(s.name);
    const paths = new Set<string>();
    for (const f of s.files) {
      if (paths.has(f.path)) throw new BundleError(`manifest.json names ${s.name}'s file ${f.path} twice`);
      paths.add(f.path);
      bytes += f.size;
    }
    files += s.files.length;
  }
  if (files > limits.maxFiles) throw new BundleError(`bundle has more than ${limits.maxFiles} files`);
  if (bytes > limits.maxBytes) throw new BundleError(`bundle is larger than ${limits.maxBytes} bytes decompressed`);
  return m;
}

/**
 * Reads a bundle through and checks it whole (walkBundle); returns the manifest and the files of the
 * sources listed inline, by source. A streamed source's files are checked, not kept: they are read again
 * when imported (importBundle), a document at a time.
 */
export async function readBundle(input: BundleInput, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS): Promise<{ manifest: BundleManifest; files: Map<string, RawFile[]> }> {
  let manifest: BundleManifest | undefined;
  const files = new Map<string, RawFile[]>();
  const inline = new Set<string>();
  for await (const x of walkBundle(input, limits, (s) => inline.has(s))) {
    if ("manifest" in x) {
      manifest = x.manifest;
      for (const s of manifest.sources) {
        if (!s.streamed) inline.add(s.name);
        files.set(s.name, []);
      }
    } else if (x.bytes) {
      files.get(x.source.name)!.push({ path: x.file.path, bytes: x.bytes });
    }
  }
  // Files in the manifest's order (the tar's order may differ within a source).
  for (const s of manifest!.sources) {
    const got = new Map(files.get(s.name)!.map((f) => [f.path, f]));
    files.set(s.name, s.streamed ? [] : s.files.map((f) => got.get(f.path)!));
  }
  return { manifest: manifest!, files };
}
