// apk: lib/apk/db/installed, blank-line separated entries of `X:value` lines. Besides the packages, the
// files each package installed (`F:` a directory, `R:` a file in the last `F:`), kept only where a language
// package may be reported (owners/paths.ts): file ownership.
import type { OwnedFiles, Package } from "../../model/packages.js";
import { listedPath, mayHoldLanguagePackage } from "../owners/paths.js";
import { ScannerError } from "../errors.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

const DB = "lib/apk/db/installed";

/** The name of an apk dependency or provide, without its version constraint. */
function apkName(token: string): string {
  const i = token.search(/[<>=~]/);
  return i > 0 ? token.slice(0, i) : token;
}

export function parseApkInstalled(text: string, packageDb = DB): Package[] {
  const out: Package[] = [];
  let fields = new Map<string, string>();
  const flush = () => {
    const name = fields.get("P");
    const version = fields.get("V");
    if (name && version) {
      const origin = fields.get("o");
      const pkg: Package = { name, version, kind: "binary", arch: fields.get("A"), package_db: packageDb, source: { name: origin ?? name, version, kind: "source" } };
      const license = fields.get("L")?.trim();
      if (license) pkg.licenses = [license];
      // D: and p: are space-separated: `name`, `name>=1.2`, `so:libc.musl-x86_64.so.1`, `cmd:sh=1.36`; a
      // `!name` in D: is a conflict, not a dependency.
      const depends = (fields.get("D") ?? "").split(/\s+/).filter((d) => d && !d.startsWith("!")).map((d) => [apkName(d)]);
      if (depends.length) pkg.depends = depends;
      const provides = (fields.get("p") ?? "").split(/\s+/).filter(Boolean).map(apkName);
      if (provides.length) pkg.provides = provides;
      out.push(pkg);
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

/** Per package (`P:`), the `F:` directories and `F:` + `R:` files of the database that `keep` accepts. */
export function parseApkOwners(text: string, packageDb = DB, keep: (path: string) => boolean = mayHoldLanguagePackage): OwnedFiles[] {
  const out: OwnedFiles[] = [];
  let name: string | undefined;
  let dir = "";
  let paths: string[] = [];
  const flush = () => {
    if (name) out.push({ db: packageDb, packageDb, package: name, paths });
    name = undefined;
    dir = "";
    paths = [];
  };
  const add = (p: string | undefined) => {
    if (p !== undefined && keep(p)) paths.push(p);
  };
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") {
      flush();
      continue;
    }
    if (line.length < 2 || line[1] !== ":") continue;
    const v = line.slice(2);
    switch (line[0]) {
      case "P":
        name ??= v;
        break;
      case "F":
        dir = listedPath(v) ?? "";
        add(listedPath(v));
        break;
      case "R":
        // A file name, never a path: one with a slash or a dot-dot is not what apk writes.
        if (v && !v.includes("/") && v !== "." && v !== "..") add(dir ? `${dir}/${v}` : v);
        break;
    }
  }
  flush();
  return out.filter((o) => o.paths.length > 0);
}

export class ApkScanner implements Scanner {
  readonly name = "apk";
  /** 2: owners (file ownership); 3: licences, depends and provides (for SBOMs). */
  readonly version = "3";
  readonly kind = "package" as const;

  wants(e: EntryInfo): boolean {
    return e.path === DB;
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const data = files.get(DB);
    if (!data) return {};
    if (data.includes(0)) throw new ScannerError(this.name, DB, "binary data where the apk database text was expected");
    const text = data.toString("utf8");
    return { packages: parseApkInstalled(text), owners: parseApkOwners(text) };
  }
}
