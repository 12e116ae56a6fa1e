// Decoding the pieces of a seekable layer. zstd (zstd:chunked): each piece is whole frames whose uncompressed size the table
// of contents gives. A small piece (up to ONE_SHOT_MAX) is checked by the bounded decoder's frame walker
// (structure, window cap), then decoded in one shot into a buffer of exactly that size: the output cannot
// grow past it and no window is allocated (fzstd's streaming decoder allocates and shifts a window per frame,
// which for thousands of small frames cost more than the decoding). A larger piece goes through the bounded
// decoder, a block per call: one call for a 64 MiB piece held the event loop for seconds. The caller checks
// every piece against its digest.
import { setImmediate as turn } from "node:timers/promises";
import { createGunzip } from "node:zlib";
import { checkZstdFrames, decodeZstdInto, decompressInto, ONE_SHOT_MAX, ZstdStreamError } from "../zstd.js";
import { PortcullisError } from "../../errors.js";

export interface Piece {
  /** [offset, end) in the blob. */
  offset: number;
  end: number;
  /** Uncompressed bytes. */
  size: number;
}

/**
 * Decodes `pieces`, consecutive in the blob, from `compressed` (the blob's bytes from `base`) into one buffer
 * of their sizes added up. Throws ZstdStreamError for a piece that is not whole frames, declares a window
 * over `maxWindow`, or does not decode to its size.
 */
export async function decodePieces(compressed: Buffer, base: number, pieces: readonly Piece[], name: string, maxWindow: number): Promise<Buffer> {
  const total = pieces.reduce((n, p) => n + p.size, 0);
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  let sinceTurn = 0;
  for (const p of pieces) {
    const input = compressed.subarray(p.offset - base, p.end - base);
    if (input.length !== p.end - p.offset) throw new ZstdStreamError("ZSTD_TRUNCATED", `${name}: piece at ${p.offset} is cut short`);
    const target = out.subarray(at, at + p.size);
    if (p.size > ONE_SHOT_MAX) {
      await decodeZstdInto(input, target, { maxWindow, name });
      at += p.size;
      continue;
    }
    // Many small pieces in a row: a turn for the event loop after every ONE_SHOT_MAX bytes of them.
    sinceTurn += p.size;
    if (sinceTurn > ONE_SHOT_MAX) {
      sinceTurn = 0;
      await turn();
    }
    checkZstdFrames(input, { maxWindow, maxOutput: p.size, name });
    try {
      decompressInto(input, target);
    } catch (e) {
      throw new ZstdStreamError("ZSTD_INVALID", `${name}: ${(e as Error).message}`);
    }
    at += p.size;
  }
  return out;
}

/**
 * eStargz: each piece is one gzip member that inflates to the piece's `size` bytes and then to the tar headers
 * of the entries that follow it. Inflates each member (zlib, natively) only until it has `size` bytes, so a
 * member cannot produce more than its piece, whatever it holds; fewer bytes than `size` is an error.
 */
export async function decodeGzipPieces(compressed: Buffer, base: number, pieces: readonly Piece[], name: string): Promise<Buffer> {
  const total = pieces.reduce((n, p) => n + p.size, 0);
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of pieces) {
    const input = compressed.subarray(p.offset - base, p.end - base);
    if (input.length !== p.end - p.offset) throw new GzipPieceError(`${name}: piece at ${p.offset} is cut short`);
    await inflateInto(input, out.subarray(at, at + p.size), `${name}: the piece at ${p.offset}`);
    at += p.size;
  }
  return out;
}

export class GzipPieceError extends PortcullisError {
  readonly domain = "layer";
  readonly code = "GZIP_INVALID";
}

/** Inflates the gzip member `input` into exactly `target`, stopping as soon as it is full. */
function inflateInto(input: Buffer, target: Buffer, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let at = 0;
    let settled = false;
    const z = createGunzip({ chunkSize: 64 * 1024 });
    const settle = (e?: Error) => {
      if (settled) return;
      settled = true;
      z.destroy();
      if (e) reject(e);
      else resolve();
    };
    z.on("data", (c: Buffer) => {
      const n = Math.min(c.length, target.length - at);
      c.copy(target, at, 0, n);
      at += n;
      if (at === target.length) settle();
    });
    z.on("error", (e) => settle(new GzipPieceError(`${what}: ${e.message}`)));
    z.on("end", () => settle(new GzipPieceError(`${what} inflates to ${at} bytes, fewer than its ${target.length}`)));
    z.end(input);
  });
}
