// Helpers of the partial-read tests on a real registry (toc.test.ts, soci.test.ts): the oracle (dpkg-query),
// the comparison of a partial read's stored layers with a full read's, and a proxy that refuses Range.
import { execFile } from "node:child_process";
import { createServer, request as httpRequest, type Server } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "vitest";
import type { IndexResult } from "../../src/indexer/indexer.js";
import type { IndexReport } from "../../src/model/index-report.js";
import { defaultScanners } from "../../src/scanners/index.js";
import type { Store } from "../../src/store/types.js";
import { tool } from "../env/index.js";

const run = promisify(execFile);

export async function dpkgQuery(rootfs: string): Promise<string[]> {
  const { stdout } = await run(tool("dpkg-query"), ["--admindir", join(rootfs, "var/lib/dpkg"), "-W", "-f", "${db:Status-Abbrev}\\t${Package}\\t${Version}\\n"]);
  return stdout.split("\n").filter((l) => l.startsWith("ii")).map((l) => l.split("\t").slice(1).join("\t")).sort();
}

export function pkgs(r: IndexReport): string[] {
  return Object.values(r.packages ?? {}).map((p) => `${p.name}\t${p.version}`).sort();
}

/** The partial read stored what the full read stored, layer by layer (files, whiteouts, each scanner's output). */
export async function expectSameLayers(partial: IndexResult & { store: Store }, full: IndexResult & { store: Store }, layers: string[]): Promise<Map<string, { whiteouts: string[] }>> {
  const infos = defaultScanners().map((s) => ({ name: s.name, version: s.version, kind: s.kind }));
  const a = await partial.store.layerArtifacts(layers, infos);
  const b = await full.store.layerArtifacts(layers, infos);
  for (const d of layers) {
    const x = a.get(d)!;
    const y = b.get(d)!;
    expect({ whiteouts: x.whiteouts, opaqueDirs: x.opaqueDirs, files: x.files }).toEqual({ whiteouts: y.whiteouts, opaqueDirs: y.opaqueDirs, files: y.files });
    expect(x.whiteouts.length + x.files.length).toBeGreaterThan(0);
    expect([...x.outputs.entries()]).toEqual([...y.outputs.entries()]);
  }
  return a;
}

/** A proxy in front of the registry that drops Range headers: the answer is always the whole blob (200). */
export function rangeRefusingProxy(target: string): Promise<{ server: Server; host: string; ranged: () => number }> {
  let ranged = 0;
  const server = createServer((req, res) => {
    const headers = { ...req.headers, host: target };
    if (headers.range) ranged++;
    delete headers.range;
    const up = httpRequest(`http://${target}${req.url}`, { method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    const a = server.address() as { port: number };
    resolve({ server, host: `127.0.0.1:${a.port}`, ranged: () => ranged });
  }));
}
