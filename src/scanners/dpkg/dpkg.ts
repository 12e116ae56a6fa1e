// dpkg: var/lib/dpkg/status and the distroless var/lib/dpkg/status.d/* control files. Only entries whose
// Status is `install ok installed` are packages (distroless files carry no Status: they are installed).
import type { Package } from "../../model/packages.js";
import { ScannerError } from "../errors.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

const STATUS = "var/lib/dpkg/status";
const STATUS_D = "var/lib/dpkg/status.d/";

/** Control files in status.d are named after the package; side files (.md5sums, .preinst...) have a dot suffix. */
function isStatusD(path: string): boolean {
  if (!path.startsWith(STATUS_D)) return false;
  const name = path.slice(STATUS_D.length);
  return name.length > 0 && !name.includes("/") && !/\.(md5sums|preinst|postinst|prerm|postrm|list|conffiles|shlibs|symbols|triggers|templates|config)$/.test(name);
}

export type Paragraph = Map<string, string>;

/**
 * Splits an RFC 822-style control file into paragraphs of fields. Continuation lines (leading space or
 * tab) are appended to the previous field; CRLF is accepted. Linear time, no backtracking regexes.
 */
export function parseParagraphs(text: string): Paragraph[] {
  const out: Paragraph[] = [];
  let cur: Paragraph = new Map();
  let lastKey: string | undefined;
  let start = 0;
  const n = text.length;
  while (start <= n) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = n;
    let line = text.slice(start, end);
    if (line.endsWith("\r")) line = line.slice(0, -1);
    start = end + 1;
    if (line.trim() === "") {
      if (cur.size) out.push(cur);
      cur = new Map();
      lastKey = undefined;
      if (end === n) break;
      continue;
    }
    const c = line.charCodeAt(0);
    if (c === 32 || c === 9) {
      if (lastKey !== undefined) cur.set(lastKey, `${cur.get(lastKey)}\n${line.trimStart()}`);
    } else if (c !== 35) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        lastKey = line.slice(0, colon);
        cur.set(lastKey, line.slice(colon + 1).trim());
      }
    }
    if (end === n) break;
  }
  if (cur.size) out.push(cur);
  return out;
}

/** `Source: name (version)` or `Source: name`. */
function parseSource(field: string): { name: string; version?: string } {
  const open = field.indexOf("(");
  if (open < 0) return { name: field.trim() };
  const close = field.indexOf(")", open);
  return { name: field.slice(0, open).trim(), version: field.slice(open + 1, close < 0 ? undefined : close).trim() };
}

/** A package name without its `:arch` qualifier, version constraint or architecture restriction. */
function relationName(s: string): string {
  const m = /^\s*([a-z0-9][a-z0-9+.-]*)/i.exec(s);
  return m ? m[1]! : "";
}

/**
 * A relationship field (`Depends`, `Pre-Depends`, `Provides`): comma-separated entries of `|`-separated
 * alternatives, each `name[:arch] [(op version)] [[archs]]`. Names only.
 */
export function parseRelations(field: string | undefined): string[][] {
  if (!field) return [];
  const out: string[][] = [];
  for (const entry of field.split(",")) {
    const alts = entry.split("|").map(relationName).filter(Boolean);
    if (alts.length) out.push(alts);
  }
  return out;
}

/** Packages of one dpkg database file; `requireStatus` false for distroless files. */
export function parseDpkgDatabase(text: string, packageDb: string, requireStatus: boolean): Package[] {
  const pkgs: Package[] = [];
  const paragraphs = parseParagraphs(text);
  // An installed dpkg package always has a Maintainer; vcpkg writes a `status` file that looks alike but
  // has none (and says Type: Port): that is not a dpkg database.
  const looksLikeDpkg = paragraphs.some((p) => p.has("Package") && p.has("Version") && p.has("Maintainer") && (p.has("Status") || !requireStatus));
  if (!looksLikeDpkg) return [];
  for (const p of paragraphs) {
    const name = p.get("Package");
    const version = p.get("Version");
    if (!name || !version) continue;
    const status = p.get("Status");
    if (status !== undefined ? !/^install ok installed$/.test(status.replace(/\s+/g, " ")) : requireStatus) continue;
    const arch = p.get("Architecture");
    const src = p.get("Source");
    const source = src ? parseSource(src) : { name };
    const pkg: Package = {
      name: name.split(":")[0]!,
      version,
      kind: "binary",
      arch: arch && arch !== "all" ? arch : arch,
      package_db: packageDb,
      source: { name: source.name, version: source.version ?? version, kind: "source" },
    };
    const depends = [...parseRelations(p.get("Pre-Depends")), ...parseRelations(p.get("Depends"))];
    if (depends.length) pkg.depends = depends;
    const provides = parseRelations(p.get("Provides")).flat();
    if (provides.length) pkg.provides = provides;
    pkgs.push(pkg);
  }
  return pkgs;
}

export class DpkgScanner implements Scanner {
  readonly name = "dpkg";
  /** 2: depends and provides (for SBOMs). */
  readonly version = "2";
  readonly kind = "package" as const;

  wants(e: EntryInfo): boolean {
    return e.path === STATUS || isStatusD(e.path);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const path of files.paths()) {
      if (path !== STATUS && !isStatusD(path)) continue;
      const data = files.get(path)!;
      if (data.includes(0)) throw new ScannerError(this.name, path, "binary data where a text control file was expected");
      const text = data.toString("utf8");
      if (text.includes("\uFFFD") && !data.toString("latin1").includes("Package:")) throw new ScannerError(this.name, path, "not UTF-8 text");
      packages.push(...parseDpkgDatabase(text, path, path === STATUS));
    }
    return { packages };
  }
}
