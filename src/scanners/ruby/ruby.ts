// Ruby gems: the installed gem specifications, `.../specifications/<name>-<version>.gemspec`, and the
// default gems Ruby itself ships (bundler, json, psych...: `.../specifications/default/*.gemspec`, in every
// Ruby image), as trivy and syft read them.
import type { Package } from "../../model/packages.js";
import { purl } from "../purl.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

/** An installed gem's specification, or a default gem's. */
export const SPEC = /(^|\/)specifications\/(default\/)?[^/]+\.gemspec$/;

/** `s.name = "rake".freeze` and `s.version = "13.0.6"` as RubyGems writes installed specifications. */
export function parseGemspec(text: string): { name?: string; version?: string } {
  const name = /^\s*\w+\.name\s*=\s*["']([^"']+)["']/m.exec(text)?.[1];
  const version = /^\s*\w+\.version\s*=\s*["']([^"']+)["']/m.exec(text)?.[1];
  return { name, version };
}

export class RubyGemScanner implements Scanner {
  readonly name = "ruby-gems";
  readonly version = "2";
  readonly kind = "package" as const;
  readonly maxFileSize = 1024 * 1024;
  readonly oversize = "skip" as const;

  wants(e: EntryInfo): boolean {
    return e.path.endsWith(".gemspec") && SPEC.test(e.path);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const path of files.paths()) {
      if (!SPEC.test(path)) continue;
      const { name, version } = parseGemspec(files.get(path)!.toString("utf8"));
      if (!name || !version) continue;
      packages.push({ name, version, kind: "binary", package_db: `ruby:${path}`, filepath: path, purl: purl("gem", name, version) });
    }
    return { packages };
  }
}
