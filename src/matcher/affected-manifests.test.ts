// AffectedManifests over manifest_package rows. Expected answers: the fixture README's rules and oracles
// (../shared/fixtures/advisories/README.md): Alpine C1 (go-apk-version over alpine/vuln-list/3.18/main/
// openssl.json: 3.1.0-r4 < 3.1.1-r0, CVE-2023-1255 is fixed at 3.1.0-r4 itself), PyPI C8 (python3-packaging:
// 3.1.2 < 3.1.3, not < 2.10.1), Go C7 (x/mod/semver: v1.19.8 < v1.19.9), npm C6 (semver.compare).
import { describe, expect, it } from "vitest";
import type { ManifestPackageMatch } from "../store/types.js";
import { affectedManifests, lookupNames, type VulnerabilityQuery } from "./affected-manifests.js";

const A318 = `sha256:${"1".repeat(64)}`;
const A316 = `sha256:${"2".repeat(64)}`;
const DEB = `sha256:${"3".repeat(64)}`;
const APP = `sha256:${"4".repeat(64)}`;
const ODD = `sha256:${"5".repeat(64)}`;
const apk = { package_db: "lib/apk/db/installed" };

const rows: ManifestPackageMatch[] = [
  // The Alpine 3.18 inventory (apk/alpine-3.18/installed): libssl3 3.1.0-r4, origin openssl.
  { manifest: A318, name: "libssl3", version: "3.1.0-r4", kind: "binary", ...apk, dist_did: "alpine", dist_version_id: "3.18.4" },
  { manifest: A318, name: "openssl", version: "3.1.0-r4", kind: "source", ...apk, dist_did: "alpine", dist_version_id: "3.18.4" },
  // The Alpine 3.16 inventory (apk/alpine-3.16/installed): libssl1.1 1.1.1q-r0, origin openssl.
  { manifest: A316, name: "openssl", version: "1.1.1q-r0", kind: "source", ...apk, dist_did: "alpine", dist_version_id: "3.16.2" },
  // Debian's openssl source package: another distribution.
  { manifest: DEB, name: "openssl", version: "3.0.11-1~deb12u2", kind: "source", package_db: "var/lib/dpkg/status", dist_did: "debian", dist_version_id: "12" },
  { manifest: DEB, name: "gnutls28", version: "3.7.9-2", kind: "source", package_db: "var/lib/dpkg/status", dist_did: "debian", dist_version_id: "12" },
  // Language packages of an application image on Debian.
  { manifest: APP, name: "Jinja2", version: "3.1.2", kind: "binary", package_db: "python:usr/local/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA", dist_did: "debian", dist_version_id: "12" },
  { manifest: APP, name: "stdlib", version: "go1.19.8", kind: "binary", package_db: "go:usr/bin/gofmt", dist_did: "debian", dist_version_id: "12" },
  { manifest: APP, name: "semver", version: "7.5.1", kind: "binary", package_db: "nodejs:app/node_modules/semver/package.json", dist_did: "debian", dist_version_id: "12" },
  { manifest: ODD, name: "semver", version: "bogus", kind: "binary", package_db: "nodejs:app/node_modules/semver/package.json", dist_did: "debian", dist_version_id: "12" },
];

const alpine = (id: string, name: string, fixed: string, version_id = "3.18"): VulnerabilityQuery => ({
  id, name, fixed_in_version: fixed, normalized_severity: "Medium", package: { name: "openssl" }, distribution: { did: "alpine", version_id },
});

