// The sources this build knows: where each one's files are upstream, how an import recognises them, and
// which parser reads them. `portcullis db sources` prints this table; docs/advisories.md explains each.
import type { SourceKind } from "../store/advisory-types.js";
import * as alpine from "./sources/alpine/index.js";
import * as debian from "./sources/debian/index.js";
import * as redhat from "./sources/redhat/index.js";
import { REDHAT_VEX, updateRedhat } from "./sources/redhat/upstream.js";
import { detectOsv, parseOsv } from "./sources/osv/index.js";
import { detectNodejsCore, parseNodejsCore } from "./sources/nodejs/index.js";
import { detectEpss, parseEpss } from "./enrichment/epss.js";
import { detectKev, parseKev } from "./enrichment/kev.js";
import { detectNvd, parseNvd } from "./enrichment/nvd.js";
import { GiB, MiB } from "./input.js";
import type { SourceCatalogue } from "./import.js";
import { upstreamUrl, type AdvisorySource, type SourceParse, type UpstreamContext, type UpstreamFile } from "./source.js";
import type { RawFile } from "../model/advisory.js";

interface SourceSpec {
  name: string;
  kind: SourceKind;
  parserVersion: string;
  licence: string;
  attribution: string;
  updateByDefault: boolean;
  from: string;
  upstream(ctx: UpstreamContext): Promise<UpstreamFile[]>;
  detect(file: RawFile): boolean;
  parse(files: RawFile[]): SourceParse;
  nameFor?(files: RawFile[]): string;
  update?: AdvisorySource["update"];
}

const source = (s: SourceSpec): AdvisorySource => s;

const DEBIAN_TRACKER = "https://security-tracker.debian.org/tracker/data/json";
const DEBIAN_DATA = "https://salsa.debian.org/security-tracker-team/security-tracker/-/raw/master/data";

export const debianSource = source({
  name: "debian", kind: "os", parserVersion: "1", updateByDefault: true,
  from: `${DEBIAN_TRACKER}, ${DEBIAN_DATA}/{DSA,DLA}/list`,
  licence: "Debian security tracker data (no licence file; public tracker data)",
  attribution: "Debian Security Tracker, https://security-tracker.debian.org/",
  upstream: async (ctx) => [
    { path: "debian.json", url: upstreamUrl(ctx, "debian.json", DEBIAN_TRACKER), maxBytes: 256 * MiB },
    { path: "DSA/list", url: upstreamUrl(ctx, "DSA/list", `${DEBIAN_DATA}/DSA/list`), maxBytes: 64 * MiB, optional: true },
    { path: "DLA/list", url: upstreamUrl(ctx, "DLA/list", `${DEBIAN_DATA}/DLA/list`), maxBytes: 64 * MiB, optional: true },
  ],
  detect: debian.detect,
  parse: debian.parse,
});

const ALPINE_SECDB = "https://secdb.alpinelinux.org/";

/** The branch folders an index page of secdb lists (`v3.20/`, `edge/`). */
export function secdbBranches(html: string): string[] {
  const out = new Set<string>();
  for (const m of html.matchAll(/href="(v\d+\.\d+|edge)\/?"/g)) out.add(m[1]!);
  return [...out].sort();
}

export const alpineSource = source({
  name: "alpine", kind: "os", parserVersion: "1", updateByDefault: true,
  from: `${ALPINE_SECDB}<branch>/{main,community}.json, for each branch the index lists`,
  licence: "Alpine secdb (no licence stated; Alpine's public security data)",
  attribution: "Alpine Linux security database, https://secdb.alpinelinux.org/",
  upstream: async (ctx) => {
    const base = ctx.mirror ? `${ctx.mirror.replace(/\/+$/, "")}/` : ALPINE_SECDB;
    const branches = secdbBranches(await ctx.list(base));
    if (!branches.length) throw new Error(`${base} lists no branch folders (v3.N/ or edge/)`);
    return branches.flatMap((b) => ["main", "community"].map((repo) => ({
      path: `${b}/${repo}.json`, url: `${base}${b}/${repo}.json`, maxBytes: 64 * MiB, optional: true,
    })));
  },
  detect: alpine.detect,
  parse: alpine.parse,
});

