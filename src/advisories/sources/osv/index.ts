// OSV records (https://ossf.github.io/osv-schema/) → the advisory model: GitHub advisories, golang/vulndb,
// PyPA (YAML), Ubuntu's OSV, crates.io/RubyGems/Maven/npm/... exports. A file is one record in JSON (`.json`),
// one in YAML (`.yaml`/`.yml`, PyPA style), a JSON array of records, or an OSV export archive (`<ecosystem>/all.zip`,
// one JSON record per entry). docs/advisories.md has the field mapping and every decision below.

import { z } from "zod";
import { CvssError, toCvss, severityFromCvss } from "../../cvss.js";
import {
  AdvisoryInputError,
  GiB,
  KiB,
  MiB,
  countInto,
  decodeUtf8,
  firstIssue,
  hasControlChars,
  httpUrl,
  isAdvisoryId,
  MAX_URL_LENGTH,
  parseJsonBytes,
  parseJsonText,
  parseYamlBytes,
  checkSize,
  FEED_INPUT,
} from "../../input.js";
import type { Advisory, AdvisoryReference, AffectedPackage, AffectedRange, Cvss, FixState, ParseResult, RangeEvent, RawFile, Severity, SkippedRecord } from "../../../model/advisory.js";
import { DEFAULT_ZIP_LIMITS, looksLikeZip, readZip, type ZipLimits } from "./zip.js";

export interface OsvLimits extends ZipLimits {
  /** Largest single record file, JSON or YAML (default 8 MiB). */
  maxRecordFileBytes: number;
  /** Largest archive (default 2 GiB). */
  maxArchiveBytes: number;
}

export const DEFAULT_OSV_LIMITS: OsvLimits = { ...DEFAULT_ZIP_LIMITS, maxRecordFileBytes: 8 * MiB, maxArchiveBytes: 2 * GiB };

export interface OsvParseOptions {
  limits?: Partial<OsvLimits>;
}

export interface OsvParseResult extends ParseResult {
  /** Affected entries kept, per ecosystem as written (`npm`, `Ubuntu:22.04:LTS`, ...). */
  ecosystems: Map<string, number>;
  /**
   * Affected entries kept whose ecosystem (the part before the first `:`) is not one the OSV schema defines:
   * parsed like any other, counted here so the caller can decide what to do with them.
   */
  unknownEcosystems: Map<string, number>;
}

/** Ecosystems the OSV schema defines (1.7), by the part before the first `:`. */
const OSV_ECOSYSTEMS = new Set([
  "AlmaLinux", "Alpaquita", "Alpine", "Android", "Azure Linux", "BellSoft Hardened Containers", "Bioconductor", "Bitnami",
  "Chainguard", "CleanStart", "ConanCenter", "CRAN", "crates.io", "Debian", "Docker Hardened Images", "Echo", "FreeBSD",
  "GHC", "GitHub Actions", "Go", "Hackage", "Hex", "Julia", "Kubernetes", "Linux", "Mageia", "Maven", "MinimOS", "npm",
  "NuGet", "opam", "openEuler", "openSUSE", "OSS-Fuzz", "Packagist", "Photon OS", "Pub", "PyPI", "Red Hat",
  "Rocky Linux", "Root", "RubyGems", "SUSE", "SwiftURL", "Ubuntu", "VSCode", "Wolfi",
]); // prettier-ignore

/** Ecosystems whose `name` is a source package (per the OSV schema): nameKind "source". */
const SOURCE_NAME_ECOSYSTEMS = new Set([
  "Ubuntu", "Debian", "Alpine", "AlmaLinux", "Rocky Linux", "Mageia", "openSUSE", "SUSE", "openEuler", "Alpaquita",
  "BellSoft Hardened Containers", "Echo",
]); // prettier-ignore

/**
 * Operating-system distributions: their ranges say whether the release has a fix, so the fix state is `fixed`
 * (every range has a `fixed` event) or `not_fixed`; language ecosystems get `affected` (the ranges decide).
 */
const OS_ECOSYSTEMS = new Set([
  ...SOURCE_NAME_ECOSYSTEMS, "Red Hat", "Wolfi", "Chainguard", "Photon OS", "MinimOS", "Azure Linux",
  "Docker Hardened Images", "CleanStart", "Root",
]); // prettier-ignore

