// Python: distributions installed in site-packages / dist-packages: `*.dist-info/METADATA` (wheels, pip),
// `*.egg-info/PKG-INFO` and single-file `*.egg-info` (setuptools, Debian's python3-* packages).
import type { Package } from "../../model/packages.js";
import { purl } from "../purl.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

/** A distribution's metadata file (or single-file egg-info), as pip and setuptools install it. */
export const META = /(^|\/)(site|dist)-packages\/[^/]+\.(dist-info\/METADATA|egg-info\/PKG-INFO|egg-info)$/;

export interface CoreMetadata {
  name?: string;
  version?: string;
  /**
   * The licence: `License-Expression` (PEP 639, SPDX), else a one-line `License` (free text; UNKNOWN and
   * multi-line licence texts are no name), else the last part of each `License ::` classifier.
   */
  licenses?: string[];
}

/** Longer `License` values are licence texts, not names. */
const MAX_LICENSE = 200;

/** The Name, Version and licence headers of a core-metadata file (RFC 822 style; the body after a blank line is ignored). */
export function parseCoreMetadata(text: string): CoreMetadata {
  const out: CoreMetadata = {};
  let expression: string | undefined;
  let license: string | undefined;
  let licenseContinued = false;
  const classifiers: string[] = [];
  let last = "";
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") break;
    if (/^[ \t]/.test(line)) {
      // A continuation line: a multi-line License field holds a licence's text.
      if (last === "license") licenseContinued = true;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    last = key;
    if (key === "name" || key === "version") out[key] ??= value;
    else if (key === "license-expression") expression ??= value;
    else if (key === "license") license ??= value;
    else if (key === "classifier" && value.startsWith("License ::") && classifiers.length < 16) {
      const name = value.split("::").pop()!.trim();
      if (name && !classifiers.includes(name)) classifiers.push(name);
    }
  }
  const usable = license && !licenseContinued && license.length <= MAX_LICENSE && license.toUpperCase() !== "UNKNOWN" ? license : undefined;
  const licenses = expression ? [expression] : usable ? [usable] : classifiers;
  if (licenses.length) out.licenses = licenses;
  return out;
}

export class PythonScanner implements Scanner {
  readonly name = "python";
  /** 2: licences (for SBOMs). */
  readonly version = "2";
  readonly kind = "package" as const;
  readonly maxFileSize = 4 * 1024 * 1024;
  readonly oversize = "skip" as const;

  wants(e: EntryInfo): boolean {
    return META.test(e.path);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const path of files.paths()) {
      if (!META.test(path)) continue;
      const { name, version, licenses } = parseCoreMetadata(files.get(path)!.toString("utf8"));
      if (!name || !version) continue;
      // PEP 503 normalisation for the purl.
      const norm = name.toLowerCase().replace(/[-_.]+/g, "-");
      const pkg: Package = { name, version, kind: "binary", package_db: `python:${path}`, filepath: path, purl: purl("pypi", norm, version) };
      if (licenses) pkg.licenses = licenses;
      packages.push(pkg);
    }
    return { packages };
  }
}
