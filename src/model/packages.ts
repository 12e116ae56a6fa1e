// The index model, after claircore: Package, Distribution, Repository, Environment, and what OS packages say about
// the files language packages live in. Field names are Clair v4's wire names (../shared/clair-api-v1) so a report
// needs no renaming on the way out.
import type { Digest } from "./image.js";

export interface Package {
  name: string;
  version: string;
  kind?: "binary" | "source";
  /** The source package that produced this binary package, when known. */
  source?: Package;
  normalized_version?: string;
  module?: string;
  arch?: string;
  cpe?: string;
  /** Where it was found, relative to the image root: becomes Environment.package_db (e.g. `var/lib/dpkg/status`). */
  package_db?: string;
  /** A hint that ties it to a repository (rpm: the repoid), becomes part of the environment. */
  repository_hint?: string;
  /** Package URL (https://github.com/package-url/purl-spec), for language ecosystems; not on Clair's wire. */
  purl?: string;
  /** Path of the file the package is known by (a jar, a Go binary), when not the package_db itself. */
  filepath?: string;
  /**
   * Licences as the package's own metadata records them (apk `L:`, the rpm License tag, package.json
   * `license`, Python's License-Expression...), verbatim: SPDX expressions or free text. Not on Clair's
   * wire; for SBOMs. dpkg's come from the copyright files at coalescing (LicenseFile).
   */
  licenses?: string[];
  /**
   * What the package depends on, as its database records it: each entry lists alternatives, any one of
   * which satisfies it, by package name or by a name some package provides (dpkg `Depends`/`Pre-Depends`,
   * apk `D:`, package.json `dependencies`). Resolved to installed packages of the same database when an
   * SBOM is written; not on Clair's wire.
   */
  depends?: string[][];
  /** Other names the package answers to in `depends` (dpkg `Provides`, apk `p:`). */
  provides?: string[];
}

export interface Distribution {
  did: string;
  name: string;
  version: string;
  version_code_name: string;
  version_id: string;
  arch: string;
  cpe: string;
  pretty_name: string;
}

export interface Repository {
  name: string;
  key: string;
  uri: string;
  cpe: string;
}

/** Clair's Environment: where and in what context a package was found. */
export interface Environment {
  package_db: string;
  introduced_in: Digest;
  distribution_id: string;
  repository_ids?: string[];
}

/**
 * Files one OS package installed, as far as language packages may live in them (the scanners keep only
 * such paths, see scanners/owners/paths.ts): what makes a language package "owned" by the OS package, so the
 * OS advisory governs it (Debian's python3-jinja2 ships Jinja2-3.1.2.egg-info).
 */
export interface OwnedFiles {
  /**
   * The file the list was read from (`var/lib/dpkg/info/python3-jinja2.list`, an rpmdb, apk's
   * `lib/apk/db/installed`): coalescing stacks it like a package database (a later layer's copy replaces
   * it, a whiteout removes it).
   */
  db: string;
  /** The package_db of the owning OS package (`var/lib/dpkg/status`, `var/lib/rpm/rpmdb.sqlite`, ...). */
  packageDb: string;
  /** The owning OS package's name (without dpkg's `:arch`). */
  package: string;
  /** Paths relative to the image root, no leading `/`. */
  paths: string[];
}

/**
 * Licences an OS package states in a file of its own rather than in the package database (Debian's
 * `usr/share/doc/<pkg>/copyright`), which may sit in a lower layer than the database that lists the
 * package: coalescing stacks it like a package database and gives the licences to the package.
 */
export interface LicenseFile {
  /** The file the licences were read from; a later layer's copy replaces it, a whiteout removes it. */
  db: string;
  /** The package_db values of the packages it may speak for (dpkg: the status file and status.d/<pkg>). */
  packageDbs: string[];
  /** The package's name. */
  package: string;
  licenses: string[];
}
