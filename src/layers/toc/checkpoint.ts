// Inflating a gzip stream from the middle: from a checkpoint (zlib's zran.c calls it an access point) taken
// at the end of a deflate block: where the next block starts in the compressed stream (`in`, and `bits`: how
// many of the byte before it still belong to the next block, 0 to 7), where that is in the uncompressed
// stream (`out`), and the 32 KiB of uncompressed data before it (the window the next blocks' back-references
// reach into). SOCI's zTOCs and gztool's indexes both record exactly that.
//
// zlib resumes there with inflatePrime (the leftover bits) and inflateSetDictionary (the window). Node's zlib
// takes a dictionary for raw inflate but has no inflatePrime, and shifting the compressed bits to make the
// block start on a byte would break every later stored block (a stored block's length sits on the next byte
// boundary of the original stream). So the stream is primed another way: before the byte holding the
// leftover bits, a few empty, non-final deflate blocks are written, exactly as many bits long (8k + 8 - bits)
// that the leftover bits of that byte follow them and every later byte boundary stays a byte boundary. Empty
// blocks produce no output, so the window stays the history the back-references see.
//
// The empty blocks: a fixed-Huffman block holding only end-of-block is 10 bits (3 header, 7 code); a
// dynamic-Huffman block whose one literal/length code is end-of-block (and one distance code, both of length
// 1, the incomplete codes zlib accepts when a table has a single code) is 93 bits with 19 code-length code
// lengths. 10 = 2 (mod 8) and 93 = 5 (mod 8), so one dynamic block or none and up to three fixed blocks give
// every remainder 1..7.
import { constants, inflateRaw } from "node:zlib";

export const WINDOW_SIZE = 32 * 1024;

export interface Checkpoint {
  /** Offset in the compressed blob of the first whole byte of the next block. */
  in: number;
  /** Offset in the uncompressed stream. */
  out: number;
  /** Bits of the byte at `in - 1` that belong to the next block (its high bits), 0 to 7. */
  bits: number;
  /** The 32 KiB of uncompressed data before `out` (unused at out 0). */
  window: Buffer;
}

class BitWriter {
  private bytes: number[] = [];
  private acc = 0;
  private n = 0;
  length = 0;

  /** `count` bits of `value`, least significant first (deflate's order for header fields and extra bits). */
  put(value: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.acc |= ((value >> i) & 1) << this.n;
      this.length++;
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        this.acc = 0;
        this.n = 0;
      }
    }
  }

  /** The bits written; the last byte's unwritten high bits are 0. */
  finish(): Buffer {
    return Buffer.from(this.n ? [...this.bytes, this.acc] : this.bytes);
  }
}

/** An empty fixed-Huffman block, not final: 10 bits. */
function emptyFixed(w: BitWriter): void {
  w.put(0, 1); // BFINAL
  w.put(1, 2); // BTYPE 01
  w.put(0, 7); // end of block: code 256 is seven 0 bits
}

/** The order in which a dynamic block gives the code lengths of the code-length alphabet (RFC 1951, 3.2.7). */
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** An empty dynamic-Huffman block, not final: 93 bits. */
function emptyDynamic(w: BitWriter): void {
  w.put(0, 1); // BFINAL
  w.put(2, 2); // BTYPE 10
  w.put(0, 5); // HLIT: 257 literal/length codes
  w.put(0, 5); // HDIST: 1 distance code
  w.put(19 - 4, 4); // HCLEN: all 19 code-length code lengths
  // Code-length symbols 1 and 18 get length 1 (a complete code: 1 -> bit 0, 18 -> bit 1), the others none.
  for (const sym of CL_ORDER) w.put(sym === 1 || sym === 18 ? 1 : 0, 3);
  // Literal/length lengths: 256 zeros (symbol 18 repeats a zero 11 + 7 extra bits times: 138, then 118), then
  // length 1 for end-of-block; the one distance code: length 1.
  w.put(1, 1);
  w.put(138 - 11, 7);
  w.put(1, 1);
  w.put(118 - 11, 7);
  w.put(0, 1);
  w.put(0, 1);
  // The block's data: end-of-block, the one literal/length code, a 0 bit.
  w.put(0, 1);
}

/**
 * A raw deflate stream equivalent to the one starting at bit `8 - bits` of `data[0]` (data being the
 * compressed bytes from `in - 1`), with every later byte boundary where it was. `bits` 1..7.
 */
export function primedStream(data: Buffer, bits: number): Buffer {
  if (bits < 1 || bits > 7 || data.length === 0) throw new RangeError(`cannot prime a stream with ${bits} bits`);
  const used = 8 - bits; // bits of data[0] that belong to the block before
  const w = new BitWriter();
  if (used % 2) emptyDynamic(w);
  while (w.length % 8 !== used) emptyFixed(w);
  const prefix = w.finish();
  // The prefix's last byte holds its last `used` bits low; the leftover bits of data[0] go above them.
  prefix[prefix.length - 1] = prefix[prefix.length - 1]! | (data[0]! & ((0xff << used) & 0xff));
  return Buffer.concat([prefix, data.subarray(1)]);
}

export class CheckpointInflateError extends Error {
  override name = "CheckpointInflateError";
}

/**
 * Inflates from checkpoint `cp`: `data` is the compressed blob's bytes from the checkpoint (from `in - 1` when
 * it has bits) to where the caller stops needing them. Returns the uncompressed bytes from `out` on: exactly
 * `exact` bytes when given (fewer is an error; the stream is not asked for more), else until the deflate
 * stream ends, at most `max` bytes.
 */
export function inflateFrom(cp: Checkpoint, data: Buffer, want: { exact?: number; max: number }): Promise<Buffer> {
  const input = cp.bits ? primedStream(data, cp.bits) : data;
  const cap = want.exact ?? want.max;
  return new Promise((resolve, reject) => {
    inflateRaw(
      input,
      // Z_SYNC_FLUSH at the end of input: a span ends where the next begins, not where the stream does, so
      // running out of input there is not an error; the length check below is.
      { finishFlush: constants.Z_SYNC_FLUSH, chunkSize: 256 * 1024, maxOutputLength: Math.max(1, cap), ...(cp.out > 0 ? { dictionary: cp.window } : {}) },
      (e, out) => {
        if (e) return reject(new CheckpointInflateError(`inflating from the checkpoint at ${cp.in}${cp.bits ? ` (bit ${8 - cp.bits})` : ""}: ${e.message}`));
        if (want.exact !== undefined && out.length !== want.exact) return reject(new CheckpointInflateError(`inflating from the checkpoint at ${cp.in} gave ${out.length} bytes, not ${want.exact}`));
        resolve(out);
      },
    );
  });
}
