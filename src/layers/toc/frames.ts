import { Readable } from "node:stream";
import { MAX_LAYER_ZSTD_WINDOW } from "../decompress.js";
import { boundedZstdDecoder } from "../zstd.js";

/**
 * Decompresses complete zstd frames held in memory through the layer walk's bounded decoder (the same
 * window cap), refusing more than `maxOutput` bytes of output.
 */
export async function decompressFrames(compressed: Buffer, maxOutput: number, name: string): Promise<Buffer> {
  const out: Buffer[] = [];
  const decoder = Readable.from([compressed]).pipe(boundedZstdDecoder({ maxWindow: MAX_LAYER_ZSTD_WINDOW, maxOutput, name }));
  for await (const chunk of decoder) out.push(chunk as Buffer);
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}
