// zstd compression for bundles (Node 20's zlib has none; fzstd only decodes; @bokuweb/zstd-wasm compresses
// whole buffers only). @bokuweb/zstd-wasm must be initialised exactly once per process: a second init()
// leaves its heap views stale and later outputs come back as zeros, so init is memoised here, and every
// output is decoded again and compared before it is used: an archive tool that can silently write
// garbage must be checked.
//
// A stream is compressed as independent frames, one per `frameBytes` of input (RFC 8878 section 3.1: a
// zstd stream is a sequence of frames, and every decoder, the zstd CLI and fzstd included, reads them as
// one output). Memory is one frame's input and output, whatever the stream's length; the cost is that no
// match reaches across a frame boundary (measured by bench/redhat.ts: a few percent at 4 MiB frames).
import { compress, init } from "@bokuweb/zstd-wasm";
import { decompress } from "fzstd";

let ready: Promise<void> | undefined;

/** One frame of `data`, checked: it decodes back to `data` or this throws ZSTD_SELF_CHECK. */
export async function zstdCompress(data: Buffer, level = 10): Promise<Buffer> {
  ready ??= init();
  await ready;
  const out = Buffer.from(compress(data, level));
  let back: Uint8Array | undefined;
  try {
    back = decompress(out);
  } catch {
    back = undefined;
  }
  if (!back || back.length !== data.length || !Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(data)) {
    throw Object.assign(new Error("zstd compression produced output that does not decode to its input"), { code: "ZSTD_SELF_CHECK" });
  }
  return out;
}

/** Input per frame: large enough that the frame boundary costs little, small enough to hold twice. */
export const DEFAULT_FRAME_BYTES = 4 << 20;

/**
 * A streaming compressor (for `stream.pipeline`): the input cut into `frameBytes` pieces, each one
 * self-checked frame. Backpressure is the pipeline's: at most one piece of input is held.
 */
export function zstdFrames(o: { level?: number; frameBytes?: number } = {}): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  const size = o.frameBytes ?? DEFAULT_FRAME_BYTES;
  const level = o.level ?? 10;
  return async function* (source) {
    let held: Buffer[] = [];
    let n = 0;
    for await (const chunk of source) {
      let c = chunk;
      while (n + c.length >= size) {
        const take = size - n;
        held.push(c.subarray(0, take));
        c = c.subarray(take);
        yield await zstdCompress(Buffer.concat(held), level);
        held = [];
        n = 0;
      }
      if (c.length) {
        // A copy: the producer may reuse its buffer once it has been consumed.
        held.push(Buffer.from(c));
        n += c.length;
      }
    }
    if (n) yield await zstdCompress(Buffer.concat(held), level);
  };
}
