// The advisory ecosystem of an image's OS packages, from the distribution the os-release scanner recorded
// (src/scanners/osrelease: `did` = ID, `version_id` = VERSION_ID, `version_code_name`, `cpe` = CPE_NAME,
// `pretty_name`; or the same fields filled from lsb-release or a release file), and how well that
// ecosystem is covered. The ecosystem strings are the ones the advisory parsers write (`Debian:12`,
// `Ubuntu:22.04:LTS`, `Alpine:v3.18`, `RHEL:8`), so a key is a plain string comparison away from a row.
import type { IndexReport } from "../model/index-report.js";
import { defaultEndOfLife, type EndOfLifeLookup, type Family } from "./lifecycle.js";
import type { CoverageState, DistributionCoverage } from "../model/match.js";

export type ReportDistribution = NonNullable<IndexReport["distributions"]>[string];
export type DistributionInput = Pick<ReportDistribution, "did" | "version_id"> & Partial<Pick<ReportDistribution, "name" | "version" | "version_code_name" | "pretty_name" | "cpe">>;

export interface DistributionKey {
  family: Family;
  /** The advisory ecosystem of the OS packages: `Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.18`, `RHEL:8`. */
  ecosystem: string;
  /** Further ecosystems whose rows apply too: `Ubuntu:Pro:18.04:LTS` for an image with ESM sources. */
  extra: string[];
  /** The release as the lifecycle tables name it (`12`, `22.04`, `3.18`, `8`, `edge`, `unstable`). */
  release: string;
  /** Set when the key is an approximation, and why (CentOS matched with Red Hat's data, testing as unstable). */
  note?: string;
}

export type DistributionKeyResult = { key: DistributionKey } | { key?: undefined; reason: string };

const RHEL_CPE = /^cpe:(?:\/o|2\.3:o):redhat:enterprise_linux:(\d+)/;

function major(v: string | undefined): string | undefined {
  const m = /^(\d+)/.exec(v?.trim() ?? "");
  return m?.[1];
}

/**
 * The advisory ecosystem for a distribution, or why there is none. `ubuntuPro`: the image has Ubuntu Pro
 * (ESM) sources, so `Ubuntu:Pro:<release>:LTS` rows apply too (the caller finds out; the index does not
 * record apt sources yet).
 */