export const redhatSource: AdvisorySource = source({
  name: "redhat", kind: "os", parserVersion: "1", updateByDefault: false,
  from: `${REDHAT_VEX}{archive_latest.txt, csaf_vex_YYYY-MM-DD.tar.zst, changes.csv, deletions.csv, YYYY/cve-YYYY-N.json}`,
  licence: "CC-BY-4.0 (each document's Terms of Use)",
  attribution: "Red Hat Product Security CSAF VEX, https://security.access.redhat.com/data/csaf/v2/vex/",
  // The archive of every document is too large for the generic updater (it holds each upstream file in
  // memory): this source streams it and then applies what changed since (sources/redhat/upstream.ts).
  upstream: async () => {
    throw new Error("redhat updates through its own streaming updater, not a list of files");
  },
  update: (store, ctx) => updateRedhat(store, redhatSource, ctx),
  detect: redhat.detect,
  parse: redhat.parse,
});

const OSV_EXPORT = "https://osv-vulnerabilities.storage.googleapis.com";

/** OSV export ecosystems Portcullis updates, with the source names they get. */
const OSV_ECOSYSTEMS: ReadonlyArray<{ ecosystem: string; name: string; updateByDefault: boolean }> = [
  { ecosystem: "npm", name: "osv-npm", updateByDefault: true },
  { ecosystem: "PyPI", name: "osv-pypi", updateByDefault: true },
  { ecosystem: "Go", name: "osv-go", updateByDefault: true },
  { ecosystem: "Maven", name: "osv-maven", updateByDefault: true },
  { ecosystem: "RubyGems", name: "osv-rubygems", updateByDefault: true },
  { ecosystem: "crates.io", name: "osv-crates-io", updateByDefault: true },
  { ecosystem: "NuGet", name: "osv-nuget", updateByDefault: true },
  { ecosystem: "Packagist", name: "osv-packagist", updateByDefault: true },
  { ecosystem: "Ubuntu", name: "ubuntu", updateByDefault: true },
  { ecosystem: "Wolfi", name: "osv-wolfi", updateByDefault: true },
  { ecosystem: "Chainguard", name: "osv-chainguard", updateByDefault: true },
];

/** OSV export ecosystems that are distributions (their records speak about OS packages). */
const OSV_OS_ECOSYSTEMS = new Set(["Ubuntu", "Wolfi", "Chainguard"]);

// An import names its OSV files' source from their records, then parses them: one parse serves both.
const osvParsed = new WeakMap<RawFile[], ReturnType<typeof parseOsv>>();
function parseOsvOnce(files: RawFile[]): ReturnType<typeof parseOsv> {
  const hit = osvParsed.get(files);
  if (hit) return hit;
  const r = parseOsv(files);
  osvParsed.set(files, r);
  return r;
}

function osvParse(files: RawFile[]): SourceParse {
  const r = parseOsvOnce(files);
  return { advisories: r.advisories, skipped: r.skipped };
}

/** An imported set of OSV files is named after its one ecosystem (`osv-npm`), else `osv`. */
function osvNameFor(files: RawFile[]): string {
  const r = parseOsvOnce(files);
  const bases = new Set([...r.ecosystems.keys()].map((e) => e.split(":")[0]!));
  if (bases.size !== 1) return "osv";
  const [only] = bases;
  return OSV_ECOSYSTEMS.find((e) => e.ecosystem === only)?.name ?? "osv";
}

const OSV_LICENCE = "per record: CC-BY-4.0 (GitHub Advisory Database, golang/vulndb, PyPA), CC-BY-SA-4.0 (Ubuntu); see each record";

function osvSource(e: { ecosystem: string; name: string; updateByDefault: boolean }): AdvisorySource {
  const path = `${e.ecosystem}/all.zip`;
  return source({
    // NuGet 2: package names are lower-cased (normaliseName), so a stored export is parsed again.
    name: e.name, kind: OSV_OS_ECOSYSTEMS.has(e.ecosystem) ? "os" : "language", parserVersion: e.ecosystem === "NuGet" ? "2" : "1", updateByDefault: e.updateByDefault,
    from: `${OSV_EXPORT}/${encodeURIComponent(e.ecosystem)}/all.zip`,
    licence: OSV_LICENCE, attribution: `OSV export of the ${e.ecosystem} ecosystem, ${OSV_EXPORT}/${encodeURIComponent(e.ecosystem)}/all.zip`,
    upstream: async (ctx) => [{ path, url: upstreamUrl(ctx, path, `${OSV_EXPORT}/${encodeURIComponent(e.ecosystem)}/all.zip`), maxBytes: 2 * GiB }],
    // Imports recognise OSV files through the `osv` source, which names them by their ecosystem.
    detect: () => false,
    parse: osvParse,
  });
}

