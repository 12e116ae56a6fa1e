// The bounded streaming zstd decoder against archives written by the real zstd command-line tool.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { decodePieces } from "./toc/frames.js";
import { boundedZstdDecoder, DEFAULT_MAX_ZSTD_WINDOW, ONE_SHOT_MAX } from "./zstd.js";

/**
 * Compresses with the zstd CLI (the oracle), with its arguments, from stdin as `tar | zstd` does: the
 * frame then has a window descriptor and no content size (magic, descriptor, window byte, blocks).
 */
function zstdCli(data: Buffer, ...args: string[]): Buffer {
  return execFileSync("zstd", ["-q", "-c", ...args], { input: data, maxBuffer: 1 << 30 });
}

async function decode(z: Buffer, limits: Partial<{ maxWindow: number; maxOutput: number }> = {}, chunk = 4096): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks = [];
  for (let i = 0; i < z.length; i += chunk) chunks.push(z.subarray(i, i + chunk));
  await pipeline(
    Readable.from(chunks),
    boundedZstdDecoder({ maxWindow: DEFAULT_MAX_ZSTD_WINDOW, maxOutput: 1 << 30, name: "test.zst", ...limits }),
    new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) }),
  );
  return Buffer.concat(parts);
}

describe("boundedZstdDecoder", () => {
  const text = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `{"cve":"CVE-2024-${i}","product":"red_hat_enterprise_linux_${i % 10}"}\n`).join(""));

  it("decodes many small frames as zstd:chunked writes them (large declared windows, a frame under 18 bytes), in order", async () => {
    // One frame per file, as skopeo's zstd:chunked layers are: frames with and without a content size, some
    // declaring a 32 MiB window (--long=25), and a frame of a single byte (11 bytes: fzstd's streaming
    // decoder holds such a frame back until more input comes).
    const files = Array.from({ length: 60 }, (_, i) => text.subarray(i * 1000, i * 1000 + 500 + (i % 7) * 300));
    const frames = files.map((f, i) => (i % 3 === 0 ? zstdCli(f, "--long=25", "--no-content-size") : i % 3 === 1 ? zstdCli(f, "--long=25") : zstdCli(f)));
    const one = zstdCli(Buffer.from("x"), "--no-content-size");
    expect(one.length).toBeLessThan(18);
    frames.splice(30, 0, one);
    const all = Buffer.concat(frames);
    const expected = execFileSync("zstd", ["-q", "-dc"], { input: all, maxBuffer: 1 << 30 });
    expect((await decode(all, {}, 65536)).equals(expected)).toBe(true);
    expect((await decode(all, {}, 5)).equals(expected)).toBe(true);
  }, 60_000);

  it("decodes what zstd wrote, at several levels, with checksums, several frames and a skippable frame", async () => {
    for (const args of [["-1"], ["-19"], ["-3", "--no-check"]]) {
      expect((await decode(zstdCli(text, ...args), {}, 7777)).equals(text)).toBe(true);
    }
    // Two frames back to back (what `cat a.zst b.zst` gives) and a skippable frame between them.
    const small = text.subarray(0, 200_000);
    const a = zstdCli(small.subarray(0, 50_000));
    const b = zstdCli(small.subarray(50_000));
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from("abc")]);
    expect((await decode(Buffer.concat([a, skippable, b]), {}, 1)).equals(small)).toBe(true);
  }, 60_000);

  it("refuses a frame that declares a window over the limit before allocating it", async () => {
    // A real frame whose window descriptor is rewritten to 2 GiB (exponent 21): a hostile header. The
    // real zstd refuses it too without --memory.
    const big = zstdCli(text, "-3");
    big[5] = 21 << 3;
    await expect(decode(big)).rejects.toMatchObject({ code: "ZSTD_WINDOW_TOO_LARGE", message: expect.stringMatching(/test\.zst: a zstd frame declares a window of 2147483648 bytes, more than the 134217728 accepted/) });
    expect(() => execFileSync("zstd", ["-dc", "-q"], { input: big, stdio: ["pipe", "ignore", "pipe"] })).toThrow();
    // A lower limit applies to ordinary frames too (level 19 on this input: a window above 1 MiB).
    await expect(decode(zstdCli(text, "-19"), { maxWindow: 64 * 1024 })).rejects.toMatchObject({ code: "ZSTD_WINDOW_TOO_LARGE" });
  }, 60_000);

  it("calls a stream cut inside a frame truncated, and garbage invalid", async () => {
    const z = zstdCli(text, "-3");
    for (const cut of [3, 10, z.length >> 1, z.length - 1]) {
      await expect(decode(z.subarray(0, cut))).rejects.toMatchObject({ code: "ZSTD_TRUNCATED", message: "test.zst is truncated: it ends inside a zstd frame" });
    }
    await expect(decode(Buffer.from("not zstd at all"))).rejects.toMatchObject({ code: "ZSTD_INVALID", message: expect.stringMatching(/^test\.zst is not zstd data/) });
    // A block header with the reserved type (fzstd does not check the content checksum, so a flipped byte
    // inside a block is found later, by the tar walk or the JSON parser).
    const reserved = Buffer.from(z);
    const at = 4 + 1 + 1; // magic, descriptor, window byte: the first block header
    reserved[at] = (reserved[at]! & ~0x06) | 0x06;
    await expect(decode(reserved)).rejects.toMatchObject({ code: "ZSTD_INVALID" });
  });

  it("keeps to backpressure: 256 MiB that compress to a few KiB are never all in memory", async () => {
    const z = execFileSync("sh", ["-c", "head -c 268435456 /dev/zero | zstd -q -c -19"], { maxBuffer: 1 << 24 });
    expect(z.length).toBeLessThan(64 * 1024);
    let n = 0;
    let peak = 0;
    const base = process.memoryUsage().arrayBuffers;
    await pipeline(
      Readable.from([z]),
      boundedZstdDecoder({ maxWindow: DEFAULT_MAX_ZSTD_WINDOW, maxOutput: 1 << 30, name: "zeros.zst" }),
      new Writable({
        highWaterMark: 1 << 16,
        write: (c: Buffer, _e, cb) => {
          n += c.length;
          if ((n & ((1 << 24) - 1)) < c.length) peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
          setImmediate(cb);
        },
      }),
    );
    expect(n).toBe(268435456);
    expect(peak).toBeLessThan(64 << 20);
  }, 60_000);

  it("stops past the decompressed size cap", async () => {
    await expect(decode(zstdCli(text, "-3"), { maxOutput: 1 << 20 })).rejects.toMatchObject({ code: "ZSTD_TOO_LARGE", message: `test.zst decompresses to more than the ${1 << 20} bytes accepted` });
  });

  it(`never decodes more than ${ONE_SHOT_MAX} bytes in one call, and gives the event loop turns meanwhile`, async () => {
    // 12 MiB of text as one frame that declares its content size (a file, not stdin), held whole (under 4 MiB
    // compressed): one fzstd call for all of it held the event loop for up to a second.
    const big = Buffer.concat([text, text, text, text, text, text, text, text, text, text, text, text]).subarray(0, 12 << 20);
    const dir = mkdtempSync(join(tmpdir(), "zstd-"));
    writeFileSync(join(dir, "big"), big);
    const z = execFileSync("zstd", ["-q", "-c", "-3", join(dir, "big")], { maxBuffer: 1 << 30 });
    rmSync(dir, { recursive: true });
    expect(z.length).toBeLessThan(4 << 20);
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const sizes: number[] = [];
    await pipeline(
      Readable.from([z]),
      boundedZstdDecoder({ maxWindow: DEFAULT_MAX_ZSTD_WINDOW, maxOutput: 1 << 30, name: "big.zst" }),
      new Writable({ write: (c: Buffer, _e, cb) => (sizes.push(c.length), cb()) }),
    );
    ticking = false;
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(big.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(ONE_SHOT_MAX);
    expect(turns).toBeGreaterThan(1);
    // A zstd:chunked piece of the same size decodes through the bounded decoder too, into exactly its size.
    const out = await decodePieces(z, 0, [{ offset: 0, end: z.length, size: big.length }], "big.zst", DEFAULT_MAX_ZSTD_WINDOW);
    expect(out.equals(big)).toBe(true);
    await expect(decodePieces(z, 0, [{ offset: 0, end: z.length, size: big.length + 1 }], "big.zst", DEFAULT_MAX_ZSTD_WINDOW)).rejects.toMatchObject({ code: "ZSTD_INVALID" });
    await expect(decodePieces(z, 0, [{ offset: 0, end: z.length, size: big.length - 1 }], "big.zst", DEFAULT_MAX_ZSTD_WINDOW)).rejects.toMatchObject({ code: "ZSTD_TOO_LARGE" });
    const hostile = Buffer.from(zstdCli(text, "-3"));
    hostile[5] = 21 << 3;
    await expect(decodePieces(hostile, 0, [{ offset: 0, end: hostile.length, size: 2 << 20 }], "hostile.zst", DEFAULT_MAX_ZSTD_WINDOW)).rejects.toMatchObject({ code: "ZSTD_WINDOW_TOO_LARGE" });
  }, 60_000);
});
