// Hostile jars: overlapping entries (one deflated entry named by many directory records) and an inflate
// budget shared by an archive's entries and nested archives.
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { MapLayerFiles } from "../testing.js";
import { JavaScanner, javaPackages } from "./java.js";
import { listZip, readZipEntry, ZipError } from "./zip.js";

const POM = "groupId=org.example\nartifactId=app\nversion=1.0\n";

/** A real zip (fflate), then its central directory record for `victim` appended `copies` more times. */
function withDuplicatedRecords(files: Record<string, Uint8Array>, victim: string, copies: number): Buffer {
  const buf = Buffer.from(zipSync(files, { level: 9 }));
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const cdSize = buf.readUInt32LE(eocd + 12);
  const cdOffset = buf.readUInt32LE(eocd + 16);
  let p = cdOffset;
  let record: Buffer | undefined;
  while (p < cdOffset + cdSize) {
    const len = 46 + buf.readUInt16LE(p + 28) + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
    if (buf.toString("utf8", p + 46, p + 46 + buf.readUInt16LE(p + 28)) === victim) record = buf.subarray(p, p + len);
    p += len;
  }
  const extra = Buffer.concat(Array.from({ length: copies }, () => record!));
  const tail = Buffer.from(buf.subarray(eocd));
  tail.writeUInt16LE(tail.readUInt16LE(8) + copies, 8);
  tail.writeUInt16LE(tail.readUInt16LE(10) + copies, 10);
  tail.writeUInt32LE(cdSize + extra.length, 12);
  return Buffer.concat([buf.subarray(0, eocd), extra, tail]);
}

describe("hostile zip archives", () => {
  const zeros = new Uint8Array(8 * 1024 * 1024);

  it("refuses an archive whose directory records share one entry's data (a zip bomb)", async () => {
    const bomb = withDuplicatedRecords({ "META-INF/maven/org.example/app/pom.properties": new TextEncoder().encode(POM), "lib/big.jar": zeros }, "lib/big.jar", 100);
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(() => listZip(bomb)).toThrow(ZipError);
    expect(() => listZip(bomb)).toThrow(/lib\/big\.jar and lib\/big\.jar overlap: refused as a zip bomb/);
    // The scanner skips it (a file named .jar that is not a sound zip), without inflating anything.
    expect((await new JavaScanner().scan(MapLayerFiles.of({ "opt/app/bomb.jar": bomb }))).packages).toEqual([]);
    // The same archive without the copies is read.
    const sound = Buffer.from(zipSync({ "META-INF/maven/org.example/app/pom.properties": new TextEncoder().encode(POM), "lib/big.bin": zeros }));
    expect(javaPackages(sound, "opt/app/app.jar").map((p) => `${p.name} ${p.version}`)).toEqual(["org.example:app 1.0"]);
  });

  it("shares an inflate budget across an archive's entries", () => {
    const buf = Buffer.from(zipSync({ "a.bin": zeros, "b.bin": zeros }, { level: 9 }));
    const [a, b] = listZip(buf);
    const budget = { left: 10 * 1024 * 1024 };
    expect(readZipEntry(buf, a!, 64 << 20, budget)).toHaveLength(zeros.length);
    expect(budget.left).toBe(2 * 1024 * 1024);
    expect(() => readZipEntry(buf, b!, 64 << 20, budget)).toThrow(/b\.bin: inflates to more than 2097152 bytes \(the archive's inflate budget\)/);
    expect(() => readZipEntry(buf, b!, 1024)).toThrow(/b\.bin: 8388608 bytes, over 1024/);
  });
});
