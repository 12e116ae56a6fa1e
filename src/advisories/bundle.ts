// The offline bundle: a tar (zstd-compressed) of `manifest.json` and the raw upstream files of each
// source's latest operation, under `sources/<name>/<path>`. The manifest names every file with its sha256
// and size, the source's fetch time, fingerprint, licence and attribution. Import checks every digest
// before it writes anything, then parses the files with this build's parsers (a bundle carries no parsed
// data, so a newer Portcullis reads an older bundle with its newer parsers).
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { z } from "zod";
import { createDecompressor, sniffCompression } from "../layers/decompress.js";
import type { AdvisoryStore, OperationFile } from "../store/advisory-types.js";
import type { RawFile } from "./types.js";
import { zstdCompress } from "./zstd.js";

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
    files: z.array(fileSchema).max(1_000_000),
  })).max(1000),
});

export type BundleManifest = z.infer<typeof manifestSchema>;

export interface BundleLimits {
  /** Most bytes of the bundle once decompressed. */
  maxBytes: number;
  maxFiles: number;
}

export const DEFAULT_BUNDLE_LIMITS: BundleLimits = { maxBytes: 4 * 1024 ** 3, maxFiles: 1_000_000 };

export class BundleError extends Error {
  override name = "BundleError";
  readonly code = "BUNDLE_INVALID";
}

function safePath(p: string): boolean {
  return !p.startsWith("/") && !p.split("/").some((s) => s === ".." || s === "." || s === "") && !p.includes("\\") && !p.includes("\0");
}

/** Writes the latest operation of each source (all, or those named) with its raw files. */
export async function exportBundle(store: AdvisoryStore, o: { sources?: readonly string[]; generator: string }): Promise<{ bytes: Buffer; manifest: BundleManifest; left: string[] }> {
  const status = await store.status();
  const unknown = (o.sources ?? []).filter((n) => !status.some((s) => s.source === n));
  if (unknown.length) throw new BundleError(`no operation in the store for source(s) ${unknown.join(", ")}: run portcullis db update or db import first`);
  // A bundle is built in memory; a streamed source (Red Hat: every VEX document, GBs) is not carried.
  const streamed = status.filter((s) => s.latest.streamed);
  const named = streamed.filter((s) => o.sources?.includes(s.source));
  if (named.length) {
    throw new BundleError(`${named.map((s) => `${s.source} (${s.latest.fileCount} files)`).join(", ")} cannot go into a bundle: bundles are built in memory and do not carry streamed sources yet; update it from the upstream or a mirror instead`);
  }
  const wanted = (o.sources?.length ? status.filter((s) => o.sources!.includes(s.source)) : status).filter((s) => !s.latest.streamed);
  const left = o.sources?.length ? [] : streamed.map((s) => s.source);
  if (!wanted.length && left.length) throw new BundleError(`nothing to export: ${left.join(", ")} is a streamed source, which bundles do not carry yet`);
  if (!wanted.length) throw new BundleError("the store has no advisory data to export: run portcullis db update or db import first");
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT, created: new Date().toISOString(), generator: o.generator,
    sources: wanted.map((s) => ({
      name: s.source, kind: s.kind, parserVersion: s.latest.parserVersion, origin: s.latest.origin, operationCreated: s.latest.createdAt,
      fingerprint: s.latest.fingerprint, licence: s.latest.licence, attribution: s.latest.attribution, files: s.latest.files.map(cleanFile),
    })),
  };
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  const entry = (name: string, bytes: Buffer) => new Promise<void>((resolve, reject) => pack.entry({ name, size: bytes.length, mode: 0o644, mtime: new Date(0) }, bytes, (e) => (e ? reject(e) : resolve())));
  await entry("manifest.json", Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  for (const s of manifest.sources) {
    for (const f of s.files) {
      const bytes = await store.rawFile(f.sha256);
      if (!bytes) throw new BundleError(`the store lost raw file ${f.path} (${f.sha256}) of source ${s.name}`);
      await entry(`sources/${s.name}/${f.path}`, bytes);
    }
  }
  pack.finalize();
  await done;
  return { bytes: await zstdCompress(Buffer.concat(chunks)), manifest, left };
}

