// Alpine secdb files, three layouts with the same content:
//   secdb JSON  v3.18/main.json   {distroversion, reponame, packages: [{pkg: {name, secfixes}}]}
//   secdb YAML  v3.15/main.yaml   the same, as YAML (read with the failsafe schema: all strings)
//   vuln-list   3.18/main/openssl.json   {name, secfixes, distroversion, reponame}
// `secfixes` maps a fix version (or "0": not affected) to ids. Ids are free text upstream: several ids in
// one string, trailing comments; they are split and cleaned here.

import type { RawFile } from "../../../model/advisory.js";
import { LIMITS, SIZE_CAPS, clip, entriesOf, isRecord, kindOf, own, readTopRecord, sniff, type SkipLog } from "../../input.js";

/** One (package, fix key, id string) of one file. */
export interface SecfixEntry {
  /** `v3.18`, `edge`. */
  branch: string;
  /** `main`, `community`, when known. */
  repository?: string;
  /** The origin package. */
  pkg: string;
  /** The fix version, or `0` for "not affected". */
  fixKey: string;
  /** The ids, split and cleaned. */
  ids: string[];
  /** The string as written when cleaning changed it (several ids, comments). */
  raw?: string;
}

const BRANCH = /^(?:v\d{1,3}\.\d{1,3}|edge)$/;
const REPO = /^[a-z][a-z0-9_-]{0,63}$/;
const PACKAGE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
/** Alpine versions start with a digit (`0` is the "not affected" key). */
const FIX_KEY = /^[0-9][0-9A-Za-z._+~-]*$/;
const ID = /^[A-Z][A-Z0-9]*(?:-[A-Za-z0-9._]+)+$/;
const MAX_IDS_PER_STRING = 64;

/**
 * The ids in one secfixes string: `CVE-2022-1234`, `CVE-2022-1234 CVE-2022-5678`, `CVE-2021-1234 (partial)`,
 * `cve-2020-1 # comment`, `ALPINE-13661`, `GHSA-…`, `XSA-…`. Comments (`#…`, `(…)`) are dropped; tokens
 * that are not uppercase-prefixed ids are dropped; `cve-` is upper-cased; each id at most 128 characters.
 */