const UBUNTU_PRIORITIES: Readonly<Record<string, Severity>> = {
  negligible: "Negligible",
  low: "Low",
  medium: "Medium",
  high: "High",
  critical: "Critical",
  untriaged: "Unknown",
};
const UBUNTU_PRIORITY_ORDER = ["untriaged", "negligible", "low", "medium", "high", "critical"];

const GHSA_SEVERITIES: Readonly<Record<string, Severity>> = {
  CRITICAL: "Critical",
  HIGH: "High",
  MODERATE: "Medium",
  MEDIUM: "Medium",
  LOW: "Low",
};

/** The OSV "zero time" golang/vulndb writes before publication; treated as absent. */
const ZERO_TIME = /^0001-01-01T00:00:00(\.0+)?Z$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
export const MAX_VERSION_LENGTH = 256;
export const MAX_NAME_LENGTH = 1024;

// --- shape ----------------------------------------------------------------------------------------------------

const noControl = (s: string) => !hasControlChars(s);
const Timestamp = z.string().max(64).regex(RFC3339, "not an RFC 3339 timestamp");
const IdList = z.array(z.string().max(1024)).max(100_000).nullish();
const SeverityItem = z.object({ type: z.string().max(64), score: z.string().max(1024) });

const RecordShape = z.object({
  id: z.string().refine(isAdvisoryId, "not an advisory id (1-128 characters: letters, digits, . _ : + -)"),
  modified: Timestamp,
  published: Timestamp.nullish(),
  withdrawn: Timestamp.nullish(),
  schema_version: z.string().max(32).nullish(),
  aliases: IdList,
  related: IdList,
  upstream: IdList,
  summary: z.string().max(16 * KiB).nullish(),
  details: z.string().max(1 * MiB).nullish(),
  severity: z.array(SeverityItem).max(100).nullish(),
  affected: z.array(z.unknown()).max(1_000_000).nullish(),
  references: z.array(z.unknown()).max(100_000).nullish(),
  database_specific: z.unknown().optional(),
});
type OsvRecord = z.infer<typeof RecordShape>;

const Version = z
  .string()
  .min(1, "empty version")
  .max(MAX_VERSION_LENGTH, `version longer than ${MAX_VERSION_LENGTH} characters`)
  .refine(noControl, "control character in version");
const Event = z
  .object({ introduced: Version.optional(), fixed: Version.optional(), last_affected: Version.optional(), limit: Version.optional() })
  .refine((e) => [e.introduced, e.fixed, e.last_affected, e.limit].filter((v) => v !== undefined).length === 1, {
    message: "an event must have exactly one of introduced, fixed, last_affected, limit",
  });
const Range = z.object({
  type: z.string().max(32),
  repo: z.string().max(MAX_URL_LENGTH).nullish(),
  events: z.array(Event).min(1, "a range needs events").max(100_000),
});
const AffectedShape = z.object({
  package: z
    .object({
      ecosystem: z.string().min(1).max(128).refine(noControl, "control character in ecosystem"),
      name: z.string().min(1).max(MAX_NAME_LENGTH).refine(noControl, "control character in package name"),
      purl: z.string().max(2048).nullish(),
    })
    .nullish(),
  severity: z.array(SeverityItem).max(100).nullish(),
  ranges: z.array(Range).max(10_000).nullish(),
  versions: z.array(Version).max(1_000_000).nullish(),
  ecosystem_specific: z.unknown().optional(),
  database_specific: z.unknown().optional(),
});

// --- reading files ----------------------------------------------------------------------------------------------

type Item = { kind: "record"; value: unknown; file: string; record: string } | { kind: "skipped"; skipped: SkippedRecord };

function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1).toLowerCase();
  const dot = base.lastIndexOf(".");
  return dot < 0 ? "" : base.slice(dot + 1);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The raw records of one file. Throws AdvisoryInputError when the file itself cannot be read. */
