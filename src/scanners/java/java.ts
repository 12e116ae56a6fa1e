// Java archives (.jar, .war, .ear, and jars nested in them), with claircore's order of evidence: every
// file named pom.properties in the archive (Maven's META-INF/maven/<group>/<artifact>/, and the copies
// shading and fat-jar tools leave anywhere else); else the manifest (Group-Id or Implementation-Vendor-Id
// with the title, else the OSGi Bundle-SymbolicName, else the Implementation-Title); else, as a last
// resort, the file name (`name-1.2.3.jar`).
import type { Package } from "../../model/packages.js";
import { purl } from "../purl.js";
import { ScannerError } from "../errors.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";
import { type InflateBudget, listZip, readZipEntry, ZipError } from "./zip.js";

/** The archives the Java scanner opens. */
export const ARCHIVE = /\.(jar|war|ear|par|sar|jpi|hpi)$/;
const MAX_ARCHIVE = 64 * 1024 * 1024;
const MAX_META = 1024 * 1024;
/** Archives in archives read: a jar in a jar in a war in an ear; deeper ones are not opened. */
export const MAX_NESTED_DEPTH = 3;
/**
 * Bytes inflated in all from one archive found in a layer, its nested archives included: 16 MiB and eight
 * times the archive's own size, at most 256 MiB. What is inflated is metadata (pom.properties, manifests)
 * and nested archives, which are themselves compressed: a sound archive inflates to little more than its
 * size, a 64 KB archive that inflates to 256 MiB is a bomb.
 */
export function inflateBudget(archiveBytes: number): number {
  return Math.min(4 * MAX_ARCHIVE, 16 * 1024 * 1024 + 8 * archiveBytes);
}
/** pom.properties files read from one archive (a fat jar has one per bundled library). */
const MAX_PROPERTIES = 10_000;
/** `commons-lang3-3.12.0.jar`, `log4j-api-2.14.jar`, `app-1.0.0-SNAPSHOT.jar`: claircore's file-name rule. */
const NAME_VERSION = /^([!-~]+)-(\d[-.A-Za-z0-9]*)\.jar$/;

const LINES = /\r\n|\r|\n/;

function properties(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(LINES)) {
    const t = line.trim();
    if (!t || t.startsWith("#") || t.startsWith("!")) continue;
    const i = t.search(/[=:]/);
    if (i > 0) m.set(t.slice(0, i).trim(), t.slice(i + 1).trim());
  }
  return m;
}

