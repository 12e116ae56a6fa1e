// `portcullis scan` as users run it: a child process, its stdout, stderr and exit code.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { clairValidator } from "../../src/indexer/clair-schema.js";
import { describeWith, service } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

async function portcullis(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(tsx, [bin, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

describeWith(["registryBasic"], "portcullis scan", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints exactly one Clair IndexReport with --format json and exits 0", async () => {
    const r = await portcullis(["scan", `oci:${ociBookworm()}:base`, "--format", "json", "--store", join(dir, "s1")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { manifest_hash: string; packages: object };
    expect(clairValidator("index_report.schema.json")(report)).toEqual([]);
    expect(report.manifest_hash).toBe(layoutDigest(ociBookworm(), "base"));
    expect(Object.keys(report.packages).length).toBeGreaterThan(80);
  });

  it("prints a summary by default, and reuses the store on the second run", async () => {
    const store = join(dir, "s2");
    const first = await portcullis(["scan", `oci:${ociBookworm()}:two`, "--store", store]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/distribution:\s+Debian GNU\/Linux 12 \(bookworm\)/);
    expect(first.stdout).toMatch(/packages:\s+\d{2,}/);
    expect(first.stdout).toMatch(/layers:\s+2 \(2 fetched, 0 already indexed\)/);
    const second = await portcullis(["scan", `oci:${ociBookworm()}:two`, "--store", store]);
    expect(second.stdout).toMatch(/report from the store/);
  });

  it("reads registry credentials from $DOCKER_CONFIG, or --username with --password-stdin", async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "cli/debian:base");
    const cfg = join(dir, "docker");
    mkdirSync(cfg);
    writeFileSync(join(cfg, "config.json"), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString("base64") } } }));
    const viaConfig = await portcullis(["scan", `${reg.host}/cli/debian:base`, "--format", "json", "--store", join(dir, "s3")], { DOCKER_CONFIG: cfg });
    expect(viaConfig.code).toBe(0);
    const viaStdin = await portcullis(["scan", `${reg.host}/cli/debian:base`, "--format", "json", "--store", join(dir, "s4"), "--username", reg.username!, "--password-stdin"], { DOCKER_CONFIG: join(dir, "none") }, `${reg.password}\n`);
    expect(viaStdin.code).toBe(0);
    const anonymous = await portcullis(["scan", `${reg.host}/cli/debian:base`, "--store", join(dir, "s5")], { DOCKER_CONFIG: join(dir, "none") });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/not authorized .*anonymous.*\[AUTH_FAILED\]/);
  });

  it("exits 2 for usage errors and 1 for a failed scan, saying what and where", async () => {
    const bad = await portcullis(["scan", "Not/A:Reference!"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid reference "Not\/A:Reference!"/);
    expect((await portcullis(["scan"])).code).toBe(2);
    expect((await portcullis(["scan", "x", "--format", "yaml"])).stderr).toMatch(/--format must be table, json, vuln-json, cyclonedx or spdx-json/);
    expect((await portcullis(["scan", "x", "--platform", "linux"])).code).toBe(2);
    const missing = await portcullis(["scan", `oci:${join(dir, "nope")}`, "--store", join(dir, "s6")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/does not exist/);
    const notag = await portcullis(["scan", `oci:${ociBookworm()}:v9`, "--store", join(dir, "s6")]);
    expect(notag.code).toBe(1);
    expect(notag.stderr).toMatch(/no image tagged "v9"; it has base, two/);
  });

  it("prints the code of an error met while indexing a layer", async () => {
    // A layout whose layer blob is not the content its digest names (same length, one letter changed).
    const tarOf = (text: string) => {
      const h = Buffer.alloc(512);
      h.write("etc/os-release", 0);
      for (const [at, v] of [[100, "0000644\0"], [108, "0000000\0"], [116, "0000000\0"], [124, `${text.length.toString(8).padStart(11, "0")}\0`], [136, "00000000000\0"], [148, "        "], [156, "0"], [257, "ustar\0"], [263, "00"]] as const) h.write(v, at);
      h.write(`${h.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0")}\0 `, 148);
      return Buffer.concat([h, Buffer.from(text), Buffer.alloc(512 - text.length), Buffer.alloc(1024)]);
    };
    const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    const layer = tarOf("ID=debian\n");
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [`sha256:${sha(layer)}`] } }));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${sha(config)}`, size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${sha(layer)}`, size: layer.length }],
    }));
    const layout = join(dir, "corrupt");
    mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
    writeFileSync(join(layout, "blobs", "sha256", sha(layer)), tarOf("ID=debiam\n"));
    writeFileSync(join(layout, "blobs", "sha256", sha(config)), config);
    writeFileSync(join(layout, "blobs", "sha256", sha(manifest)), manifest);
    writeFileSync(join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${sha(manifest)}`, size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "bad" } }] }));
    const r = await portcullis(["scan", `oci:${layout}:bad`, "--store", join(dir, "s7")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`portcullis: scan of oci:${layout}:bad failed: layer sha256:${sha(layer)}: content has digest sha256:${sha(tarOf("ID=debiam\n"))} [DIGEST_MISMATCH]\n`);
  });
});
