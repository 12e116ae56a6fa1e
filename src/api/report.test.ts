import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import type { ImageScan } from "../controller/imagescan.js";
import type { IndexReport } from "../indexer/report.js";
import { ReportApi, type Authority, type Caller } from "./report.js";

const D = `sha256:${"a".repeat(64)}`;
const R = `sha256:${"b".repeat(64)}`;

function setup(o: { authority: Authority; scans?: ImageScan[]; reports?: Record<string, IndexReport> }) {
  const reports = o.reports ?? { [D]: { manifest_hash: D, state: "IndexFinished", success: true } as IndexReport };
  const api = new ReportApi({
    kc: new k8s.KubeConfig(), scannerSet: "set1", authority: o.authority,
    scans: { list: () => o.scans ?? [{ metadata: { namespace: "team", name: "app" }, spec: { image: "x" }, status: { digest: D, resolvedDigest: R } }] },
    store: { indexReport: async (d) => (reports[d] ? { report: reports[d]!, scannerSet: "set1" } : undefined), deleteManifests: async (ds) => [...ds] },
  });
  const server = createServer((req, res) => void api.handle(req, res));
  return { api, server };
}

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function listen(s: Server): Promise<string> {
  server = s;
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