describe("affectedManifests", () => {
  it("finds the Alpine 3.18 image by its openssl source row, and not the 3.16 one, Debian's openssl, or a fix at the installed version", () => {
    const r = affectedManifests([alpine("1", "CVE-2023-2650", "3.1.1-r0"), alpine("2", "CVE-2023-1255", "3.1.0-r4")], rows);
    expect(r.vulnerableManifests).toEqual({ [A318]: ["1"] });
    // The same fix for any Alpine release (no version_id): 1.1.1q-r0 < 3.1.1-r0 by apk order, so 3.16 too.
    expect(affectedManifests([{ ...alpine("3", "CVE-2023-2650", "3.1.1-r0"), distribution: { did: "alpine" } }], rows).vulnerableManifests).toEqual({ [A316]: ["3"], [A318]: ["3"] });
    // A Debian release matches Debian rows only, by the source version (3.7.9-2 < 3.7.9-2+deb12u1, dpkg).
    const deb = { id: "4", name: "CVE-2023-5981", fixed_in_version: "3.7.9-2+deb12u1", package: { name: "gnutls28" }, distribution: { did: "debian", version_id: "12" } };
    expect(affectedManifests([deb], rows).vulnerableManifests).toEqual({ [DEB]: ["4"] });
    expect(affectedManifests([{ ...deb, distribution: { did: "debian", version_id: "11" } }], rows).vulnerableManifests).toEqual({});
  });

  it("reads fixed_in_version as claircore does: empty = unfixed, \"0\" = not affected, ranges, encoded OSV ranges", () => {
    expect(affectedManifests([alpine("u", "CVE-X", "")], rows).vulnerableManifests).toEqual({ [A318]: ["u"] });
    const zero = affectedManifests([alpine("z", "CVE-X", "0")], rows);
    expect(zero.vulnerableManifests).toEqual({});
    expect(zero.notApplicable).toEqual({ z: expect.stringContaining("not affected") });
    const ranged = (r: VulnerabilityQuery["range"]) => affectedManifests([{ ...alpine("r", "CVE-X", ""), range: r }], rows).vulnerableManifests;
    expect(ranged({ "[": "3.0.0-r0", ")": "3.1.1-r0" })).toEqual({ [A318]: ["r"] });
    expect(ranged({ "[": "3.1.1-r0" })).toEqual({});
    // PyPI as claircore's OSV updater encodes it (C8: GHSA-h5c8-rqwp-cp95 < 3.1.3 affects, PYSEC-2019-217 < 2.10.1 does not).
    const py = (id: string, fixed: string, name = "jinja2"): VulnerabilityQuery => ({ id, fixed_in_version: fixed, package: { name }, repository: { name: "pypi", uri: "https://pypi.org/" } });
    expect(affectedManifests([py("ghsa", "fixed=3.1.3"), py("pysec", "fixed=2.10.1"), py("last", "introduced=3.0&lastAffected=3.1.2")], rows).vulnerableManifests).toEqual({ [APP]: ["ghsa", "last"] });
    expect(lookupNames([py("x", "", "Jinja_2"), alpine("y", "CVE-X", "")])).toEqual({ names: ["openssl"], pypiNames: ["jinja-2"] });
    // Go (C7: GO-2023-1752, stdlib fixed 1.19.9) as a claircore semver range: 0 ≤ v1.19.8 < 1.19.9.
    const go: VulnerabilityQuery = { id: "go", package: { name: "stdlib" }, repository: { name: "go" }, range: { "[": "semver:0.0.0.0.0.0.0.0.0.0", ")": "semver:0.1.19.9.0.0.0.0.0.0" } };
    expect(affectedManifests([go], rows).vulnerableManifests).toEqual({ [APP]: ["go"] });
    expect(affectedManifests([{ ...go, range: { "[": "semver:0.1.19.9.0.0.0.0.0.0", ")": "semver:65535.0.0.0.0.0.0.0.0.0" } }], rows).vulnerableManifests).toEqual({});
  });

  it("counts unreadable versions as skipped, never as affected, and sorts ids most severe first", () => {
    // C6: GHSA-c2qf-rxjj-qqgw [7.0.0, 7.5.2): semver 7.5.1 affected; "bogus" cannot be compared.
    const v = (id: string, sev: VulnerabilityQuery["normalized_severity"]): VulnerabilityQuery => ({ id, normalized_severity: sev, package: { name: "semver" }, repository: { name: "npm" }, range: { "[": "7.0.0", ")": "7.5.2" } });
    const r = affectedManifests([v("a-low", "Low"), v("b-high", "High")], rows);
    expect(r.vulnerableManifests).toEqual({ [APP]: ["b-high", "a-low"] });
    expect(r.skipped).toBe(2);
  });

  it("says why a vulnerability can affect nothing: no package, no ecosystem, an unknown distribution, an inverted assertion", () => {
    const r = affectedManifests([
      { id: "nopkg", distribution: { did: "alpine", version_id: "3.18" } },
      { id: "noeco", package: { name: "semver" } },
      { id: "repo", package: { name: "semver" }, repository: { name: "cpan" } },
      { id: "distro", package: { name: "openssl" }, distribution: { did: "gentoo", version_id: "2.14" } },
      { id: "nodid", package: { name: "openssl" }, distribution: { name: "Alpine Linux" } },
      { ...alpine("inv", "CVE-2023-2650", "3.1.1-r0"), invert: true },
    ], rows);
    expect(r.vulnerableManifests).toEqual({});
    expect(Object.keys(r.notApplicable).sort()).toEqual(["distro", "inv", "nodid", "noeco", "nopkg", "repo"]);
    expect(r.notApplicable.distro).toMatch(/no advisory source for gentoo/);
  });
});
