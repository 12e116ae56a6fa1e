// Coalescing: stack the per-layer scan results in manifest order into one view of the image, the way the
// container runtime stacks the layers' files. A package database that a later layer carries replaces the
// lower one (even when it is now empty); a whiteout or an opaque directory removes it; each package
// keeps the digest of the layer that introduced it into the final stack.
//
// File ownership stacks the same way: each OS file list (a dpkg `.list`, an rpmdb, apk's installed file) is
// taken from the top-most layer that carries it, unless a whiteout removed it since. A language package whose
// file (or `.dist-info`/`.egg-info` directory) one of the final lists names is owned by that OS package, if
// the final image still has it; the report says so with an owner Repository (OWNER_REPOSITORY_KEY) among
// the language package's repository_ids, which Clair's schema allows and its clients ignore.
//
// Licence files (dpkg's `usr/share/doc/<pkg>/copyright`) stack the same way too, and give their licences
// to the package they name if its database entry has none of its own (not on Clair's wire; for SBOMs).
import type { ScanOutput } from "../model/scanner.js";
import { OWNER_REPOSITORY_KEY, type IndexReport, type WirePackage } from "../model/index-report.js";
import type { Distribution, Environment, LicenseFile, OwnedFiles, Package, Repository } from "../model/packages.js";

export interface CoalesceLayer {
  digest: string;
  whiteouts: string[];
  opaqueDirs: string[];
  /** Paths scanners captured from this layer. */
  files: string[];
  /** Outputs of the package, distribution and repository scanners for this layer. */
  outputs: ScanOutput[];
}

export interface CoalescedPackage {
  pkg: Package;
  introducedIn: string;
  /** A language package whose files an OS package of the image installed: that OS package. */
  ownedBy?: Package;
}

export interface Coalesced {
  packages: CoalescedPackage[];
  distribution?: Distribution;
  repositories: Repository[];
}

function pkgKey(p: Package): string {
  return `${p.name}\0${p.version}\0${p.arch ?? ""}\0${p.module ?? ""}`;
}

/** The file a package database lives in: language databases carry an ecosystem prefix (`python:usr/lib/...`). */
function dbFile(db: string): string {
  const i = db.indexOf(":");
  return i > 0 && !db.slice(0, i).includes("/") ? db.slice(i + 1).split("!")[0]! : db;
}

function removedBy(db: string, whiteouts: readonly string[], opaqueDirs: readonly string[]): boolean {
  const path = dbFile(db);
  for (const w of whiteouts) if (path === w || path.startsWith(`${w}/`)) return true;
  for (const d of opaqueDirs) if (d === "" || path.startsWith(`${d}/`)) return true;
  return false;
}

export function coalesce(layers: readonly CoalesceLayer[]): Coalesced {
  /** package_db -> the layers (bottom to top, contiguous) that carried it, with what each found. */
  const dbs = new Map<string, Array<{ layer: number; packages: Map<string, Package> }>>();
  let distribution: { d: Distribution; layer: number } | undefined;
  const repositories = new Map<string, Repository>();
  /** OS file list -> what the top-most layer carrying it recorded. */
  const lists = new Map<string, OwnedFiles[]>();
  /** Licence file -> what the top-most layer carrying it said. */
  const licenseFiles = new Map<string, LicenseFile>();

  layers.forEach((layer, i) => {
    // The layer's whiteouts act on what lies below it, before its own contents.
    if (layer.whiteouts.length || layer.opaqueDirs.length) {
      for (const db of [...dbs.keys()]) if (removedBy(db, layer.whiteouts, layer.opaqueDirs)) dbs.delete(db);
      for (const db of [...lists.keys()]) if (removedBy(db, layer.whiteouts, layer.opaqueDirs)) lists.delete(db);
      for (const db of [...licenseFiles.keys()]) if (removedBy(db, layer.whiteouts, layer.opaqueDirs)) licenseFiles.delete(db);
    }
    const found = new Map<string, Map<string, Package>>();
    // A database file the layer carries replaces the one below even if no package is left in it.
    const files = new Set(layer.files);
    const ownedHere = new Map<string, OwnedFiles[]>();
    for (const out of layer.outputs) {
      for (const p of out.packages ?? []) {
        const db = p.package_db ?? "";
        let m = found.get(db);
        if (!m) found.set(db, (m = new Map()));
        m.set(pkgKey(p), p);
      }
      for (const d of out.distributions ?? []) distribution = { d, layer: i };
      for (const r of out.repositories ?? []) repositories.set(`${r.name}\0${r.key}\0${r.uri}`, r);
      for (const o of out.owners ?? []) {
        let l = ownedHere.get(o.db);
        if (!l) ownedHere.set(o.db, (l = []));
        l.push(o);
      }
      for (const f of out.licenseFiles ?? []) licenseFiles.set(f.db, f);
    }
    // An rpmdb or apk database this layer carries replaces the lower one's lists, even with nothing kept.
    for (const db of lists.keys()) if (files.has(db) && !ownedHere.has(db)) ownedHere.set(db, []);
    for (const [db, owned] of ownedHere) lists.set(db, owned);
    for (const db of dbs.keys()) if (files.has(dbFile(db)) && !found.has(db)) found.set(db, new Map());
    for (const [db, packages] of found) {
      const history = dbs.get(db) ?? [];
      history.push({ layer: i, packages });
      dbs.set(db, history);
    }
  });

  const packages: CoalescedPackage[] = [];
  for (const history of dbs.values()) {
    const top = history[history.length - 1]!;
    for (const [key, pkg] of top.packages) {
      // Walk down while the layers below still had this exact package in this database.
      let introduced = top.layer;
      for (let h = history.length - 2; h >= 0; h--) {
        if (!history[h]!.packages.has(key)) break;
        introduced = history[h]!.layer;
      }
      packages.push({ pkg, introducedIn: layers[introduced]!.digest });
    }
  }
  packages.sort((a, b) => cmp(a.pkg.name, b.pkg.name) || cmp(a.pkg.version, b.pkg.version) || cmp(a.pkg.package_db ?? "", b.pkg.package_db ?? ""));
  attachLicenses(packages, licenseFiles);
  attachOwners(packages, lists);
  return { packages, distribution: distribution?.d, repositories: [...repositories.values()] };
}

