import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import type { Indexer, IndexResult } from "../indexer/indexer.js";
import type { IndexReport } from "../model/index-report.js";
import type { ManifestToIndex } from "../model/image.js";
import { LayerError } from "../layers/errors.js";
import type { ManifestPackageMatch, Store } from "../store/types.js";
import { ClientLimiter } from "../registry/limits.js";
import { ReportApi, type Authority, type Caller } from "./report.js";
import { type ImageScan } from "../kube/api/v1alpha1/index.js";

const D = `sha256:${"a".repeat(64)}`;
const R = `sha256:${"b".repeat(64)}`;

function setup(o: { authority: Authority; scans?: ImageScan[]; reports?: Record<string, IndexReport>; indexer?: Pick<Indexer, "index">; allowPrivateLayerHosts?: boolean; rows?: ManifestPackageMatch[]; maxMatchPackages?: number; maxAffectedRows?: number }) {
  const reports = o.reports ?? { [D]: { manifest_hash: D, state: "IndexFinished", success: true } as IndexReport };
  const api = new ReportApi({
    kc: new k8s.KubeConfig(), scannerSet: "set1", authority: o.authority, indexer: o.indexer, allowPrivateLayerHosts: o.allowPrivateLayerHosts,
    scans: { list: () => o.scans ?? [{ metadata: { namespace: "team", name: "app" }, spec: { image: "x" }, status: { digest: D, resolvedDigest: R } }] },
    maxMatchPackages: o.maxMatchPackages, maxAffectedRows: o.maxAffectedRows,
    store: {
      indexReport: async (d) => (reports[d] ? { report: reports[d]!, scannerSet: "set1" } : undefined), deleteManifests: async (ds) => [...ds],
      manifestPackages: async (q, limit) => (o.rows ?? []).filter((r) => q.names.includes(r.name)).slice(0, limit),
      // An advisory store without any data (the matcher asks for its ecosystems first).
      advisories: { ecosystems: async () => new Set<string>() } as unknown as Store["advisories"],
    },
  });
  const server = createServer((req, res) => void api.handle(req, res));
  return { api, server };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function listen(s: Server): Promise<string> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/indexer/api/v1`;
}

describe("ReportApi", () => {
  it("checks a token once and an access once per minute, for the digest and the resolved (index) digest", async () => {
    const calls = { authn: 0, authz: [] as string[] };
    const authority: Authority = {
      authenticate: async (t) => (calls.authn++, t === "good" ? { username: "alice", groups: ["dev"] } : undefined),
      authorize: async (c: Caller, a) => (calls.authz.push(`${c.username} ${a.verb} ${a.namespace}/${a.name ?? ""}`), a.namespace === "team"),
    };
    const { api, server: s } = setup({ authority });
    const base = await listen(s);
    const h = { authorization: "Bearer good" };
    expect((await fetch(`${base}/index_report/${D}`, { headers: h })).status).toBe(200);
    expect((await fetch(`${base}/index_report/${D}`, { headers: h })).status).toBe(200);
    expect(calls).toEqual({ authn: 1, authz: ["alice get team/app"] });
    expect(api.scansFor(R)).toEqual([{ namespace: "team", name: "app" }]);
    // The index digest is known to the scan, but the store has no report of it.
    expect((await fetch(`${base}/index_report/${R}`, { headers: h })).status).toBe(404);
    expect((await fetch(`${base}/index_report/${D}`, { headers: { authorization: "Bearer bad" } })).status).toBe(401);
    expect((await fetch(`${base}/index_report/${D}`, { method: "PUT", headers: h })).status).toBe(405);
    expect((await fetch(`${base}/index_report/${D}`, { method: "DELETE", headers: h })).status).toBe(403);
  });

  it("says 503 when the API server cannot answer, and never caches that", async () => {
    let fail = true;
    const authority: Authority = {
      authenticate: async () => {
        if (fail) throw new Error("connection refused");
        return { username: "alice" };
      },
      authorize: async () => true,
    };
    const base = await listen(setup({ authority }).server);
    const h = { authorization: "Bearer t" };
    const res = await fetch(`${base}/index_state`, { headers: h });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "unavailable" });
    fail = false;
    expect(await (await fetch(`${base}/index_state`, { headers: h })).json()).toEqual({ state: "set1" });
  });

  it("bulk-deletes for a caller who may delete ImageScans everywhere, and checks the digests", async () => {
    const authority: Authority = { authenticate: async () => ({ username: "root" }), authorize: async (_c, a) => a.verb === "delete" && a.namespace === "" };
    const base = await listen(setup({ authority }).server);
    const h = { authorization: "Bearer t", "content-type": "application/json" };
    const ok = await fetch(`${base}/index_report`, { method: "DELETE", headers: h, body: JSON.stringify([D]) });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual([D]);
    expect((await fetch(`${base}/index_report`, { method: "DELETE", headers: h, body: JSON.stringify(["latest"]) })).status).toBe(400);
    expect((await fetch(`${base}/index_report`, { method: "DELETE", headers: h, body: "{" })).status).toBe(400);
  });
});

describe("ReportApi POST index_report", () => {
  const L1 = `sha256:${"1".repeat(64)}`;
  const L2 = `sha256:${"2".repeat(64)}`;
  const M = `sha256:${"c".repeat(64)}`;
  const manifest = (over: Record<string, unknown> = {}) => ({
    hash: M,
    layers: [
      { hash: L1, uri: "https://registry.example.com/v2/app/blobs/" + L1, headers: { Authorization: ["Bearer t0ken"] } },
      { hash: L2, uri: "https://storage.example.com/blobs/2?X-Amz-Signature=s", media_type: "application/vnd.oci.image.layer.v1.tar+gzip" },
    ],
    ...over,
  });
  const admin: Authority = { authenticate: async (t) => (t === "admin" ? { username: "root" } : { username: "dev" }), authorize: async (c, a) => c.username === "root" || (a.verb === "get" && a.namespace === "team") };

  /** A fake indexer: records what it was asked, answers a finished report (or `answer`). */
  function fakeIndexer(answer?: (m: ManifestToIndex) => IndexResult) {
    const calls: ManifestToIndex[] = [];
    let gate: Promise<void> = Promise.resolve();
    const indexer: Pick<Indexer, "index"> & { calls: ManifestToIndex[]; hold(): () => void } = {
      calls,
      hold() {
        let open!: () => void;
        gate = new Promise((r) => (open = r));
        return open;
      },
      async index(m) {
        calls.push(m);
        await gate;
        const stats = { layers: m.layers.length, layersFetched: m.layers.length, layersReused: 0, layersSkipped: 0, bytesFetched: 1, bytesDecompressed: 1, cached: false, durationMs: 1 };
        return answer?.(m) ?? { report: { manifest_hash: m.digest, state: "IndexFinished", success: true, packages: { "1": { id: "1", name: "libc6", version: "2.36" } } }, stats };
      },
    };
    return indexer;
  }

  const post = (base: string, body: unknown, headers: Record<string, string> = {}, token = "admin") =>
    fetch(`${base}/index_report`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });

  it("needs create on ImageScans in every namespace, asked with a SubjectAccessReview for namespace \"\"", async () => {
    const asked: string[] = [];
    const authority: Authority = { authenticate: admin.authenticate, authorize: async (c, a) => (asked.push(`${c.username} ${a.verb} ${JSON.stringify(a.namespace)}`), admin.authorize(c, a)) };
    const indexer = fakeIndexer();
    const base = await listen(setup({ authority, indexer }).server);
    const res = await post(base, manifest(), {}, "dev");
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ code: "forbidden", message: expect.stringMatching(/^dev may not index manifests by URI: that needs create on imagescans.portcullis.dev in every namespace/) });
    expect(asked).toEqual(['dev create ""']);
    expect(indexer.calls).toEqual([]);
    expect((await post(base, manifest(), {}, "admin")).status).toBe(201);
    // Without a token: 401 before anything else.
    expect((await fetch(`${base}/index_report`, { method: "POST", body: "{}" })).status).toBe(401);
  });

  it("refuses a body that is not a Clair Manifest with a 400 naming each field", async () => {
    const indexer = fakeIndexer();
    const base = await listen(setup({ authority: admin, indexer }).server);
    const cases: Array<[unknown, RegExp]> = [
      ["{", /^the body is not JSON/],
      [[], /^invalid manifest: the body must be an object$/],
      [{ layers: [] }, /^invalid manifest: hash is required; layers must list at least one layer$/],
      [manifest({ hash: "sha256:abc" }), /^invalid manifest: hash must be sha256:<64 hex> or sha512:<128 hex>$/],
      [manifest({ hash: `blake3:${"a".repeat(64)}` }), /hash must be sha256/],
      [manifest({ layers: [{ hash: L1 }] }), /^invalid manifest: layers\[0\]\.uri is required$/],
      [manifest({ layers: [{ hash: L1, uri: "/v2/app/blobs/x" }] }), /layers\[0\]\.uri is not an absolute URL/],
      [manifest({ layers: [{ hash: L1, uri: "file:///etc/passwd" }] }), /layers\[0\]\.uri must be an http:\/\/ or https:\/\/ URL, not file:/],
      [manifest({ layers: [{ hash: L1, uri: "https://u:p@example.com/b" }] }), /layers\[0\]\.uri must not carry credentials/],
      [manifest({ layers: [{ hash: L1, uri: "https://example.com/b", headers: { "Bad Name": ["x"] } }] }), /layers\[0\]\.headers\["Bad Name"\] is not a header name/],
      [manifest({ layers: [{ hash: L1, uri: "https://example.com/b", headers: { Authorization: "Bearer x" } }] }), /layers\[0\]\.headers\.Authorization must be an array/],
      [manifest({ layers: [{ hash: L1, uri: "https://example.com/b", headers: { "X-Evil": ["a\r\nHost: x"] } }] }), /layers\[0\]\.headers\["X-Evil"\]\[0\] must be printable ASCII \(no CR, LF/],
      [manifest({ layers: [{ hash: L1, uri: "https://example.com/b", media_type: "text/plain" }] }), /layers\[0\]\.media_type must be an OCI layer type/],
      [manifest({ layers: [{ hash: L1, uri: "https://example.com/b", url: "x" }] }), /layers\[0\] has unknown field "url"/],
      [manifest({ extra: true }), /the body has unknown field "extra"/],
    ];
    for (const [body, want] of cases) {
      const res = await post(base, body);
      const text = await res.text();
      expect(res.status, text).toBe(400);
      const err = JSON.parse(text) as { code: string; message: string };
      expect(err.code).toBe("bad-request");
      expect(err.message, JSON.stringify(body)).toMatch(want);
      // Header values are never echoed.
      expect(err.message).not.toContain("t0ken");
    }
    expect(indexer.calls).toEqual([]);
    const wrongType = await post(base, manifest(), { "content-type": "text/plain" });
    expect(wrongType.status).toBe(415);
    expect((await post(base, manifest(), { "content-type": "application/vnd.clair.manifest.v1+json" })).status).toBe(201);
    const huge = await post(base, manifest({ layers: [{ hash: L1, uri: `https://example.com/${"x".repeat(1024 * 1024)}` }] }));
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ code: "too-large" });
  });

  it("refuses layer URIs on loopback, link-local and metadata hosts unless allowPrivateLayerHosts", async () => {
    const indexer = fakeIndexer();
    const base = await listen(setup({ authority: admin, indexer }).server);
    for (const uri of ["http://169.254.169.254/latest/meta-data/iam/security-credentials/", "http://metadata.google.internal/computeMetadata/v1/", "http://[fd00:ec2::254]/", "http://127.0.0.1:5000/v2/a/blobs/x", "http://localhost/x", "http://[::ffff:a9fe:a9fe]/"]) {
      const res = await post(base, manifest({ layers: [{ hash: L1, uri: "https://registry.example.com/b" }, { hash: L2, uri }] }));
      const err = (await res.json()) as { code: string; message: string };
      expect(res.status, uri).toBe(400);
      expect(err.code).toBe("blocked-uri");
      expect(err.message).toMatch(new RegExp(`^layers\\[1\\]\\.uri \\(layer ${L2}\\) is refused: `));
    }
    expect(indexer.calls).toEqual([]);
    const lenient = await listen(setup({ authority: admin, indexer, allowPrivateLayerHosts: true }).server);
    expect((await post(lenient, manifest({ layers: [{ hash: L1, uri: "http://127.0.0.1:5000/v2/a/blobs/x" }] }))).status).toBe(201);
  });

  it("answers 201 with the report, ETag, Location and Link, and shares one index between identical POSTs", async () => {
    const indexer = fakeIndexer();
    const base = await listen(setup({ authority: admin, indexer }).server);
    const open = indexer.hold();
    const a = post(base, manifest());
    const b = post(base, manifest(), { accept: "application/vnd.clair.index_report.v1+json" });
    await new Promise((r) => setTimeout(r, 100));
    open();
    const [ra, rb] = await Promise.all([a, b]);
    expect(indexer.calls).toHaveLength(1);
    expect(indexer.calls[0]).toMatchObject({ digest: M, layers: [{ digest: L1, mediaType: "" }, { digest: L2, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }] });
    for (const r of [ra, rb]) {
      expect(r.status).toBe(201);
      expect(r.headers.get("etag")).toBe('"set1"');
      expect(r.headers.get("location")).toBe(`/indexer/api/v1/index_report/${M}`);
      expect(r.headers.get("link")).toBe(`</indexer/api/v1/index_report/${M}>; rel="https://projectquay.io/clair/v1/index_report"`);
      expect(await r.json()).toMatchObject({ manifest_hash: M, state: "IndexFinished", success: true });
    }
    expect(rb.headers.get("content-type")).toBe("application/vnd.clair.index_report.v1+json");
    // Another body for the same manifest is its own request (the indexer's lock and store decide).
    expect((await post(base, manifest({ layers: [manifest().layers[0]] }))).status).toBe(201);
    expect(indexer.calls).toHaveLength(2);
  });

  it("answers 412 to If-None-Match with the index state when the manifest is indexed at that state", async () => {
    const indexer = fakeIndexer();
    const base = await listen(setup({ authority: admin, indexer, reports: { [M]: { manifest_hash: M, state: "IndexFinished", success: true } } }).server);
    expect((await post(base, manifest(), { "if-none-match": '"set1"' })).status).toBe(412);
    expect((await post(base, manifest(), { "if-none-match": '"older"' })).status).toBe(201);
    expect((await post(base, manifest({ hash: D }), { "if-none-match": '"set1"' })).status).toBe(201);
  });

  it("maps an index error to a Clair error that names the layer", async () => {
    const fail = (code: ConstructorParameters<typeof LayerError>[0], message: string) => (m: ManifestToIndex): IndexResult => {
      const error = new LayerError(code, L2, message);
      return { report: { manifest_hash: m.digest, state: "IndexError", success: false, err: error.message }, stats: { layers: 2, layersFetched: 0, layersReused: 0, layersSkipped: 0, bytesFetched: 0, bytesDecompressed: 0, cached: false, durationMs: 1 }, error };
    };
    for (const [code, status, wire] of [["DIGEST_MISMATCH", 400, "digest-mismatch"], ["BAD_TAR", 400, "bad-layer"], ["DECOMPRESSED_TOO_LARGE", 400, "layer-too-large"]] as const) {
      const base = await listen(setup({ authority: admin, indexer: fakeIndexer(fail(code, "content has digest sha256:0")) }).server);
      const res = await post(base, manifest());
      expect(res.status).toBe(status);
      expect(await res.json()).toEqual({ code: wire, message: `layer ${L2}: content has digest sha256:0` });
    }
    const other = await listen(setup({ authority: admin, indexer: fakeIndexer((m) => ({ ...fail("BAD_TAR", "x")(m), error: new Error("database is down") })) }).server);
    const res = await post(other, manifest());
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ code: "index-failed", message: `indexing ${M} failed; see the operator's log` });
  });

  it("is 501 without an indexer", async () => {
    const base = await listen(setup({ authority: admin }).server);
    const res = await post(base, manifest());
    expect(res.status).toBe(501);
    expect(((await res.json()) as { message: string }).message).toMatch(/ImageScans/);
  });
});

