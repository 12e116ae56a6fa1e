// The ELF reader against binutils' readelf on real executables (peers' cargo-auditable and Go test programs,
// this machine's own), fed in chunks of several sizes as the layer walk would, or read from their first bytes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { ElfStream, fileOffset, parseNotes, PF_W, PF_X, PT_LOAD, PT_NOTE, readElfHead, segmentFlagsAt } from "./elf.js";

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

describe("readElfHead and the address lookups", () => {
  // The Go test programs are stored gzipped; readelf wants a file.
  const tmp = mkdtempSync(join(tmpdir(), "elf-test-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const gobin = (name: string) => {
    const path = join(tmp, name);
    writeFileSync(path, gunzipSync(readFileSync(fileURLToPath(new URL(`../../../test/fixtures/gobin/${name}.gz`, import.meta.url)))));
    return path;
  };
  const files = [
    fixture("trivy-workspace.elf"), "/bin/ls",
    gobin("trivy-test.elf"), gobin("trivy-goexperiment"), gobin("scalibr-binary_with_module_replacement-linux-amd64"),
  ];

  for (const path of files) {
    it(`reads the loadable segments, notes and section addresses of ${path.split("/").pop()} as readelf does`, () => {
      const b = readFileSync(path);
      const elf = readElfHead(b.subarray(0, 64 * 1024));
      if (elf === "more" || elf === undefined) throw new Error(`readElfHead: ${elf}`);
      const loads = elf.segments.filter((s) => s.type === PT_LOAD);
      // `readelf -l -W`: LOAD offset vaddr paddr filesz memsz flags ("R E", "RW ").
      const want = [...execFileSync("readelf", ["-l", "-W", path], { encoding: "utf8" })
        .matchAll(/^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+(R?\s?W?\s?E?)\s+0x/gm)]
        .map((m) => ({ offset: parseInt(m[1]!, 16), vaddr: parseInt(m[2]!, 16), filesz: parseInt(m[3]!, 16), x: m[4]!.includes("E"), w: m[4]!.includes("W") }));
      expect(want.length).toBeGreaterThan(1);
      expect(loads.map((s) => ({ offset: s.offset, vaddr: s.vaddr, filesz: s.filesz, x: (s.flags & PF_X) !== 0, w: (s.flags & PF_W) !== 0 }))).toEqual(want);

      // `readelf -n`: the owner of every note (here all in PT_NOTE segments).
      const owners = [...execFileSync("readelf", ["-n", "-W", path], { encoding: "utf8" }).matchAll(/^\s{2}(\S+)\s+0x[0-9a-f]+\s/gm)].map((m) => m[1]!);
      const names = elf.segments.filter((s) => s.type === PT_NOTE)
        .flatMap((s) => parseNotes(elf.header, b.subarray(s.offset, s.offset + s.filesz)).map((n) => n.name.replace(/\0+$/, "")));
      expect(owners.length).toBeGreaterThan(0);
      expect([...new Set(names)].sort()).toEqual([...new Set(owners)].sort());

      // `readelf -S -W`: every loaded section (flag A) with bytes in the file is at the offset its address maps to.
      const sections = [...execFileSync("readelf", ["-S", "-W", path], { encoding: "utf8" })
        .matchAll(/^\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([A-Za-z]*)\s+\d+/gm)]
        .map((m) => ({ name: m[1]!, type: m[2]!, addr: parseInt(m[3]!, 16), offset: parseInt(m[4]!, 16), size: parseInt(m[5]!, 16), alloc: m[6]!.includes("A") }))
        .filter((s) => s.alloc && s.type !== "NOBITS" && s.size > 0);
      expect(sections.length).toBeGreaterThan(5);
      for (const s of sections) {
        expect(fileOffset(elf.segments, s.addr, s.size), s.name).toBe(s.offset);
        const seg = want.find((l) => s.offset >= l.offset && s.offset < l.offset + l.filesz)!;
        expect(((segmentFlagsAt(elf.segments, s.offset) ?? 0) & PF_X) !== 0, s.name).toBe(seg.x);
      }
      expect(fileOffset(elf.segments, 0xffff_ffff_0000, 16)).toBeUndefined();
    });
  }

  it('asks for "more" until the program headers are in, and refuses what is not ELF or is damaged', () => {
    const b = Buffer.from(readFileSync("/bin/ls"));
    expect(readElfHead(b.subarray(0, 3))).toBe("more");
    expect(readElfHead(b.subarray(0, 63))).toBe("more");
    expect(readElfHead(b.subarray(0, 64 + 56))).toBe("more"); // /bin/ls: 13 program headers at 64
    expect(readElfHead(Buffer.from("#!/bin/sh\n"))).toBeUndefined();
    b.writeUInt16LE(0xffff, 0x38); // e_phnum: 65,535 program headers
    expect(readElfHead(b)).toBeUndefined();
  });
});
