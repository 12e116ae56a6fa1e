import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { decompress } from "fzstd";
import { expect, it } from "vitest";
import { zstdCompress, zstdFrames } from "./zstd.js";

it("compresses many times in one process, each output decoding to its input (the encoder is initialised once)", async () => {
  const inputs = [Buffer.alloc(3 << 20, "advisory "), randomBytes(100_000), Buffer.from("x"), Buffer.alloc(0), Buffer.alloc(2 << 20, "y")];
  for (const data of inputs) {
    const z = await zstdCompress(data, 3);
    expect(Buffer.from(decompress(z)).equals(data)).toBe(true);
  }
});

it("compresses a stream as independent frames that the real zstd decodes as one stream, a frame per piece of input", async () => {
  // Compressible and not: text repeated, then random bytes, fed in odd-sized chunks.
  const data = Buffer.concat([Buffer.alloc(700_000, "advisory text "), randomBytes(300_000), Buffer.alloc(123_457, "z")]);
  const chunks = [];
  for (let i = 0; i < data.length; i += 77_777) chunks.push(data.subarray(i, i + 77_777));
  const out: Buffer[] = [];
  for await (const f of zstdFrames({ level: 3, frameBytes: 256 * 1024 })(Readable.from(chunks))) out.push(f);
  expect(out.length).toBe(Math.ceil(data.length / (256 * 1024)));
  const z = Buffer.concat(out);
  // The oracle: the zstd CLI decodes it, and counts that many frames.
  expect(execFileSync("zstd", ["-q", "-d", "-c"], { input: z, maxBuffer: 1 << 26 }).equals(data)).toBe(true);
  const dir = mkdtempSync(join(tmpdir(), "portcullis-zstd-"));
  try {
    writeFileSync(join(dir, "f.zst"), z);
    const listed = execFileSync("zstd", ["-l", join(dir, "f.zst")]).toString().split("\n")[1]!.trim().split(/\s+/);
    expect(Number(listed[0])).toBe(out.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  expect(Buffer.from(decompress(z)).equals(data)).toBe(true);
  const empty: Buffer[] = [];
  for await (const f of zstdFrames()(Readable.from([]))) empty.push(f);
  expect(empty).toEqual([]);
});