export function secfixIds(raw: string): string[] {
  const text = raw.replace(/#.*$/s, "").replace(/\([^)]*\)/g, " ");
  const out: string[] = [];
  for (const token of text.split(/[\s,;]+/)) {
    let t = token.replace(/^["'[]+|["'\].:]+$/g, "");
    if (/^cve-\d{4}-\d+$/i.test(t)) t = t.toUpperCase();
    if (t.length > 0 && t.length <= LIMITS.id && ID.test(t) && !out.includes(t)) out.push(t);
    if (out.length >= MAX_IDS_PER_STRING) break;
  }
  return out;
}

/** `v3.18` from the first path segment that looks like a branch (`v3.18`, `3.18`, `edge`). */
function branchFromPath(path: string): string | undefined {
  for (const seg of path.split("/")) {
    const m = /^v?(\d{1,3}\.\d{1,3})$/.exec(seg);
    if (m) return `v${m[1]}`;
    if (seg === "edge") return "edge";
  }
  return undefined;
}

/** `main` from `v3.18/main.json` or `3.18/main/openssl.json`. */
function repositoryFromPath(path: string): string | undefined {
  const segs = path.split("/");
  const i = segs.findIndex((s) => /^v?\d{1,3}\.\d{1,3}$/.test(s) || s === "edge");
  const next = i >= 0 ? segs[i + 1] : undefined;
  if (next === undefined) return undefined;
  const name = next.replace(/\.(json|ya?ml)$/, "");
  return REPO.test(name) ? name : undefined;
}

export function isYamlFile(file: RawFile): boolean {
  if (/\.ya?ml$/i.test(file.path)) return true;
  if (/\.json$/i.test(file.path)) return false;
  return !/^\s*[{[]/.test(sniff(file.bytes, 256));
}

/** Reads one file into entries; records of the wrong shape go to `skips`. Throws for an unreadable file. */
export function readSecdbFile(file: RawFile, skips: SkipLog): SecfixEntry[] {
  const path = file.path;
  const doc = readTopRecord(file, SIZE_CAPS.other, "an object", { yaml: isYamlFile(file) });
  const dv = own(doc, "distroversion");
  const branch = typeof dv === "string" && BRANCH.test(dv) ? dv : branchFromPath(path);
  if (branch === undefined) {
    skips.add(path, "*", `no Alpine branch: distroversion is ${typeof dv === "string" ? JSON.stringify(clip(dv, 40)) : kindOf(dv)} and the path names none`);
    return [];
  }
  const rn = own(doc, "reponame");
  const repository = typeof rn === "string" && REPO.test(rn) ? rn : repositoryFromPath(path);
  const out: SecfixEntry[] = [];
  const packages = own(doc, "packages");
  if (packages !== undefined) {
    if (!Array.isArray(packages)) {
      skips.add(path, "packages", `packages is ${kindOf(packages)}, expected a list`);
      return [];
    }
    packages.forEach((el, i) => {
      const pkg = isRecord(el) ? own(el, "pkg") : undefined;
      if (!isRecord(pkg)) {
        skips.add(path, `packages[${i}]`, `expected {pkg: {name, secfixes}}, got ${isRecord(el) ? kindOf(pkg) : kindOf(el)}`);
        return;
      }
      readPackage(path, `packages[${i}]`, pkg, branch, repository, out, skips);
    });
  } else if (own(doc, "name") !== undefined) {
    readPackage(path, "", doc, branch, repository, out, skips);
  } else {
    skips.add(path, "*", "neither a secdb file (packages) nor a per-package file (name, secfixes)");
  }
  return out;
}

function readPackage(
  path: string,
  at: string,
  pkg: Record<string, unknown>,
  branch: string,
  repository: string | undefined,
  out: SecfixEntry[],
  skips: SkipLog,
): void {
  const name = own(pkg, "name");
  if (typeof name !== "string" || name.length > LIMITS.name || !PACKAGE.test(name)) {
    skips.add(path, `${at}.name`.replace(/^\./, ""), `package name is ${typeof name === "string" ? JSON.stringify(clip(name, 80)) : kindOf(name)}, expected an Alpine package name`);
    return;
  }
  const secfixes = own(pkg, "secfixes");
  if (secfixes === undefined || secfixes === null || secfixes === "") return; // a package with nothing to say
  if (!isRecord(secfixes)) {
    skips.add(path, name, `secfixes is ${kindOf(secfixes)}, expected an object of fix versions`);
    return;
  }
  for (const [fixKey, value] of entriesOf(secfixes)) {
    const record = `${name} ${clip(fixKey, 80)}`;
    if (fixKey.length > LIMITS.version || !FIX_KEY.test(fixKey)) {
      skips.add(path, record, "fix version is not a version (or longer than 256 characters)");
      continue;
    }
    const list = typeof value === "string" ? [value] : value;
    if (!Array.isArray(list)) {
      skips.add(path, record, `ids are ${kindOf(value)}, expected a list of strings`);
      continue;
    }
    for (const [i, item] of list.entries()) {
      if (typeof item !== "string" || item.length > LIMITS.text) {
        skips.add(path, `${record} [${i}]`, `id is ${kindOf(item)}, expected a string`);
        continue;
      }
      const ids = secfixIds(item);
      if (ids.length === 0) {
        skips.add(path, `${record} [${i}]`, `no id in ${JSON.stringify(clip(item, 120))}`);
        continue;
      }
      const entry: SecfixEntry = { branch, pkg: name, fixKey, ids };
      if (repository !== undefined) entry.repository = repository;
      if (ids.length > 1 || ids[0] !== item.trim()) entry.raw = clip(item.trim(), LIMITS.note);
      out.push(entry);
    }
  }
}