function* readOsvFile(file: RawFile, limits: OsvLimits): Generator<Item> {
  const ext = extensionOf(file.path);
  const zip = ext === "zip" || (ext !== "json" && ext !== "yaml" && ext !== "yml" && looksLikeZip(file.bytes));
  if (zip) {
    checkSize(file, limits.maxArchiveBytes, FEED_INPUT);
    for (const entry of readZip(file.path, file.bytes, limits)) {
      if ("skipped" in entry) {
        yield { kind: "skipped", skipped: { file: file.path, record: entry.name, reason: `archive ${file.path}, entry ${entry.name}: ${entry.skipped}` } };
        continue;
      }
      if (!entry.name.toLowerCase().endsWith(".json")) {
        yield { kind: "skipped", skipped: { file: file.path, record: entry.name, reason: "not a .json entry" } };
        continue;
      }
      let value: unknown;
      try {
        value = parseJsonText(file.path, decodeUtf8(file.path, entry.data, entry.name), entry.name);
      } catch (e) {
        if (!(e instanceof AdvisoryInputError)) throw e;
        yield { kind: "skipped", skipped: { file: file.path, record: entry.name, reason: e.message } };
        continue;
      }
      yield { kind: "record", value, file: file.path, record: entry.name };
    }
    return;
  }
  let value: unknown;
  if (ext === "yaml" || ext === "yml") value = parseYamlBytes(file.path, file.bytes, limits.maxRecordFileBytes);
  else if (ext === "json" || firstNonSpace(file.bytes) === "{" || firstNonSpace(file.bytes) === "[") {
    value = parseJsonBytes(file.path, file.bytes, limits.maxRecordFileBytes);
  } else {
    throw new AdvisoryInputError("UNRECOGNISED", file.path, "not an OSV record (.json, .yaml, .yml) or an OSV export archive (.zip)");
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) yield { kind: "record", value: value[i], file: file.path, record: `[${i}]` };
  } else {
    const id = value !== null && typeof value === "object" ? (value as { id?: unknown }).id : undefined;
    yield { kind: "record", value, file: file.path, record: isAdvisoryId(id) ? id : basename(file.path) };
  }
}

function firstNonSpace(bytes: Uint8Array): string {
  for (let i = 0; i < bytes.length && i < 1024; i++) {
    const c = bytes[i] ?? 0;
    if (c === 0xef && i === 0) {
      i += 2; // UTF-8 BOM
      continue;
    }
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return String.fromCharCode(c);
  }
  return "";
}

// --- the mapping -----------------------------------------------------------------------------------------------

export interface MappedRecord {
  advisory?: Advisory;
  /** The record itself when it could not be used, or the parts of it left out (`<id>#affected[2]`). */
  skipped: SkippedRecord[];
}

