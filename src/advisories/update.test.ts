// `db update` against an upstream on loopback that serves the real fixture files the way the real
// upstreams do (ETag, Last-Modified, 304), into the embedded store. The PostgreSQL side runs the same
// paths through the CLI in test/advisories/.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../store/open.js";
import type { Store } from "../store/types.js";
import { alpineSource, debianSource, defaultCatalogue, epssSource, secdbBranches } from "./catalogue.js";
import { startUpstream, type TestUpstream } from "./testing.js";
import { updateSource } from "./update.js";

const fixture = (p: string) => readFileSync(new URL(`../../../shared/fixtures/advisories/${p}`, import.meta.url));

describe("db update from an upstream", () => {
  let store: Store;
  let up: TestUpstream;
  beforeAll(async () => {
    store = await openStore("memory:");
    up = await startUpstream();
  });
  afterAll(async () => {
    await up?.close();
    await store?.close();
  });

  it("downloads Debian's tracker JSON and DSA list, then asks conditionally and writes nothing when they did not change", async () => {
    up.put("debian/debian.json", fixture("debian/vunnel/debian.json"));
    up.put("debian/DSA/list", fixture("debian/vunnel/DSA"));
    const mirrors = { debian: `${up.url}/debian` };
    const first = await updateSource(store.advisories, debianSource, { mirrors });
    expect(first).toMatchObject({ source: "debian", status: "updated", files: 2 });
    // DLA/list is optional: its 404 is not a failure.
    expect(up.requests.filter((r) => r.path === "debian/DLA/list").map((r) => r.status)).toEqual([404]);
    expect(first.downloaded).toBe(fixture("debian/vunnel/debian.json").length + fixture("debian/vunnel/DSA").length);
    const sope = await store.advisories.candidates([{ ecosystem: "Debian:12", name: "sope" }]);
    expect(sope.map((c) => [c.advisory.id, c.affected.fixState, c.affected.fixedVersions[0], c.advisory.advisoryIds])).toEqual([
      ["CVE-2025-53603", "fixed", "5.8.0-1+deb12u1", ["DSA-5970-1"]],
    ]);
    const before = up.requests.length;
    const second = await updateSource(store.advisories, debianSource, { mirrors });
    expect(second).toMatchObject({ status: "unchanged", downloaded: 0 });
    expect(second.operation?.ref).toBe(first.operation?.ref);
    const asked = up.requests.slice(before).filter((r) => r.path !== "debian/DLA/list");
    expect(asked.map((r) => [r.status, r.conditional])).toEqual([[304, true], [304, true]]);
  });

  it("records what a changed file changed, and keeps the previous data when the upstream fails", async () => {
    const mirrors = { debian: `${up.url}/debian` };
    const tracker = JSON.parse(fixture("debian/vunnel/debian.json").toString()) as Record<string, Record<string, { releases: Record<string, { fixed_version?: string; status?: string }> }>>;
    // sope's bookworm fix moves to a later version; prototypejs's two CVEs go away.
    tracker.sope!["CVE-2025-53603"]!.releases.bookworm!.fixed_version = "5.8.0-1+deb12u2";
    delete tracker.prototypejs;
    up.put("debian/debian.json", JSON.stringify(tracker));
    const r = await updateSource(store.advisories, debianSource, { mirrors });
    expect(r.status).toBe("updated");
    expect(r.operation!.stats).toMatchObject({ modified: 1, removed: 2, added: 0 });
    const ch = await store.advisories.changes(r.operation!.ref);
    expect(ch.changes).toEqual([
      { id: "CVE-2007-2383", change: "removed" }, { id: "CVE-2008-7220", change: "removed" }, { id: "CVE-2025-53603", change: "modified" },
    ]);
    expect(ch.packages).toContainEqual({ ecosystem: "Debian:12", name: "sope" });
    expect((await store.advisories.candidates([{ ecosystem: "Debian:12", name: "sope" }]))[0]!.affected.fixedVersions).toEqual(["5.8.0-1+deb12u2"]);

    up.put("debian/debian.json", "{}");
    up.fail("debian/debian.json", 500);
    const failed = await updateSource(store.advisories, debianSource, { mirrors });
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(new RegExp(`GET ${up.url}/debian/debian.json answered 500`));
    expect((await store.advisories.latestOperation("debian"))?.ref).toBe(r.operation!.ref);
    up.fail("debian/debian.json", undefined);
    // A file that is not the tracker's format fails the source whole; nothing is half written.
    up.put("debian/debian.json", '{"truncated": ');
    const bad = await updateSource(store.advisories, debianSource, { mirrors });
    expect(bad.status).toBe("failed");
    expect(bad.error).toMatch(/debian\.json/);
    expect((await store.advisories.latestOperation("debian"))?.ref).toBe(r.operation!.ref);
  });

  it("refuses a file over its size cap", async () => {
    const big = Buffer.alloc(65 * 1024 * 1024 + 1, 0x20);
    up.put("debian2/debian.json", fixture("debian/vunnel/debian.json"));
    up.put("debian2/DSA/list", big);
    const r = await updateSource(store.advisories, { ...debianSource, name: "debian-capped" }, { mirrors: { "debian-capped": `${up.url}/debian2` } });
    expect(r.status).toBe("failed");
    expect(r.error).toMatch(/DSA\/list is 68157441 bytes, more than the 67108864 accepted \[ADVISORY_TOO_LARGE\]/);
  });

  it("finds Alpine's branches on the secdb index page and fetches each branch's files", async () => {
    expect(secdbBranches('<a href="v3.9/">v3.9/</a> <a href="v3.10/">v3.10/</a> <a href="edge/">edge/</a> <a href="../">')).toEqual(["edge", "v3.10", "v3.9"]);
    up.put("alpine/", '<html><a href="v3.10/">v3.10/</a><a href="v3.15/">v3.15/</a></html>');
    up.put("alpine/v3.10/community.json", fixture("alpine/secdb/v3.10/community.json"));
    const r = await updateSource(store.advisories, alpineSource, { mirrors: { alpine: `${up.url}/alpine` } });
    expect(r).toMatchObject({ status: "updated", files: 1 });
    expect(r.operation!.files.map((f) => f.path)).toEqual(["v3.10/community.json"]);
    const botan = await store.advisories.candidates([{ ecosystem: "Alpine:v3.10", name: "botan" }]);
    expect(botan.length).toBeGreaterThan(0);
  });

  it("updates an OSV ecosystem from its export zip and EPSS from its gzipped CSV", async () => {
    const zip = zipSync({
      "GHSA-35jh-r3h4-6jhm.json": new Uint8Array(fixture("osv/ghsa/GHSA-35jh-r3h4-6jhm.json")),
      "GHSA-c2qf-rxjj-qqgw.json": new Uint8Array(fixture("osv/ghsa/GHSA-c2qf-rxjj-qqgw.json")),
    });
    up.put("osv/npm/all.zip", Buffer.from(zip));
    const npm = defaultCatalogue().get("osv-npm")!;
    const r = await updateSource(store.advisories, npm, { mirrors: { "osv-npm": `${up.url}/osv` } });
    expect(r).toMatchObject({ status: "updated" });
    expect((await store.advisories.candidates([{ ecosystem: "npm", name: "lodash" }])).map((c) => c.advisory.id)).toEqual(["GHSA-35jh-r3h4-6jhm"]);
    expect((await store.advisories.candidates([{ ecosystem: "npm", name: "semver" }])).map((c) => c.affected.fixedVersions)).toHaveLength(3);

    up.put("epss/epss_scores-current.csv.gz", gzipSync(fixture("enrichment/epss/data.csv")));
    const e = await updateSource(store.advisories, epssSource, { mirrors: { epss: `${up.url}/epss` } });
    expect(e.status).toBe("updated");
    expect(e.operation!.stats.enrichment).toBe(29);
  });
});
