// One streaming pass over a layer: compressed bytes -> sha256 (checked against the descriptor) ->
// decompression (chosen by magic bytes) -> tar walk (tar.ts). Only files some scanner asked for are kept in memory;
// everything else is drained. Nothing touches the disk.
import { createHash } from "node:crypto";
import { Transform, Writable, type TransformCallback, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Scanner } from "../model/scanner.js";
import { compressionOfMediaType, createDecompressor, MAX_LAYER_ZSTD_WINDOW, sniffCompression, type Compression } from "./decompress.js";
import { LayerError } from "./errors.js";
import { applyLink, EntrySelector, openConsumer, type CaptureBudget } from "./entries.js";
import { CapturedLayerFiles } from "./files.js";
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
  /** The largest window a zstd frame may declare (the decoder allocates it): ZSTD_WINDOW_TOO_LARGE past it. */
  maxZstdWindow: number;
  /**
   * The bytes of wanted files one scan may hold over all its layers, shared by the walks of one index: give
   * each index call a CaptureBudget of its own (none: no bound but the per-layer one).
   */
  scanCapture?: CaptureBudget;
}

/** The default for a scan's CaptureBudget: twice what one layer may hold. */
export const DEFAULT_MAX_SCAN_CAPTURED_BYTES = 1024 ** 3;

export const DEFAULT_WALK_LIMITS: WalkLimits = {
  maxDecompressedBytes: 32 * 1024 ** 3,
  maxExpansionRatio: 200,
  expansionCheckAfterBytes: 512 * 1024 ** 2,
  maxFileSize: 32 * 1024 ** 2,
  maxCapturedBytes: 512 * 1024 ** 2,
  maxZstdWindow: MAX_LAYER_ZSTD_WINDOW,
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
  /** Bytes of the wanted files held, as counted against maxCapturedBytes. */
  capturedBytes: number;
  /** Paths this layer deletes from the layers below (`.wh.NAME`). */
  whiteouts: string[];
  /** Directories whose lower-layer contents this layer hides (`.wh..wh..opq`). */
  opaqueDirs: string[];
  compression: Compression;
  compressedBytes: number;
  uncompressedBytes: number;
  entries: number;
}

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

  const decompressor = createDecompressor(compression, "the layer", limits.maxZstdWindow);
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
  const selector = new EntrySelector(layer, opts.scanners, limits);

  /**
   * Collects a wanted file's bytes (the tar reader gives exactly `size`) into one buffer of that size, filled
   * chunk by chunk: joining a 64 MiB jar's chunks at its end was one copy of 0.1 to 0.5 s on the event loop.
   * Copied: the decompressor may reuse its output buffers. The last of two entries with the same path wins.
   */
  const collect = (path: string, size: number): TarEntrySink => {
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    return {
      data: (c) => {
        if (at + c.length > size) throw new LayerError("BAD_TAR", layer, `${path}: more than the ${size} bytes its header declares`);
        c.copy(out, at);
        at += c.length;
      },
      end: () => files.addFile(path, at === size ? out : out.subarray(0, at)),
    };
  };

  const onEntry = (header: TarHeader): TarEntrySink | undefined => {
    const action = selector.select(header);
    switch (action?.kind) {
      case undefined:
        return undefined;
      case "symlink":
      case "hardlink":
        applyLink(files, action);
        return undefined;
      case "capture":
        return collect(action.path, action.size);
      case "consume": {
        // Pushed to each wanting scanner's sink, never buffered; once every sink has enough the rest is only skipped.
        const sink = openConsumer(layer, action);
        if (!sink) return undefined;
        return { data: (chunk) => void sink.write(chunk), end: () => sink.finish(files) };
      }
    }
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
    selector.refund();
    if (e instanceof LayerError) throw e;
    if ((e as Error).name === "AbortError") throw e;
    if (failedStage === "decompress") {
      if ((e as { code?: string }).code === "ZSTD_WINDOW_TOO_LARGE") throw new LayerError("ZSTD_WINDOW_TOO_LARGE", layer, `refused: ${(e as Error).message}`, { cause: e });
      throw new LayerError("BAD_COMPRESSION", layer, `${compression} stream is corrupt: ${(e as Error).message}`, { cause: e });
    }
    throw new LayerError("BAD_TAR", layer, `not a valid tar archive: ${(e as Error).message}`, { cause: e });
  }
  return { digest: opts.digest, files, whiteouts: selector.whiteouts, opaqueDirs: selector.opaqueDirs, compression, compressedBytes, uncompressedBytes, entries: selector.entries, capturedBytes: selector.capturedBytes };
}

