// PHP packages Composer installed: `vendor/composer/installed.json`, a JSON array of packages (Composer 1) or
// `{"packages": [...], "dev": ..., "dev-package-names": [...]}` (Composer 2). Each entry has `name`
// (`vendor/package`) and `version` as the lock file pinned it (`v1.8.1`, `1.3.0`); both are reported as
// written, with `pkg:composer/vendor/package@version`. A project's own composer.json/composer.lock are not
// installed packages and are not read.
import type { Package } from "../../model/packages.js";
import { purl } from "../purl.js";
import { parseJsonFile, ScannerError } from "../errors.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

/** Composer's record of what it installed into a vendor directory. */
export const INSTALLED_JSON = /(^|\/)vendor\/composer\/installed\.json$/;
export const MAX_PACKAGES = 100_000;
const MAX_FIELD = 1024;

export class ComposerScanner implements Scanner {
  readonly name = "composer";
  readonly version = "1";
  readonly kind = "package" as const;
  /** Tens of KB per hundred packages; a bigger file is not an installed.json Composer wrote. */
  readonly maxFileSize = 16 * 1024 * 1024;

  wants(e: EntryInfo): boolean {
    return e.path.endsWith("/installed.json") && INSTALLED_JSON.test(e.path);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const path of files.paths()) {
      if (!INSTALLED_JSON.test(path)) continue;
      for (const [name, version] of parseInstalledJson(this.name, path, files.get(path)!)) {
        const slash = name.indexOf("/");
        packages.push({ name, version, kind: "binary", package_db: `composer:${path}`, filepath: path, purl: purl("composer", name.slice(slash + 1), version, name.slice(0, slash)) });
      }
    }
    return { packages };
  }
}

/** The (name, version) pairs of an installed.json; entries without a `vendor/name` or a version are left out. */
export function parseInstalledJson(scanner: string, path: string, data: Buffer): Array<[string, string]> {
  const doc = parseJsonFile(scanner, path, data);
  const list = Array.isArray(doc) ? doc : (doc as { packages?: unknown } | null)?.packages;
  if (!Array.isArray(list)) throw new ScannerError(scanner, path, "neither a JSON array of packages (Composer 1) nor an object with a packages array (Composer 2)");
  if (list.length > MAX_PACKAGES) throw new ScannerError(scanner, path, `${list.length} packages, more than the ${MAX_PACKAGES} accepted`);
  const out: Array<[string, string]> = [];
  for (const p of list) {
    const { name, version } = (p ?? {}) as { name?: unknown; version?: unknown };
    if (typeof name !== "string" || typeof version !== "string" || !version || version.length > MAX_FIELD || name.length > MAX_FIELD) continue;
    if (!/^[^/\s]+\/[^/\s]+$/.test(name)) continue;
    out.push([name, version]);
  }
  return out;
}
