// What the CLI loads, checked in a child process as users run it: a preload registers module hooks that
// record every module the ESM loader loads (and the CommonJS cache at exit), so a heavy package that creeps
// back onto `--version`, `--help` or `scan` — statically or through anything scan imports — fails here.
// (eslint.config.js also refuses static imports of them in the start-path files; this catches the
// transitive ones.) The scans are real: a tiny image from an OCI layout and from a registry served here.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "src", "cli", "bin.ts");
const dependencies = Object.keys((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies);
/** What `serve` needs and `scan` must never load. */
const SERVE_ONLY = ["@kubernetes/client-node", "pino", "prom-client"];

const HOOKS = `import { appendFileSync } from "node:fs";
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, next) {
  if (url.startsWith("file:")) appendFileSync(out, url + "\\n");
  return next(url, context);
}
`;
const REGISTER = (hooks: string) => `import { register, createRequire } from "node:module";
import { appendFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const out = process.env.PORTCULLIS_TRACE_FILE;
register(${JSON.stringify(hooks)}, { data: { out } });
process.on("exit", () => {
  const cached = Object.keys(createRequire(import.meta.url).cache).map((p) => pathToFileURL(p).href);
  appendFileSync(out, cached.map((u) => u + "\\n").join(""));
});
`;

let dir: string;
let register: string;

interface Traced { code: number; stdout: string; stderr: string; modules: string[]; packages: Set<string> }

/** `portcullis ARGS` (the TypeScript sources, through tsx) with the module trace. */
function portcullis(args: string[], env: Record<string, string> = {}): Promise<Traced> {
  const trace = join(dir, `trace-${Math.random().toString(36).slice(2)}`);
  writeFileSync(trace, "");
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "--import", pathToFileURL(register).href, bin, ...args], {
      cwd: root, env: { ...process.env, ...env, PORTCULLIS_TRACE_FILE: trace, DOCKER_CONFIG: join(dir, "no-docker-config") }, maxBuffer: 16 << 20,
    }, (err, stdout, stderr) => {
      const modules = [...new Set(readFileSync(trace, "utf8").split("\n").filter(Boolean))];
      // The package of each module under node_modules (the last node_modules in its path).
      const packages = new Set(modules.flatMap((m) => {
        const p = /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m);
        return p ? [p[1]!] : [];
      }));
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr, modules, packages });
    });
  });
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** An uncompressed tar of the given files (ustar headers; enough for the layer walker). */
function tar(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    const body = Buffer.from(text);
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write("0000644\0", 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
    h.write("00000000000\0", 136);
    h.write("        ", 148);
    h.write("0", 156);
    h.write("ustar\0", 257);
    h.write("00", 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    parts.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A one-layer Debian-like image: its blobs by digest and its manifest's digest. */
function tinyImage(): { blobs: Map<string, Buffer>; manifest: Buffer; digest: string } {
  const layer = tar({
    "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "var/lib/dpkg/status": "Package: base-files\nStatus: install ok installed\nMaintainer: Santiago Vila <sanvila@debian.org>\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\n",
  });
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(layer)] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
  }));
  return { blobs: new Map([[sha256(layer), layer], [sha256(config), config], [sha256(manifest), manifest]]), manifest, digest: sha256(manifest) };
}

describe("the CLI's start path", () => {
  const image = tinyImage();
  let registry: Server;
  let host: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-startpath-"));
    writeFileSync(join(dir, "hooks.mjs"), HOOKS);
    register = join(dir, "register.mjs");
    writeFileSync(register, REGISTER(pathToFileURL(join(dir, "hooks.mjs")).href));
    const layout = join(dir, "layout");
    mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
    for (const [d, b] of image.blobs) writeFileSync(join(layout, "blobs", "sha256", d.slice(7)), b);
    writeFileSync(join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: image.digest, size: image.manifest.length, annotations: { "org.opencontainers.image.ref.name": "tiny" } }] }));
    // A registry of that one image, anonymous, plain HTTP on loopback.
    registry = createServer((req, res) => {
      const m = /^\/v2\/tiny\/(manifests|blobs)\/([^/]+)$/.exec(req.url ?? "");
      if (req.url === "/v2/") return void res.writeHead(200, { "content-type": "application/json" }).end("{}");
      const body = m ? (m[2] === "tiny" ? image.manifest : image.blobs.get(decodeURIComponent(m[2]!))) : undefined;
      if (!m || !body) return void res.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"NAME_UNKNOWN"}]}');
      res.writeHead(200, {
        "content-type": m[1] === "manifests" ? "application/vnd.oci.image.manifest.v1+json" : "application/octet-stream",
        "content-length": body.length, "docker-content-digest": m[1] === "manifests" ? image.digest : decodeURIComponent(m[2]!),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    });
    await new Promise<void>((r) => registry.listen(0, "127.0.0.1", r));
    host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => registry.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads none of the dependencies for --version, --help or scan --help", async () => {
    for (const args of [["--version"], ["--help"], ["scan", "--help"]]) {
      const r = await portcullis(args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      // The trace works: it saw the CLI's own modules.
      expect(r.modules.some((m) => m.endsWith("/src/cli/main.ts")), args.join(" ")).toBe(true);
      expect([...r.packages].filter((p) => dependencies.includes(p)), args.join(" ")).toEqual([]);
      expect(r.modules.filter((m) => /\/src\/(matcher|advisories|findings)\//.test(m) || m.endsWith("/src/cli/scan-vulns.ts")), args.join(" ")).toEqual([]);
    }
  }, 60_000);

  it("scans without the Kubernetes client, pino, prom-client or pg: a local image also without the registry client", async () => {
    const [local, remote] = await Promise.all([
      portcullis(["scan", `oci:${join(dir, "layout")}:tiny`, "--store", "memory:"]),
      // The cloud helpers named: their code (aws4) loads, and they do not match a loopback registry.
      portcullis(["scan", `${host}/tiny:tiny`, "--store", "memory:", "--format", "json"], { PORTCULLIS_CREDENTIAL_HELPERS: "ecr,gcr" }),
    ]);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/packages:\s+1\n/);
    expect(remote.code, remote.stderr).toBe(0);
    expect((JSON.parse(remote.stdout) as { manifest_hash: string }).manifest_hash).toBe(image.digest);
    for (const r of [local, remote]) {
      expect(r.packages).toContain("@electric-sql/pglite");
      expect(r.modules.some((m) => m.endsWith("/src/scanners/dpkg/dpkg.ts"))).toBe(true);
      expect([...r.packages].filter((p) => [...SERVE_ONLY, "pg"].includes(p))).toEqual([]);
    }
    expect([...local.packages].filter((p) => ["undici", "aws4"].includes(p))).toEqual([]);
    expect(remote.packages).toContain("undici");
    expect(remote.packages).toContain("aws4");
  }, 120_000);
});
