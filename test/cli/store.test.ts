// The CLI's folder store under concurrent `portcullis scan` processes, and what a warm scan asks of a registry.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeWith, service } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const fixtures = fileURLToPath(new URL("../../../shared/fixtures/advisories", import.meta.url));

function portcullis(args: string[], dockerConfig = "/nonexistent"): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tsx, [bin, ...args], { env: { ...process.env, DOCKER_CONFIG: dockerConfig }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** "layers: 2 (1 fetched, 1 already indexed)" → 1. */
function fetched(summary: string): number {
  const m = /^layers:\s+\d+ \((\d+) fetched/m.exec(summary);
  if (!m) throw new Error(`no layers line in\n${summary}`);
  return Number(m[1]);
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "portcullis-cli-store-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("two `portcullis scan` processes on one store folder", () => {
  const two = `oci:${ociBookworm()}:two`;
  const base = `oci:${ociBookworm()}:base`;

  it("index an image once, and both print the report a single run prints", async () => {
    const single = await portcullis(["scan", two, "--format", "json", "--store", join(dir, "single")]);
    expect(single.code).toBe(0);
    const reference = JSON.parse(single.stdout) as { manifest_hash: string; packages: object };
    expect(reference.manifest_hash).toBe(layoutDigest(ociBookworm(), "two"));
    const shared = join(dir, "shared-json");
    const [a, b] = await Promise.all([1, 2].map(() => portcullis(["scan", two, "--format", "json", "--store", shared])));
    expect([a!.code, a!.stderr, b!.code, b!.stderr]).toEqual([0, "", 0, ""]);
    expect(JSON.parse(a!.stdout)).toEqual(reference);
    expect(JSON.parse(b!.stdout)).toEqual(reference);

    // The summaries say who fetched what: between them, each of the two layers once.
    const counted = join(dir, "shared-table");
    const [c, e] = await Promise.all([1, 2].map(() => portcullis(["scan", two, "--store", counted])));
    expect([c!.code, e!.code]).toEqual([0, 0]);
    expect(fetched(c!.stdout) + fetched(e!.stdout)).toBe(2);
    expect(`${c!.stdout}${e!.stdout}`).toMatch(/report from the store/);
  });

  it("scan a layer two images share once", async () => {
    // :base is one layer; :two is that layer and one more.
    const store = join(dir, "shared-layer");
    const [a, b] = await Promise.all([portcullis(["scan", base, "--store", store]), portcullis(["scan", two, "--store", store])]);
    expect([a!.code, a!.stderr, b!.code, b!.stderr]).toEqual([0, "", 0, ""]);
    expect(fetched(a!.stdout) + fetched(b!.stdout)).toBe(2);
    const again = await portcullis(["scan", two, "--format", "json", "--store", store]);
    const single = await portcullis(["scan", two, "--format", "json", "--store", join(dir, "single-2")]);
    expect(JSON.parse(again.stdout)).toEqual(JSON.parse(single.stdout));
  });
});

describe("two `portcullis db import` processes on one store folder", () => {
  it("both land: the second waits for the first's database instead of overwriting its commits", async () => {
    const status = async (store: string) => {
      const r = await portcullis(["db", "status", "--json", "--store", store]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as Array<{ source: string; records: number; affected: number }>).map((s) => [s.source, s.records, s.affected]).sort();
    };
    // Two sources' upstream files, one per process.
    const [alpine, osv] = [join(fixtures, "alpine"), join(fixtures, "osv")];
    const sequential = join(dir, "db-sequential");
    expect((await portcullis(["db", "import", alpine, "--store", sequential])).code).toBe(0);
    expect((await portcullis(["db", "import", osv, "--store", sequential])).code).toBe(0);
    const expected = await status(sequential);
    expect(expected.length).toBeGreaterThanOrEqual(2);
    const together = join(dir, "db-concurrent");
    const [a, b] = await Promise.all([portcullis(["db", "import", alpine, "--store", together]), portcullis(["db", "import", osv, "--store", together])]);
    expect([a.code, b.code], `${a.stderr}${b.stderr}`).toEqual([0, 0]);
    expect(await status(together)).toEqual(expected);
  });
});

/** A proxy in front of the registry that counts requests by method and path kind. */
function countingProxy(target: string): Promise<{ server: Server; host: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const kind = /\/manifests\//.test(req.url ?? "") ? "manifest" : /\/blobs\//.test(req.url ?? "") ? "blob" : (req.url ?? "");
    const up = httpRequest(`http://${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: target } }, (r) => {
      seen.push(`${req.method} ${kind} ${r.statusCode}`);
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, host: `127.0.0.1:${(server.address() as { port: number }).port}`, seen })));
}

describeWith(["registryBasic"], "a warm scan of a registry image", () => {
  it("asks the registry one HEAD for a tag, nothing for a digest, and prints what the cold scan printed", async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:two`, reg, "cli/warm:two");
    const proxy = await countingProxy(reg.host);
    const cfg = join(dir, "docker");
    mkdirSync(cfg);
    writeFileSync(join(cfg, "config.json"), JSON.stringify({ auths: { [proxy.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString("base64") } } }));
    // The 401s that ask for credentials are the registry's challenge, not a request of the scan's own.
    const asked = () => proxy.seen.filter((s) => !s.endsWith(" 401"));
    try {
      const store = join(dir, "warm");
      const image = `${proxy.host}/cli/warm:two`;
      const cold = await portcullis(["scan", image, "--format", "json", "--store", store], cfg);
      expect(cold.stderr).toBe("");
      expect(asked().filter((s) => s === "GET blob 200")).toHaveLength(2);
      proxy.seen.length = 0;
      const warm = await portcullis(["scan", image, "--format", "json", "--store", store], cfg);
      expect(warm.stdout).toBe(cold.stdout);
      expect(asked()).toEqual(["HEAD manifest 200"]);
      proxy.seen.length = 0;
      const digest = (JSON.parse(cold.stdout) as { manifest_hash: string }).manifest_hash;
      const byDigest = await portcullis(["scan", `${proxy.host}/cli/warm@${digest}`, "--format", "json", "--store", store], cfg);
      expect(byDigest.stdout).toBe(cold.stdout);
      expect(proxy.seen).toEqual([]);
    } finally {
      proxy.server.close();
    }
  });
});
