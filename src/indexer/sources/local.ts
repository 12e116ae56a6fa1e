// Images on the local disk: an OCI image layout folder (`oci:DIR[:TAG]`), the same as a tar
// (`oci-archive:FILE[:TAG]`), and `docker save` output (`docker-archive:FILE[:TAG]`, both the classic
// manifest.json layout and Docker 25+'s OCI layout inside). Layers are read straight from the file,
// never unpacked; the layer walk checks every digest.
import { createReadStream } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { createHash } from "node:crypto";
import { parseImageConfig, parseManifest, type Descriptor, type ImageIndex } from "../../image/manifest.js";
import { formatPlatform, platformCandidates, selectManifest, type Platform } from "../../image/platform.js";
import type { LayerSource } from "../scan-layer.js";
import type { LayerDescriptor, ManifestToIndex } from "../../model/image.js";
import { indexTar, type TarMember } from "./tar-index.js";
import { PortcullisError } from "../../errors.js";

export class LocalImageError extends PortcullisError {
  readonly domain = "indexer";
  override name = "LocalImageError";
  readonly code = "LOCAL_IMAGE_INVALID";
}

const MAX_JSON = 8 * 1024 * 1024;

/** Files of a layout: a folder or a tar, addressed by relative path. */
interface LayoutFiles {
  describe: string;
  read(path: string, max?: number): Promise<Buffer>;
  open(path: string): Readable;
  exists(path: string): Promise<boolean>;
  size(path: string): Promise<number>;
}

class DirFiles implements LayoutFiles {
  constructor(private readonly dir: string) {}
  get describe(): string {
    return this.dir;
  }
  async read(path: string, max = MAX_JSON): Promise<Buffer> {
    const p = join(this.dir, path);
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new LocalImageError(`${this.dir}: ${path} is missing`);
    if (s.size > max) throw new LocalImageError(`${this.dir}: ${path} is ${s.size} bytes, over the ${max}-byte limit`);
    return readFile(p);
  }
  open(path: string): Readable {
    return createReadStream(join(this.dir, path), { highWaterMark: 1 << 20 });
  }
  async exists(path: string): Promise<boolean> {
    return Boolean(await stat(join(this.dir, path)).catch(() => undefined));
  }
  async size(path: string): Promise<number> {
    return (await stat(join(this.dir, path))).size;
  }
}

class TarFiles implements LayoutFiles {
  private constructor(private readonly file: string, private readonly members: Map<string, TarMember>) {}
  static async open(file: string): Promise<TarFiles> {
    return new TarFiles(file, await indexTar(file));
  }
  get describe(): string {
    return this.file;
  }
  private member(path: string): TarMember {
    let m = this.members.get(path);
    // Docker archives may hard-link identical layers.
    if (m && m.type === "1" && m.linkname) m = this.members.get(m.linkname.replace(/^(\.\/)+/, ""));
    if (!m) throw new LocalImageError(`${this.file}: the archive has no ${path}`);
    return m;
  }
  async read(path: string, max = MAX_JSON): Promise<Buffer> {
    const m = this.member(path);
    if (m.size > max) throw new LocalImageError(`${this.file}: ${path} is ${m.size} bytes, over the ${max}-byte limit`);
    const fh = await open(this.file, "r");
    try {
      const buf = Buffer.alloc(m.size);
      await fh.read(buf, 0, m.size, m.offset);
      return buf;
    } finally {
      await fh.close();
    }
  }
  open(path: string): Readable {
    const m = this.member(path);
    if (m.size === 0) return createReadStream(this.file, { start: 1, end: 0 });
    return createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
  }
  async exists(path: string): Promise<boolean> {
    return this.members.has(path);
  }
  async size(path: string): Promise<number> {
    return this.member(path).size;
  }
}

export interface LocalImage {
  manifest: ManifestToIndex;
  source: LayerSource;
  platform?: Platform;
  /** What the user named, for messages. */
  describe: string;
}

function blobPath(digest: string): string {
  const [alg, hex] = digest.split(":");
  if (!alg || !hex || !/^[a-z0-9]+$/.test(alg) || !/^[a-f0-9]+$/.test(hex)) throw new LocalImageError(`not a digest: ${JSON.stringify(digest)}`);
  return `blobs/${alg}/${hex}`;
}

