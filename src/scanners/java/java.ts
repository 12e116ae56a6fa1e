// Java archives (.jar, .war, .ear, and jars nested in them): Maven coordinates from
// META-INF/maven/<group>/<artifact>/pom.properties, else the manifest's Implementation or Bundle fields.
import type { Package } from "../../indexer/types.js";
import { purl } from "../purl.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../types.js";
import { type InflateBudget, listZip, readZipEntry, ZipError } from "./zip.js";

/** The archives the Java scanner opens. */
export const ARCHIVE = /\.(jar|war|ear|par|sar|jpi|hpi)$/;
const MAX_ARCHIVE = 64 * 1024 * 1024;
const MAX_META = 1024 * 1024;
const MAX_NESTED_DEPTH = 3;
/** Bytes inflated in all from one archive found in a layer, its nested archives included. */
const MAX_INFLATE_PER_ARCHIVE = 4 * MAX_ARCHIVE;

function properties(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (!t || t.startsWith("#") || t.startsWith("!")) continue;
    const i = t.search(/[=:]/);
    if (i > 0) m.set(t.slice(0, i).trim(), t.slice(i + 1).trim());
  }
  return m;
}

/** MANIFEST.MF main attributes (continuation lines start with one space). */
function manifest(text: string): Map<string, string> {
  const m = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === "") break;
    if (line.startsWith(" ") && last) {
      m.set(last, m.get(last)! + line.slice(1));
      continue;
    }
    const i = line.indexOf(":");
    if (i > 0) {
      last = line.slice(0, i);
      m.set(last, line.slice(i + 1).trim());
    }
  }
  return m;
}

export function javaPackages(buf: Buffer, location: string, depth = 0, budget: InflateBudget = { left: MAX_INFLATE_PER_ARCHIVE }): Package[] {
  const entries = listZip(buf);
  const out: Package[] = [];
  const db = `maven:${location}`;
  for (const e of entries) {
    if (/^META-INF\/maven\/[^/]+\/[^/]+\/pom\.properties$/.test(e.name)) {
      const p = properties(readZipEntry(buf, e, MAX_META, budget).toString("utf8"));
      const g = p.get("groupId");
      const a = p.get("artifactId");
      const v = p.get("version");
      if (g && a && v) out.push({ name: `${g}:${a}`, version: v, kind: "binary", package_db: db, filepath: location, purl: purl("maven", a, v, g) });
    }
  }
  if (out.length === 0) {
    const mf = entries.find((e) => e.name === "META-INF/MANIFEST.MF");
    if (mf) {
      const m = manifest(readZipEntry(buf, mf, MAX_META, budget).toString("utf8"));
      const name = m.get("Bundle-SymbolicName")?.split(";")[0] ?? m.get("Implementation-Title");
      const version = m.get("Bundle-Version") ?? m.get("Implementation-Version");
      if (name && version) out.push({ name, version, kind: "binary", package_db: db, filepath: location, purl: purl("maven", name, version) });
    }
  }
  if (depth < MAX_NESTED_DEPTH) {
    for (const e of entries) {
      if (!ARCHIVE.test(e.name) || e.size > MAX_ARCHIVE) continue;
      try {
        out.push(...javaPackages(readZipEntry(buf, e, MAX_ARCHIVE, budget), `${location}!${e.name}`, depth + 1, budget));
      } catch (err) {
        if (!(err instanceof ZipError)) throw err;
      }
    }
  }
  return out;
}

export class JavaScanner implements Scanner {
  readonly name = "java";
  readonly version = "1";
  readonly kind = "package" as const;
  readonly maxFileSize = MAX_ARCHIVE;
  readonly oversize = "skip" as const;

  wants(e: EntryInfo): boolean {
    return e.type === "file" && ARCHIVE.test(e.path);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const path of files.paths()) {
      if (!ARCHIVE.test(path)) continue;
      try {
        packages.push(...javaPackages(files.get(path)!, path));
      } catch (err) {
        // A file named .jar that is not a zip is not a Java archive; anything else is a real failure.
        if (!(err instanceof ZipError) && !(err instanceof RangeError)) throw err;
      }
    }
    return { packages };
  }
}
