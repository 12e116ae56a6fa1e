import { randomBytes } from "node:crypto";
import { decompress } from "fzstd";
import { expect, it } from "vitest";
import { zstdCompress } from "./zstd.js";

it("compresses many times in one process, each output decoding to its input (the encoder is initialised once)", async () => {
  const inputs = [Buffer.alloc(3 << 20, "advisory "), randomBytes(100_000), Buffer.from("x"), Buffer.alloc(0), Buffer.alloc(2 << 20, "y")];
  for (const data of inputs) {
    const z = await zstdCompress(data, 3);
    expect(Buffer.from(decompress(z)).equals(data)).toBe(true);
  }
});
