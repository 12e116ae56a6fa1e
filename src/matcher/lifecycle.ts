// When a distribution release or a Node.js release line stops getting security fixes. Matching goes on
// after that date (the advisories stay true), but the image's coverage says `end_of_life`: new
// vulnerabilities are no longer assessed for it, so "no finding" means little.
//
// The dates are the projects' own published ends of (security) support, as of late 2026:
// - Debian: the end of LTS (https://wiki.debian.org/LTS); the security tracker keeps tracking until then.
// - Ubuntu: the end of standard support (https://ubuntu.com/about/release-cycle); an LTS with Ubuntu Pro
//   (ESM) sources is covered until the end of ESM, so it is not end-of-life for such images.
// - Alpine: the end of the main repository's support (https://alpinelinux.org/releases/).
// - RHEL and its rebuilds: the end of Maintenance Support (https://access.redhat.com/support/policy/updates/errata).
// - Node.js: the end of the release line (https://github.com/nodejs/Release, schedule.json).
// A release not in a table but older than every release in it is end-of-life without a date; a newer one
// is supported. The tables are data: override them through MatchOptions.endOfLife when they go stale.

export type Family = "debian" | "ubuntu" | "alpine" | "rhel" | "centos" | "centos-stream" | "rocky" | "almalinux" | "wolfi" | "chainguard";

const DEBIAN: Record<string, string> = {
  "6": "2016-02-29", "7": "2018-05-31", "8": "2020-06-30", "9": "2022-06-30", "10": "2024-06-30", "11": "2026-08-31",
  "12": "2028-06-30", "13": "2030-06-30",
}; // prettier-ignore

const UBUNTU: Record<string, string> = {
  "12.04": "2017-04-28", "14.04": "2019-04-25", "16.04": "2021-04-30", "18.04": "2023-05-31", "20.04": "2025-05-29",
  "22.04": "2027-04-01", "24.04": "2029-04-25", "26.04": "2031-04-30",
  "20.10": "2021-07-22", "21.04": "2022-01-20", "21.10": "2022-07-14", "22.10": "2023-07-20", "23.04": "2024-01-25",
  "23.10": "2024-07-11", "24.10": "2025-07-10", "25.04": "2026-01-15", "25.10": "2026-07-09",
}; // prettier-ignore

/** Ubuntu Pro (ESM) end for LTS releases: with ESM sources an LTS is covered until then. */
const UBUNTU_ESM: Record<string, string> = {
  "14.04": "2026-04-25", "16.04": "2028-04-30", "18.04": "2030-05-31", "20.04": "2032-05-31", "22.04": "2034-04-01",
  "24.04": "2036-04-25",
}; // prettier-ignore

const ALPINE: Record<string, string> = {
  "3.10": "2021-05-01", "3.11": "2021-11-01", "3.12": "2022-05-01", "3.13": "2022-11-01", "3.14": "2023-05-01",
  "3.15": "2023-11-01", "3.16": "2024-05-23", "3.17": "2024-11-22", "3.18": "2025-05-09", "3.19": "2025-11-01",
  "3.20": "2026-04-01", "3.21": "2026-11-01", "3.22": "2027-05-01", "3.23": "2027-11-01",
}; // prettier-ignore

const RHEL: Record<string, string> = { "6": "2020-11-30", "7": "2024-06-30", "8": "2029-05-31", "9": "2032-05-31", "10": "2035-05-31" };
const CENTOS: Record<string, string> = { "6": "2020-11-30", "7": "2024-06-30", "8": "2021-12-31" };
const CENTOS_STREAM: Record<string, string> = { "8": "2024-05-31", "9": "2027-05-31", "10": "2030-01-01" };

const NODE: Record<string, string> = {
  "4": "2018-04-30", "5": "2016-06-30", "6": "2019-04-30", "7": "2017-06-30", "8": "2019-12-31", "9": "2018-06-30",
  "10": "2021-04-30", "11": "2019-06-01", "12": "2022-04-30", "13": "2020-06-01", "14": "2023-04-30", "15": "2021-06-01",
  "16": "2023-09-11", "17": "2022-06-01", "18": "2025-04-30", "19": "2023-06-01", "20": "2026-04-30", "21": "2024-06-01",
  "22": "2027-04-30", "23": "2025-06-01", "24": "2028-04-30", "25": "2026-06-01", "26": "2029-04-30",
}; // prettier-ignore

export interface EndOfLife {
  /** Whether support has ended at `now`. */
  ended: boolean;
  /** The end date, YYYY-MM-DD, when known. */
  date?: string;
}

/** A release's end of support: `release` is the version key of its table (`12`, `22.04`, `3.18`, `8`, a Node.js major). */
export type EndOfLifeLookup = (what: Family | "nodejs", release: string, opts: { ubuntuPro?: boolean; now: Date }) => EndOfLife;

function numericKey(s: string): number[] {
  return s.split(".").map((p) => Number.parseInt(p, 10));
}

function before(a: number[], b: number[]): boolean {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

function fromTable(table: Record<string, string>, release: string, now: Date): EndOfLife {
  const date = Object.hasOwn(table, release) ? table[release] : undefined;
  if (date !== undefined) return { ended: now.getTime() >= Date.parse(`${date}T00:00:00Z`), date };
  const key = numericKey(release);
  if (key.some((n) => Number.isNaN(n))) return { ended: false };
  const oldest = Object.keys(table).map(numericKey).sort((a, b) => (before(a, b) ? -1 : 1))[0];
  return { ended: oldest !== undefined && before(key, oldest) };
}

export const defaultEndOfLife: EndOfLifeLookup = (what, release, { ubuntuPro, now }) => {
  switch (what) {
    case "debian":
      return release === "unstable" ? { ended: false } : fromTable(DEBIAN, release, now);
    case "ubuntu":
      if (ubuntuPro && Object.hasOwn(UBUNTU_ESM, release)) return fromTable(UBUNTU_ESM, release, now);
      return fromTable(UBUNTU, release, now);
    case "alpine":
      return release === "edge" ? { ended: false } : fromTable(ALPINE, release, now);
    case "rhel":
    case "rocky":
    case "almalinux":
      return fromTable(RHEL, release, now);
    case "centos":
      return fromTable(CENTOS, release, now);
    case "centos-stream":
      return fromTable(CENTOS_STREAM, release, now);
    case "nodejs":
      return fromTable(NODE, release, now);
    case "wolfi":
    case "chainguard":
      return { ended: false }; // rolling: one release, always current
  }
};
