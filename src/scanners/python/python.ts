// Python: distributions installed in site-packages / dist-packages: `*.dist-info/METADATA` (wheels, pip),
// `*.egg-info/PKG-INFO` and single-file `*.egg-info` (setuptools, Debian's python3-* packages).
import type { Package } from "../../indexer/types.js";
import { purl } from "../purl.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../types.js";

/** A distribution's metadata file (or single-file egg-info), as pip and setuptools install it. */
export const META = /(^|\/)(site|dist)-packages\/[^/]+\.(dist-info\/METADATA|egg-info\/PKG-INFO|egg-info)$/;

/** The Name and Version headers of a core-metadata file (RFC 822 style; the body after a blank line is ignored). */
export function parseCoreMetadata(text: string): { name?: string; version?: string } {
  const out: { name?: string; version?: string } = {};
  for (const line of text.split("\n")) {
    if (line.trim() === "") break;
    const m = /^(Name|Version):\s*(.*?)\s*$/i.exec(line);
    if (m) out[m[1]!.toLowerCase() as "name" | "version"] ??= m[2]!;
  }
  return out;
}

export class PythonScanner implements Scanner {
  readonly name = "python";
  readonly version = "1";
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
      const { name, version } = parseCoreMetadata(files.get(path)!.toString("utf8"));
      if (!name || !version) continue;
      // PEP 503 normalisation for the purl.
      const norm = name.toLowerCase().replace(/[-_.]+/g, "-");
      packages.push({ name, version, kind: "binary", package_db: `python:${path}`, filepath: path, purl: purl("pypi", norm, version) });
    }
    return { packages };
  }
}
