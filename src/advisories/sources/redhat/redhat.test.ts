import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Advisory, AffectedPackage, RawFile } from "../../../model/advisory.js";
import { AdvisoryInputError, SIZE_CAPS } from "../../input.js";
import { detect, ecosystemFromCpe, parse, parseCpe, parseNevra, parsePurl } from "./index.js";

const FIXTURES = new URL("../../../../../shared/fixtures/advisories/", import.meta.url);
const fixture = (rel: string): Buffer => readFileSync(new URL(rel, FIXTURES));
const json = (path: string, doc: unknown): RawFile => ({ path, bytes: Buffer.from(JSON.stringify(doc)) });

describe("Red Hat VEX fixture cve-2024-28085.json (C5)", () => {
  const { advisories, skipped } = parse([{ path: "2024/cve-2024-28085.json", bytes: fixture("redhat/cve-2024-28085.json") }]);
  const a = advisories[0] as Advisory;

  it("is one advisory for the CVE, nothing skipped", () => {
    expect(skipped).toEqual([]);
    expect(advisories).toHaveLength(1);
    expect(a).toMatchObject({
      id: "CVE-2024-28085",
      aliases: [],
      advisoryIds: [],
      severity: "Low",
      vendorSeverity: "Low",
      summary: "util-linux: CVE-2024-28085: wall: escape sequence injection",
      published: "2024-03-27T00:00:00+00:00",
      modified: "2025-07-05T10:06:38+00:00",
      origin: { file: "2024/cve-2024-28085.json", record: "CVE-2024-28085" },
    });
    expect(a.details).toMatch(/^wall in util-linux through 2\.40/);
    expect(a.details).toMatch(/Statement: This vulnerability doesn't affect any supported Red Hat products/);
  });

  it("util-linux on RHEL 7–10 and util-linux-ng on RHEL 6 are known_not_affected with vulnerable_code_not_present", () => {
    expect(a.affected.map((r) => [r.ecosystem, r.name])).toEqual([
      ["RHEL:6", "util-linux-ng"],
      ["RHEL:7", "util-linux"],
      ["RHEL:8", "util-linux"],
      ["RHEL:9", "util-linux"],
      ["RHEL:10", "util-linux"],
    ]);
    for (const r of a.affected) {
      const major = r.ecosystem.split(":")[1] ?? "";
      expect(r).toEqual({
        ecosystem: r.ecosystem,
        name: r.name,
        nameKind: "source",
        fixState: "not_affected",
        fixedVersions: [],
        ranges: [],
        vendorSeverity: "Low",
        detail: { cpes: [`cpe:/o:redhat:enterprise_linux:${major}`], flags: ["vulnerable_code_not_present"] },
      });
    }
  });

  it("keeps Red Hat's CVSS 3.1 score", () => {
    expect(a.cvss).toEqual([{ version: "3.1", vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N", score: 4.4, source: "redhat" }]);
    expect(a.references.map((r) => r.url)).toContain("https://access.redhat.com/security/cve/CVE-2024-28085");
  });
});

/** A VEX document written for these tests, shaped like Red Hat's (fixed builds, modules, unfixed states). */
function sampleDocument(): Record<string, unknown> {
  const platform = (id: string, cpe?: string) => ({
    category: "product_name",
    name: id,
    product: { name: id, product_id: id, ...(cpe === undefined ? {} : { product_identification_helper: { cpe } }) },
  });
  const component = (id: string, purl?: string) => ({
    category: "product_version",
    name: id,
    product: { name: id, product_id: id, ...(purl === undefined ? {} : { product_identification_helper: { purl } }) },
  });
  const rel = (component: string, platform: string) => ({
    category: "default_component_of",
    full_product_name: { name: `${component} as a component of ${platform}`, product_id: `${platform}:${component}` },
    product_reference: component,
    relates_to_product_reference: platform,
  });
  const mod20 = "nodejs:20:8100020240613122040:ad008a3a";
  return {
    document: {
      category: "csaf_vex",
      csaf_version: "2.0",
      title: "test",
      tracking: { id: "CVE-2099-0001", current_release_date: "2099-02-01T00:00:00+00:00", initial_release_date: "2099-01-01T00:00:00+00:00" },
    },
    product_tree: {
      branches: [
        {
          category: "vendor",
          name: "Red Hat",
          branches: [
            {
              category: "product_family",
              name: "platforms",
              branches: [
                platform("BaseOS-8.9.0.Z.MAIN", "cpe:/o:redhat:enterprise_linux:8::baseos"),
                platform("AppStream-8.9.0.Z.MAIN", "cpe:/a:redhat:enterprise_linux:8::appstream"),
                platform("red_hat_enterprise_linux_9", "cpe:/o:redhat:enterprise_linux:9"),
                platform("AppStream-8.6.0.Z.EUS", "cpe:/a:redhat:rhel_eus:8.6::appstream"),
                platform("red_hat_openshift_4", "cpe:2.3:a:redhat:openshift:4:*:*:*:*:*:*:*"),
                platform("other_vendor", "cpe:/o:example:os:1"),
                platform("no_cpe"),
              ],
            },
            {
              category: "architecture",
              name: "src",
              branches: [
                component("util-linux-0:2.32.1-46.el8.src", "pkg:rpm/redhat/util-linux@2.32.1-46.el8?arch=src"),
                component("nodejs-1:18.19.0-1.module+el8.9.0+1234+abcd.src", "pkg:rpm/redhat/nodejs@18.19.0-1.module%2Bel8.9.0%2B1234%2Babcd?arch=src&epoch=1&rpmmod=nodejs:18:8090020240306180325:a75119d5"),
                component("bash-0:5.1.8-9.el9.src"),
              ],
            },
            {
              category: "architecture",
              name: "x86_64",
              branches: [
                component("libuuid-0:2.32.1-46.el8.x86_64", "pkg:rpm/redhat/libuuid@2.32.1-46.el8?arch=x86_64"),
                component("onlybin-0:1.0-1.el9.x86_64", "pkg:rpm/redhat/onlybin@1.0-1.el9?arch=x86_64"),
              ],
            },
            component("kernel", "pkg:rpm/redhat/kernel?arch=src"),
            component("openssl", "pkg:rpm/redhat/openssl?arch=src"),
            component("glibc", "pkg:rpm/redhat/glibc?arch=src"),
            component("curl", "pkg:rpm/redhat/curl?arch=src"),
            component("sudo", "pkg:rpm/redhat/sudo?arch=src"),
            component("perl", "pkg:rpm/redhat/perl?arch=src"),
            component("ruby:2.6/ruby", "pkg:rpmmod/redhat/ruby:2.6/ruby"),
            component("ruby:3.0", "pkg:rpmmod/redhat/ruby@3.0:8060020220810162001:ad008a3a"),
            component(mod20, `pkg:rpmmod/redhat/nodejs@20:8100020240613122040:ad008a3a`),
            component("npm-1:10.7.0-1.20.16.0.1.module+el8.10.0+1.src", "pkg:rpm/redhat/npm@10.7.0-1.20.16.0.1.module%2Bel8.10.0%2B1?arch=src&epoch=1"),
            component("ose-cli-container", "pkg:oci/ose-cli@sha256:abc?repository_url=registry.redhat.io/openshift4/ose-cli"),
            component("ose-2", "pkg:oci/ose-2@sha256:def"),
          ],
        },
      ],
      relationships: [
        rel("util-linux-0:2.32.1-46.el8.src", "BaseOS-8.9.0.Z.MAIN"),
        rel("libuuid-0:2.32.1-46.el8.x86_64", "BaseOS-8.9.0.Z.MAIN"),
        rel("nodejs-1:18.19.0-1.module+el8.9.0+1234+abcd.src", "AppStream-8.9.0.Z.MAIN"),
        rel("bash-0:5.1.8-9.el9.src", "red_hat_enterprise_linux_9"),
        rel("onlybin-0:1.0-1.el9.x86_64", "red_hat_enterprise_linux_9"),
        rel("kernel", "red_hat_enterprise_linux_9"),
        rel("openssl", "red_hat_enterprise_linux_9"),
        rel("glibc", "red_hat_enterprise_linux_9"),
        rel("curl", "red_hat_enterprise_linux_9"),
        rel("sudo", "red_hat_enterprise_linux_9"),
        rel("perl", "AppStream-8.6.0.Z.EUS"),
        rel("ruby:2.6/ruby", "AppStream-8.9.0.Z.MAIN"),
        rel("ruby:3.0", "AppStream-8.9.0.Z.MAIN"),
        rel(mod20, "AppStream-8.9.0.Z.MAIN"),
        rel("npm-1:10.7.0-1.20.16.0.1.module+el8.10.0+1.src", `AppStream-8.9.0.Z.MAIN:${mod20}`),
        rel("ose-cli-container", "red_hat_openshift_4"),
        rel("ose-2", "red_hat_openshift_4"),
        rel("kernel", "other_vendor"),
        rel("kernel", "no_cpe"),
        { ...rel("glibc", "red_hat_openshift_4"), category: "installed_on" },
      ],
      product_groups: [{ group_id: "wont", product_ids: ["red_hat_enterprise_linux_9:kernel"] }],
    },
    vulnerabilities: [
      {
        cve: "CVE-2099-0001",
        title: "pkg: a flaw",
        notes: [{ category: "description", text: "A flaw." }],
        release_date: "2099-01-02T00:00:00+00:00",
        product_status: {
          fixed: [
            "BaseOS-8.9.0.Z.MAIN:util-linux-0:2.32.1-46.el8.src",
            "BaseOS-8.9.0.Z.MAIN:libuuid-0:2.32.1-46.el8.x86_64",
            "AppStream-8.9.0.Z.MAIN:nodejs-1:18.19.0-1.module+el8.9.0+1234+abcd.src",
            "red_hat_enterprise_linux_9:bash-0:5.1.8-9.el9.src",
            "red_hat_enterprise_linux_9:onlybin-0:1.0-1.el9.x86_64",
            `AppStream-8.9.0.Z.MAIN:${mod20}:npm-1:10.7.0-1.20.16.0.1.module+el8.10.0+1.src`,
          ],
          known_affected: [
            "red_hat_enterprise_linux_9:kernel",
            "red_hat_enterprise_linux_9:openssl",
            "red_hat_enterprise_linux_9:glibc",
            "red_hat_enterprise_linux_9:curl",
            "AppStream-8.6.0.Z.EUS:perl",
            "AppStream-8.9.0.Z.MAIN:ruby:2.6/ruby",
            "AppStream-8.9.0.Z.MAIN:ruby:3.0",
            "red_hat_openshift_4:ose-cli-container",
            "red_hat_openshift_4:ose-2",
            "other_vendor:kernel",
            "no_cpe:kernel",
            "red_hat_openshift_4:glibc",
            "nowhere:thing",
          ],
          under_investigation: ["red_hat_enterprise_linux_9:sudo"],
        },
        remediations: [
          {
            category: "vendor_fix",
            details: "Update.",
            url: "https://access.redhat.com/errata/RHSA-2099:0101",
            date: "2099-01-10T00:00:00+00:00",
            product_ids: [
              "BaseOS-8.9.0.Z.MAIN:util-linux-0:2.32.1-46.el8.src",
              "BaseOS-8.9.0.Z.MAIN:libuuid-0:2.32.1-46.el8.x86_64",
            ],
          },
          {
            category: "vendor_fix",
            url: "https://access.redhat.com/errata/RHSA-2099:0202",
            date: "2099-01-20T00:00:00+00:00",
            product_ids: ["AppStream-8.9.0.Z.MAIN:nodejs-1:18.19.0-1.module+el8.9.0+1234+abcd.src"],
          },
          { category: "no_fix_planned", details: "Will not fix", group_ids: ["wont"] },
          { category: "no_fix_planned", details: "Out of support scope", product_ids: ["red_hat_enterprise_linux_9:openssl"] },
          { category: "none_available", details: "Deferred", product_ids: ["red_hat_enterprise_linux_9:glibc"] },
          { category: "none_available", details: "Affected", product_ids: ["red_hat_enterprise_linux_9:curl"] },
          { category: "workaround", details: "Do not use the feature.", product_ids: ["red_hat_enterprise_linux_9:curl"] },
        ],
        threats: [
          { category: "impact", details: "Moderate" },
          { category: "impact", details: "Important", product_ids: ["red_hat_enterprise_linux_9:kernel"] },
        ],
        scores: [
          { cvss_v3: { version: "3.1", vectorString: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", baseScore: 9.8 }, products: [] },
          { cvss_v2: { vectorString: "AV:N/AC:L/Au:N/C:P/I:P/A:P", baseScore: 7.5 }, products: [] },
        ],
        references: [{ category: "self", url: "https://access.redhat.com/security/cve/CVE-2099-0001" }],
      },
    ],
  };
}

describe("Red Hat VEX: fixed builds, modules, unfixed states (document written for the test)", () => {
  const { advisories, skipped } = parse([json("2099/cve-2099-0001.json", sampleDocument())]);
  const a = advisories[0] as Advisory;
  const row = (ecosystem: string, name: string, state?: string): AffectedPackage => {
    const r = a.affected.find((x) => x.ecosystem === ecosystem && x.name === name && (state === undefined || x.fixState === state));
    if (!r) throw new Error(`no row ${ecosystem} ${name}`);
    return r;
  };

  it("fixed source RPM: EVR from the purl, RHSA id and date from vendor_fix; its binary RPM row is dropped", () => {
    expect(row("RHEL:8", "util-linux")).toEqual({
      ecosystem: "RHEL:8",
      name: "util-linux",
      nameKind: "source",
      fixState: "fixed",
      fixedVersions: ["2.32.1-46.el8"],
      ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "2.32.1-46.el8" }] }],
      fixAvailableAt: "2099-01-10T00:00:00+00:00",
      vendorSeverity: "Moderate",
      detail: { cpes: ["cpe:/o:redhat:enterprise_linux:8::baseos"], advisories: ["RHSA-2099:0101"] },
    });
    expect(a.affected.find((r) => r.name === "libuuid")).toBeUndefined();
    expect(a.advisoryIds).toEqual(["RHSA-2099:0101", "RHSA-2099:0202"]);
  });

  it("module streams: rpmmod qualifier, module product chain, and a package-in-module purl", () => {
    expect(row("RHEL:8", "nodejs")).toMatchObject({
      module: "nodejs:18",
      fixState: "fixed",
      fixedVersions: ["1:18.19.0-1.module+el8.9.0+1234+abcd"],
      detail: { cpes: ["cpe:/a:redhat:enterprise_linux:8::appstream"] },
    });
    expect(row("RHEL:8", "npm")).toMatchObject({ module: "nodejs:20", fixState: "fixed", fixedVersions: ["1:10.7.0-1.20.16.0.1.module+el8.10.0+1"] });
    expect(row("RHEL:8", "ruby")).toMatchObject({ module: "ruby:2.6", nameKind: "source", fixState: "not_fixed" });
  });

  it("a NEVRA product id without purl is read; a binary-only fixed build stays as a binary row", () => {
    expect(row("RHEL:9", "bash")).toMatchObject({ nameKind: "source", fixState: "fixed", fixedVersions: ["5.1.8-9.el9"] });
    expect(row("RHEL:9", "onlybin")).toMatchObject({ nameKind: "binary", fixState: "fixed", fixedVersions: ["1.0-1.el9"] });
  });

  it("known_affected: Will not fix → wont_fix, Out of support scope → end_of_life, Deferred → deferred, Affected → not_fixed", () => {
    const open = [{ type: "ECOSYSTEM", events: [{ introduced: "0" }] }];
    expect(row("RHEL:9", "kernel")).toMatchObject({
      fixState: "wont_fix",
      ranges: open,
      vendorSeverity: "Important",
      detail: { remediations: ["no_fix_planned: Will not fix"] },
    });
    expect(row("RHEL:9", "openssl")).toMatchObject({ fixState: "end_of_life", ranges: open });
    expect(row("RHEL:9", "glibc")).toMatchObject({ fixState: "deferred", ranges: open });
    expect(row("RHEL:9", "curl")).toMatchObject({
      fixState: "not_fixed",
      detail: { remediations: ["none_available: Affected", "workaround: Do not use the feature."] },
    });
    expect(row("RHEL:9", "sudo")).toMatchObject({ fixState: "under_investigation", ranges: [] });
  });

  it("other Red Hat products stay keyed by their CPE product", () => {
    expect(row("Red Hat:rhel_eus:8.6", "perl")).toMatchObject({ fixState: "not_fixed", detail: { cpes: ["cpe:/a:redhat:rhel_eus:8.6::appstream"] } });
  });

  it("severity: the highest impact when there is no aggregate; CVSS v3.1 and v2 kept", () => {
    expect(a.severity).toBe("High");
    expect(a.vendorSeverity).toBe("Important");
    expect(a.cvss).toEqual([
      { version: "3.1", vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", score: 9.8, source: "redhat" },
      { version: "2.0", vector: "AV:N/AC:L/Au:N/C:P/I:P/A:P", score: 7.5, source: "redhat" },
    ]);
    expect(a.summary).toBe("pkg: a flaw");
    expect(a.published).toBe("2099-01-02T00:00:00+00:00");
    expect(a.references.map((r) => r.url)).toEqual([
      "https://access.redhat.com/security/cve/CVE-2099-0001",
      "https://access.redhat.com/errata/RHSA-2099:0101",
      "https://access.redhat.com/errata/RHSA-2099:0202",
    ]);
  });

  it("what cannot be matched is skipped, grouped by reason", () => {
    expect(skipped.map((s) => [s.record, s.reason])).toEqual([
      ["CVE-2099-0001: AppStream-8.9.0.Z.MAIN:ruby:3.0", "module-level entry (names a module stream, no RPM)"],
      [
        "CVE-2099-0001: red_hat_openshift_4:ose-cli-container, red_hat_openshift_4:ose-2",
        'not an RPM (purl type "oci") (2 product entries)',
      ],
      ["CVE-2099-0001: other_vendor:kernel", 'platform CPE vendor "example" is not redhat'],
      ["CVE-2099-0001: no_cpe:kernel", "platform product without a CPE"],
      ["CVE-2099-0001: red_hat_openshift_4:glibc", 'relationship category "installed_on" is not a component of a platform'],
      ["CVE-2099-0001: nowhere:thing", "product id not in the product tree"],
    ]);
    expect(a.affected).toHaveLength(12);
  });
});

describe("many documents, hostile input", () => {
  it("reads a list of documents; the same CVE twice keeps the newer one", () => {
    const older = sampleDocument();
    const newer = sampleDocument();
    (newer.document as { tracking: { current_release_date: string } }).tracking.current_release_date = "2099-03-01T00:00:00+00:00";
    const r = parse([
      json("a/cve-2099-0001.json", newer),
      json("b/cve-2099-0001.json", older),
      { path: "2024/cve-2024-28085.json", bytes: fixture("redhat/cve-2024-28085.json") },
    ]);
    expect(r.advisories.map((x) => [x.id, x.origin.file])).toEqual([
      ["CVE-2024-28085", "2024/cve-2024-28085.json"],
      ["CVE-2099-0001", "a/cve-2099-0001.json"],
    ]);
    expect(r.skipped.filter((s) => s.record === "CVE-2099-0001")).toEqual([
      { file: "b/cve-2099-0001.json", record: "CVE-2099-0001", reason: "duplicate of CVE-2099-0001 in a/cve-2099-0001.json, which is newer or read first" },
    ]);
  });

  it("records of the wrong shape are skipped; the rest of the document is used", () => {
    const doc = JSON.parse(fixture("redhat/cve-2024-28085.json").toString()) as Record<string, unknown>;
    const vuln = (doc.vulnerabilities as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
    const status = vuln.product_status as Record<string, unknown>;
    status.fixed = ["red_hat_enterprise_linux_8:util-linux"]; // unversioned: cannot be fixed
    status.under_investigation = [5];
    vuln.threats = "high";
    vuln.scores = [{ cvss_v3: { vectorString: "garbage" } }, { cvss_v3: { vectorString: 7 } }];
    (doc.vulnerabilities as unknown[]).push("not an object", { cve: "not-a-cve" }, { cve: `CVE-2024-${"1".repeat(200)}` });
    const r = parse([json("x.json", doc)]);
    expect(r.advisories).toHaveLength(1);
    expect(r.advisories[0]?.affected).toHaveLength(5);
    expect(r.skipped.map((s) => [s.record, s.reason])).toEqual([
      ["CVE-2024-28085 threats", "a string, expected a list"],
      ["CVE-2024-28085 scores[1]", "cvss_v3.vectorString: Invalid input: expected string, received number"],
      ["CVE-2024-28085 scores", 'unreadable CVSS vector "garbage"'],
      ["CVE-2024-28085 product_status.under_investigation[0]", "product id is a number, expected a string of at most 1024 characters"],
      ["CVE-2024-28085: red_hat_enterprise_linux_8:util-linux", "fixed without a version"],
      ["vulnerabilities[1]", "vulnerability is a string, expected an object"],
      ["vulnerabilities[2]", 'cve is "not-a-cve", expected a CVE id'],
      ["vulnerabilities[3]", `cve is "CVE-2024-${"1".repeat(50)}…", expected a CVE id`],
    ]);
  });

  it("a document that is not VEX is skipped; truncated JSON, a wrong top level, an oversized file are errors", () => {
    const r = parse([json("rhsa.json", { document: { category: "csaf_security_advisory" } })]);
    expect(r).toEqual({
      advisories: [],
      skipped: [{ file: "rhsa.json", record: "document.category", reason: 'category is "csaf_security_advisory", not csaf_vex' }],
    });
    const text = fixture("redhat/cve-2024-28085.json").toString().slice(0, 3000);
    expect(() => parse([{ path: "2024/cve-2024-28085.json", bytes: Buffer.from(text) }])).toThrow(
      /^2024\/cve-2024-28085\.json: invalid JSON at line \d+ column \d+ \(offset 3000\)/,
    );
    expect(() => parse([json("arr.json", [])])).toThrow(AdvisoryInputError);
    const big: RawFile = { path: "huge.json", bytes: Buffer.alloc(SIZE_CAPS.other + 1, 0x20) };
    expect(() => parse([big])).toThrow(/^huge\.json: \d+ bytes is over the 64 MiB cap/);
  });

  it("bounds the product tree's nesting", () => {
    let node: Record<string, unknown> = { category: "product_version", name: "x", product: { name: "x", product_id: "x" } };
    for (let i = 0; i < 100; i++) node = { category: "vendor", name: `n${i}`, branches: [node] };
    const doc = sampleDocument();
    (doc.product_tree as { branches: unknown[] }).branches.push(node);
    const r = parse([json("deep.json", doc)]);
    expect(r.advisories).toHaveLength(1);
    expect(r.skipped.some((s) => s.reason === "branches nested deeper than 32 levels")).toBe(true);
  });
});

describe("identifiers", () => {
  it("reads CPEs and maps them to ecosystems", () => {
    const eco = (s: string) => {
      const c = parseCpe(s);
      return c === undefined ? undefined : ecosystemFromCpe(c);
    };
    expect(eco("cpe:/o:redhat:enterprise_linux:8")).toEqual({ ecosystem: "RHEL:8" });
    expect(eco("cpe:/a:redhat:enterprise_linux:8::appstream")).toEqual({ ecosystem: "RHEL:8" });
    expect(eco("cpe:/a:redhat:enterprise_linux:9.2::crb")).toEqual({ ecosystem: "RHEL:9" });
    expect(eco("cpe:2.3:o:redhat:enterprise_linux:10:*:*:*:*:*:*:*")).toEqual({ ecosystem: "RHEL:10" });
    expect(eco("cpe:/a:redhat:openshift:4.12::el8")).toEqual({ ecosystem: "Red Hat:openshift:4.12" });
    expect(eco("cpe:/a:redhat:openshift")).toEqual({ ecosystem: "Red Hat:openshift" });
    expect(eco("cpe:/o:redhat:enterprise_linux")).toEqual({ skip: 'RHEL platform CPE without a major version ("")' });
    expect(eco("not a cpe")).toBeUndefined();
  });

  it("reads purls and NEVRAs", () => {
    expect(parsePurl("pkg:rpm/redhat/util-linux@2.32.1-46.el8?arch=src")).toEqual({
      type: "rpm",
      namespace: ["redhat"],
      name: "util-linux",
      version: "2.32.1-46.el8",
      qualifiers: new Map([["arch", "src"]]),
    });
    expect(parsePurl("pkg:rpm/redhat/libecap@1.0.1-2.module%2Bel8.1.0%2B4044%2B36416a77?rpmmod=squid:4:8030020200828070549:30b713e6&arch=ppc64le")?.version).toBe(
      "1.0.1-2.module+el8.1.0+4044+36416a77",
    );
    expect(parsePurl("pkg:rpmmod/redhat/ruby:2.6/ruby")).toMatchObject({ type: "rpmmod", namespace: ["redhat", "ruby:2.6"], name: "ruby" });
    expect(parsePurl("pkg:rpm/%ZZ")).toBeUndefined();
    expect(parseNevra("kernel-0:3.10.0-693.112.1.el7.src")).toEqual({ name: "kernel", epoch: "0", version: "3.10.0", release: "693.112.1.el7", arch: "src" });
    expect(parseNevra("util-linux")).toBeUndefined();
  });
});

describe("detect", () => {
  it("recognises the VEX fixture and nothing else", () => {
    expect(detect({ path: "x", bytes: fixture("redhat/cve-2024-28085.json") })).toBe(true);
    for (const f of ["debian/vunnel/debian.json", "alpine/vuln-list/3.18/main/openssl.json", "osv/ghsa/GHSA-35jh-r3h4-6jhm.json", "enrichment/kev/known_exploited_vulnerabilities.json"]) {
      expect(detect({ path: "x", bytes: fixture(f) }), f).toBe(false);
    }
  });
});