export function distributionKey(d: DistributionInput | undefined, opts: { ubuntuPro?: boolean } = {}): DistributionKeyResult {
  if (!d) return { reason: "no distribution found in the image (no os-release, lsb-release or release file)" };
  const id = d.did.trim().toLowerCase();
  const versionId = d.version_id.trim();
  const pretty = d.pretty_name ?? "";
  const name = d.name ?? "";
  const label = pretty || `${id} ${versionId}`.trim();

  const rhelCpe = RHEL_CPE.exec(d.cpe ?? "");
  if (id === "rhel" || (id === "" && rhelCpe)) {
    // Red Hat Linux 6.2 (2000, "Zoot") has a redhat-release line too; it is not RHEL 6.
    if (/^Red Hat Linux\b/i.test(pretty)) return { reason: `${label}: Red Hat Linux, not Red Hat Enterprise Linux` };
    const m = major(versionId) ?? rhelCpe?.[1];
    if (!m) return { reason: `${label}: Red Hat Enterprise Linux without a version` };
    return { key: { family: "rhel", ecosystem: `RHEL:${m}`, extra: [], release: m } };
  }

  switch (id) {
    case "debian": {
      const m = major(versionId);
      if (m) return { key: { family: "debian", ecosystem: `Debian:${m}`, extra: [], release: m } };
      // Testing and unstable have no VERSION_ID (os-release says "trixie/sid"); they cannot be told apart.
      // Without a codename or a "/sid" either (old distroless images), the release is unknown.
      const codename = d.version_code_name?.trim() || (/\bsid\b/.test(pretty) ? "sid" : "");
      if (!codename) return { reason: `${label}: a Debian release without VERSION_ID or VERSION_CODENAME, and no release number in etc/debian_version` };
      return {
        key: { family: "debian", ecosystem: "Debian:unstable", extra: [], release: "unstable", note: `Debian testing or unstable (${codename}): matched with unstable's data` },
      };
    }
    case "ubuntu": {
      const m = /^(\d+)\.(\d+)/.exec(versionId);
      if (!m) return { reason: `${label}: Ubuntu without a release number` };
      const year = Number(m[1]);
      const release = `${m[1]}.${m[2]}`;
      const lts = m[2] === "04" && year % 2 === 0;
      if (!lts) return { key: { family: "ubuntu", ecosystem: `Ubuntu:${release}`, extra: [], release } };
      return { key: { family: "ubuntu", ecosystem: `Ubuntu:${release}:LTS`, extra: opts.ubuntuPro ? [`Ubuntu:Pro:${release}:LTS`] : [], release } };
    }
    case "alpine": {
      if (versionId === "edge" || /_(alpha|beta|rc)/.test(versionId) || /\bedge\b/i.test(pretty)) {
        return { key: { family: "alpine", ecosystem: "Alpine:edge", extra: [], release: "edge" } };
      }
      const m = /^(\d+)\.(\d+)/.exec(versionId);
      if (!m) return { reason: `${label}: Alpine without a release number` };
      const release = `${m[1]}.${m[2]}`;
      return { key: { family: "alpine", ecosystem: `Alpine:v${release}`, extra: [], release } };
    }
    case "centos": {
      const m = major(versionId);
      if (!m) return { reason: `${label}: CentOS without a version` };
      const stream = /stream/i.test(name) || /stream/i.test(pretty);
      return {
        key: {
          family: stream ? "centos-stream" : "centos",
          ecosystem: `RHEL:${m}`,
          extra: [],
          release: m,
          note: stream
            ? "CentOS Stream: matched with Red Hat Enterprise Linux's advisories; Stream builds run ahead of RHEL's, so fixed versions may differ"
            : "CentOS: matched with Red Hat Enterprise Linux's advisories (a rebuild of RHEL)",
        },
      };
    }
    case "rocky":
    case "almalinux": {
      const m = major(versionId);
      if (!m) return { reason: `${label}: no version` };
      const eco = id === "rocky" ? "Rocky Linux" : "AlmaLinux";
      return { key: { family: id, ecosystem: `${eco}:${m}`, extra: [], release: m } };
    }
    case "wolfi":
    case "chainguard": {
      // Rolling distributions of apk packages with no releases: VERSION_ID is a build date. Their OSV
      // advisories (ecosystems `Wolfi`, `Chainguard`) name origin packages and compare apk versions.
      const eco = id === "wolfi" ? "Wolfi" : "Chainguard";
      return { key: { family: id, ecosystem: eco, extra: [], release: "rolling" } };
    }
    default:
      return { reason: `${label || "an unnamed distribution"}: Portcullis has no advisory source for ${id || "it"}` };
  }
}

export interface DistributionCoverageOptions {
  /** Whether the store holds advisory rows for an ecosystem (`Debian:12`); from the caller, who knows the store. */
  hasData: (ecosystem: string) => boolean;
  ubuntuPro?: boolean;
  now?: Date;
  endOfLife?: EndOfLifeLookup;
}

/** The coverage of the image's distribution, with the key when there is one. */
export function distributionCoverage(d: DistributionInput | undefined, opts: DistributionCoverageOptions): { coverage: DistributionCoverage; key?: DistributionKey } {
  const base = { did: d?.did ?? "", versionId: d?.version_id ?? "", prettyName: d?.pretty_name ?? "" };
  const k = distributionKey(d, opts);
  if (!k.key) return { coverage: { ...base, state: "unsupported", reason: k.reason } };
  const key = k.key;
  const ecosystems = [key.ecosystem, ...key.extra];
  const eol = (opts.endOfLife ?? defaultEndOfLife)(key.family, key.release, { ubuntuPro: opts.ubuntuPro, now: opts.now ?? new Date() });
  let state: CoverageState = "supported";
  const reasons: string[] = [];
  if (key.note) reasons.push(key.note);
  if (!ecosystems.some((e) => opts.hasData(e))) {
    state = "no_data";
    reasons.unshift(`no advisory data for ${key.ecosystem} in the store`);
  } else if (eol.ended) {
    state = "end_of_life";
    reasons.unshift(`${base.prettyName || key.ecosystem} is past its end of support${eol.date ? ` (${eol.date})` : ""}`);
  }
  const coverage: DistributionCoverage = { ...base, state, ecosystem: key.ecosystem };
  if (reasons.length) coverage.reason = reasons.join("; ");
  if (eol.ended && eol.date) coverage.endOfLife = eol.date;
  return { coverage, key };
}
