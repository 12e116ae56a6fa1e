// A bounded streaming zstd decoder for untrusted input (image layers, advisory archives). fzstd decodes;
// this walks the frame structure first so that a frame declaring a huge window is refused before fzstd
// allocates it, the output is capped, and input is fed a block at a time under backpressure.
import { Duplex, Readable } from "node:stream";
import { setImmediate as turn } from "node:timers/promises";
import { Decompress, decompress } from "fzstd";
import { PortcullisError } from "../errors.js";

/** zstd's own default limit on a decoder's window (windowLog 27): the CLI refuses more without `--memory`. */
export const DEFAULT_MAX_ZSTD_WINDOW = 128 * 1024 * 1024;

export interface ZstdLimits {
  /** Largest window a frame may declare (the decoder allocates it up front). */
  maxWindow: number;
  /** Most bytes decompressed in all. */
  maxOutput: number;
  /** Names the input in errors. */
  name: string;
}

export class ZstdStreamError extends PortcullisError {
  readonly domain = "layer";
  override name = "ZstdStreamError";
  constructor(readonly code: "ZSTD_WINDOW_TOO_LARGE" | "ZSTD_TOO_LARGE" | "ZSTD_INVALID" | "ZSTD_TRUNCATED", message: string) {
    super(message);
  }
}

const ZSTD_MAGIC = 0xfd2fb528;
/** Frames of at most this many compressed bytes are held whole before decoding (see boundedZstdDecoder). */
const HOLD_MAX = 4 << 20;
/**
 * A frame declaring at most this content size is decoded in one call into a buffer of that size; larger ones
 * a block (128 KiB) per call. fzstd decodes at 20 to 100 MB/s: one call for a 16 MiB frame held the event
 * loop 0.15 to 1 s.
 */
export const ONE_SHOT_MAX = 1 << 20;

/** Makes an output buffer's `== 1` test cheap (see decompressInto). */
const NOT_ONE = { value: (): number => NaN };

/**
 * fzstd's one-shot decompress(input, target): the frames' bytes end up in `target`. fzstd 0.1.1 tests its
 * second argument with `w == 1`, which converts a given buffer to a primitive: Buffer's toString() decodes
 * the whole buffer as UTF-8, a typed array's joins every byte into a string. That took two thirds of the time
 * of decoding (measured: a 683 KiB frame in 12.8 ms, 2.4 to 4.2 ms without it), so the target gets its own
 * Symbol.toPrimitive first. fzstd decodes in place and answers the whole target (it does not say how much it
 * wrote); should it answer another buffer, that one must be the target's size and is copied in.
 */
export function decompressInto(input: Uint8Array, target: Uint8Array): void {
  Object.defineProperty(target, Symbol.toPrimitive, NOT_ONE);
  const got = decompress(input, target);
  if (got.buffer === target.buffer && got.byteOffset === target.byteOffset && got.length === target.length) return;
  if (got.length !== target.length) throw new ZstdStreamError("ZSTD_INVALID", `decodes to ${got.length} bytes, not ${target.length}`);
  target.set(got);
}
/** While a stream decodes, the event loop gets a turn at least this often (ms). */
const TURN_MS = 10;
/** The most a zstd block decodes to. */
const BLOCK_MAX = 128 * 1024;

/**
 * `frame` (one whole zstd frame) with its window descriptor lowered to what its blocks can decode to, when
 * that is less than it declares; the frame itself when not (a single-segment frame has no descriptor, and a
 * skippable frame none either).
 */
function narrowWindow(frame: Buffer, facts: FrameFacts): Buffer {
  if (facts.window === 0 || frame.length < 6 || (frame[4]! >> 5) & 1) return frame;
  const need = Math.max(facts.blocks, 1) * BLOCK_MAX;
  if (need >= facts.window) return frame;
  // Window_Descriptor: Exponent (5 bits) and Mantissa (3 bits); size = base + base/8 * mantissa, base = 2^(10+e).
  for (let e = 0; e < 32; e++) {
    const base = 2 ** (10 + e);
    for (let m = 0; m < 8; m++) {
      const size = base + (base / 8) * m;
      if (size >= need) {
        if (size >= facts.window) return frame;
        const copy = Buffer.from(frame);
        copy[5] = (e << 3) | m;
        return copy;
      }
    }
  }
  return frame;
}

