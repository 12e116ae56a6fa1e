// Which OS package owns a file: the input of the OS-owned language package rule. A Python, npm, jar, gem or
// Go package whose files an OS package installed (Debian's python3-jinja2 ships
// usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info) is the OS vendor's build, patched by the vendor:
// its version (3.1.2) says nothing about the backported fix (3.1.2-1+deb12u1), so GHSA/PYSEC records must
// not be matched against it; the OS advisory for the owning package governs it.
//
// The scanners record, per OS package, the paths it installed where language packages may live: dpkg
// `var/lib/dpkg/info/<name>[:<arch>].list` (distroless: `status.d/<name>.md5sums`, second column), rpm's
// BASENAMES/DIRNAMES/DIRINDEXES header tags, apk's `F:` (directory) + `R:` (file) lines. Coalescing decides
// which language packages they own, and the IndexReport carries it (ownershipFromReport), so every caller
// of the matcher gets it from the report alone. The matcher asks an Ownership for each language package's
// metadata path (the package_db without its prefix: the `.dist-info/METADATA`, `.egg-info[/PKG-INFO]`,
// `node_modules/x/package.json`, the outer jar, the Go executable, the `.gemspec`), then its directory.
// ownershipFromDpkgLists and ownershipFromMap build one from other inputs (tests, callers with lists).
import { OWNER_REPOSITORY_KEY, type IndexReport } from "../model/index-report.js";
import { compareIds, packageType } from "./keys.js";
import type { OsOwner, Ownership } from "../model/match.js";

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

/**
 * Ownership as the indexer recorded it in the report: a language package whose environment lists an owner
 * Repository (key OWNER_REPOSITORY_KEY, name = the OS package) is owned by the report's OS package of that
 * name. Undefined when the report records no ownership (an older report, or no OS-owned language package).
 */
export function ownershipFromReport(report: IndexReport): Ownership | undefined {
  const ownerNames = new Map<string, string>();
  for (const [id, r] of Object.entries(report.repository ?? {})) if (r.key === OWNER_REPOSITORY_KEY && r.name) ownerNames.set(id, r.name);
  if (ownerNames.size === 0) return undefined;
  const osByName = new Map<string, OsOwner>();
  const ids = Object.keys(report.packages ?? {}).sort(compareIds);
  for (const id of ids) {
    const p = report.packages![id]!;
    const type = packageType(report.environments?.[id]?.[0]?.package_db ?? "").type;
    if ((type !== "dpkg" && type !== "rpm" && type !== "apk") || osByName.has(p.name)) continue;
    const owner: OsOwner = { type, name: p.name, version: p.version };
    if (p.source) owner.source = { name: p.source.name, version: p.source.version };
    osByName.set(p.name, owner);
  }
  const owners = new Map<string, OsOwner>();
  for (const id of ids) {
    const env = report.environments?.[id]?.[0];
    const repo = env?.repository_ids?.find((r) => ownerNames.has(r));
    const owner = repo ? osByName.get(ownerNames.get(repo)!) : undefined;
    if (!env || !owner) continue;
    const { type, path } = packageType(env.package_db);
    if (type && type !== "dpkg" && type !== "rpm" && type !== "apk") owners.set(norm(path.split("!")[0]!), owner);
  }
  return owners.size ? ownershipFromMap(owners) : undefined;
}