/** Gives each package without licences of its own those of the final licence file that names it. */
function attachLicenses(packages: CoalescedPackage[], files: ReadonlyMap<string, LicenseFile>): void {
  if (files.size === 0) return;
  const byPackage = new Map<string, string[]>();
  for (const f of files.values()) {
    if (!f.licenses.length) continue;
    for (const db of f.packageDbs) if (!byPackage.has(`${db}\0${f.package}`)) byPackage.set(`${db}\0${f.package}`, f.licenses);
  }
  for (const c of packages) {
    if (c.pkg.licenses?.length) continue;
    const licenses = byPackage.get(`${c.pkg.package_db ?? ""}\0${c.pkg.name}`);
    if (licenses) c.pkg = { ...c.pkg, licenses };
  }
}

/** A language package_db (`python:usr/lib/...`): an ecosystem prefix without a slash before the colon. */
function isLanguageDb(db: string): boolean {
  const i = db.indexOf(":");
  return i > 0 && !db.slice(0, i).includes("/");
}

const INFO_DIR = /\.(dist|egg)-info$/;

/**
 * Sets `ownedBy` on each language package whose file, or the `.dist-info`/`.egg-info` directory holding it,
 * a final OS file list names, when the image still has that OS package (a list left behind by a removed
 * package owns nothing). Where two lists name a path, the first list in path order wins.
 */
function attachOwners(packages: CoalescedPackage[], lists: ReadonlyMap<string, OwnedFiles[]>): void {
  if (lists.size === 0) return;
  const osPackages = new Map<string, Package>();
  for (const { pkg } of packages) {
    const db = pkg.package_db ?? "";
    if (!isLanguageDb(db)) osPackages.set(`${db}\0${pkg.name}`, pkg);
  }
  const owners = new Map<string, Package>();
  for (const db of [...lists.keys()].sort(cmp)) {
    for (const o of lists.get(db)!) {
      const pkg = osPackages.get(`${o.packageDb}\0${o.package}`);
      if (!pkg) continue;
      for (const p of o.paths) if (!owners.has(p)) owners.set(p, pkg);
    }
  }
  if (owners.size === 0) return;
  for (const c of packages) {
    const db = c.pkg.package_db ?? "";
    if (!isLanguageDb(db)) continue;
    const file = dbFile(db);
    const dir = file.slice(0, Math.max(0, file.lastIndexOf("/")));
    const owner = owners.get(file) ?? (INFO_DIR.test(dir) ? owners.get(dir) : undefined);
    if (owner) c.ownedBy = owner;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function wire(p: Package, id: string): WirePackage {
  const w: WirePackage = { id, name: p.name, version: p.version, kind: p.kind === "source" ? "SOURCE" : "BINARY" };
  if (p.normalized_version) w.normalized_version = p.normalized_version;
  if (p.module) w.module = p.module;
  if (p.arch) w.arch = p.arch;
  if (p.cpe) w.cpe = p.cpe;
  return w;
}

/** The Clair IndexReport of a coalesced image: document-local ids, environments per package. */
export function buildReport(manifest: string, c: Coalesced): IndexReport {
  const report: IndexReport = { manifest_hash: manifest, state: "IndexFinished", success: true, packages: {}, distributions: {}, repository: {}, environments: {} };
  let distId = "";
  if (c.distribution) {
    distId = "1";
    report.distributions![distId] = withoutEmptyCpe({ id: distId, ...c.distribution });
  }
  const repoIds = new Map<string, string>();
  c.repositories.forEach((r, i) => {
    const id = String(i + 1);
    repoIds.set(r.name, id);
    report.repository![id] = withoutEmptyCpe({ id, ...r });
  });
  let next = 1;
  const sources = new Map<string, WirePackage>();
  const ownerRepos = new Map<string, string>();
  for (const { pkg, introducedIn, ownedBy } of c.packages) {
    const id = String(next++);
    const w = wire(pkg, id);
    if (pkg.source) {
      const sk = `${pkg.source.name}\0${pkg.source.version}`;
      let s = sources.get(sk);
      if (!s) {
        s = wire({ ...pkg.source, kind: "source" }, `s${sources.size + 1}`);
        sources.set(sk, s);
      }
      w.source = s;
    }
    report.packages![id] = w;
    const env: Environment = { package_db: pkg.package_db ?? "", introduced_in: introducedIn, distribution_id: distId };
    const repo = pkg.repository_hint ? repoIds.get(pkg.repository_hint) : undefined;
    if (repo) env.repository_ids = [repo];
    if (ownedBy) {
      let owner = ownerRepos.get(ownedBy.name);
      if (!owner) {
        owner = String(c.repositories.length + ownerRepos.size + 1);
        ownerRepos.set(ownedBy.name, owner);
        report.repository![owner] = { id: owner, name: ownedBy.name, key: OWNER_REPOSITORY_KEY };
      }
      env.repository_ids = [...(env.repository_ids ?? []), owner];
    }
    report.environments![id] = [env];
  }
  return report;
}

/** Clair's schema requires a CPE to be well formed when present: an unknown CPE is left out, not "". */
function withoutEmptyCpe<T extends { cpe?: string }>(o: T): T {
  if (o.cpe === "") delete o.cpe;
  return o;
}
