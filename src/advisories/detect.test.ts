import { readdirSync, readFileSync, statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { detectEpss, detectKev, detectNvd, detectNvdMeta } from "./enrichment/index.js";
import { detectNodejsCore } from "./sources/nodejs/index.js";
import { detectOsv } from "./sources/osv/index.js";
import type { RawFile } from "../model/advisory.js";

const ROOT = new URL("../../../shared/fixtures/advisories/", import.meta.url);

function walk(dir: string): string[] {
  return readdirSync(new URL(dir, ROOT))
    .sort()
    .flatMap((name) => (statSync(new URL(`${dir}${name}`, ROOT)).isDirectory() ? walk(`${dir}${name}/`) : [`${dir}${name}`]));
}

const DETECTORS: Record<string, (f: RawFile) => boolean> = {
  osv: detectOsv,
  nodejs: detectNodejsCore,
  epss: detectEpss,
  kev: detectKev,
  nvd: detectNvd,
  nvdMeta: detectNvdMeta,
};

/** What `portcullis db import` should make of each fixture file; files not listed belong to no parser here. */
const EXPECTED: Record<string, string> = {
  "osv/ghsa/GHSA-35jh-r3h4-6jhm.json": "osv",
  "osv/ghsa/GHSA-c2qf-rxjj-qqgw.json": "osv",
  "osv/ghsa/GHSA-h5c8-rqwp-cp95.json": "osv",
  "osv/ghsa/GHSA-jfh8-c2jp-5v3q.json": "osv",
  "osv/go/GO-2022-0907.json": "osv",
  "osv/go/GO-2022-0969.json": "osv",
  "osv/go/GO-2023-1752.json": "osv",
  "osv/pypi/PYSEC-2019-217.yaml": "osv",
  "ubuntu/UBUNTU-CVE-2022-1271.json": "osv",
  "ubuntu/UBUNTU-CVE-2023-4911.json": "osv",
  "nodejs/core/index.json": "nodejs",
  "enrichment/epss/data.csv": "epss",
  "enrichment/kev/known_exploited_vulnerabilities.json": "kev",
  "enrichment/nvd/feed.json": "nvd",
  "enrichment/nvd/feed.meta": "nvdMeta",
};

describe("detectors over every fixture file", () => {
  const files = ["osv/", "ubuntu/", "nodejs/", "enrichment/", "debian/", "alpine/", "redhat/"].flatMap(walk);

  it("finds the files", () => {
    expect(files.length).toBeGreaterThan(30);
    for (const f of Object.keys(EXPECTED)) expect(files).toContain(f);
  });

  for (const path of files) {
    it(`${path} → ${EXPECTED[path] ?? "none"}`, () => {
      const file = { path, bytes: readFileSync(new URL(path, ROOT)) };
      const hits = Object.entries(DETECTORS)
        .filter(([, detect]) => detect(file))
        .map(([name]) => name);
      expect(hits).toEqual(EXPECTED[path] ? [EXPECTED[path]] : []);
    });
  }
});