function cleanFile(f: OperationFile): OperationFile {
  return { path: f.path, sha256: f.sha256, size: f.size, ...(f.url ? { url: f.url } : {}), ...(f.retrievedAt ? { retrievedAt: f.retrievedAt } : {}) };
}

/**
 * Reads a bundle (zstd, gzip or plain tar) and checks it whole: a valid manifest first in the archive,
 * every file it names present once with its size and sha256, nothing else. Throws BundleError naming
 * the first problem; returns the files by source only when all is well.
 */
export async function readBundle(bytes: Buffer, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS): Promise<{ manifest: BundleManifest; files: Map<string, RawFile[]> }> {
  const kind = sniffCompression(bytes.subarray(0, 4));
  if (!kind) throw new BundleError("not an advisory bundle: too short");
  let manifest: BundleManifest | undefined;
  const seen = new Map<string, Buffer>();
  let total = 0;
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    const name = header.name.replace(/^\.\//, "");
    if (header.type !== "file") {
      stream.resume();
      stream.on("end", next);
      return;
    }
    if (seen.size + 1 > limits.maxFiles) return next(new BundleError(`bundle has more than ${limits.maxFiles} files`));
    const parts: Buffer[] = [];
    stream.on("data", (c: Buffer) => {
      total += c.length;
      if (total > limits.maxBytes) stream.destroy(new BundleError(`bundle is larger than ${limits.maxBytes} bytes decompressed`));
      else parts.push(c);
    });
    stream.on("error", next);
    stream.on("end", () => {
      const data = Buffer.concat(parts);
      if (name === "manifest.json") {
        if (manifest || seen.size) return next(new BundleError("manifest.json must come first in the bundle, once"));
        let raw: unknown;
        try {
          raw = JSON.parse(data.toString("utf8"));
        } catch (e) {
          return next(new BundleError(`manifest.json is not JSON: ${(e as Error).message}`));
        }
        const parsed = manifestSchema.safeParse(raw);
        if (!parsed.success) {
          const i = parsed.error.issues[0]!;
          return next(new BundleError(`manifest.json: ${i.path.join(".") || "(root)"}: ${i.message}`));
        }
        manifest = parsed.data;
        return next();
      }
      if (!manifest) return next(new BundleError("not an advisory bundle: manifest.json is not its first file"));
      if (seen.has(name)) return next(new BundleError(`bundle holds ${name} twice`));
      seen.set(name, data);
      next();
    });
  });
  try {
    await pipeline(Readable.from([bytes]), createDecompressor(kind), extract);
  } catch (e) {
    if (e instanceof BundleError) throw e;
    throw new BundleError(`bundle cannot be read: ${(e as Error).message}`);
  }
  if (!manifest) throw new BundleError("not an advisory bundle: no manifest.json");
  const files = new Map<string, RawFile[]>();
  const names = new Set<string>();
  for (const s of manifest.sources) {
    if (files.has(s.name)) throw new BundleError(`manifest.json names source ${s.name} twice`);
    const list: RawFile[] = [];
    for (const f of s.files) {
      const key = `sources/${s.name}/${f.path}`;
      names.add(key);
      const data = seen.get(key);
      if (!data) throw new BundleError(`${key} is named in manifest.json but missing from the bundle`);
      if (data.length !== f.size) throw new BundleError(`${key} is ${data.length} bytes, manifest.json says ${f.size}`);
      const got = createHash("sha256").update(data).digest("hex");
      if (got !== f.sha256) throw new BundleError(`${key} has sha256 ${got}, manifest.json says ${f.sha256}: the bundle was changed or damaged`);
      list.push({ path: f.path, bytes: data });
    }
    files.set(s.name, list);
  }
  const extra = [...seen.keys()].filter((k) => !names.has(k));
  if (extra.length) throw new BundleError(`bundle holds files manifest.json does not name: ${extra.slice(0, 5).join(", ")}`);
  return { manifest, files };
}
