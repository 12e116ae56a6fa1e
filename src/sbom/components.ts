// From coalesced packages to the components both SBOM writers describe: a purl for every package (the OS
// scanners leave it to the distribution, known only once the image is coalesced), a document-unique ref,
// and the recorded dependencies resolved to the installed packages that satisfy them.
//
// Resolution follows each package manager's own rule, as far as the database records it:
// - dpkg, apk: each dependency's alternatives in order, first by package name, then by a name some package
//   provides (dpkg `Provides`, apk `p:` such as `so:libc.musl-x86_64.so.1`), among the packages of the same
//   package manager; a dependency nothing installed satisfies (an optional alternative, a virtual package of
//   a removed one) is left out.
// - npm: Node's module resolution from the package's own folder: `<dir>/node_modules/<dep>`, then each
//   ancestor's `node_modules`, up to the image root.
// rpm's Requires name capabilities (files, sonames with flags) rather than packages, and Python's
// Requires-Dist is not read yet: their packages have no dependencies in the document.
import { createHash } from "node:crypto";
import type { Distribution, Package } from "../model/packages.js";
import { purl } from "../scanners/purl.js";
import type { Component, SbomInput } from "./types.js";

const RPM_DB = /(^|\/)(var\/lib\/rpm|usr\/lib\/sysimage\/rpm)\//;

/** The purl type of an OS package manager's database, or undefined for a language package. */
export function osPurlType(packageDb: string): "deb" | "apk" | "rpm" | undefined {
  if (packageDb === "var/lib/dpkg/status" || packageDb.startsWith("var/lib/dpkg/status.d/")) return "deb";
  if (packageDb === "lib/apk/db/installed") return "apk";
  if (RPM_DB.test(packageDb)) return "rpm";
  return undefined;
}

/** purl-spec's namespace for a distribution's packages: the vendor (Red Hat's `rhel` is `redhat`). */
function vendor(d: Distribution | undefined): string | undefined {
  if (!d?.did) return undefined;
  return d.did === "rhel" ? "redhat" : d.did;
}

/**
 * The package URL of an OS package: `pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12`
 * (purl-spec's deb, apk and rpm types; rpm's epoch goes into an `epoch` qualifier, as the spec says).
 */
export function osPurl(type: "deb" | "apk" | "rpm", p: Package, d: Distribution | undefined): string {
  const q: Record<string, string> = {};
  if (p.arch) q.arch = p.arch;
  if (d?.did && d.version_id) q.distro = `${d.did}-${d.version_id}`;
  let version = p.version;
  if (type === "rpm") {
    const m = /^(\d+):(.*)$/.exec(version);
    if (m) {
      q.epoch = m[1]!;
      version = m[2]!;
    }
  }
  return purl(type, p.name, version, vendor(d), q);
}

/** The package URL of any package: the scanner's, an OS package's, else a generic one. */
export function packagePurl(p: Package, d: Distribution | undefined): string {
  if (p.purl) return p.purl;
  const type = osPurlType(p.package_db ?? "");
  return type ? osPurl(type, p, d) : purl("generic", p.name, p.version);
}

/** A short stable hash, for ids that must be made of a few characters. */
export function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 16);
}

export function components(input: Pick<SbomInput, "packages" | "distribution">): Component[] {
  const out: Component[] = [];
  const used = new Set<string>();
  for (const c of input.packages) {
    const p = packagePurl(c.pkg, input.distribution);
    // The same purl twice (one npm package in two node_modules folders): the file makes it unique.
    let ref = p;
    if (used.has(ref)) ref = `${p}#${c.pkg.filepath ?? c.pkg.package_db ?? ""}`;
    for (let n = 2; used.has(ref); n++) ref = `${p}#${c.pkg.filepath ?? c.pkg.package_db ?? ""}#${n}`;
    used.add(ref);
    const comp: Component = { ref, pkg: c.pkg, purl: p, layer: c.introducedIn, os: osPurlType(c.pkg.package_db ?? "") !== undefined, dependsOn: [] };
    if (c.ownedBy) comp.ownedBy = c.ownedBy.name;
    out.push(comp);
  }
  resolveOs(out);
  resolveNpm(out);
  return out;
}

function resolveOs(comps: Component[]): void {
  /** purl type -> name -> ref; and the same for provided names. */
  const byName = new Map<string, Map<string, string>>();
  const byProvide = new Map<string, Map<string, string>>();
  const index = (m: Map<string, Map<string, string>>, type: string, name: string, ref: string) => {
    let t = m.get(type);
    if (!t) m.set(type, (t = new Map()));
    if (!t.has(name)) t.set(name, ref);
  };
  for (const c of comps) {
    const type = osPurlType(c.pkg.package_db ?? "");
    if (!type) continue;
    index(byName, type, c.pkg.name, c.ref);
    for (const v of c.pkg.provides ?? []) index(byProvide, type, v, c.ref);
  }
  for (const c of comps) {
    const type = osPurlType(c.pkg.package_db ?? "");
    if (!type || !c.pkg.depends?.length) continue;
    const deps = new Set<string>();
    for (const alts of c.pkg.depends) {
      let ref: string | undefined;
      for (const a of alts) {
        ref = byName.get(type)?.get(a) ?? byProvide.get(type)?.get(a);
        if (ref) break;
      }
      if (ref && ref !== c.ref) deps.add(ref);
    }
    c.dependsOn = [...deps].sort();
  }
}

const NPM_DB = "nodejs:";

function resolveNpm(comps: Component[]): void {
  /** The folder of each installed npm package (`app/node_modules/@scope/x`) -> ref. */
  const dirs = new Map<string, string>();
  for (const c of comps) {
    const db = c.pkg.package_db ?? "";
    if (db.startsWith(NPM_DB)) dirs.set(db.slice(NPM_DB.length).replace(/\/package\.json$/, ""), c.ref);
  }
  for (const c of comps) {
    const db = c.pkg.package_db ?? "";
    if (!db.startsWith(NPM_DB) || !c.pkg.depends?.length) continue;
    const dir = db.slice(NPM_DB.length).replace(/\/package\.json$/, "");
    const deps = new Set<string>();
    for (const [name] of c.pkg.depends) {
      const ref = name ? resolveNodeModule(dirs, dir, name) : undefined;
      if (ref && ref !== c.ref) deps.add(ref);
    }
    c.dependsOn = [...deps].sort();
  }
}

/** Node's lookup of `name` required from folder `from`: `from/node_modules/name`, then each ancestor's. */
function resolveNodeModule(dirs: ReadonlyMap<string, string>, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    if (!/(^|\/)node_modules$/.test(base)) {
      const ref = dirs.get(base ? `${base}/node_modules/${name}` : `node_modules/${name}`);
      if (ref) return ref;
    }
    if (base === "") return undefined;
    const slash = base.lastIndexOf("/");
    base = slash < 0 ? "" : base.slice(0, slash);
  }
}
