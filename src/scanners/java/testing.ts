// Hostile jars for tests: real zips (fflate) with central directory records added, as a zip bomb has them.
import { zipSync } from "fflate";

/** The central directory records of a zip, by name. */
export function records(buf: Buffer): Map<string, Buffer> {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const cdSize = buf.readUInt32LE(eocd + 12);
  const cdOffset = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let p = cdOffset; p < cdOffset + cdSize; ) {
    const len = 46 + buf.readUInt16LE(p + 28) + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
    out.set(buf.toString("utf8", p + 46, p + 46 + buf.readUInt16LE(p + 28)), buf.subarray(p, p + len));
    p += len;
  }
  return out;
}

/** `buf` with `extra` central directory records appended to its directory. */
export function withRecords(buf: Buffer, extra: Buffer[]): Buffer {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const added = Buffer.concat(extra);
  const tail = Buffer.from(buf.subarray(eocd));
  tail.writeUInt16LE(tail.readUInt16LE(8) + extra.length, 8);
  tail.writeUInt16LE(tail.readUInt16LE(10) + extra.length, 10);
  tail.writeUInt32LE(tail.readUInt32LE(12) + added.length, 12);
  return Buffer.concat([buf.subarray(0, eocd), added, tail]);
}

/** A real zip (fflate), then its central directory record for `victim` appended `copies` more times. */
export function withDuplicatedRecords(files: Record<string, Uint8Array>, victim: string, copies: number): Buffer {
  const buf = Buffer.from(zipSync(files, { level: 9 }));
  const record = records(buf).get(victim)!;
  return withRecords(buf, Array.from({ length: copies }, () => record));
}

/**
 * The crafted jar of issue 13: a pom.properties and one deflated entry of `entryBytes` zero bytes (60 MiB:
 * about 60 KB deflated), named by `records` directory records (100), all at the same offset. About 64 KB.
 */
export function jarBomb(entryBytes = 60 * 1024 * 1024, count = 100): Buffer {
  const pom = new TextEncoder().encode("groupId=org.example\nartifactId=app\nversion=1.0\n");
  return withDuplicatedRecords({ "META-INF/maven/org.example/app/pom.properties": pom, "lib/big.jar": new Uint8Array(entryBytes) }, "lib/big.jar", count - 1);
}
