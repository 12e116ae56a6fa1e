// npm: node_modules/<name>/package.json and node_modules/@scope/<name>/package.json, at any depth. A
// project's own package.json (not inside node_modules) is not an installed package.
import type { Package } from "../../indexer/types.js";
import { purl } from "../purl.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../types.js";

/** An installed package's package.json inside node_modules. */
export const PKG = /(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/;

export class NpmScanner implements Scanner {
  readonly name = "npm";
  readonly version = "1";
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
      let doc: { name?: unknown; version?: unknown; private?: unknown };
      try {
        doc = JSON.parse(files.get(path)!.toString("utf8")) as typeof doc;
      } catch {
        continue; // not JSON: not a package manifest npm would have installed
      }
      if (typeof doc.name !== "string" || typeof doc.version !== "string" || !doc.name || !doc.version) continue;
      const [ns, name] = doc.name.startsWith("@") ? [doc.name.split("/")[0], doc.name.split("/").slice(1).join("/")] : [undefined, doc.name];
      packages.push({ name: doc.name, version: doc.version, kind: "binary", package_db: `nodejs:${path}`, filepath: path, purl: purl("npm", name!, doc.version, ns) });
    }
    return { packages };
  }
}
