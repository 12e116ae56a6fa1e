import { PortcullisError } from "../errors.js";
export type LayerErrorCode =
  | "DIGEST_MISMATCH"
  | "SIZE_MISMATCH"
  | "DECOMPRESSED_TOO_LARGE"
  | "EXPANSION_RATIO"
  | "FILE_TOO_LARGE"
  | "CAPTURED_TOO_LARGE"
  /** A zstd frame declares a window over WalkLimits.maxZstdWindow (the decoder would allocate it). */
  | "ZSTD_WINDOW_TOO_LARGE"
  | "BAD_TAR"
  | "BAD_COMPRESSION"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "FETCH_FAILED"
  | "BAD_TOC";

/** A layer that could not be indexed, with a code callers branch on and a message that names the layer. */
export class LayerError extends PortcullisError {
  readonly domain = "layer";
  override name = "LayerError";
  constructor(
    readonly code: LayerErrorCode,
    readonly layer: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`layer ${layer}: ${message}`, options);
  }
}
