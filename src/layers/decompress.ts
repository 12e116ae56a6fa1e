import { Transform, type TransformCallback } from "node:stream";
import { createGunzip } from "node:zlib";
import { Decompress as ZstdDecompress } from "fzstd";

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

/** A streaming zstd decoder (Node 20's zlib has none). fzstd is pure JS and keeps a bounded window. */
class ZstdTransform extends Transform {
  private readonly decoder: ZstdDecompress;
  constructor() {
    super();
    this.decoder = new ZstdDecompress((data) => {
      if (data.length) this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.decoder.push(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
  override _flush(cb: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
}

export function createDecompressor(kind: Compression): Transform {
  switch (kind) {
    case "gzip":
      // Multi-member gzip (eStargz) is decoded by zlib as one stream.
      return createGunzip({ chunkSize: 128 * 1024 });
    case "zstd":
      return new ZstdTransform();
    case "none":
      return new Transform({ transform: (chunk, _e, cb) => cb(null, chunk) });
  }
}