/** Maps one OSV record (already parsed from JSON or YAML) to an Advisory. Never throws on bad data. */
export function mapOsvRecord(value: unknown, origin: { file: string; record: string }): MappedRecord {
  const skipped: SkippedRecord[] = [];
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { skipped: [{ ...origin, reason: "not an OSV record: expected a JSON object" }] };
  }
  const parsed = RecordShape.safeParse(value);
  if (!parsed.success) return { skipped: [{ ...origin, reason: `invalid OSV record: ${firstIssue(parsed.error)}` }] };
  const rec = parsed.data;
  const id = rec.id;
  const part = (what: string, reason: string) => skipped.push({ file: origin.file, record: `${id}#${what}`, reason });

  const cvssSource = id.slice(0, id.indexOf("-") > 0 ? id.indexOf("-") : id.length).toLowerCase();
  const cvss: Cvss[] = [];
  let ubuntuPriority: string | undefined;
  for (const [i, s] of (rec.severity ?? []).entries()) {
    const mapped = mapSeverity(s, cvssSource);
    if ("error" in mapped) part(`severity[${i}]`, mapped.error);
    else if ("cvss" in mapped) pushCvss(cvss, mapped.cvss);
    else if ("ubuntu" in mapped) ubuntuPriority = higherPriority(ubuntuPriority, mapped.ubuntu);
  }

  const affected: AffectedPackage[] = [];
  for (const [i, raw] of (rec.affected ?? []).entries()) {
    const result = mapAffected(raw, cvssSource);
    if ("skip" in result) {
      part(`affected[${i}]`, result.skip);
      continue;
    }
    for (const note of result.notes) part(`affected[${i}]`, note);
    affected.push(result.pkg);
    // Package-level CVSS (OSV allows severity per affected package instead of the record's) also goes on the
    // advisory, deduplicated, so that the advisory has a severity to sort by.
    for (const c of (result.pkg.detail?.cvss as Cvss[] | undefined) ?? []) pushCvss(cvss, c);
    if (result.pkg.vendorSeverity && result.ubuntu) ubuntuPriority = higherPriority(ubuntuPriority, result.pkg.vendorSeverity);
  }

  const own = new Set([id]);
  const aliases = uniqueIds((rec.aliases ?? []).filter((a) => !own.has(a)));
  const related = uniqueIds(rec.related ?? []);
  const upstream = uniqueIds(rec.upstream ?? []);
  // A distribution's per-CVE record (UBUNTU-CVE-2022-1271, DEBIAN-CVE-…) is that distribution's entry for exactly
  // that CVE: the CVE goes into aliases so CVE-keyed enrichment and cross-source deduplication find it.
  const embedded = /^[A-Z][A-Z0-9]*-(CVE-\d{4}-\d{4,19})$/.exec(id)?.[1];
  if (embedded && !aliases.includes(embedded)) aliases.unshift(embedded);

  const advisoryIds: string[] = [];
  if (!id.startsWith("GHSA-")) for (const a of aliases) if (a.startsWith("GHSA-")) advisoryIds.push(a);
  const references = mapReferences(rec.references ?? []);
  if (id.startsWith("UBUNTU-")) {
    for (const r of [...related, ...upstream]) if (/^USN-\d+-\d+$/.test(r)) advisoryIds.push(r);
    for (const ref of references) {
      const usn = /^https?:\/\/(?:ubuntu\.com\/security\/notices\/(USN-\d+-\d+)|usn\.ubuntu\.com\/(\d+-\d+))\/?$/.exec(ref.url);
      const found = usn?.[1] ?? (usn?.[2] ? `USN-${usn[2]}` : undefined);
      if (found) advisoryIds.push(found);
    }
  }

  const { severity, vendorSeverity } = chooseSeverity(rec, ubuntuPriority, cvss);
  const advisory: Advisory = {
    id,
    aliases,
    advisoryIds: [...new Set(advisoryIds)],
    severity,
    cvss,
    references,
    affected,
    origin,
  };
  if (related.length) advisory.related = related;
  if (upstream.length) advisory.upstream = upstream;
  if (rec.summary) advisory.summary = rec.summary;
  if (rec.details) advisory.details = rec.details;
  const published = time(rec.published);
  const modified = time(rec.modified);
  if (published) advisory.published = published;
  if (modified) advisory.modified = modified;
  if (rec.withdrawn) advisory.withdrawn = rec.withdrawn;
  if (vendorSeverity) advisory.vendorSeverity = vendorSeverity;
  return { advisory, skipped };
}

function time(t: string | null | undefined): string | undefined {
  return t && !ZERO_TIME.test(t) ? t : undefined;
}

function uniqueIds(ids: readonly string[]): string[] {
  return [...new Set(ids.filter(isAdvisoryId))];
}

function pushCvss(list: Cvss[], c: Cvss): void {
  if (!list.some((x) => x.vector === c.vector)) list.push(c);
}

type SeverityResult = { cvss: Cvss } | { ubuntu: string } | { error: string } | { ignored: true };

function mapSeverity(s: { type: string; score: string }, source: string): SeverityResult {
  const want = s.type === "CVSS_V2" ? ["2.0"] : s.type === "CVSS_V3" ? ["3.0", "3.1"] : s.type === "CVSS_V4" ? ["4.0"] : undefined;
  if (want) {
    try {
      const c = toCvss(s.score, source);
      if (!want.includes(c.version)) return { error: `${s.type} holds a CVSS ${c.version} vector` };
      return { cvss: c };
    } catch (e) {
      if (e instanceof CvssError) return { error: e.message };
      throw e;
    }
  }
  if (s.type === "Ubuntu") {
    const p = s.score.toLowerCase();
    return p in UBUNTU_PRIORITIES ? { ubuntu: p } : { error: `unknown Ubuntu priority ${JSON.stringify(s.score.slice(0, 32))}` };
  }
  return { ignored: true };
}

function higherPriority(a: string | undefined, b: string): string {
  if (a === undefined) return b;
  return UBUNTU_PRIORITY_ORDER.indexOf(b) > UBUNTU_PRIORITY_ORDER.indexOf(a) ? b : a;
}

/**
 * The advisory's severity: the database's own word when it has one (GHSA `database_specific.severity`, Ubuntu
 * priority), else the CVSS Base score of the record's v3.x vector, else v4.0, else v2.0, else Unknown.
 */
