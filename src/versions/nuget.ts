// NuGet versions, ordered as NuGet.Versioning's VersionComparer.Default does (and OSV's NuGet ecosystem):
//
//   MAJOR[.MINOR[.PATCH[.REVISION]]][-RELEASE][+METADATA]
//
// - missing numeric parts are 0 (1.0 = 1.0.0.0), leading zeros are ignored (1.0.01 = 1.0.1), numbers of any
//   size compare exactly (OSV's NuGet vectors hold 30-digit parts; NuGet itself stops at 2^31-1);
// - a version with a release label sorts before the same version without one; labels compare by their
//   dot-separated identifiers: two numeric ones as numbers, a numeric one before an alphanumeric one, two
//   alphanumeric ones ignoring case (1.0.0-BETA = 1.0.0-beta), a shorter list first when it is a prefix;
// - metadata after `+` is ignored.
// Unmatchable: anything else (a leading `v`, a fifth numeric part, empty identifiers, characters outside
// [0-9A-Za-z-] in labels).
import { compareNumeric, compareStrings, guard, versionScheme } from "./common.js";
import { UnmatchableVersionError, type VersionScheme } from "./types.js";

const NAME = "nuget";
const FORM = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;
const NUMERIC = /^\d+$/;

interface Parsed {
  parts: string[];
  release: string[];
}

export function parseNuget(v: string): Parsed {
  guard(NAME, v);
  const m = FORM.exec(v.trim());
  if (!m) throw new UnmatchableVersionError(NAME, v, "not MAJOR[.MINOR[.PATCH[.REVISION]]][-RELEASE][+METADATA]");
  return { parts: [m[1]!, m[2] ?? "0", m[3] ?? "0", m[4] ?? "0"], release: m[5] ? m[5].split(".") : [] };
}

function compareIdentifiers(a: string, b: string): number {
  const an = NUMERIC.test(a);
  const bn = NUMERIC.test(b);
  if (an && bn) return compareNumeric(a, b);
  if (an !== bn) return an ? -1 : 1;
  return compareStrings(a.toLowerCase(), b.toLowerCase());
}

export function compareNuget(a: string, b: string): number {
  const x = parseNuget(a);
  const y = parseNuget(b);
  for (let i = 0; i < 4; i++) {
    const c = compareNumeric(x.parts[i]!, y.parts[i]!);
    if (c !== 0) return c;
  }
  if (!x.release.length || !y.release.length) return x.release.length === y.release.length ? 0 : x.release.length ? -1 : 1;
  for (let i = 0; i < Math.min(x.release.length, y.release.length); i++) {
    const c = compareIdentifiers(x.release[i]!, y.release[i]!);
    if (c !== 0) return c;
  }
  return Math.sign(x.release.length - y.release.length);
}

export const nuget: VersionScheme = versionScheme(NAME, compareNuget, parseNuget);
