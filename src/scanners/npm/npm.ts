// npm: node_modules/<name>/package.json and node_modules/@scope/<name>/package.json, at any depth. A
// project's own package.json (not inside node_modules) is not an installed package.
import type { Package } from "../../model/packages.js";
import { purl } from "../purl.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

/** An installed package's package.json inside node_modules. */
export const PKG = /(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/;

/** Longer names are no npm package (npm's limit is 214); more dependencies than this are cut. */
const MAX_NAME = 214;
const MAX_DEPENDENCIES = 10_000;

/**
 * `license` as npm documents it (an SPDX expression), or the deprecated forms still found in installed
 * packages: `license: {type}` and `licenses: [{type}]`.
 */
export function npmLicenses(doc: { license?: unknown; licenses?: unknown }): string[] {
  const one = (v: unknown): string | undefined => {
    const s = typeof v === "string" ? v : v && typeof v === "object" && typeof (v as { type?: unknown }).type === "string" ? (v as { type: string }).type : undefined;
    return s?.trim() && s.length <= 1024 ? s.trim() : undefined;
  };
  const l = one(doc.license);
  if (l) return [l];
  if (!Array.isArray(doc.licenses)) return [];
  return [...new Set(doc.licenses.slice(0, 64).map(one).filter((x): x is string => !!x))];
}

export class NpmScanner implements Scanner {
  readonly name = "npm";
  /** 2: licences and dependencies (for SBOMs). */
  readonly version = "2";
  readonly kind = "package" as const;
  readonly maxFileSize = 1024 * 1024;
  readonly oversize = "skip" as const;

  wants(e: EntryInfo): boolean {
    return e.path.endsWith("/package.json") && PKG.test(e.path);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const path of files.paths()) {
      if (!PKG.test(path)) continue;
      let doc: { name?: unknown; version?: unknown; private?: unknown; license?: unknown; licenses?: unknown; dependencies?: unknown; optionalDependencies?: unknown };
      try {
        doc = JSON.parse(files.get(path)!.toString("utf8")) as typeof doc;
      } catch {
        continue; // not JSON: not a package manifest npm would have installed
      }
      if (typeof doc.name !== "string" || typeof doc.version !== "string" || !doc.name || !doc.version) continue;
      const [ns, name] = doc.name.startsWith("@") ? [doc.name.split("/")[0], doc.name.split("/").slice(1).join("/")] : [undefined, doc.name];
      const pkg: Package = { name: doc.name, version: doc.version, kind: "binary", package_db: `nodejs:${path}`, filepath: path, purl: purl("npm", name!, doc.version, ns) };
      const licenses = npmLicenses(doc);
      if (licenses.length) pkg.licenses = licenses;
      // What it needs installed: dependencies and optionalDependencies (peer dependencies are the
      // installer's business, dev dependencies are not installed with a package).
      const names = new Set<string>();
      for (const field of [doc.dependencies, doc.optionalDependencies]) {
        if (field && typeof field === "object" && !Array.isArray(field)) for (const d of Object.keys(field)) if (d.length <= MAX_NAME && names.size < MAX_DEPENDENCIES) names.add(d);
      }
      if (names.size) pkg.depends = [...names].map((d) => [d]);
      packages.push(pkg);
    }
    return { packages };
  }
}