/** What the frame walker knows of a frame once its header is read. */
interface FrameFacts {
  /** Frame_Content_Size, when the header declares it. */
  contentSize: number | undefined;
  /** The window the header declares (0 for a skippable frame). */
  window: number;
  /** Its blocks so far. */
  blocks: number;
}

/**
 * Follows the frame and block structure of a zstd stream without decoding it (RFC 8878, section 3.1):
 * it reads each frame header before the decoder sees it, so a frame that declares a window larger than
 * the limit (fzstd would allocate it, up to 2 GiB) is refused first, and it knows whether the input
 * ended at a frame boundary.
 */
class FrameWalker {
  private need = 4;
  private state: "magic" | "descriptor" | "header" | "skippable-size" | "block" | "skip" = "magic";
  private held: number[] = [];
  private descriptor = 0;
  private skip = 0;
  private afterSkip: "block" | "checksum-or-magic" | "magic" = "magic";
  /** Of the last walk(): the cuts where a frame (or a skippable frame) ends. */
  frameEnds: number[] = [];
  /** Of the last walk(): what was known of the frame each cut belongs to (see frameAt). */
  private sizes = new Map<number, FrameFacts>();
  /** The current frame's declared content size (Frame_Content_Size), when its header gives one. */
  contentSize: number | undefined;
  /** The current frame's window size as declared, and its blocks so far. */
  window = 0;
  blocks = 0;
  constructor(private readonly limits: ZstdLimits) {}

  /**
   * Checks `chunk`; throws before the decoder would see a bad header. Returns the offsets in `chunk`
   * where a block (or a skippable frame) ends: fed to the decoder in pieces cut there, each push
   * decodes at most one block (128 KiB), however well the input compresses.
   */
  walk(chunk: Uint8Array): number[] {
    const cuts: number[] = [];
    this.frameEnds = [];
    this.sizes = new Map();
    const cut = (at: number) => {
      cuts.push(at);
      this.sizes.set(at, { contentSize: this.contentSize, window: this.window, blocks: this.blocks });
      if (this.state === "magic") this.frameEnds.push(at);
    };
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "skip") {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0) {
          this.afterSkipDone();
          cut(i);
        }
        continue;
      }
      this.held.push(chunk[i++]!);
      if (this.held.length < this.need) continue;
      const b = this.held;
      this.held = [];
      this.step(b);
      if (this.state === "magic" || (this.state === "block" && this.need === 3 && this.held.length === 0)) cut(i);
    }
    return cuts;
  }

  /** What was known, at the cut `at` of the last walk(), of the frame it belongs to. */
  frameAt(at: number): FrameFacts {
    return this.sizes.get(at) ?? { contentSize: this.contentSize, window: this.window, blocks: this.blocks };
  }

  /** True when the input so far ends between frames. */
  atBoundary(): boolean {
    return this.state === "magic" && this.held.length === 0;
  }

  private afterSkipDone(): void {
    if (this.afterSkip === "block") this.expect("block", 3);
    else this.expect("magic", 4);
  }

  private expect(state: FrameWalker["state"], need: number): void {
    this.state = state;
    this.need = need;
  }

  private step(b: number[]): void {
    const { name } = this.limits;
    switch (this.state) {
      case "magic": {
        const magic = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
        if (magic === ZSTD_MAGIC) return this.expect("descriptor", 1);
        if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) return this.expect("skippable-size", 4);
        throw new ZstdStreamError("ZSTD_INVALID", `${name} is not zstd data (a frame starts with ${b.map((x) => x.toString(16).padStart(2, "0")).join(" ")})`);
      }
      case "skippable-size": {
        this.contentSize = undefined;
        this.window = 0;
        this.blocks = 0;
        this.skip = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
        this.afterSkip = "magic";
        if (this.skip === 0) return this.expect("magic", 4);
        return this.expect("skip", 0);
      }
      case "descriptor": {
        const d = b[0]!;
        if (d & 0x08) throw new ZstdStreamError("ZSTD_INVALID", `${name}: a zstd frame header sets its reserved bit`);
        this.descriptor = d;
        const singleSegment = (d >> 5) & 1;
        const dictBytes = [0, 1, 2, 4][d & 3]!;
        const fcsFlag = d >> 6;
        const fcsBytes = fcsFlag === 0 ? singleSegment : [1, 2, 4, 8][fcsFlag]!;
        const len = (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
        this.contentSize = undefined;
        this.window = 0;
        this.blocks = 0;
        if (len === 0) return this.expect("block", 3);
        return this.expect("header", len);
      }
      case "header": {
        const d = this.descriptor;
        const singleSegment = (d >> 5) & 1;
        const dictBytes = [0, 1, 2, 4][d & 3]!;
        const fcsFlag = d >> 6;
        const fcsBytes = fcsFlag === 0 ? singleSegment : [1, 2, 4, 8][fcsFlag]!;
        let fcs: number | undefined;
        if (fcsBytes > 0) {
          fcs = 0;
          const at = (singleSegment ? 0 : 1) + dictBytes;
          for (let k = fcsBytes - 1; k >= 0; k--) fcs = fcs * 256 + b[at + k]!;
          if (fcsBytes === 2) fcs += 256;
        }
        this.contentSize = fcs;
        let window: number;
        if (!singleSegment) {
          const wd = b[0]!;
          const base = 2 ** (10 + (wd >> 3));
          window = base + (base / 8) * (wd & 7);
        } else {
          window = fcs!;
        }
        this.window = window;
        if (window > this.limits.maxWindow) {
          throw new ZstdStreamError("ZSTD_WINDOW_TOO_LARGE", `${name}: a zstd frame declares a window of ${window} bytes, more than the ${this.limits.maxWindow} accepted${this.limits.maxWindow === DEFAULT_MAX_ZSTD_WINDOW ? " (zstd's own default limit)" : ""}`);
        }
        return this.expect("block", 3);
      }
      case "block": {
        const h = b[0]! | (b[1]! << 8) | (b[2]! << 16);
        const last = h & 1;
        const type = (h >> 1) & 3;
        const size = h >>> 3;
        if (type === 3) throw new ZstdStreamError("ZSTD_INVALID", `${name}: a zstd block has the reserved block type`);
        if (size > 128 * 1024) throw new ZstdStreamError("ZSTD_INVALID", `${name}: a zstd block declares ${size} bytes, more than the format's 128 KiB`);
        this.blocks++;
        this.skip = type === 1 ? 1 : size;
        const checksum = (this.descriptor >> 2) & 1;
        this.afterSkip = last ? "magic" : "block";
        if (last && checksum) {
          // The block's content, then a 4-byte checksum, then the next frame.
          this.skip += 4;
        }
        if (this.skip === 0) return this.afterSkipDone();
        return this.expect("skip", 0);
      }
      default:
        throw new Error(`zstd frame walker in state ${this.state}`);
    }
  }
}