function chooseSeverity(rec: OsvRecord, ubuntuPriority: string | undefined, cvss: Cvss[]): { severity: Severity; vendorSeverity?: string } {
  const db = rec.database_specific;
  const word = db !== null && typeof db === "object" ? (db as { severity?: unknown }).severity : undefined;
  if (typeof word === "string" && word.toUpperCase() in GHSA_SEVERITIES) {
    return { severity: GHSA_SEVERITIES[word.toUpperCase()] ?? "Unknown", vendorSeverity: word };
  }
  const fromCvss = (): Severity => {
    for (const versions of [["3.1", "3.0"], ["4.0"], ["2.0"]]) {
      const c = cvss.find((x) => versions.includes(x.version) && x.score !== undefined);
      if (c?.score !== undefined) return severityFromCvss(c.score);
    }
    return "Unknown";
  };
  if (ubuntuPriority) {
    const s = UBUNTU_PRIORITIES[ubuntuPriority] ?? "Unknown";
    return { severity: s === "Unknown" ? fromCvss() : s, vendorSeverity: ubuntuPriority };
  }
  return { severity: fromCvss() };
}

function mapReferences(raw: readonly unknown[]): AdvisoryReference[] {
  const out: AdvisoryReference[] = [];
  const seen = new Set<string>();
  for (const r of raw) {
    if (r === null || typeof r !== "object") continue;
    const url = httpUrl((r as { url?: unknown }).url);
    if (!url || seen.has(url)) continue;
    seen.add(url);
    const type = (r as { type?: unknown }).type;
    out.push(typeof type === "string" && /^[A-Z_]{1,32}$/.test(type) ? { type, url } : { url });
  }
  return out;
}

type AffectedResult = { pkg: AffectedPackage; notes: string[]; ubuntu: boolean } | { skip: string };

