// dpkg licences: Debian records none in the package database; each package states them in
// `usr/share/doc/<pkg>/copyright`, in the machine-readable format (DEP-5) a `License:` field per paragraph
// whose first line is the licence's short name (`GPL-2+`, `BSD-3-clause`, `GPL-2+ or LGPL-2.1+`). Those
// first lines, in order, without repeats, are the package's licences (what Trivy reports too); the licence
// texts after them are skipped. A file in the older free-form style (no License: field) names its licences
// by pointing at `/usr/share/common-licenses/<name>` (base-files, gcc-12-base): then those names, in order,
// without repeats, as Trivy does too. Copyright files run to hundreds of kilobytes (a package with many
// licence texts): they stream through consume() line by line, and at most MAX_BYTES of each are read.
//
// A scanner of its own, like dpkg-files: its output does not depend on the package list, and an image
// indexed before it existed gets its licences by a walk for this scanner alone. The files may sit in a
// lower layer than the status file that lists the package: coalescing joins them (LicenseFile).
import type { LicenseFile } from "../../model/packages.js";
import type { EntryInfo, FileSink, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

const DOC = "usr/share/doc/";
/** dpkg package names, as in files.ts. */
const COPYRIGHT = /^usr\/share\/doc\/([a-z0-9][a-z0-9+.-]+)\/copyright$/;
/** Bytes of one copyright file read at most; the rest is drained unread. */
export const MAX_BYTES = 1024 * 1024;
/** A longer line is no licence name: skipped. */
const MAX_LINE = 1024;
/** Distinct licences kept per file (hostile input). */
export const MAX_LICENSES = 64;
const FIELD = /^license:[ \t]*(.*?)[ \t]*$/i;
/** A reference to a licence text Debian ships; the name ends in a letter, digit or `+` (not a sentence's full stop). */
const COMMON = /\/usr\/share\/common-licenses\/([A-Za-z0-9_.+-]*[A-Za-z0-9+])/g;

export interface CopyrightResult {
  licenses: string[];
  /** True when the file was longer than MAX_BYTES and only its start was read. */
  truncated?: boolean;
}

/** A sink that keeps the first line of every `License:` field of a copyright file. */
export function copyrightSink(): { write(chunk: Buffer): boolean; end(): CopyrightResult } {
  const licenses: string[] = [];
  const common: string[] = [];
  let carry = "";
  let overlong = false;
  let read = 0;
  let truncated = false;
  const line = (text: string) => {
    if (text.includes("/usr/share/common-licenses/")) {
      for (const c of text.matchAll(COMMON)) if (common.length < MAX_LICENSES && !common.includes(c[1]!)) common.push(c[1]!);
    }
    const m = FIELD.exec(text.endsWith("\r") ? text.slice(0, -1) : text);
    if (!m || !m[1] || licenses.length >= MAX_LICENSES || licenses.includes(m[1])) return;
    licenses.push(m[1]);
  };
  return {
    write(chunk: Buffer): boolean {
      const room = MAX_BYTES - read;
      if (chunk.length > room) {
        chunk = chunk.subarray(0, room);
        truncated = true;
      }
      read += chunk.length;
      // Latin-1 keeps every byte one character: field names are ASCII, and a licence name in another
      // encoding is kept as its bytes read that way rather than failing the file.
      const text = chunk.toString("latin1");
      let start = 0;
      for (;;) {
        const nl = text.indexOf("\n", start);
        if (nl < 0) break;
        if (!overlong && carry.length + nl - start <= MAX_LINE) line(carry + text.slice(start, nl));
        carry = "";
        overlong = false;
        start = nl + 1;
      }
      if (!overlong) {
        carry += text.slice(start);
        if (carry.length > MAX_LINE) {
          carry = "";
          overlong = true;
        }
      }
      return !truncated;
    },
    end(): CopyrightResult {
      if (carry && !overlong && !truncated) line(carry);
      const found = licenses.length ? licenses : common;
      return truncated ? { licenses: found, truncated } : { licenses: found };
    },
  };
}

/** The package a copyright file speaks for, or undefined for any other path. */
export function copyrightPackage(path: string): string | undefined {
  return COPYRIGHT.exec(path)?.[1];
}

export class DpkgCopyrightScanner implements Scanner {
  readonly name = "dpkg-copyright";
  readonly version = "1";
  readonly kind = "package" as const;

  wants(e: EntryInfo): boolean {
    return e.type === "file" && e.path.startsWith(DOC) && e.path.endsWith("/copyright") && COPYRIGHT.test(e.path);
  }

  consume(e: EntryInfo): FileSink | undefined {
    return copyrightPackage(e.path) ? copyrightSink() : undefined;
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const licenseFiles: LicenseFile[] = [];
    for (const [path, value] of files.consumed?.(this.name) ?? []) {
      const pkg = copyrightPackage(path);
      if (!pkg) continue;
      // Recorded even without licences: it replaces the same file of a lower layer.
      licenseFiles.push({ db: path, packageDbs: ["var/lib/dpkg/status", `var/lib/dpkg/status.d/${pkg}`], package: pkg, licenses: (value as CopyrightResult).licenses });
    }
    licenseFiles.sort((a, b) => (a.db < b.db ? -1 : a.db > b.db ? 1 : 0));
    return { licenseFiles };
  }
}
