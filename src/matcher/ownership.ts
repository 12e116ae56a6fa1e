// Which OS package owns a file: the input of the OS-owned language package rule. A Python, npm, jar, gem or
// Go package whose files an OS package installed (Debian's python3-jinja2 ships
// usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info) is the OS vendor's build, patched by the vendor:
// its version (3.1.2) says nothing about the backported fix (3.1.2-1+deb12u1), so GHSA/PYSEC records must
// not be matched against it; the OS advisory for the owning package governs it.
//
// The scanners do not record file ownership yet. What they need to provide is, per OS package, the paths it
// installed: dpkg `var/lib/dpkg/info/<name>[:<arch>].list` (distroless: `status.d/<name>.md5sums`, second
// column), rpm's BASENAMES/DIRNAMES/DIRINDEXES header tags, apk's `F:` (directory) + `R:` (file) lines.
// These helpers turn such lists into an Ownership; the matcher asks it for each language package's
// metadata path (the package_db without its prefix: the `.dist-info/METADATA`, `.egg-info[/PKG-INFO]`,
// `node_modules/x/package.json`, the outer jar, the Go executable, the `.gemspec`), then its directory.
import type { IndexReport } from "../indexer/report.js";
import { packageType } from "./keys.js";
import type { OsOwner, Ownership } from "./types.js";

const norm = (p: string) => p.replace(/^\.?\/+/, "").replace(/\/+$/, "");

/** An Ownership over a map of paths (relative to the image root, no leading `/`). */
export function ownershipFromMap(owners: ReadonlyMap<string, OsOwner>): Ownership {
  return (path) => owners.get(norm(path));
}

/**
 * Ownership from dpkg's file lists: `lists` maps each `var/lib/dpkg/info/<pkg>[:<arch>].list` path to its
 * text (one absolute path per line). The owner's version and source come from the report's dpkg package of
 * that name; a list whose package the report does not hold is ignored (the package was removed).
 */
export function ownershipFromDpkgLists(report: IndexReport, lists: ReadonlyMap<string, string>): Ownership {
  const byName = new Map<string, OsOwner>();
  for (const [id, p] of Object.entries(report.packages ?? {})) {
    const env = report.environments?.[id]?.[0];
    if (packageType(env?.package_db ?? "").type !== "dpkg") continue;
    const owner: OsOwner = { type: "dpkg", name: p.name, version: p.version };
    if (p.source) owner.source = { name: p.source.name, version: p.source.version };
    byName.set(p.name, owner);
  }
  const owners = new Map<string, OsOwner>();
  for (const [path, text] of lists) {
    const m = /(?:^|\/)var\/lib\/dpkg\/info\/([^/:]+)(?::[^/]+)?\.list$/.exec(path);
    const owner = m ? byName.get(m[1]!) : undefined;
    if (!owner) continue;
    for (const line of text.split("\n")) {
      const f = norm(line.trim());
      if (f && f !== ".") owners.set(f, owner);
    }
  }
  return ownershipFromMap(owners);
}