/** MANIFEST.MF main attributes (continuation lines start with one space; the main section ends at a blank line). */
export function manifest(text: string): Map<string, string> {
  const m = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split(LINES)) {
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

export interface Coordinates {
  group?: string;
  artifact: string;
  version: string;
}

/** `name-1.2.3.jar` → artifact and version (claircore's last resort). */
export function fromFileName(path: string): Coordinates | undefined {
  const m = NAME_VERSION.exec(path.slice(path.lastIndexOf("/") + 1));
  return m ? { artifact: m[1]!, version: m[2]! } : undefined;
}

/**
 * Coordinates from a manifest's main attributes. A group (Jenkins' Group-Id, Maven's
 * Implementation-Vendor-Id) with an artifact name without spaces (the first of Implementation-Title,
 * Specification-Title, Bundle-Name, Extension-Name, Short-Name, else the file name's) makes
 * `group:artifact`; else the OSGi Bundle-SymbolicName; else the Implementation-Title alone.
 */
export function fromManifest(m: Map<string, string>, path: string): Coordinates | undefined {
  const first = (keys: string[], ok: (v: string) => boolean = () => true) => keys.map((k) => m.get(k)).find((v): v is string => !!v && ok(v));
  const noSpace = (v: string) => !/\s/.test(v);
  const group = first(["Group-Id", "Implementation-Vendor-Id"], noSpace);
  if (group) {
    const artifact = first(["Implementation-Title", "Specification-Title", "Bundle-Name", "Extension-Name", "Short-Name"], noSpace) ?? fromFileName(path)?.artifact;
    const version = first(["Implementation-Version", "Bundle-Version", "Plugin-Version", "Specification-Version"]);
    if (artifact && version) return artifact === group ? { artifact, version } : { group, artifact, version };
  }
  const symbolic = m.get("Bundle-SymbolicName")?.split(";")[0]?.trim();
  const title = m.get("Implementation-Title");
  const name = symbolic || title;
  const version = symbolic ? (m.get("Bundle-Version") ?? m.get("Implementation-Version")) : (m.get("Implementation-Version") ?? m.get("Bundle-Version"));
  return name && version ? { artifact: name, version } : undefined;
}

/**
 * The packages of the archive `buf` found at `location` and of the archives nested in it. Throws ZipError:
 * BAD_ZIP when it is not a sound zip, ZIP_BOMB / ZIP_LIMIT when it is hostile or over a limit (a nested
 * archive that is not a sound zip is passed over).
 */
export async function javaPackages(buf: Buffer, location: string, depth = 0, budget: InflateBudget = { left: inflateBudget(buf.length) }): Promise<Package[]> {
  const entries = listZip(buf);
  const found: Coordinates[] = [];
  let props = 0;
  for (const e of entries) {
    // One over MAX_META is not Maven's (a few hundred bytes): passed over, as a manifest that big is below.
    if ((e.name !== "pom.properties" && !e.name.endsWith("/pom.properties")) || e.size > MAX_META) continue;
    if (++props > MAX_PROPERTIES) throw new ZipError(`more than ${MAX_PROPERTIES} pom.properties files`, "ZIP_LIMIT");
    const p = properties((await readZipEntry(buf, e, MAX_META, budget)).toString("utf8"));
    const group = p.get("groupId");
    const artifact = p.get("artifactId");
    const version = p.get("version");
    if (group && artifact && version) found.push({ group, artifact, version });
  }
  if (found.length === 0) {
    // A signed jar's manifest lists a digest per entry and can pass MAX_META: then it is not read.
    const mf = entries.find((e) => e.name === "META-INF/MANIFEST.MF" && e.size <= MAX_META);
    const c = mf ? fromManifest(manifest((await readZipEntry(buf, mf, MAX_META, budget)).toString("utf8")), location) : undefined;
    if (c) found.push(c);
  }
  if (found.length === 0) {
    const c = fromFileName(location);
    if (c) found.push(c);
  }
  const db = `maven:${location}`;
  const seen = new Set<string>();
  const out: Package[] = [];
  for (const c of found) {
    const name = c.group ? `${c.group}:${c.artifact}` : c.artifact;
    // Shading tools copy one library's pom.properties under several folders: one package each.
    const key = `${name}\0${c.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name, version: c.version, kind: "binary", package_db: db, filepath: location, purl: purl("maven", c.artifact, c.version, c.group) });
  }
  if (depth < MAX_NESTED_DEPTH) {
    for (const e of entries) {
      if (!ARCHIVE.test(e.name) || e.size > MAX_ARCHIVE) continue;
      try {
        out.push(...(await javaPackages(await readZipEntry(buf, e, MAX_ARCHIVE, budget), `${location}!${e.name}`, depth + 1, budget)));
      } catch (err) {
        if (!(err instanceof ZipError) || err.code !== "BAD_ZIP") throw err;
      }
    }
  }
  return out;
}

export class JavaScanner implements Scanner {
  readonly name = "java";
  readonly version = "2";
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
        packages.push(...(await javaPackages(files.get(path)!, path)));
      } catch (err) {
        // A file named .jar that is not a zip is not a Java archive. A hostile one (a zip bomb, over the
        // inflate budget) fails the layer with its code: skipped, it would hide what it holds.
        if (err instanceof ZipError && err.code !== "BAD_ZIP") throw new ScannerError(this.name, path, err.message, err.code);
        if (!(err instanceof ZipError) && !(err instanceof RangeError)) throw err;
      }
    }
    return { packages };
  }
}