function parseJson(buf: Buffer, what: string): unknown {
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch (e) {
    throw new LocalImageError(`${what} is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}

function layersOf(layers: readonly Descriptor[]): LayerDescriptor[] {
  return layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, ...(l.urls?.length ? { urls: [...l.urls] } : {}) }));
}

async function fromLayout(files: LayoutFiles, tag: string | undefined, platform: Platform, describe: string): Promise<LocalImage> {
  const raw = await files.read("index.json");
  const top = parseManifest(raw, "application/vnd.oci.image.index.v1+json");
  if (top.kind !== "index") throw new LocalImageError(`${describe}: index.json is not an image index`);
  const refName = (d: Descriptor) => d.annotations?.["org.opencontainers.image.ref.name"] ?? d.annotations?.["io.containerd.image.name"];
  let candidates = top.manifests;
  if (tag !== undefined) {
    candidates = top.manifests.filter((d) => refName(d) === tag || refName(d)?.endsWith(`:${tag}`));
    if (!candidates.length) {
      const tags = top.manifests.map(refName).filter(Boolean);
      throw new LocalImageError(`${describe}: no image tagged ${JSON.stringify(tag)}; it has ${tags.length ? tags.join(", ") : "no tags"}`);
    }
  }
  let desc: Descriptor | undefined = candidates.length === 1 ? candidates[0] : selectManifest(top as ImageIndex, platform);
  if (!desc) throw new LocalImageError(`${describe}: ${candidates.length} images and no tag given; name one with :TAG`);
  let chosenPlatform: Platform | undefined;
  for (let depth = 0; depth < 4; depth++) {
    const body = await files.read(blobPath(desc.digest));
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    if (desc.digest.startsWith("sha256:") && digest !== desc.digest) throw new LocalImageError(`${describe}: blob ${desc.digest} has digest ${digest}`);
    const m = parseManifest(body, desc.mediaType);
    if (m.kind === "manifest") {
      const source: LayerSource = { verifiesDigests: false, open: async (l) => files.open(blobPath(l.digest)) };
      return { manifest: { digest: desc.digest, layers: layersOf(m.layers) }, source, platform: chosenPlatform, describe };
    }
    const next = selectManifest(m, platform);
    if (!next) throw new LocalImageError(`${describe}: no ${formatPlatform(platform)} image; it has ${platformCandidates(m).join(", ") || "none"}`);
    chosenPlatform = platform;
    desc = next;
  }
  throw new LocalImageError(`${describe}: indexes nested too deep`);
}

const DockerManifestEntry = (v: unknown): v is { Config: string; RepoTags?: string[] | null; Layers: string[] } =>
  typeof v === "object" && v !== null && typeof (v as { Config?: unknown }).Config === "string" && Array.isArray((v as { Layers?: unknown }).Layers);

async function fromDockerArchive(files: LayoutFiles, tag: string | undefined, describe: string): Promise<LocalImage> {
  const list = parseJson(await files.read("manifest.json"), `${describe}: manifest.json`);
  if (!Array.isArray(list) || !list.every(DockerManifestEntry)) throw new LocalImageError(`${describe}: manifest.json is not a docker save manifest (a list of {Config, RepoTags, Layers})`);
  let entry = list[0];
  if (tag !== undefined) entry = list.find((e) => e.RepoTags?.some((t) => t === tag || t.endsWith(`:${tag}`) || t.split(":")[0] === tag));
  else if (list.length > 1) throw new LocalImageError(`${describe}: ${list.length} images; name one with :TAG (${list.flatMap((e) => e.RepoTags ?? []).join(", ")})`);
  if (!entry) throw new LocalImageError(`${describe}: no image tagged ${JSON.stringify(tag)}`);
  const configRaw = await files.read(entry.Config);
  const config = parseImageConfig(configRaw);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== entry.Layers.length) throw new LocalImageError(`${describe}: config lists ${diffIds.length} layers, manifest.json ${entry.Layers.length}`);
  const paths = new Map<string, string>();
  const layers: LayerDescriptor[] = [];
  for (const [i, path] of entry.Layers.entries()) {
    // docker save layers are uncompressed tars (or, from Docker 25, blobs of the OCI layout inside), so
    // their digest is the config's diff_id when uncompressed; the walk checks it either way.
    const digest = path.startsWith("blobs/") ? path.replace(/^blobs\/([a-z0-9]+)\//, "$1:") : diffIds[i]!;
    paths.set(digest, path);
    layers.push({ digest, size: await files.size(path), mediaType: "application/vnd.docker.image.rootfs.diff.tar" });
  }
  // There is no registry manifest: the digest of an equivalent OCI manifest stands for the image.
  const configDigest = `sha256:${createHash("sha256").update(configRaw).digest("hex")}`;
  const synthetic = JSON.stringify({ schemaVersion: 2, config: configDigest, layers: diffIds });
  const digest = `sha256:${createHash("sha256").update(synthetic).digest("hex")}`;
  const source: LayerSource = { verifiesDigests: false, open: async (l) => files.open(paths.get(l.digest)!) };
  return { manifest: { digest, layers }, source, describe };
}

/** `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]`; undefined for anything else. */
export async function openLocalImage(spec: string, platform: Platform): Promise<LocalImage | undefined> {
  const m = /^(oci|oci-archive|docker-archive):(.+)$/.exec(spec);
  if (!m) return undefined;
  const [, transport, rest] = m as unknown as [string, string, string];
  // PATH[:TAG], where PATH itself may contain colons only if it exists as written.
  let path = rest;
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > 0 && !(await stat(rest).catch(() => undefined))) {
    path = rest.slice(0, colon);
    tag = rest.slice(colon + 1);
  }
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new LocalImageError(`${spec}: ${path} does not exist`);
  if (transport === "oci") {
    if (!s.isDirectory()) throw new LocalImageError(`${spec}: ${path} is not a folder (an OCI layout); for a tar use oci-archive:`);
    return fromLayout(new DirFiles(path), tag, platform, spec);
  }
  if (!s.isFile()) throw new LocalImageError(`${spec}: ${path} is not a file`);
  const files = await TarFiles.open(path).catch((e: unknown) => {
    throw new LocalImageError(`${spec}: not a tar archive: ${(e as Error).message}`);
  });
  if (transport === "oci-archive" || (await files.exists("index.json")) && !(await files.exists("manifest.json"))) return fromLayout(files, tag, platform, spec);
  return fromDockerArchive(files, tag, spec);
}