/**
 * A streaming zstd decoder (fzstd) that refuses frames declaring a window over `maxWindow` before
 * allocating it, stops past `maxOutput` bytes, calls an input that ends inside a frame truncated, and
 * keeps to backpressure: input is decoded a block at a time as the reader asks for more, so a small
 * archive that decompresses to gigabytes is never all in memory (one 1 MiB read of a 300:1 archive
 * would otherwise be 300 MB of output at once).
 */
export function boundedZstdDecoder(limits: ZstdLimits): Duplex {
  const asError = (e: unknown): Error =>
    e instanceof ZstdStreamError ? e : new ZstdStreamError("ZSTD_INVALID", `${limits.name} is not valid zstd data: ${(e as Error).message}`);
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const walker = new FrameWalker(limits);
    let out: Buffer[] = [];
    let total = 0;
    const count = (n: number) => {
      total += n;
      if (total > limits.maxOutput) throw new ZstdStreamError("ZSTD_TOO_LARGE", `${limits.name} decompresses to more than the ${limits.maxOutput} bytes accepted`);
    };
    const decoder = new Decompress((data) => {
      count(data.length);
      if (data.length) out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
    // A frame of at most HOLD_MAX compressed bytes is held whole before it is decoded. fzstd's streaming
    // decoder allocates the window a frame declares and shifts all of it after every block: for the many
    // small frames of a zstd:chunked layer (one or more per file, some declaring 32 MiB windows) that made a
    // full read about 20x slower than the same data as one frame. A held frame that declares its content
    // size (up to ONE_SHOT_MAX) is decoded in one call into a buffer of that size, with no window; one that
    // does not is decoded with its window cut to what its blocks can produce (no match can reach further
    // back than the frame's own output). Larger frames stream through `decoder` a block at a time.
    let streaming = false;
    let held: Buffer[] = [];
    let heldBytes = 0;
    let lastTurn = performance.now();
    /** Lets timers and I/O run when this decode has held the event loop for TURN_MS. */
    const breathe = async () => {
      if (performance.now() - lastTurn < TURN_MS) return;
      await turn();
      lastTurn = performance.now();
    };
    const drain = function* () {
      if (!out.length) return;
      const ready = out;
      out = [];
      yield* ready;
    };
    const flush = async function* (pieces: Buffer[]) {
      for (const piece of pieces) {
        decoder.push(piece);
        yield* drain();
        await breathe();
      }
    };
    for await (const chunk of source) {
      let cuts: number[];
      try {
        cuts = walker.walk(chunk);
      } catch (e) {
        throw asError(e);
      }
      const frameEnds = new Set(walker.frameEnds);
      let start = 0;
      for (const end of [...cuts, chunk.length]) {
        if (end <= start) continue;
        const piece = Buffer.from(chunk.buffer, chunk.byteOffset + start, end - start);
        start = end;
        try {
          if (streaming) yield* flush([piece]);
          else {
            held.push(piece);
            heldBytes += piece.length;
            if (heldBytes > HOLD_MAX) {
              streaming = true;
              const pieces = held;
              held = [];
              heldBytes = 0;
              yield* flush(pieces);
            }
          }
          if (!frameEnds.has(end)) continue;
          if (!streaming) {
            const pieces = held;
            held = [];
            const facts = walker.frameAt(end);
            const length = heldBytes;
            const frame = () => (pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, length));
            heldBytes = 0;
            if (facts.window === 0) {
              // A skippable frame: nothing to decode.
            } else if (facts.contentSize !== undefined && facts.contentSize <= ONE_SHOT_MAX) {
              count(facts.contentSize);
              if (facts.contentSize > 0) {
                const target = new Uint8Array(facts.contentSize);
                decompressInto(frame(), target);
                yield Buffer.from(target.buffer, target.byteOffset, target.byteLength);
                await breathe();
              }
            } else {
              // A decoder of its own, told the frame is whole (the shared one keeps a frame under 18 bytes back
              // until more input comes, and the next frame's output would overtake it), its window cut to what
              // the frame's blocks can produce, fed the pieces as cut: a block per call.
              const whole = new Decompress((data) => {
                count(data.length);
                if (data.length) out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
              });
              const narrowed = narrowWindow(frame(), facts);
              let at = 0;
              for (let k = 0; k < pieces.length; k++) {
                const n = pieces[k]!.length;
                whole.push(narrowed.subarray(at, at + n), k === pieces.length - 1);
                at += n;
                yield* drain();
                await breathe();
              }
            }
          }
          streaming = false;
        } catch (e) {
          throw asError(e);
        }
      }
    }
    if (!walker.atBoundary()) throw new ZstdStreamError("ZSTD_TRUNCATED", `${limits.name} is truncated: it ends inside a zstd frame`);
    try {
      decoder.push(new Uint8Array(0), true);
    } catch (e) {
      throw asError(e);
    }
    for (const b of out) yield b;
  });
}

