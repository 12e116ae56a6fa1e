// One streaming pass over a layer: compressed bytes -> sha256 (checked against the descriptor) ->
// decompression (chosen by magic bytes) -> tar walk (tar.ts). Only files some scanner asked for are kept in memory;
// everything else is drained. Nothing touches the disk.
import { createHash } from "node:crypto";
import { Transform, Writable, type TransformCallback, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { EntryInfo, FileSink, Scanner } from "../scanners/types.js";
import { compressionOfMediaType, createDecompressor, sniffCompression, type Compression } from "./decompress.js";
import { LayerError } from "./errors.js";
import { CapturedLayerFiles } from "./files.js";
import { normalizeEntryPath, OPAQUE_WHITEOUT, resolveLinkTarget, WHITEOUT_PREFIX } from "./paths.js";
import { TarReader, type TarEntrySink, type TarHeader } from "./tar.js";

export interface WalkLimits {
  /** Refuse a layer that decompresses to more than this. */
  maxDecompressedBytes: number;
  /** Refuse a layer whose decompressed size exceeds this multiple of its compressed size (a bomb)... */
  maxExpansionRatio: number;
  /** ...once it has decompressed at least this much (small layers of zeros compress absurdly well). */
  expansionCheckAfterBytes: number;
  /** The default cap for one wanted file, for scanners that do not set their own. */
  maxFileSize: number;
  /**
   * The cap on the bytes of wanted files held from one layer, all files together: an 8 MB layer made only of
   * files scanners read, each under its own cap, reached 1.14 GB RSS without it.
   */
  maxCapturedBytes: number;
}

export const DEFAULT_WALK_LIMITS: WalkLimits = {
  maxDecompressedBytes: 32 * 1024 ** 3,
  maxExpansionRatio: 200,
  expansionCheckAfterBytes: 512 * 1024 ** 2,
  maxFileSize: 32 * 1024 ** 2,
  maxCapturedBytes: 512 * 1024 ** 2,
};

export interface LayerWalkOptions {
  digest: string;
  /** The descriptor's size; the stream must have exactly this many bytes. */
  size?: number;
  mediaType?: string;
  scanners: readonly Scanner[];
  limits?: Partial<WalkLimits>;
  /** Skip the digest check (for sources already verified, e.g. a local OCI layout checked on read). */
  skipDigestCheck?: boolean;
  signal?: AbortSignal;
}

export interface LayerWalk {
  digest: string;
  files: CapturedLayerFiles;
  /** Paths this layer deletes from the layers below (`.wh.NAME`). */
  whiteouts: string[];
  /** Directories whose lower-layer contents this layer hides (`.wh..wh..opq`). */
  opaqueDirs: string[];
  compression: Compression;
  compressedBytes: number;
  uncompressedBytes: number;
  entries: number;
}

const FILE_TYPES = new Set(["file", "contiguous-file"]);

export async function walkLayer(input: Readable | AsyncIterable<Uint8Array>, opts: LayerWalkOptions): Promise<LayerWalk> {
  const limits = { ...DEFAULT_WALK_LIMITS, ...opts.limits };
  const layer = opts.digest;
  const [algorithm, expectedHex] = opts.digest.split(":") as [string, string | undefined];
  if (!opts.skipDigestCheck && (algorithm !== "sha256" && algorithm !== "sha512")) {
    throw new LayerError("DIGEST_MISMATCH", layer, `unsupported digest algorithm ${JSON.stringify(algorithm)}`);
  }
  const hash = opts.skipDigestCheck ? undefined : createHash(algorithm);
  let compressedBytes = 0;
  let uncompressedBytes = 0;
  let entries = 0;

  const it = (input as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const first = await it.next();
  const head: Uint8Array = first.done ? new Uint8Array(0) : first.value;
  const sniffed = sniffCompression(head) ?? "none";
  const declared = opts.mediaType ? compressionOfMediaType(opts.mediaType) : undefined;
  // The bytes decide (mislabelled layers exist), except that a plain tar must look like one.
  if (sniffed === "none" && declared && declared !== "none" && head.length > 0) {
    throw new LayerError("BAD_COMPRESSION", layer, `media type ${opts.mediaType} says ${declared}, but the data is neither gzip nor zstd`);
  }
  const compression = sniffed;

  async function* source(): AsyncGenerator<Uint8Array> {
    if (!first.done) yield first.value;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }

  const verifier = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      compressedBytes += chunk.length;
      if (opts.size !== undefined && compressedBytes > opts.size) {
        cb(new LayerError("SIZE_MISMATCH", layer, `more than the ${opts.size} bytes its descriptor declares`));
        return;
      }
      hash?.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (opts.size !== undefined && compressedBytes !== opts.size) {
        cb(new LayerError("SIZE_MISMATCH", layer, `${compressedBytes} bytes, but its descriptor declares ${opts.size}`));
        return;
      }
      if (hash) {
        const got = hash.digest("hex");
        if (got !== expectedHex) {
          cb(new LayerError("DIGEST_MISMATCH", layer, `content has digest ${algorithm}:${got}`));
          return;
        }
      }
      cb();
    },
  });

  const decompressor = createDecompressor(compression, "the layer");
  // pipeline() destroys every stage with the first error, so the stage whose 'error' fires first is the
  // one that failed.
  let failedStage: "decompress" | "tar" | undefined;
  decompressor.once("error", () => (failedStage ??= "decompress"));

  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      uncompressedBytes += chunk.length;
      if (uncompressedBytes > limits.maxDecompressedBytes) {
        cb(new LayerError("DECOMPRESSED_TOO_LARGE", layer, `decompresses to more than ${limits.maxDecompressedBytes} bytes (limit)`));
        return;
      }
      if (compression !== "none" && uncompressedBytes > limits.expansionCheckAfterBytes && uncompressedBytes > limits.maxExpansionRatio * Math.max(compressedBytes, 1)) {
        cb(new LayerError("EXPANSION_RATIO", layer, `expands more than ${limits.maxExpansionRatio}x (${compressedBytes} bytes in, ${uncompressedBytes} out): refused as a decompression bomb`));
        return;
      }
      cb(null, chunk);
    },
  });

  const files = new CapturedLayerFiles(opts.digest);
  /** Bytes of wanted files held so far (limits.maxCapturedBytes). */
  let captured = 0;
  const whiteouts: string[] = [];
  const opaqueDirs: string[] = [];
  /** Targets of wanted symlinks seen earlier in the archive: their content is wanted too. */
  const wantedTargets = new Set<string>();
  const scanners = opts.scanners;
  const info: EntryInfo = { path: "", size: 0, mode: 0, type: "file" };

  /** The cap for `entry` if some scanner wants it, else -1; and whether an oversize file is skipped. */
  let skipOversize = false;
  /** The streaming scanners that want the current entry (an executable: the Go and the Rust scanner both). */
  const consumers: Scanner[] = [];
  const wantedLimit = (entry: EntryInfo): number => {
    let limit = -1;
    skipOversize = true;
    consumers.length = 0;
    for (const s of scanners) {
      if (!s.wants(entry)) continue;
      if (s.consume && entry.type === "file") {
        consumers.push(s);
        continue;
      }
      limit = Math.max(limit, s.maxFileSize ?? limits.maxFileSize);
      if (s.oversize !== "skip") skipOversize = false;
    }
    if (limit < 0 && wantedTargets.has(entry.path)) {
      limit = limits.maxFileSize;
      skipOversize = false;
    }
    return limit;
  };

  /** Collects a wanted file's bytes; the last of two entries with the same path wins. */
  const collect = (path: string): TarEntrySink => {
    const chunks: Buffer[] = [];
    return {
      // Copied: the decompressor may reuse its output buffers.
      data: (c) => void chunks.push(Buffer.from(c)),
      end: () => files.addFile(path, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)),
    };
  };

  const onEntry = (header: TarHeader): TarEntrySink | undefined => {
    entries++;
    const path = normalizeEntryPath(header.name);
    if (path === undefined) return undefined;
    const slash = path.lastIndexOf("/");
    const base = slash < 0 ? path : path.slice(slash + 1);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const dir = slash < 0 ? "" : path.slice(0, slash);
      if (base === OPAQUE_WHITEOUT) opaqueDirs.push(dir);
      else {
        const name = base.slice(WHITEOUT_PREFIX.length);
        if (name && name !== "." && name !== "..") whiteouts.push(dir ? `${dir}/${name}` : name);
      }
      return undefined;
    }
    const type = header.type;
    info.path = path;
    info.size = header.size;
    info.mode = header.mode;
    if (FILE_TYPES.has(type)) {
      info.type = "file";
      const limit = wantedLimit(info);
      if (consumers.length && limit < 0) {
        // Pushed to each wanting scanner's sink, never buffered; once every sink has enough the rest is only skipped.
        const sinks: Array<{ scanner: Scanner; sink: FileSink; open: boolean }> = [];
        for (const c of consumers) {
          const sink = c.consume!({ ...info });
          if (sink) sinks.push({ scanner: c, sink, open: true });
        }
        if (!sinks.length) return undefined;
        return {
          data: (chunk) => {
            for (const s of sinks) if (s.open && !s.sink.write(chunk)) s.open = false;
          },
          end: () => {
            for (const { scanner, sink } of sinks) {
              let value: unknown;
              try {
                value = sink.end();
              } catch (err) {
                throw new LayerError("BAD_TAR", layer, `${scanner.name} could not read ${path}: ${(err as Error).message}`);
              }
              if (value !== undefined) files.addConsumed(scanner.name, path, value);
            }
          },
        };
      }
      if (limit < 0) return undefined;
      if (info.size > limit) {
        if (skipOversize) return undefined;
        throw new LayerError("FILE_TOO_LARGE", layer, `${path} is ${info.size} bytes, over the ${limit}-byte limit for the scanners that read it`);
      }
      captured += info.size;
      if (captured > limits.maxCapturedBytes) {
        throw new LayerError("CAPTURED_TOO_LARGE", layer, `the files the scanners read from it exceed ${limits.maxCapturedBytes} bytes in all (at ${path})`);
      }
      return collect(path);
    }
    if (type === "symlink" && header.linkname) {
      info.type = "symlink";
      info.size = 0;
      // Every symlink is recorded (a path and a target: cheap), so lookups through a linked directory
      // (var/lib/rpm -> ../../usr/lib/sysimage/rpm) resolve; a wanted link also makes its target wanted.
      files.addSymlink(path, header.linkname);
      if (wantedLimit(info) >= 0) {
        const target = resolveLinkTarget(path, header.linkname);
        if (target !== undefined) wantedTargets.add(target);
      }
      return undefined;
    }
    if (type === "link" && header.linkname) {
      info.type = "hardlink";
      info.size = 0;
      const target = normalizeEntryPath(header.linkname);
      if (target !== undefined && wantedLimit(info) >= 0) files.addHardlink(path, target);
    }
    return undefined;
  };

  const reader = new TarReader(onEntry);
  const tarSink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      try {
        reader.push(chunk);
        cb();
      } catch (e) {
        failedStage ??= "tar";
        cb(e as Error);
      }
    },
    final(cb) {
      try {
        reader.end();
        cb();
      } catch (e) {
        failedStage ??= "tar";
        cb(e as Error);
      }
    },
  });

  try {
    await pipeline(source(), verifier, decompressor, counter, tarSink, { signal: opts.signal });
  } catch (e) {
    if (e instanceof LayerError) throw e;
    if ((e as Error).name === "AbortError") throw e;
    if (failedStage === "decompress") {
      const refused = (e as { code?: string }).code === "ZSTD_WINDOW_TOO_LARGE";
      throw new LayerError("BAD_COMPRESSION", layer, refused ? `refused: ${(e as Error).message}` : `${compression} stream is corrupt: ${(e as Error).message}`, { cause: e });
    }
    throw new LayerError("BAD_TAR", layer, `not a valid tar archive: ${(e as Error).message}`, { cause: e });
  }
  return { digest: opts.digest, files, whiteouts, opaqueDirs, compression, compressedBytes, uncompressedBytes, entries };
}

