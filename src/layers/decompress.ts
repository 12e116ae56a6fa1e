import { Transform, type Duplex } from "node:stream";
import { createGunzip } from "node:zlib";
import { boundedZstdDecoder, DEFAULT_MAX_ZSTD_WINDOW } from "./zstd.js";

export type Compression = "gzip" | "zstd" | "none";

/** What the bytes say: gzip `1f 8b`, zstd `28 b5 2f fd`, anything else is taken as a plain tar. */
export function sniffCompression(head: Uint8Array): Compression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return head.length >= 4 ? "none" : undefined;
}

/** What the media type says; undefined when it says nothing either way (e.g. a bare `tar`). */
export function compressionOfMediaType(mediaType: string): Compression | undefined {
  if (/(\+|\.)gzip$|tar\.gzip$|\+gzip$/.test(mediaType) || mediaType.endsWith(".tar.gzip")) return "gzip";
  if (/(\+|\.)zstd$/.test(mediaType)) return "zstd";
  if (/tar$/.test(mediaType)) return "none";
  return undefined;
}

/**
 * The largest window a zstd layer may declare, by default (WalkLimits.maxZstdWindow). The decoder allocates
 * the window a frame declares before decoding it: a 15 KB layer whose header declared ~2 GiB took a process
 * to 2.0 GiB RSS. Container tools write windows of a few MiB (zstd's levels up to 19 use 8 MiB at most);
 * `zstd --long` uses 128 MiB, zstd's own default limit for decoders (windowLog 27), which is this one: any
 * layer the zstd tool decodes without `--memory` is read, and a frame declaring more is refused
 * (ZSTD_WINDOW_TOO_LARGE) before anything is allocated.
 */
export const MAX_LAYER_ZSTD_WINDOW = DEFAULT_MAX_ZSTD_WINDOW;

export function createDecompressor(kind: Compression, name = "layer", maxWindow = MAX_LAYER_ZSTD_WINDOW): Transform | Duplex {
  switch (kind) {
    case "gzip":
      // Multi-member gzip (eStargz) is decoded by zlib as one stream.
      return createGunzip({ chunkSize: 128 * 1024 });
    case "zstd":
      // The output cap is the walker's (maxDecompressedBytes, the expansion ratio); the window cap is here.
      return boundedZstdDecoder({ maxWindow, maxOutput: Number.MAX_SAFE_INTEGER, name });
    case "none":
      return new Transform({ transform: (chunk, _e, cb) => cb(null, chunk) });
  }
}
