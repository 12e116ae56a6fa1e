// GET /indexer/api/v1/sbom/{digest} through the real report API path: TokenReview and SubjectAccessReview
// on the real API server decide who gets it (as for index_report), and the documents of the Debian test
// image validate against the official schemas (test/fixtures/sbom-schemas) and list what dpkg-query lists.
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ReportApi } from "../../src/api/report.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { openLocalImage } from "../../src/indexer/sources/local.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool } from "../env/index.js";
import { ociBookworm, rootfsBookworm } from "../env/images.js";
import { validateCycloneDx, validateSpdx } from "../sbom/schemas.js";
import { GROUP, VERSION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const ns = "sbom-api-test";
const UNKNOWN = `sha256:${"0".repeat(64)}`;

describeWith(["kube", "postgres"], "report API: SBOMs", () => {
  let store: Store;
  let indexer: Indexer;
  let kc: k8s.KubeConfig;
  let digest: string;
  let servers: Server[] = [];
  let base: string;

  /** A ReportApi on a server of its own; the ImageScan list is the real one unless given. */
  async function serve(o: Partial<ConstructorParameters<typeof ReportApi>[0]>): Promise<string> {
    const api = new ReportApi({ kc, store, scannerSet: indexer.scannerSet, scans: { list: () => [{ metadata: { namespace: ns, name: "debian" }, spec: { image: "x" }, status: { digest } }] }, ...o });
    const srv = createServer((req, res) => void api.handle(req, res));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    servers.push(srv);
    return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  }

  beforeAll(async () => {
    const kube = service("kube");
    const kubectl = (...a: string[]) => run(tool("kubectl"), ["--kubeconfig", kube.kubeconfig, ...a]);
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
    await kubectl("create", "namespace", ns);
    store = await openStore(await databases.create("api_sbom"));
    indexer = new Indexer({ store, scanners: defaultScanners() });
    const local = (await openLocalImage(`oci:${ociBookworm()}:base`, { os: "linux", architecture: "amd64" }))!;
    expect((await indexer.index(local.manifest, local.source)).report.state).toBe("IndexFinished");
    digest = local.manifest.digest;
    kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfig);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "debian" }, spec: { image: `registry.example/debian@${digest}` } } });
    base = await serve({ inventory: indexer, version: "0.1.0-test" });
  }, 180_000);

  afterAll(async () => {
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
    servers = [];
    await store?.close();
  });

  const get = (b: string, path: string, token?: string) => fetch(`${b}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it("gives an admin the CycloneDX 1.5 document (default) and the SPDX 2.3 one, valid and listing what dpkg-query lists", async () => {
    const { stdout } = await run(tool("dpkg-query"), ["--admindir", join(rootfsBookworm(), "var/lib/dpkg"), "-W", "-f", "${db:Status-Abbrev}\\t${Package}\\t${Version}\\n"]);
    const want = stdout.split("\n").filter((l) => l.startsWith("ii")).map((l) => l.split("\t").slice(1).join(" ")).sort();
    const cdx = await get(base, `/indexer/api/v1/sbom/${digest}`, service("kube").token);
    expect(cdx.status).toBe(200);
    expect(cdx.headers.get("content-type")).toBe("application/vnd.cyclonedx+json; version=1.5");
    const bom = (await cdx.json()) as { metadata: { component: { name: string }; tools: { components: Array<{ version: string }> } }; components: Array<{ type: string; name: string; version: string; purl: string }> };
    expect(validateCycloneDx(bom)).toEqual([]);
    expect(bom.metadata.component.name).toBe(digest);
    expect(bom.metadata.tools.components[0]!.version).toBe("0.1.0-test");
    expect(bom.components.filter((c) => c.type === "library").map((c) => `${c.name} ${c.version}`).sort()).toEqual(want);
    const spdx = await get(base, `/indexer/api/v1/sbom/${encodeURIComponent(digest)}?format=spdx-json`, service("kube").token);
    expect(spdx.status).toBe(200);
    expect(spdx.headers.get("content-type")).toBe("application/spdx+json");
    const doc = (await spdx.json()) as { packages: Array<{ name: string; versionInfo: string; primaryPackagePurpose: string }> };
    expect(validateSpdx(doc)).toEqual([]);
    expect(doc.packages.filter((p) => p.primaryPackagePurpose === "LIBRARY").map((p) => `${p.name} ${p.versionInfo}`).sort()).toEqual(want);
  });

  it("authorizes as index_report does: 401 without a valid token, 403 without access to an ImageScan of the digest", async () => {
    expect((await get(base, `/indexer/api/v1/sbom/${digest}`)).status).toBe(401);
    expect((await get(base, `/indexer/api/v1/sbom/${digest}`, "not-a-token")).status).toBe(401);
    const nobody = await get(base, `/indexer/api/v1/sbom/${digest}`, service("kube").unprivilegedToken);
    expect(nobody.status).toBe(403);
    expect(((await nobody.json()) as { message: string }).message).toMatch(/nobody may not get an ImageScan/);
  });

  it("answers 400 for a bad format or digest, 404 for an unknown digest, 405 for POST, 409 for an image an older scanner set indexed, 501 without an indexer", async () => {
    const admin = service("kube").token;
    const bad = await get(base, `/indexer/api/v1/sbom/${digest}?format=spdx-tag-value`, admin);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/format must be cyclonedx or spdx-json/);
    expect((await get(base, "/indexer/api/v1/sbom/latest", admin)).status).toBe(400);
    expect((await get(base, `/indexer/api/v1/sbom/${UNKNOWN}`, admin)).status).toBe(404);
    expect((await fetch(`${base}/indexer/api/v1/sbom/${digest}`, { method: "POST", headers: { authorization: `Bearer ${admin}` } })).status).toBe(405);
    // An indexer with one scanner fewer has another scanner set: the stored index is not its own.
    const other = new Indexer({ store, scanners: defaultScanners().filter((s) => s.name !== "python") });
    const stale = await get(await serve({ inventory: other }), `/indexer/api/v1/sbom/${digest}`, admin);
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ code: "stale-index", message: expect.stringMatching(/indexed by other scanner versions/) });
    expect((await get(await serve({}), `/indexer/api/v1/sbom/${digest}`, admin)).status).toBe(501);
  });
});