describe("ReportApi matcher endpoints", () => {
  const reader: Authority = {
    authenticate: async (t) => (t === "admin" ? { username: "admin" } : t === "dev" ? { username: "dev" } : undefined),
    authorize: async (c, a) => c.username === "admin" || (a.verb === "get" && a.namespace === "team"),
  };
  const matcher = (base: string) => base.replace("/indexer/api/v1", "/matcher/api/v1");

  it("vulnerability_report: authorized as index_report, 404 for an unknown digest, 503 (not an empty report) without advisory data", async () => {
    const base = await listen(setup({ authority: reader }).server);
    const get = (d: string, token = "dev") => fetch(`${matcher(base)}/vulnerability_report/${d}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get(D, "nobody")).status).toBe(401);
    const unknown = await get(`sha256:${"c".repeat(64)}`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: "not-found" });
    expect((await get("latest")).status).toBe(400);
    const none = await get(D);
    expect(none.status).toBe(503);
    expect(none.headers.get("retry-after")).toBe("300");
    expect(await none.json()).toMatchObject({ code: "no-advisory-data", message: expect.stringMatching(/^vulnerabilities not checked: the store has no advisory data/) });
    expect((await fetch(`${matcher(base)}/vulnerability_report/${D}`, { method: "POST", headers: { authorization: "Bearer dev" } })).status).toBe(405);
    expect((await fetch(`${matcher(base)}/nope`, { headers: { authorization: "Bearer dev" } })).status).toBe(404);
  });

  it("vulnerability_report: refuses to match a report over maxMatchPackages", async () => {
    const packages = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [String(i), { id: String(i), name: `p${i}`, version: "1" }]));
    const base = await listen(setup({ authority: reader, maxMatchPackages: 2, reports: { [D]: { manifest_hash: D, state: "IndexFinished", success: true, packages } } }).server);
    const res = await fetch(`${matcher(base)}/vulnerability_report/${D}`, { headers: { authorization: "Bearer dev" } });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ code: "too-many-packages", message: expect.stringContaining("has 3 packages, more than the 2") });
  });

  const rows: ManifestPackageMatch[] = [
    { manifest: D, name: "openssl", version: "3.1.0-r4", kind: "source", package_db: "lib/apk/db/installed", dist_did: "alpine", dist_version_id: "3.18.4" },
    { manifest: R, name: "openssl", version: "3.1.4-r5", kind: "source", package_db: "lib/apk/db/installed", dist_did: "alpine", dist_version_id: "3.18.4" },
  ];
  const affected = (base: string, body: unknown, token = "admin", type = "application/json") =>
    fetch(`${base}/internal/affected_manifest`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": type }, body: typeof body === "string" ? body : JSON.stringify(body) });

  it("affected_manifest: needs create on ImageScans everywhere, takes Clair's client body or a bare array, and bounds the request", async () => {
    const base = await listen(setup({ authority: reader, rows }).server);
    const v = { id: "7", updater: "alpine-main-v3.18-updater", name: "CVE-2023-2650", normalized_severity: "Medium", fixed_in_version: "3.1.1-r0", package: { name: "openssl", kind: "source", normalized_version: "", cpe: "" }, distribution: { did: "alpine", version_id: "3.18", pretty_name: "Alpine Linux v3.18" }, Self: {}, Aliases: null, Invert: false };
    const denied = await affected(base, { vulnerabilities: [v] }, "dev");
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ code: "forbidden", message: expect.stringMatching(/^dev may not ask which manifests .* every namespace/) });
    const res = await affected(base, { vulnerabilities: [v] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { vulnerabilities: Record<string, unknown>; vulnerable_manifests: Record<string, string[]> };
    expect(body.vulnerable_manifests).toEqual({ [D]: ["7"] });
    expect(body.vulnerabilities["7"]).toMatchObject({ id: "7", name: "CVE-2023-2650", package: { name: "openssl", version: "", kind: "SOURCE" }, arch_op: "equals" });
    // A summary array (the OpenAPI document's form): ids are the places.
    const bare = await affected(base, [{ ...v, id: undefined }], "admin", "application/vnd.clair.vulnerability_summaries.v1+json");
    expect(((await bare.json()) as { vulnerable_manifests: unknown }).vulnerable_manifests).toEqual({ [D]: ["0"] });
    expect((await affected(base, "{", "admin")).status).toBe(400);
    expect((await affected(base, { vulnerabilities: [v, v] })).status).toBe(400);
    const badField = await affected(base, { vulnerabilities: [{ ...v, normalized_severity: "Severe" }] });
    expect(badField.status).toBe(400);
    expect(((await badField.json()) as { message: string }).message).toMatch(/vulnerabilities\[0\]\.normalized_severity/);
    expect((await affected(base, { vulnerabilities: Array.from({ length: 1001 }, (_, i) => ({ ...v, id: String(i) })) })).status).toBe(413);
    expect((await affected(base, { vulnerabilities: [v] }, "admin", "text/plain")).status).toBe(415);
    expect((await fetch(`${base}/internal/affected_manifest`, { headers: { authorization: "Bearer admin" } })).status).toBe(405);
  });

  it("affected_manifest: refuses (413) rather than answering from a cut list of rows", async () => {
    const base = await listen(setup({ authority: reader, rows, maxAffectedRows: 1 }).server);
    const res = await affected(base, { vulnerabilities: [{ id: "1", name: "CVE-2023-2650", package: { name: "openssl" }, distribution: { did: "alpine", version_id: "3.18" }, fixed_in_version: "3.1.1-r0" }] });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "too-large", message: expect.stringContaining("more than 1 times") });
  });
});

describe("ReportApi: what an unauthenticated caller can cost", () => {
  it("answers 429 to a client spraying unknown tokens, after a burst, while a known token keeps working", async () => {
    let reviews = 0;
    const authority: Authority = { authenticate: async (t) => (reviews++, t === "good" ? { username: "alice" } : undefined), authorize: async () => true };
    const { server: s } = setup({ authority });
    const base = await listen(s);
    expect((await fetch(`${base}/index_report/${D}`, { headers: { authorization: "Bearer good" } })).status).toBe(200);
    const codes: number[] = [];
    for (let i = 0; i < 40; i++) codes.push((await fetch(`${base}/index_report/${D}`, { headers: { authorization: `Bearer random-${i}` } })).status);
    // The good token took one of the 20; the API server saw at most 20 + what refilled meanwhile.
    expect(codes.filter((c) => c === 401).length).toBeGreaterThanOrEqual(19);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(15);
    expect(reviews).toBeLessThan(30);
    const limited = await fetch(`${base}/index_report/${D}`, { headers: { authorization: "Bearer random-x" } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    // A cached (known) token costs no check and is not limited.
    expect((await fetch(`${base}/index_report/${D}`, { headers: { authorization: "Bearer good" } })).status).toBe(200);
  });

  it("scrubs credentials out of error bodies", async () => {
    const authority: Authority = { authenticate: async (t) => (t === "good" ? { username: "alice" } : undefined), authorize: async () => true };
    const { server: s } = setup({ authority });
    const base = await listen(s);
    const res = await fetch(`${base}/index_report/${encodeURIComponent("https://robot:hunter2secret@registry.example/x")}`, { headers: { authorization: "Bearer good" } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.message).toContain("not a digest");
    expect(body.message).toContain("registry.example");
    expect(body.message).not.toContain("hunter2secret");
  });

  it("authenticates before it decodes the path: 401 without a token, 400 with one", async () => {
    const authority: Authority = { authenticate: async (t) => (t === "good" ? { username: "alice" } : undefined), authorize: async () => true };
    const { server: s } = setup({ authority });
    const base = await listen(s);
    expect((await fetch(`${base}/index_report/%E0%A4%A`)).status).toBe(401);
    const bad = await fetch(`${base}/index_report/%E0%A4%A`, { headers: { authorization: "Bearer good" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe("bad-request");
  });

  it("refills a client's bucket over time and bounds the clients it remembers", () => {
    const l = new ClientLimiter(5, 2, 2);
    expect([l.take("x", 0), l.take("x", 0), l.take("x", 0)]).toEqual([true, true, false]);
    expect(l.take("x", 200)).toBe(true);
    expect(l.take("y", 200)).toBe(true);
    expect(l.take("z", 200)).toBe(true);
    // x was forgotten (least recently used): it starts with a full bucket again.
    expect([l.take("x", 200), l.take("x", 200), l.take("x", 200)]).toEqual([true, true, false]);
  });
});
