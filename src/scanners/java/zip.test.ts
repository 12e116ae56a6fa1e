// Hostile jars: directory records that share one entry's data (overlapping, or at one offset), the inflate
// budget shared by an archive's entries and nested archives, and the nesting depth.
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { MapLayerFiles } from "../testing.js";
import { inflateBudget, JavaScanner, javaPackages, MAX_NESTED_DEPTH } from "./java.js";
import { jarBomb, records, withDuplicatedRecords, withRecords } from "./testing.js";
import { listZip, readZipEntry, ZipError } from "./zip.js";

const POM = "groupId=org.example\nartifactId=app\nversion=1.0\n";
const pom = (artifact: string) => new TextEncoder().encode(`groupId=org.example\nartifactId=${artifact}\nversion=1.0\n`);

describe("hostile zip archives", () => {
  const zeros = new Uint8Array(8 * 1024 * 1024);

  it("refuses a 64 KB jar whose 100 directory records all point at one 60 MiB deflated entry, inflating nothing", async () => {
    const bomb = jarBomb();
    expect(bomb.length).toBeLessThan(72 * 1024);
    expect(listZip.bind(null, bomb)).toThrow(ZipError);
    expect(listZip.bind(null, bomb)).toThrow(/entries lib\/big\.jar and lib\/big\.jar start at the same offset \d+: refused as a zip bomb/);
    const budget = { left: inflateBudget(bomb.length) };
    const before = budget.left;
    await expect(javaPackages(bomb, "opt/app/bomb.jar", 0, budget)).rejects.toMatchObject({ code: "ZIP_BOMB" });
    expect(budget.left).toBe(before);
    // The scanner fails the layer with the code and the jar's path: skipped, the jar would hide what it holds.
    await expect(new JavaScanner().scan(MapLayerFiles.of({ "opt/app/bomb.jar": bomb }))).rejects.toMatchObject({
      code: "ZIP_BOMB", path: "opt/app/bomb.jar", message: expect.stringMatching(/^java: opt\/app\/bomb\.jar: entries lib\/big\.jar and lib\/big\.jar start at the same offset/),
    });
    // The same archive without the copies is read.
    const sound = Buffer.from(zipSync({ "META-INF/maven/org.example/app/pom.properties": new TextEncoder().encode(POM), "lib/big.bin": zeros }));
    expect((await javaPackages(sound, "opt/app/app.jar")).map((p) => `${p.name} ${p.version}`)).toEqual(["org.example:app 1.0"]);
  });

  it("refuses entries whose data overlap, and 65,534 records of one entry as cheaply as 100", () => {
    // A stored entry a.bin whose data is itself a zip: a record for the b.bin inside it points into a.bin's data.
    const innerZip = Buffer.from(zipSync({ "b.bin": [zeros, { level: 9 }] }));
    const outer = Buffer.from(zipSync({ "a.bin": [innerZip, { level: 0 }] }));
    const dataStart = 30 + outer.readUInt16LE(26) + outer.readUInt16LE(28);
    const b = Buffer.from(records(innerZip).get("b.bin")!);
    b.writeUInt32LE(dataStart, 42);
    const overlapping = withRecords(outer, [b]);
    expect(listZip.bind(null, overlapping)).toThrow(expect.objectContaining({ code: "ZIP_BOMB", message: "entries a.bin and b.bin overlap: refused as a zip bomb" }));
    // The most records a plain directory counts (65,535 means "see the zip64 record"): all refused, no inflating.
    const many = withDuplicatedRecords({ "a.bin": new Uint8Array(1024) }, "a.bin", 65_533);
    expect(listZip.bind(null, many)).toThrow(expect.objectContaining({ code: "ZIP_BOMB" }));
    const tooMany = withDuplicatedRecords({ "a.bin": new Uint8Array(1024) }, "a.bin", 65_534);
    expect(listZip.bind(null, tooMany)).toThrow(expect.objectContaining({ code: "BAD_ZIP", message: "zip64 locator missing" }));
  });

  it("shares an inflate budget across an archive's entries", async () => {
    const buf = Buffer.from(zipSync({ "a.bin": zeros, "b.bin": zeros }, { level: 9 }));
    const [a, b] = listZip(buf);
    const budget = { left: 10 * 1024 * 1024 };
    expect(await readZipEntry(buf, a!, 64 << 20, budget)).toHaveLength(zeros.length);
    expect(budget.left).toBe(2 * 1024 * 1024);
    await expect(readZipEntry(buf, b!, 64 << 20, budget)).rejects.toMatchObject({ code: "ZIP_LIMIT", message: expect.stringMatching(/b\.bin: inflates to more than 2097152 bytes \(the archive's inflate budget\)/) });
    await expect(readZipEntry(buf, b!, 1024)).rejects.toThrow(/b\.bin: 8388608 bytes, over 1024/);
  });

  it("stops an entry at the size its directory record declares", async () => {
    const buf = Buffer.from(zipSync({ "a.bin": zeros }, { level: 9 }));
    const cd = buf.readUInt32LE(buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])) + 16);
    buf.writeUInt32LE(1 << 20, cd + 24);
    const [a] = listZip(buf);
    const budget = { left: 64 << 20 };
    await expect(readZipEntry(buf, a!, 64 << 20, budget)).rejects.toMatchObject({ code: "ZIP_BOMB", message: "a.bin: inflates past the 1048576 bytes its directory record declares" });
    expect(budget.left).toBe(64 << 20);
    buf.writeUInt32LE(zeros.length + 1, cd + 24);
    await expect(readZipEntry(buf, listZip(buf)[0]!, 64 << 20)).rejects.toMatchObject({ code: "BAD_ZIP", message: `a.bin: inflates to ${zeros.length} bytes, not the ${zeros.length + 1} its directory record declares` });
  });

  it("bounds what one small archive may inflate, nested archives included", async () => {
    // A 40 MiB jar of stored zeros, deflated into a jar of a few KB: over 16 MiB + 8x the outer's size.
    const inner = Buffer.from(zipSync({ "META-INF/maven/org.example/inner/pom.properties": pom("inner"), "zeros.bin": [new Uint8Array(40 * 1024 * 1024), { level: 0 }] }));
    const outer = Buffer.from(zipSync({ "META-INF/maven/org.example/outer/pom.properties": pom("outer"), "lib/inner.jar": inner }, { level: 9 }));
    expect(outer.length).toBeLessThan(256 * 1024);
    expect(inflateBudget(outer.length)).toBeLessThan(inner.length);
    await expect(javaPackages(outer, "opt/app/outer.jar")).rejects.toMatchObject({ code: "ZIP_LIMIT", message: expect.stringMatching(/lib\/inner\.jar: inflates to more than \d+ bytes \(the archive's inflate budget\)/) });
    // Stored, the same inner archive costs no inflating and is read.
    const stored = Buffer.from(zipSync({ "META-INF/maven/org.example/outer/pom.properties": pom("outer"), "lib/inner.jar": [inner, { level: 0 }] }));
    expect((await javaPackages(stored, "opt/app/outer.jar")).map((p) => p.name)).toEqual(["org.example:outer", "org.example:inner"]);
  });

  it("passes over a manifest or pom.properties over 1 MiB (a signed jar's manifest may be) instead of failing", async () => {
    const big = Buffer.from(`Manifest-Version: 1.0\nImplementation-Title: lib\nImplementation-Version: 2.0\n\n${"Name: a.class\nSHA-256-Digest: x\n\n".repeat(40_000)}`);
    expect(big.length).toBeGreaterThan(1 << 20);
    const jar = Buffer.from(zipSync({ "META-INF/MANIFEST.MF": big, "META-INF/maven/x/y/pom.properties": Buffer.alloc((1 << 20) + 1, 0x23) }));
    expect((await javaPackages(jar, "opt/lib-1.0.jar")).map((p) => `${p.name} ${p.version}`)).toEqual(["lib 1.0"]);
  });

  it(`opens archives nested ${MAX_NESTED_DEPTH} deep, not deeper`, async () => {
    let jar = Buffer.from(zipSync({ "META-INF/maven/org.example/d5/pom.properties": pom("d5") }));
    for (let d = 4; d >= 0; d--) jar = Buffer.from(zipSync({ [`META-INF/maven/org.example/d${d}/pom.properties`]: pom(`d${d}`), [`lib/d${d + 1}.jar`]: jar }));
    expect((await javaPackages(jar, "opt/app/d0.jar")).map((p) => p.name)).toEqual(["org.example:d0", "org.example:d1", "org.example:d2", "org.example:d3"]);
  });
});
