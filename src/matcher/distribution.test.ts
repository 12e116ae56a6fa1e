import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Distribution } from "../model/packages.js";
import { OsReleaseScanner } from "../scanners/osrelease/osrelease.js";
import { fixtureNames, fixturesDir, MapLayerFiles } from "../scanners/testing.js";
import { distributionCoverage, distributionKey } from "./distribution.js";

/** The ecosystem each release-file fixture must map to (undefined: no advisory source), written from what each release is. */
function expectedEcosystem(name: string): string | undefined {
  const special: Record<string, string | undefined> = {
    "alpine-2.6.6-alpine-release-only": "Alpine:v2.6",
    "alpine-alpine-release-only": "Alpine:v3.11", // its alpine-release says 3.11.6
    "alpine-3.19_alpha20230901": "Alpine:edge",
    "alpine-3.22.0_alpha20250108": "Alpine:edge",
    "debian-sid": "Debian:unstable",
    "debian-unstable": "Debian:unstable",
    // os-release without VERSION_ID or codename: the release comes from the debian_version beside it (10.8).
    "debian-distroless-with-debian_version": "Debian:10",
    // debian_version "buster/sid": the scanner reads it as release 10 (see the report to the lead).
    "debian-sid-debian_version-only": "Debian:10",
    "debian-6-debian_version-only": "Debian:6",
    "debian-9-debian_version-only": "Debian:9",
    "ubuntu-lsb-release-only": "Ubuntu:18.04:LTS",
    "ubuntu-10.04-lsb-debian_version": "Ubuntu:10.04:LTS",
    "rhel-redhat-release-only": "RHEL:8",
    "redhat-6.5-redhat-release-only": "RHEL:6",
    "redhat-6-redhat-release-only": undefined, // Red Hat Linux 6.2 "Zoot" (2000), not RHEL
    "rhel-atomichost-7": "RHEL:7",
    "centos-centos-release-only": "RHEL:7",
    "centos-6-system-release-cpe-only": undefined, // nothing the scanner reads
    "almalinux-almalinux-release-only": "AlmaLinux:8",
    "almalinux-redhat-release-only": "AlmaLinux:8",
    "rocky-redhat-release-only": "Rocky Linux:8",
    "rocky-rocky-release-only": "Rocky Linux:8",
    // Rolling apk distributions: one ecosystem each, whatever the build date in VERSION_ID.
    "wolfi-20220914": "Wolfi",
    "chainguard-20230214": "Chainguard",
  };
  if (Object.hasOwn(special, name)) return special[name];
  let m = /^alpine-(\d+\.\d+)\./.exec(name);
  if (m) return `Alpine:v${m[1]}`;
  m = /^(?:distroless-)?debian-(\d+)(?:-|$)/.exec(name);
  if (m) return `Debian:${m[1]}`;
  m = /^ubuntu-(\d+)\.(\d+)/.exec(name);
  if (m) return Number(m[1]) % 2 === 0 && m[2] === "04" ? `Ubuntu:${m[1]}.${m[2]}:LTS` : `Ubuntu:${m[1]}.${m[2]}`;
  m = /^rhel-(\d+)\./.exec(name);
  if (m) return `RHEL:${m[1]}`;
  m = /^centos-(\d+)/.exec(name);
  if (m) return `RHEL:${m[1]}`;
  m = /^rocky-(\d+)\./.exec(name);
  if (m) return `Rocky Linux:${m[1]}`;
  m = /^almalinux-(\d+)\./.exec(name);
  if (m) return `AlmaLinux:${m[1]}`;
  return undefined; // Amazon, Fedora, Oracle, SUSE, Photon, Wolfi, Chainguard, Raspbian, postmarketOS, ...
}

async function scan(name: string): Promise<Distribution | undefined> {
  const dir = fixturesDir("osrelease", name);
  const files: Record<string, Buffer> = {};
  for (const f of readdirSync(dir).filter((f) => f !== "expected.json")) files[`etc/${f}`] = readFileSync(`${dir}/${f}`);
  return (await new OsReleaseScanner().scan(MapLayerFiles.of(files))).distributions?.[0];
}

describe("distribution keys of the 155 release-file fixtures, as the os-release scanner reads them", () => {
  for (const name of fixtureNames("osrelease")) {
    it(name, async () => {
      const k = distributionKey(await scan(name));
      expect(k.key?.ecosystem).toBe(expectedEcosystem(name));
      if (!k.key) expect(k.reason).toMatch(/\w/);
    });
  }

  it("CentOS is RHEL with a note; Stream says so", async () => {
    expect(distributionKey(await scan("centos-7")).key).toMatchObject({ family: "centos", ecosystem: "RHEL:7", note: expect.stringContaining("rebuild") });
    expect(distributionKey(await scan("centos-8-trivy")).key).toMatchObject({ family: "centos-stream", ecosystem: "RHEL:8", note: expect.stringContaining("Stream") });
  });

  it("testing/sid is matched as unstable, with a note", async () => {
    expect(distributionKey(await scan("debian-sid")).key).toMatchObject({ ecosystem: "Debian:unstable", note: expect.stringContaining("trixie") });
  });
});

