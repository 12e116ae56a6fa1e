// The cached test images (test/env/images.sh) and pushing them to the test registries with skopeo.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { RegistryService } from "./services.js";
import { findTool } from "../../src/cli/tools.js";

const run = promisify(execFile);

function tool(name: string): string {
  const p = findTool(name);
  if (!p) throw new Error(`${name} not found; run \`npm run env:setup\` as root`);
  return p;
}

export function imagesDir(): string {
  const dir = join(process.env.PORTCULLIS_CACHE ?? "/var/cache/portcullis", "images");
  if (!existsSync(join(dir, "oci-bookworm", ".complete"))) throw new Error(`test images missing in ${dir}: run \`npm run env:setup\` (test/env/images.sh)`);
  return dir;
}

export const ociBookworm = (): string => join(imagesDir(), "oci-bookworm");
export const rootfsBookworm = (): string => join(imagesDir(), "rootfs-bookworm");
export const rootfsBookwormTwo = (): string => join(imagesDir(), "rootfs-bookworm-two");

/** The manifest digest of a tag in the OCI layout. */
export function layoutDigest(layout: string, tag: string): string {
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const m = index.manifests.find((d) => d.annotations?.["org.opencontainers.image.ref.name"] === tag);
  if (!m) throw new Error(`no tag ${tag} in ${layout}`);
  return m.digest;
}

export interface PushOptions {
  /** v2s2 (Docker schema 2) or oci (default: as the source). */
  format?: "v2s2" | "oci";
}

/** skopeo copy from a transport reference (oci:DIR:TAG) to the registry, with its credentials and CA. */
export async function skopeoPush(src: string, reg: RegistryService, repoTag: string, o: PushOptions = {}): Promise<void> {
  const args = ["copy", "--quiet", "--retry-times", "2"];
  if (o.format) args.push("--format", o.format);
  if (reg.username) args.push("--dest-creds", `${reg.username}:${reg.password}`);
  if (reg.caPem) {
    const certDir = mkdtempSync(join(tmpdir(), "skopeo-certs-"));
    writeFileSync(join(certDir, "ca.crt"), reg.caPem);
    args.push("--dest-cert-dir", certDir);
  } else {
    args.push("--dest-tls-verify=false");
  }
  args.push(src, `docker://${reg.host}/${repoTag}`);
  await run(tool("skopeo"), args, { maxBuffer: 16 * 1024 * 1024 });
}

/** Recompresses a layout's image with zstd into a new layout (skopeo reuses blobs otherwise). */
export async function zstdLayout(src: string, dest: string): Promise<void> {
  await run(tool("skopeo"), ["copy", "--quiet", "--dest-compress", "--dest-compress-format", "zstd", src, `oci:${dest}`], { maxBuffer: 16 * 1024 * 1024 });
}

/**
 * Rebuilds a layout's image (`oci:DIR:TAG`) with eStargz layers (gzip members per file, a table of contents
 * at the end) into a new layout, with containerd's own estargz package (test/env/estargz, built by setup.sh).
 */
export async function estargzLayout(src: string, dest: string): Promise<void> {
  const m = /^oci:(.+):([^:]+)$/.exec(src);
  if (!m) throw new Error(`estargzLayout wants oci:DIR:TAG, not ${src}`);
  await run(tool("estargz-layout"), [m[1]!, m[2]!, dest], { maxBuffer: 16 * 1024 * 1024 });
}

/** Recompresses a layout's image as zstd:chunked (per-file frames and a table of contents) into a new layout. */
export async function zstdChunkedLayout(src: string, dest: string): Promise<void> {
  await run(tool("skopeo"), ["copy", "--quiet", "--dest-compress", "--dest-compress-format", "zstd:chunked", src, `oci:${dest}`], { maxBuffer: 16 * 1024 * 1024 });
}
