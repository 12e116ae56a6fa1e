// Which of the paths an OS package installed can matter for file ownership: the files a language scanner
// reports a package by (its package_db path) and the `.dist-info`/`.egg-info` directories that hold them.
// Rust programs (cargo-auditable) are executables: the same rule as Go programs.
// The OS scanners keep only these from their file lists: a Debian image's `info/*.list` files name tens of
// thousands of paths, of which a few hundred at most can ever be asked about.
import { INSTALLED_JSON } from "../composer/composer.js";
import { ARCHIVE } from "../java/java.js";
import { PKG } from "../npm/npm.js";
import { META } from "../python/python.js";
import { SPEC } from "../ruby/ruby.js";

/** A `.dist-info` or `.egg-info` directory in site-packages / dist-packages (the matcher asks for it). */
const PYTHON_INFO_DIR = /(^|\/)(site|dist)-packages\/[^/]+\.(dist|egg)-info$/;
/**
 * Where executables live, for Go programs (the gobin scanner reports any executable with build information,
 * which a file list cannot tell): `bin/`, `sbin/`, anything under `libexec/`, and Go's own `pkg/tool/<os_arch>/`.
 * A Go program elsewhere is not found owned, and is matched through the Go advisories: a possible false
 * positive, never a hidden finding.
 */
const EXECUTABLE = /(^|\/)(s?bin\/[^/]+|libexec\/.+|pkg\/tool\/[^/]+\/[^/]+)$/;

/** A .NET application's deps.json (the SDK and runtime packages of distributions ship them). */
const DEPS_JSON = /\.deps\.json$/;

/** True when a language scanner may report a package by `path` (image-root relative, no leading `/`). */
export function mayHoldLanguagePackage(path: string): boolean {
  return (
    META.test(path) || PYTHON_INFO_DIR.test(path) || PKG.test(path) || SPEC.test(path) || ARCHIVE.test(path) || EXECUTABLE.test(path) ||
    DEPS_JSON.test(path) || INSTALLED_JSON.test(path)
  );
}

/** An OS file list's path (`/usr/bin/x`, `./usr/bin/x`, `usr/bin/x`) relative to the image root; undefined for the root itself. */
export function listedPath(line: string): string | undefined {
  const p = line.replace(/^\.?\/+/, "").replace(/\/+$/, "");
  return p === "" || p === "." ? undefined : p;
}
