// Random access into an uncompressed tar file (oci-archive, docker-archive): one pass over the headers
// only, skipping contents with a seek, gives each member's offset and size; a member is then opened as a
// byte range of the file. Handles ustar prefixes, PAX `path` and GNU long names.
import { open } from "node:fs/promises";
import { PortcullisError } from "../../errors.js";

export interface TarMember {
  offset: number;
  size: number;
  type: string;
  linkname?: string;
}

function field(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString("utf8", start, end < 0 || end > start + len ? start + len : end);
}

function octal(buf: Buffer, start: number, len: number): number {
  // Base-256 for large sizes.
  if (buf[start]! & 0x80) {
    let n = 0;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + buf[i]!;
    return n;
  }
  const s = field(buf, start, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function normalize(name: string): string {
  return name.replace(/^(\.\/)+/, "").replace(/^\/+/, "");
}

export class TarFormatError extends PortcullisError {
  readonly domain = "indexer";
  readonly code = "TAR_INVALID";
  override name = "TarFormatError";
}

/** Maps each member path of the tar at `file` to where its bytes are. */
export async function indexTar(file: string): Promise<Map<string, TarMember>> {
  const fh = await open(file, "r");
  const members = new Map<string, TarMember>();
  try {
    const { size: total } = await fh.stat();
    const header = Buffer.alloc(512);
    let pos = 0;
    let longName: string | undefined;
    let paxPath: string | undefined;
    while (pos + 512 <= total) {
      const { bytesRead } = await fh.read(header, 0, 512, pos);
      if (bytesRead < 512) break;
      if (header.every((b) => b === 0)) break;
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
      if (sum !== octal(header, 148, 8)) throw new TarFormatError(`${file}: bad tar header checksum at byte ${pos}`);
      const size = octal(header, 124, 12);
      const type = String.fromCharCode(header[156]!) || "0";
      const dataStart = pos + 512;
      const next = dataStart + Math.ceil(size / 512) * 512;
      if (next > total + 512) throw new TarFormatError(`${file}: member at byte ${pos} runs past the end of the file`);
      if (type === "L" || type === "x") {
        const data = Buffer.alloc(Math.min(size, 1 << 20));
        await fh.read(data, 0, data.length, dataStart);
        if (type === "L") longName = field(data, 0, data.length);
        else {
          const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString("utf8"));
          if (m) paxPath = m[1];
        }
      } else if (type !== "g") {
        const prefix = header.toString("utf8", 257, 263).startsWith("ustar") ? field(header, 345, 155) : "";
        const base = field(header, 0, 100);
        const name = normalize(paxPath ?? longName ?? (prefix ? `${prefix}/${base}` : base));
        members.set(name, { offset: dataStart, size, type, linkname: field(header, 157, 100) || undefined });
        longName = undefined;
        paxPath = undefined;
      }
      pos = next;
    }
  } finally {
    await fh.close();
  }
  return members;
}
