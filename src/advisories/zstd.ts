// zstd compression for bundles (Node 20's zlib has none; fzstd only decodes). @bokuweb/zstd-wasm must be
// initialised exactly once per process: a second init() leaves its heap views stale and later outputs
// come back as zeros, so init is memoised here, and every output is decoded again and compared before
// it is used: an archive tool that can silently write garbage must be checked.
import { createHash } from "node:crypto";
import { compress, init } from "@bokuweb/zstd-wasm";
import { decompress } from "fzstd";

let ready: Promise<void> | undefined;

export async function zstdCompress(data: Buffer, level = 10): Promise<Buffer> {
  ready ??= init();
  await ready;
  const out = Buffer.from(compress(data, level));
  const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  let back: Uint8Array | undefined;
  try {
    back = decompress(out);
  } catch {
    back = undefined;
  }
  if (!back || back.length !== data.length || digest(back) !== digest(data)) {
    throw Object.assign(new Error("zstd compression produced output that does not decode to its input"), { code: "ZSTD_SELF_CHECK" });
  }
  return out;
}
