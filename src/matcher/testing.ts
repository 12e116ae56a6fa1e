// Test helpers for the matcher: images indexed by the real pipeline (tar layers → walkLayer → the default
// scanners → coalesce → buildReport, as the Indexer does minus the store), advisory fixtures parsed by the
// real parsers, and an in-memory candidate lookup with the store's contract (the affected rows of the
// given keys, withdrawn records left out).
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import type { Advisory, RawFile } from "../model/advisory.js";
import { buildReport, coalesce, type Coalesced, type CoalesceLayer } from "../indexer/coalesce.js";
import type { IndexReport } from "../model/index-report.js";
import { digestOf, gzip, makeTar, type TarEntry } from "../layers/testing.js";
import { walkLayer } from "../layers/walk.js";
import { defaultScanners } from "../scanners/index.js";
import { fixturesDir } from "../scanners/testing.js";
import type { Candidate, PackageKey } from "../store/advisory-types.js";
import type { CandidateLookup } from "./match.js";

export type { TarEntry };

/** A file of ../shared/fixtures/advisories as a RawFile with the path the source's updater gives it. */
export function advisoryFile(rel: string, path = rel): RawFile {
  return { path, bytes: readFileSync(fixturesDir("advisories", rel)) };
}

/** A package fixture file (`apk/alpine-3.18/installed`). */
export function packageFixture(rel: string): Buffer {
  return readFileSync(fixturesDir(rel));
}

/** Every affected row of `advisories` as the store's candidates of source `source`. */
export function candidatesOf(source: string, advisories: readonly Advisory[], operationRef = `${source}-op-1`): Candidate[] {
  return advisories.flatMap((a) => {
    const { affected, details: _details, ...advisory } = a;
    return affected.map((row) => ({ source, operationRef, advisory, affected: row }));
  });
}

/** AdvisoryStore.candidates over an in-memory list: the rows of those keys, withdrawn records excluded. */
export function inMemoryLookup(all: readonly Candidate[]): CandidateLookup & { asked: PackageKey[][] } {
  const asked: PackageKey[][] = [];
  const fn = async (keys: readonly PackageKey[]) => {
    asked.push([...keys]);
    const wanted = new Set(keys.map((k) => `${k.ecosystem}\0${k.name}`));
    return all.filter((c) => !c.advisory.withdrawn && wanted.has(`${c.affected.ecosystem}\0${c.affected.name}`));
  };
  return Object.assign(fn, { asked });
}

/** os-release texts of the releases the tests use, as those releases ship them. */
export const OS_RELEASE = {
  alpine318: 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME="Alpine Linux v3.18"\nHOME_URL="https://alpinelinux.org/"\n',
  ubuntu1804: 'NAME="Ubuntu"\nVERSION="18.04.6 LTS (Bionic Beaver)"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 18.04.6 LTS"\nVERSION_ID="18.04"\nVERSION_CODENAME=bionic\nUBUNTU_CODENAME=bionic\n',
  debian10: 'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nNAME="Debian GNU/Linux"\nVERSION_ID="10"\nVERSION="10 (buster)"\nVERSION_CODENAME=buster\nID=debian\n',
  debian12: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
  ubi8: 'NAME="Red Hat Enterprise Linux"\nVERSION="8.8 (Ootpa)"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="8.8"\nPLATFORM_ID="platform:el8"\nPRETTY_NAME="Red Hat Enterprise Linux 8.8 (Ootpa)"\nCPE_NAME="cpe:/o:redhat:enterprise_linux:8::baseos"\n',
};

/** Indexes an image made of these layers (bottom first) with Portcullis' default scanners. */
export async function indexImage(layers: TarEntry[][], manifest = `sha256:${"a".repeat(64)}`): Promise<IndexReport> {
  return buildReport(manifest, await coalescedImage(layers));
}

/** The coalesced packages of an image made of these layers (bottom first), with its layer digests. */
export async function coalescedImage(layers: TarEntry[][]): Promise<Coalesced & { layers: string[] }> {
  const scanners = defaultScanners();
  const stack: CoalesceLayer[] = [];
  for (const entries of layers) {
    const blob = gzip(await makeTar(entries));
    const digest = digestOf(blob);
    const walk = await walkLayer(Readable.from([blob]), { digest, size: blob.length, scanners });
    const outputs = [];
    for (const s of scanners) outputs.push(await s.scan(walk.files));
    stack.push({ digest, whiteouts: walk.whiteouts, opaqueDirs: walk.opaqueDirs, files: walk.files.paths(), outputs });
  }
  return { ...coalesce(stack), layers: stack.map((l) => l.digest) };
}

/** The report's package ids by `name@version`. */
export function packageIds(report: IndexReport): Map<string, string> {
  return new Map(Object.entries(report.packages ?? {}).map(([id, p]) => [`${p.name}@${p.version}`, id]));
}

/**
 * Build information as the Go linker embeds it (Go ≥ 1.18, inline strings) in an ELF file big enough for the
 * gobin scanner: `\xff Go buildinf:`, pointer size, flags 0x2, padding to 32 bytes, then the Go version and the
 * module info (wrapped in the linker's 16-byte sentinels), each as a varint-prefixed string.
 */
export function goBinary(goVersion: string, main: { path: string; version: string }, deps: Array<{ path: string; version: string }> = []): Buffer {
  const varint = (n: number): Buffer => {
    const out: number[] = [];
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  const str = (b: Buffer) => Buffer.concat([varint(b.length), b]);
  const sentinelStart = Buffer.from("3077af0c9274080241e1c107e6d618e6", "hex");
  const sentinelEnd = Buffer.from("f932433186182072008242104116d8f2", "hex");
  const modinfo = [`path\t${main.path}`, `mod\t${main.path}\t${main.version}\t`, ...deps.map((d) => `dep\t${d.path}\t${d.version}\t`)].join("\n") + "\n";
  const header = Buffer.alloc(32);
  Buffer.from("\xff Go buildinf:", "latin1").copy(header, 0);
  header[14] = 8;
  header[15] = 0x2;
  const info = Buffer.concat([header, str(Buffer.from(goVersion)), str(Buffer.concat([sentinelStart, Buffer.from(modinfo), sentinelEnd]))]);
  const elf = Buffer.alloc(64 * 1024);
  // A 64-bit little-endian ELF header with no program headers: the Go scanner reads ELF files only.
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(elf, 0);
  return Buffer.concat([elf, info, Buffer.alloc(1024)]);
}