/**
 * Checks that `data` is whole zstd frames and that none declares a window over `limits.maxWindow`, as the
 * streaming decoder would before decoding; throws ZstdStreamError otherwise.
 */
export function checkZstdFrames(data: Uint8Array, limits: ZstdLimits): void {
  const walker = new FrameWalker(limits);
  walker.walk(data);
  if (!walker.atBoundary()) throw new ZstdStreamError("ZSTD_TRUNCATED", `${limits.name} is truncated: it ends inside a zstd frame`);
}

/**
 * Decodes `input` (whole zstd frames) into exactly `target`, through the bounded decoder: never a window over
 * `maxWindow`, never more than `target.length` bytes, a block per call with turns for the event loop.
 * Throws ZstdStreamError (ZSTD_INVALID when it decodes to fewer bytes).
 */
export async function decodeZstdInto(input: Buffer, target: Buffer, limits: Omit<ZstdLimits, "maxOutput">): Promise<void> {
  let at = 0;
  for await (const c of Readable.from([input]).pipe(boundedZstdDecoder({ ...limits, maxOutput: target.length }))) {
    (c as Buffer).copy(target, at);
    at += (c as Buffer).length;
  }
  if (at !== target.length) throw new ZstdStreamError("ZSTD_INVALID", `${limits.name}: decodes to ${at} bytes, not ${target.length}`);
}
