// The ELF reader against binutils' readelf on real executables (peers' cargo-auditable test programs and
// this machine's own), fed in chunks of several sizes as the layer walk would.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ElfStream, PT_LOAD } from "./elf.js";

const fixture = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/cargo/${name}`, import.meta.url));

function stream(b: Buffer, chunk: number): ElfStream {
  const s = new ElfStream();
  for (let i = 0; i < b.length; i += chunk) s.push(b.subarray(i, i + chunk));
  return s;
}

/** `readelf -S -W`: offset and size of every section, in table order. */
function readelfSections(path: string): Array<[number, number]> {
  const out = execFileSync("readelf", ["-S", "-W", path], { encoding: "utf8" });
  return [...out.matchAll(/^\s*\[\s*\d+\]\s+\S*\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/gm)].map((m) => [parseInt(m[1]!, 16), parseInt(m[2]!, 16)]);
}

/** `readelf -l -W`: the end in the file of the last PT_LOAD segment. */
function readelfLoadEnd(path: string): number {
  const out = execFileSync("readelf", ["-l", "-W", path], { encoding: "utf8" });
  return Math.max(...[...out.matchAll(/^\s*LOAD\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x([0-9a-f]+)/gm)].map((m) => parseInt(m[1]!, 16) + parseInt(m[2]!, 16)));
}

describe("ElfStream", () => {
  for (const path of [fixture("trivy-workspace.elf"), fixture("scalibr-uses_serde_json"), "/bin/ls"]) {
    it(`reads the section and program headers of ${path.split("/").pop()} as readelf does`, () => {
      const b = readFileSync(path);
      const want = readelfSections(path);
      expect(want.length).toBeGreaterThan(10);
      for (const chunk of [7, 4096, 65536]) {
        const s = stream(b, chunk);
        expect(s.sections()!.map((x) => [x.offset, x.size])).toEqual(want);
        expect(s.loadEnd()).toBe(readelfLoadEnd(path));
        expect(s.segments()!.some((x) => x.type === PT_LOAD)).toBe(true);
      }
    });
  }

  it("says no to what is not ELF, and has no tables for a file cut short", () => {
    expect(stream(Buffer.from("#!/bin/sh\necho hi\n".repeat(10)), 5).elf).toBe(false);
    const b = readFileSync(fixture("trivy-workspace.elf"));
    const cut = stream(b.subarray(0, b.length - 100), 4096);
    expect(cut.elf).toBe(true);
    expect(cut.sections()).toBeUndefined();
    expect(cut.loadEnd()).toBe(readelfLoadEnd(fixture("trivy-workspace.elf")));
  });

  it("keeps no table over the bound a hostile header declares", () => {
    const b = Buffer.from(readFileSync(fixture("trivy-workspace.elf")));
    b.writeUInt16LE(0xffff, 0x3c); // e_shnum: 65,535 entries of 64 bytes, 4 MiB
    expect(stream(b, 65536).sections()).toBeUndefined();
  });
});
