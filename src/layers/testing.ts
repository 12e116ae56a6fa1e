// Hand-made layers for tests: tar-stream packs exactly the entries a test needs (whiteouts, links, long
// names, hostile paths), then gzip (zlib) or zstd (the zstd command) compress them.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { pack, type Headers } from "tar-stream";

export interface TarEntry {
  name: string;
  type?: Headers["type"];
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  /** Declared size, for hostile headers (defaults to the content's length). */
  size?: number;
  pax?: Record<string, string>;
}

export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    p.on("end", resolve);
    p.on("error", reject);
  });
  for (const e of entries) {
    const content = e.content === undefined ? undefined : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
    const header: Headers & { pax?: Record<string, string> } = { name: e.name, type: e.type ?? "file", mode: e.mode ?? 0o644, linkname: e.linkname, mtime: new Date(0) };
    if (e.pax) header.pax = e.pax;
    await new Promise<void>((resolve, reject) => {
      if (content !== undefined) p.entry({ ...header, size: content.length }, content, (err) => (err ? reject(err) : resolve()));
      else p.entry({ ...header, size: 0 }, (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function gzip(data: Buffer): Buffer {
  return gzipSync(data);
}

export function zstd(data: Buffer): Buffer {
  return execFileSync("zstd", ["-q", "-c", "-3"], { input: data });
}

export function digestOf(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/**
 * A real zstd frame of `data` (the zstd command) whose window descriptor is rewritten to declare 2^`log2`
 * bytes (31: 2 GiB, the hostile header that took a process to 2.0 GiB RSS). The frame has no content size, so
 * the descriptor is what a decoder would allocate.
 */
export function zstdDeclaringWindow(data: Buffer, log2 = 31): Buffer {
  const z = zstd(data);
  // magic (4), frame header descriptor (single segment off: the window byte follows).
  if ((z[4]! >> 5) & 1) throw new Error("the zstd command wrote a single-segment frame: no window byte to rewrite");
  z[5] = (log2 - 10) << 3;
  return z;
}

/**
 * A tar of `count` files of `size` zero bytes at `pathOf(i)`: a layer made only of files scanners want, each
 * under its own cap, that gzip makes about 1,000 times smaller than what it asks a walk to hold.
 */
export async function wantedFilesTar(count: number, size: number, pathOf: (i: number) => string = (i) => `usr/lib/node_modules/p${i}/package.json`): Promise<Buffer> {
  const content = Buffer.alloc(size, 0x20);
  return makeTar(Array.from({ length: count }, (_, i) => ({ name: pathOf(i), content })));
}
