// dpkg file ownership: which installed package put each file on disk, from `var/lib/dpkg/info/<pkg>[:<arch>].list`
// (one absolute path per line, directories included) and, in distroless images, the second column of
// `var/lib/dpkg/status.d/<pkg>.md5sums` (files only, relative paths). A Debian image has hundreds of these
// lists and tens of thousands of lines; they stream through consume() line by line and only the paths a
// language package may be reported by are kept (owners/paths.ts), so nothing but those few paths is held.
//
// A scanner of its own (not the dpkg scanner's next version): its output is independent of the package
// list, and a new scanner re-walks old layers for itself alone.
import type { OwnedFiles } from "../../model/packages.js";
import { listedPath, mayHoldLanguagePackage } from "../owners/paths.js";
import type { EntryInfo, FileSink, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

const INFO = "var/lib/dpkg/info/";
const STATUS_D = "var/lib/dpkg/status.d/";
/** dpkg package names: lower-case letters, digits, `+ - .`, at least two characters; `:arch` for multi-arch lists. */
const LIST = /^var\/lib\/dpkg\/info\/([a-z0-9][a-z0-9+.-]+)(?::[a-z0-9-]+)?\.list$/;
const MD5SUMS = /^var\/lib\/dpkg\/status\.d\/([a-z0-9][a-z0-9+.-]+)\.md5sums$/;
/** A line longer than this is no path dpkg wrote (PATH_MAX is 4096): it is skipped. */
export const MAX_LINE = 4096;
/** Kept paths per list; a package that ships more candidates than this keeps the first ones (hostile input). */
export const MAX_KEPT = 10_000;

export interface ListResult {
  paths: string[];
  /** Lines skipped for being longer than MAX_LINE, or paths beyond MAX_KEPT. */
  dropped?: number;
}

/** A sink that splits a file list into lines and keeps the paths `keep` accepts. */
export function listSink(md5sums: boolean, keep: (path: string) => boolean = mayHoldLanguagePackage): { write(chunk: Buffer): boolean; end(): ListResult } {
  const paths: string[] = [];
  let dropped = 0;
  let carry: Buffer[] = [];
  let carryLen = 0;
  let overlong = false;
  const line = (buf: Buffer) => {
    let text = buf.toString("utf8");
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (md5sums) {
      // `<md5>  <path>`: two spaces (or ` *` for binary mode) after the digest.
      const m = /^[0-9a-f]{32} [ *](.+)$/.exec(text);
      if (!m) return;
      text = m[1]!;
    }
    const p = listedPath(text);
    if (p === undefined || !keep(p)) return;
    if (paths.length >= MAX_KEPT) dropped++;
    else paths.push(p);
  };
  const finishLine = (tail: Buffer) => {
    if (overlong || carryLen + tail.length > MAX_LINE) dropped++;
    else line(carry.length ? Buffer.concat([...carry, tail]) : tail);
    carry = [];
    carryLen = 0;
    overlong = false;
  };
  return {
    write(chunk: Buffer): boolean {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl < 0) break;
        finishLine(chunk.subarray(start, nl));
        start = nl + 1;
      }
      if (start < chunk.length && !overlong) {
        const rest = chunk.subarray(start);
        if (carryLen + rest.length > MAX_LINE) {
          overlong = true;
          carry = [];
          carryLen = 0;
        } else {
          carry.push(Buffer.from(rest)); // copied: the decompressor may reuse the chunk's memory
          carryLen += rest.length;
        }
      }
      return true;
    },
    end(): ListResult {
      if (carryLen > 0 || overlong) finishLine(Buffer.alloc(0));
      return dropped ? { paths, dropped } : { paths };
    },
  };
}

/** The owner an info file speaks for: its package, and the package database that package is in. */
export function listOwner(path: string): { package: string; packageDb: string; md5sums: boolean } | undefined {
  const l = LIST.exec(path);
  if (l) return { package: l[1]!, packageDb: "var/lib/dpkg/status", md5sums: false };
  const m = MD5SUMS.exec(path);
  if (m) return { package: m[1]!, packageDb: `${STATUS_D}${m[1]!}`, md5sums: true };
  return undefined;
}

export class DpkgFilesScanner implements Scanner {
  readonly name = "dpkg-files";
  // 2: the owner paths kept (owners/paths.ts) include .NET's *.deps.json and Composer's installed.json.
  readonly version = "2";
  readonly kind = "package" as const;

  wants(e: EntryInfo): boolean {
    if (e.type !== "file") return false;
    if (e.path.startsWith(INFO)) return e.path.endsWith(".list") && LIST.test(e.path);
    return e.path.startsWith(STATUS_D) && e.path.endsWith(".md5sums") && MD5SUMS.test(e.path);
  }

  consume(e: EntryInfo): FileSink | undefined {
    const o = listOwner(e.path);
    return o ? listSink(o.md5sums) : undefined;
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const owners: OwnedFiles[] = [];
    for (const [path, value] of files.consumed?.(this.name) ?? []) {
      const o = listOwner(path);
      if (!o) continue;
      // Every list is recorded, even one with no kept path: it replaces the same list of a lower layer.
      owners.push({ db: path, packageDb: o.packageDb, package: o.package, paths: (value as ListResult).paths });
    }
    owners.sort((a, b) => (a.db < b.db ? -1 : a.db > b.db ? 1 : 0));
    return { owners };
  }
}