/** OSV records of several ecosystems at once (a GHSA checkout, a mixed directory): import only. */
export const osvMixedSource = source({
  name: "osv", kind: "language", parserVersion: "1", updateByDefault: false,
  from: "import only: OSV records of several ecosystems (JSON, YAML, or zips of them)",
  licence: OSV_LICENCE, attribution: "OSV records imported from files",
  upstream: async () => {
    throw new Error("osv (mixed ecosystems) is filled by portcullis db import; the per-ecosystem sources (osv-npm, …) update from the OSV exports");
  },
  detect: detectOsv,
  parse: osvParse,
  nameFor: osvNameFor,
});

export const nodejsSource = source({
  name: "nodejs", kind: "language", parserVersion: "1", updateByDefault: true,
  from: "https://raw.githubusercontent.com/nodejs/security-wg/main/vuln/core/index.json",
  licence: "MIT (nodejs/security-wg)",
  attribution: "Node.js Security Working Group, vuln/core/index.json",
  upstream: async (ctx) => [{ path: "core/index.json", url: upstreamUrl(ctx, "core/index.json", "https://raw.githubusercontent.com/nodejs/security-wg/main/vuln/core/index.json"), maxBytes: 64 * MiB }],
  detect: detectNodejsCore,
  parse: (files) => parseNodejsCore(files),
});


type EnrichmentKey = keyof NonNullable<SourceParse["enrichment"]>;

/** An enrichment source's parse: each file parsed on its own, the rows of `key` and the skipped records concatenated. */
function enrichmentParse<K extends EnrichmentKey>(
  key: K,
  parseFile: (f: RawFile) => { skipped: SourceParse["skipped"] } & Required<Pick<NonNullable<SourceParse["enrichment"]>, K>>,
): (files: RawFile[]) => SourceParse {
  return (files) => {
    const rows: NonNullable<NonNullable<SourceParse["enrichment"]>[K]> = [];
    const skipped: SourceParse["skipped"] = [];
    for (const f of files) {
      const r = parseFile(f);
      (rows as unknown[]).push(...(r[key] as unknown[]));
      skipped.push(...r.skipped);
    }
    return { advisories: [], skipped, enrichment: { [key]: rows } };
  };
}

export const epssSource = source({
  name: "epss", kind: "enrichment", parserVersion: "1", updateByDefault: true,
  from: "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz",
  licence: "FIRST EPSS (free to use, see https://www.first.org/epss/)",
  attribution: "EPSS scores by FIRST.org, https://www.first.org/epss/",
  upstream: async (ctx) => [{ path: "epss_scores-current.csv.gz", url: upstreamUrl(ctx, "epss_scores-current.csv.gz", "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"), maxBytes: 256 * MiB }],
  // EPSS publishes .csv.gz: the parser reads gzip itself (the head for detection, bounded for parsing).
  detect: detectEpss,
  parse: enrichmentParse("epss", (f) => parseEpss(f)),
});

export const kevSource = source({
  name: "kev", kind: "enrichment", parserVersion: "1", updateByDefault: true,
  from: "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
  licence: "CISA KEV catalogue (public domain, U.S. government work)",
  attribution: "CISA Known Exploited Vulnerabilities Catalog",
  upstream: async (ctx) => [{ path: "known_exploited_vulnerabilities.json", url: upstreamUrl(ctx, "known_exploited_vulnerabilities.json", "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"), maxBytes: 64 * MiB }],
  detect: detectKev,
  parse: enrichmentParse("kev", parseKev),
});

export const nvdSource = source({
  name: "nvd", kind: "enrichment", parserVersion: "1", updateByDefault: false,
  from: "import only: NVD CVE API 2.0 pages",
  licence: "NVD data (U.S. government work; see https://nvd.nist.gov/developers/terms-of-use)",
  attribution: "This product uses data from the NVD API but is not endorsed or certified by the NVD.",
  // The NVD API is paged and rate limited per key: import its pages (CVE API 2.0 JSON) instead.
  upstream: async () => {
    throw new Error("nvd is filled by portcullis db import of CVE API 2.0 pages");
  },
  detect: detectNvd,
  parse: enrichmentParse("cvss", parseNvd),
});

/** Every source, in the order an import tries to recognise a file (the most specific formats first). */
export function defaultCatalogue(): SourceCatalogue {
  const osv = OSV_ECOSYSTEMS.map(osvSource);
  const all: AdvisorySource[] = [debianSource, alpineSource, redhatSource, nodejsSource, kevSource, nvdSource, epssSource, ...osv, osvMixedSource];
  const byName = new Map(all.map((s) => [s.name, s]));
  return { all: () => all, get: (name) => byName.get(name) };
}
