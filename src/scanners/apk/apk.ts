// apk: lib/apk/db/installed, blank-line separated entries of `X:value` lines.
import type { Package } from "../../indexer/types.js";
import { ScannerError, type EntryInfo, type LayerFiles, type Scanner, type ScanOutput } from "../types.js";

const DB = "lib/apk/db/installed";

export function parseApkInstalled(text: string, packageDb = DB): Package[] {
  const out: Package[] = [];
  let fields = new Map<string, string>();
  const flush = () => {
    const name = fields.get("P");
    const version = fields.get("V");
    if (name && version) {
      const origin = fields.get("o");
      out.push({ name, version, kind: "binary", arch: fields.get("A"), package_db: packageDb, source: { name: origin ?? name, version, kind: "source" } });
    }
    fields = new Map();
  };
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") {
      flush();
      continue;
    }
    // Only the first occurrence of the package-level letters matter (F:/R: repeat per file).
    if (line.length >= 2 && line[1] === ":" && !fields.has(line[0]!)) fields.set(line[0]!, line.slice(2));
  }
  flush();
  return out;
}

export class ApkScanner implements Scanner {
  readonly name = "apk";
  readonly version = "1";
  readonly kind = "package" as const;

  wants(e: EntryInfo): boolean {
    return e.path === DB;
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const data = files.get(DB);
    if (!data) return {};
    if (data.includes(0)) throw new ScannerError(this.name, DB, "binary data where the apk database text was expected");
    return { packages: parseApkInstalled(data.toString("utf8")) };
  }
}