describe("distribution keys from fields", () => {
  const d = (o: Partial<Distribution>): Distribution => ({ did: "", name: "", version: "", version_code_name: "", version_id: "", arch: "", cpe: "", pretty_name: "", ...o });

  it("RHEL by CPE alone", () => {
    expect(distributionKey(d({ cpe: "cpe:/o:redhat:enterprise_linux:8::baseos" })).key?.ecosystem).toBe("RHEL:8");
    expect(distributionKey(d({ cpe: "cpe:2.3:o:redhat:enterprise_linux:9:*:*:*:*:*:*:*" })).key?.ecosystem).toBe("RHEL:9");
    expect(distributionKey(d({ did: "rhel", cpe: "cpe:/o:redhat:enterprise_linux:8::baseos" })).key?.ecosystem).toBe("RHEL:8");
  });

  it("Ubuntu Pro adds the ESM ecosystem for LTS releases only", () => {
    expect(distributionKey(d({ did: "ubuntu", version_id: "18.04" }), { ubuntuPro: true }).key).toMatchObject({ ecosystem: "Ubuntu:18.04:LTS", extra: ["Ubuntu:Pro:18.04:LTS"] });
    expect(distributionKey(d({ did: "ubuntu", version_id: "23.10" }), { ubuntuPro: true }).key).toMatchObject({ ecosystem: "Ubuntu:23.10", extra: [] });
  });

  it("Alpine edge by VERSION_ID", () => {
    expect(distributionKey(d({ did: "alpine", version_id: "edge" })).key?.ecosystem).toBe("Alpine:edge");
  });

  it("no distribution, or no version, is a reason", () => {
    expect(distributionKey(undefined)).toEqual({ reason: expect.stringContaining("no distribution") });
    expect(distributionKey(d({ did: "ubuntu" })).key).toBeUndefined();
    expect(distributionKey(d({ did: "alpine" })).key).toBeUndefined();
  });
});

describe("distribution coverage", () => {
  const bookworm: Distribution = { did: "debian", name: "Debian GNU/Linux", version: "12 (bookworm)", version_code_name: "bookworm", version_id: "12", arch: "", cpe: "", pretty_name: "Debian GNU/Linux 12 (bookworm)" };
  const now = new Date("2026-12-04T00:00:00Z");

  it("supported when the store has rows for the ecosystem", () => {
    expect(distributionCoverage(bookworm, { hasData: (e) => e === "Debian:12", now }).coverage).toEqual({
      state: "supported", ecosystem: "Debian:12", did: "debian", versionId: "12", prettyName: "Debian GNU/Linux 12 (bookworm)",
    });
  });

  it("no_data when it has none, whatever the release's age", () => {
    expect(distributionCoverage(bookworm, { hasData: () => false, now }).coverage).toMatchObject({ state: "no_data", reason: "no advisory data for Debian:12 in the store" });
  });

  it("end_of_life after the release's end of support, with the date", () => {
    const buster = { ...bookworm, version_id: "10", version_code_name: "buster", pretty_name: "Debian GNU/Linux 10 (buster)" };
    expect(distributionCoverage(buster, { hasData: () => true, now }).coverage).toMatchObject({ state: "end_of_life", endOfLife: "2024-06-30", ecosystem: "Debian:10" });
    expect(distributionCoverage(buster, { hasData: () => true, now: new Date("2024-06-29T12:00:00Z") }).coverage.state).toBe("supported");
  });

  it("an LTS past standard support is covered with Ubuntu Pro", () => {
    const bionic = { ...bookworm, did: "ubuntu", version_id: "18.04", pretty_name: "Ubuntu 18.04.6 LTS" };
    expect(distributionCoverage(bionic, { hasData: () => true, now }).coverage.state).toBe("end_of_life");
    expect(distributionCoverage(bionic, { hasData: () => true, now, ubuntuPro: true }).coverage.state).toBe("supported");
  });

  it("a release older than every one in the table is end-of-life without a date", () => {
    const old = { ...bookworm, did: "alpine", version_id: "3.4.6", pretty_name: "Alpine Linux v3.4" };
    const c = distributionCoverage(old, { hasData: () => true, now }).coverage;
    expect(c.state).toBe("end_of_life");
    expect(c.endOfLife).toBeUndefined();
  });

  it("unsupported with the reason", () => {
    const fedora = { ...bookworm, did: "fedora", version_id: "42", pretty_name: "Fedora Linux 42 (Container Image)" };
    expect(distributionCoverage(fedora, { hasData: () => true, now }).coverage).toMatchObject({ state: "unsupported", reason: expect.stringContaining("fedora") });
  });

  it("an override of the end-of-life table is used", () => {
    const c = distributionCoverage(bookworm, { hasData: () => true, now, endOfLife: () => ({ ended: true, date: "2026-01-01" }) }).coverage;
    expect(c).toMatchObject({ state: "end_of_life", endOfLife: "2026-01-01" });
  });
});
