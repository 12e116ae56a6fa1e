// Red Hat images record the repositories their packages came from in
// root/buildinfo/content_manifests/*.json ("content_sets"); each becomes a Repository.
import type { Repository } from "../../model/packages.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

const MANIFEST = /^root\/buildinfo\/content_manifests\/[^/]+\.json$/;

export class RhelContentSetScanner implements Scanner {
  readonly name = "rhel-content-sets";
  readonly version = "1";
  readonly kind = "repository" as const;
  readonly maxFileSize = 4 * 1024 * 1024;
  readonly oversize = "skip" as const;

  wants(e: EntryInfo): boolean {
    return MANIFEST.test(e.path);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const repositories: Repository[] = [];
    const seen = new Set<string>();
    for (const path of files.paths()) {
      if (!MANIFEST.test(path)) continue;
      let doc: { content_sets?: unknown };
      try {
        doc = JSON.parse(files.get(path)!.toString("utf8")) as typeof doc;
      } catch {
        continue;
      }
      if (!Array.isArray(doc.content_sets)) continue;
      for (const set of doc.content_sets) {
        if (typeof set !== "string" || seen.has(set)) continue;
        seen.add(set);
        repositories.push({ name: set, key: "rhel-content-set", uri: "", cpe: "" });
      }
    }
    return { repositories };
  }
}