function mapAffected(raw: unknown, cvssSource: string): AffectedResult {
  const parsed = AffectedShape.safeParse(raw);
  if (!parsed.success) return { skip: `invalid affected entry: ${firstIssue(parsed.error)}` };
  const a = parsed.data;
  if (!a.package) {
    return { skip: "no package: a GIT-only entry (commit ranges need the repository), nothing to match by name and version" };
  }
  const ecosystem = a.package.ecosystem;
  const base = ecosystem.split(":")[0] ?? ecosystem;
  const ranges: AffectedRange[] = [];
  const repos: string[] = [];
  for (const [j, r] of (a.ranges ?? []).entries()) {
    if (r.type !== "ECOSYSTEM" && r.type !== "SEMVER" && r.type !== "GIT") {
      return { skip: `ranges[${j}]: unknown range type ${JSON.stringify(r.type)}` };
    }
    if (!r.events.some((e) => e.introduced !== undefined)) return { skip: `ranges[${j}]: no introduced event` };
    if (r.events.some((e) => e.fixed !== undefined) && r.events.some((e) => e.last_affected !== undefined)) {
      return { skip: `ranges[${j}]: both fixed and last_affected events (the schema allows one kind)` };
    }
    ranges.push({ type: r.type, events: r.events.map(toEvent) });
    if (r.type === "GIT" && r.repo) {
      const url = httpUrl(r.repo) ?? (/^(git|ssh):\/\//.test(r.repo) && !hasControlChars(r.repo) ? r.repo : undefined);
      if (url && !repos.includes(url)) repos.push(url);
    }
  }
  if (ranges.length === 0 && a.versions == null) {
    return { skip: "neither ranges nor versions: under OSV's rules no version is affected" };
  }

  const fixedVersions: string[] = [];
  for (const r of ranges) {
    if (r.type === "GIT") continue; // commit hashes are not versions
    for (const e of r.events) if (e.fixed !== undefined && !fixedVersions.includes(e.fixed)) fixedVersions.push(e.fixed);
  }
  let fixState: FixState = "affected";
  if (OS_ECOSYSTEMS.has(base)) {
    const versionRanges = ranges.filter((r) => r.type !== "GIT");
    fixState = versionRanges.length > 0 && versionRanges.every((r) => r.events.some((e) => e.fixed !== undefined)) ? "fixed" : "not_fixed";
  }

  const notes: string[] = [];
  const pkg: AffectedPackage = {
    ecosystem,
    name: normaliseName(base, a.package.name),
    nameKind: SOURCE_NAME_ECOSYSTEMS.has(base) ? "source" : "binary",
    fixState,
    fixedVersions,
    ranges,
  };
  if (a.versions != null) pkg.versions = [...a.versions];

  const detail: Record<string, unknown> = {};
  const es = plainObject(a.ecosystem_specific);
  const ds = plainObject(a.database_specific);
  let ubuntu = false;
  const priority = stringField(es, "ubuntu_priority") ?? stringField(ds, "ubuntu_priority");
  const pkgCvss: Cvss[] = [];
  for (const [j, s] of (a.severity ?? []).entries()) {
    const m = mapSeverity(s, cvssSource);
    if ("error" in m) notes.push(`severity[${j}]: ${m.error}`);
    else if ("cvss" in m) pushCvss(pkgCvss, m.cvss);
    else if ("ubuntu" in m && !priority) {
      pkg.vendorSeverity = m.ubuntu;
      ubuntu = true;
    }
  }
  if (priority !== undefined) {
    const p = priority.toLowerCase();
    if (p in UBUNTU_PRIORITIES) {
      pkg.vendorSeverity = p;
      ubuntu = true;
    } else notes.push(`unknown Ubuntu priority ${JSON.stringify(priority.slice(0, 32))}`);
  }
  if (pkgCvss.length) detail.cvss = pkgCvss;
  if (base === "Go") {
    const imports = goImports(es?.imports);
    if (imports.length) detail.imports = imports;
  }
  const binaries = ubuntuBinaries(es?.binaries);
  if (binaries.length) detail.binaries = binaries;
  const availability = stringField(es, "availability");
  if (availability) detail.availability = availability;
  const functions = stringList(es?.affected_functions, 1000, 512);
  if (functions.length) detail.affectedFunctions = functions;
  const lastKnown = stringField(ds, "last_known_affected_version_range");
  if (lastKnown) detail.lastKnownAffectedVersionRange = lastKnown;
  if (repos.length) detail.repos = repos;
  // Kept for display only: Ubuntu's purls carry two `?` (`pkg:deb/ubuntu/gzip?arch=src?distro=bionic`); matching
  // uses ecosystem + name, never the purl.
  if (a.package.purl && !hasControlChars(a.package.purl)) detail.purl = a.package.purl;
  if (Object.keys(detail).length) pkg.detail = detail;
  return { pkg, notes, ubuntu };
}

function toEvent(e: { introduced?: string; fixed?: string; last_affected?: string; limit?: string }): RangeEvent {
  if (e.introduced !== undefined) return { introduced: e.introduced };
  if (e.fixed !== undefined) return { fixed: e.fixed };
  if (e.last_affected !== undefined) return { last_affected: e.last_affected };
  return { limit: e.limit ?? "*" };
}

/**
 * Names as each ecosystem compares them: PyPI by PEP 503 (lowercase, runs of `-`, `_`, `.` → `-`); everything else
 * as written (npm and Go are case-sensitive, Maven is `groupId:artifactId`, distributions use source names).
 */
export function normaliseName(ecosystemBase: string, name: string): string {
  if (ecosystemBase === "PyPI") return name.toLowerCase().replace(/[-_.]+/g, "-");
  // NuGet package ids are case-insensitive (nuget.org serves Newtonsoft.Json and newtonsoft.json alike).
  if (ecosystemBase === "NuGet") return name.toLowerCase();
  return name;
}

function plainObject(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function stringField(o: Record<string, unknown> | undefined, key: string, max = 1024): string | undefined {
  const v = o && Object.hasOwn(o, key) ? o[key] : undefined;
  return typeof v === "string" && v.length > 0 && v.length <= max && !hasControlChars(v) ? v : undefined;
}

function stringList(v: unknown, maxItems: number, maxLength: number): string[] {
  if (!Array.isArray(v)) return [];
  return v
    .slice(0, maxItems)
    .filter((s): s is string => typeof s === "string" && s.length > 0 && s.length <= maxLength && !hasControlChars(s));
}

/** golang/vulndb's `ecosystem_specific.imports`: the package paths and symbols, for a later reachability filter. */
function goImports(v: unknown): Array<{ path: string; symbols?: string[]; goos?: string[]; goarch?: string[] }> {
  if (!Array.isArray(v)) return [];
  const out: Array<{ path: string; symbols?: string[]; goos?: string[]; goarch?: string[] }> = [];
  for (const item of v.slice(0, 10_000)) {
    const o = plainObject(item);
    const path = stringField(o, "path", MAX_NAME_LENGTH);
    if (!o || !path) continue;
    const imp: { path: string; symbols?: string[]; goos?: string[]; goarch?: string[] } = { path };
    const symbols = stringList(o.symbols, 100_000, 512);
    const goos = stringList(o.goos, 100, 64);
    const goarch = stringList(o.goarch, 100, 64);
    if (symbols.length) imp.symbols = symbols;
    if (goos.length) imp.goos = goos;
    if (goarch.length) imp.goarch = goarch;
    out.push(imp);
  }
  return out;
}

/** Ubuntu's `ecosystem_specific.binaries`: the binary packages built from the source, with the fixed version. */
function ubuntuBinaries(v: unknown): Array<{ name: string; version?: string }> {
  if (!Array.isArray(v)) return [];
  const out: Array<{ name: string; version?: string }> = [];
  for (const item of v.slice(0, 100_000)) {
    const o = plainObject(item);
    const name = stringField(o, "binary_name", MAX_NAME_LENGTH);
    if (!name) continue;
    const version = stringField(o, "binary_version", MAX_VERSION_LENGTH);
    out.push(version ? { name, version } : { name });
  }
  return out;
}

// --- entry points ------------------------------------------------------------------------------------------------

function limitsOf(options: OsvParseOptions | undefined): OsvLimits {
  return { ...DEFAULT_OSV_LIMITS, ...(options?.limits ?? {}) };
}

/**
 * Parses OSV files (records in JSON or YAML, JSON arrays of records, OSV export archives). A record of the wrong
 * shape, and a part of a record that cannot be used, is a SkippedRecord with the reason; a file that cannot be
 * read at all (too large, invalid JSON/YAML, a refused archive) throws AdvisoryInputError naming it.
 */
export function parseOsv(files: RawFile[], options?: OsvParseOptions): OsvParseResult {
  const limits = limitsOf(options);
  const out: OsvParseResult = { advisories: [], skipped: [], ecosystems: new Map(), unknownEcosystems: new Map() };
  for (const file of files) {
    for (const item of readOsvFile(file, limits)) {
      if (item.kind === "skipped") {
        out.skipped.push(item.skipped);
        continue;
      }
      const mapped = mapOsvRecord(item.value, { file: item.file, record: item.record });
      out.skipped.push(...mapped.skipped);
      if (!mapped.advisory) continue;
      out.advisories.push(mapped.advisory);
      for (const p of mapped.advisory.affected) {
        countInto(out.ecosystems, p.ecosystem);
        if (!OSV_ECOSYSTEMS.has(p.ecosystem.split(":")[0] ?? "")) countInto(out.unknownEcosystems, p.ecosystem);
      }
    }
  }
  return out;
}

function looksLikeOsvRecord(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0 && looksLikeOsvRecord(v[0]);
  if (v === null || typeof v !== "object") return false;
  const o = v as Record<string, unknown>;
  return typeof o.id === "string" && typeof o.modified === "string" && ("affected" in o || "schema_version" in o);
}

/**
 * Whether a file is OSV, by content: a JSON or YAML object with `id`, `modified` and (`affected` or
 * `schema_version`), a JSON array of those, or a ZIP archive whose first `.json` entry is one. Never throws.
 */
export function detectOsv(file: RawFile, options?: OsvParseOptions): boolean {
  const limits = limitsOf(options);
  try {
    const ext = extensionOf(file.path);
    if (looksLikeZip(file.bytes)) {
      if (file.bytes.length > limits.maxArchiveBytes) return false;
      for (const entry of readZip(file.path, file.bytes, limits)) {
        if ("skipped" in entry || !entry.name.toLowerCase().endsWith(".json")) continue;
        return looksLikeOsvRecord(parseJsonText(file.path, decodeUtf8(file.path, entry.data, entry.name), entry.name));
      }
      return false;
    }
    if (ext === "yaml" || ext === "yml") return looksLikeOsvRecord(parseYamlBytes(file.path, file.bytes, limits.maxRecordFileBytes));
    const c = firstNonSpace(file.bytes);
    if (c !== "{" && c !== "[") return false;
    return looksLikeOsvRecord(parseJsonBytes(file.path, file.bytes, limits.maxRecordFileBytes));
  } catch {
    return false;
  }
}
