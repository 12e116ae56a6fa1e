// The OCI distribution client: resolve a reference to a platform manifest, fetch manifests by digest
// (hashed and capped), configs, blobs as verified streams, and referrers; push and pull OCI artifacts
// (push.ts). Built on RegistryTransport.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { ACCEPT_MANIFESTS, MediaTypes } from "../image/mediatypes.js";
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from "../image/manifest.js";
import type * as ManifestModule from "../image/manifest.js";
import { defaultPlatform, formatPlatform, platformCandidates, selectManifest, type Platform } from "../image/platform.js";
import { isDigest } from "../image/digest.js";
import { isValidTag, type Reference } from "../image/reference.js";
import type { EgressGuard } from "../net/egress.js";
import type { RegistryConnections } from "./connections.js";
import type { Keyring } from "./auth/types.js";
import { verifiedBlobStream } from "./blob.js";
import { RegistryError } from "./errors.js";
import type { RegistryOptionsInput } from "./options.js";
import { pullArtifact, pullArtifactToFiles, pushArtifact, type ArtifactFileLayer, type ArtifactInput, type ArtifactLayer, type PullArtifactOptions, type PulledArtifact, type PushedArtifact } from "./push.js";
import { readCapped, RegistryTransport, type RegistryMetrics } from "./transport.js";

export interface FetchedManifest<M = ImageManifest | ImageIndex> {
  digest: string;
  mediaType: string;
  manifest: M;
  /** The raw bytes, exactly as served (their hash is `digest`). */
  raw: Buffer;
  /** The response's Docker-Content-Digest, when it is a well-formed digest (unchecked). */
  statedDigest?: string;
}

export interface ResolvedImage {
  /** The digest of the platform-specific image manifest: what gets indexed. */
  digest: string;
  /** The digest the reference resolved to (an index, for multi-platform images; else equal to digest). */
  resolvedDigest: string;
  manifest: ImageManifest;
  mediaType: string;
  platform?: Platform;
}

/** A Docker-Content-Digest header's value when it is a valid digest (sha256: 64 hex digits, sha512: 128), else undefined. */
export function headerDigest(header: string | string[] | undefined): string | undefined {
  const d = Array.isArray(header) ? header[0] : header;
  return d !== undefined && isDigest(d) ? d : undefined;
}

/**
 * The manifest and config parsers (zod schemas), loaded with the first manifest: a warm `portcullis scan`
 * asks only a HEAD of the client and does not pay for zod (about 70 ms of its 300 ms budget).
 */
function manifestParsers(): Promise<typeof ManifestModule> {
  return import("../image/manifest.js");
}

function digestOf(raw: Uint8Array, algorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(raw).digest("hex")}`;
}

/** What listTags found. */
export interface TagListing {
  /** The tags, in the registry's order, each once; names that are not valid tags are left out (see `invalid`). */
  tags: string[];
  /** Requests made (pages). */
  requests: number;
  /** The listing stopped at `maxTags` or `maxPages` with more to come. */
  truncated: boolean;
  /** Names the registry listed that are not valid tags (skipped). */
  invalid: number;
}

export interface ListTagsOptions {
  /** Tags asked for per page (`n`); default 1000. */
  pageSize?: number;
  /** Stop after this many tags (truncated); default 10,000. */
  maxTags?: number;
  /** Stop after this many pages (truncated); default 100. */
  maxPages?: number;
  signal?: AbortSignal;
}

export class RegistryClient {
  readonly transport: RegistryTransport;

  /**
   * `egress`: the guard every connection goes through (default: the process's, with the system resolver).
   * `connections`: shared with other clients (./connections.ts; close() leaves them open); default its own.
   */
  constructor(opts: { options?: RegistryOptionsInput; keyring?: Keyring; metrics?: RegistryMetrics; defaultPlatform?: Platform; egress?: EgressGuard; connections?: RegistryConnections } = {}) {
    this.transport = new RegistryTransport(opts.options ?? {}, opts.keyring, opts.metrics ?? {}, opts.egress, opts.connections);
    this.platform = opts.defaultPlatform ?? defaultPlatform();
    this.metrics = opts.metrics ?? {};
  }

  private readonly platform: Platform;
  private readonly metrics: RegistryMetrics;

  async close(): Promise<void> {
    await this.transport.close();
  }

  /**
   * The digest a tag points to, by HEAD (no pull counted on Docker Hub); falls back to GET when the
   * registry's HEAD does not give Docker-Content-Digest. A digest reference returns its digest unchanged.
   */
  async resolveDigest(ref: Reference, signal?: AbortSignal): Promise<string> {
    if (ref.digest) return ref.digest;
    const res = await this.transport.send(ref.registry, ref.repository, {
      method: "HEAD", path: `/v2/${ref.repository}/manifests/${ref.tag ?? "latest"}`, headers: { accept: ACCEPT_MANIFESTS }, signal,
    });
    const d = headerDigest(res.headers["docker-content-digest"]);
    if (d) return d;
    return (await this.getManifest(ref, ref.tag ?? "latest", signal)).digest;
  }

  /**
   * The digest a tag points to, computed from the manifest's bytes (GET, then hashed), never taken from the
   * registry's word: what a verdict rests on. When the registry also states Docker-Content-Digest, it must
   * agree (DIGEST_MISMATCH otherwise). A GET counts as a pull on Docker Hub; callers cache the answer.
   */
  async verifiedDigest(ref: Reference, signal?: AbortSignal): Promise<string> {
    if (ref.digest) return ref.digest;
    const tag = ref.tag ?? "latest";
    const m = await this.getManifest(ref, tag, signal);
    const stated = m.statedDigest;
    if (stated !== undefined) {
      const algorithm = stated.slice(0, stated.indexOf(":"));
      const computed = algorithm === "sha256" ? m.digest : digestOf(m.raw, algorithm);
      if (computed !== stated) {
        throw new RegistryError("DIGEST_MISMATCH", `${ref.registry}/${ref.repository}:${tag}: the registry says the manifest is ${stated} but its bytes hash to ${computed}`, { registry: ref.registry, repository: ref.repository });
      }
      return stated;
    }
    return m.digest;
  }

  /** A manifest or index by tag or digest; by digest, the body must hash to it. */
  async getManifest(ref: Reference, tagOrDigest: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const res = await this.transport.send(ref.registry, ref.repository, {
      method: "GET", path: `/v2/${ref.repository}/manifests/${tagOrDigest}`, headers: { accept: ACCEPT_MANIFESTS }, signal,
    });
    const max = this.transport.options.maxManifestBytes;
    const where = `${ref.registry}/${ref.repository}:${tagOrDigest}`;
    const declared = Number(res.headers["content-length"]);
    if (declared > max) {
      await res.body.dump().catch(() => undefined);
      throw new RegistryError("TOO_LARGE", `${where}: manifest of ${declared} bytes is over the ${max}-byte limit`, { registry: ref.registry, repository: ref.repository });
    }
    const raw = await readCapped(res.body, max, () => new RegistryError("TOO_LARGE", `${where}: manifest is over the ${max}-byte limit`, { registry: ref.registry, repository: ref.repository }));
    this.metrics.bytes?.({ registry: ref.registry, bytes: raw.length });
    const byDigest = /^[a-z0-9]+:/.test(tagOrDigest);
    const algorithm = byDigest ? tagOrDigest.split(":")[0]! : "sha256";
    if (algorithm !== "sha256" && algorithm !== "sha512") throw new RegistryError("UNSUPPORTED", `${where}: digest algorithm ${algorithm} is not supported`);
    const digest = digestOf(raw, algorithm);
    if (byDigest && digest !== tagOrDigest) {
      throw new RegistryError("DIGEST_MISMATCH", `${where}: the registry served a manifest whose digest is ${digest}`, { registry: ref.registry, repository: ref.repository });
    }
    const contentType = res.headers["content-type"];
    let manifest: ImageManifest | ImageIndex;
    try {
      manifest = (await manifestParsers()).parseManifest(raw, Array.isArray(contentType) ? contentType[0] : contentType);
    } catch (e) {
      const code = (e as { code?: string }).code === "MANIFEST_UNSUPPORTED" ? "UNSUPPORTED" : "UNEXPECTED_STATUS";
      throw new RegistryError(code, `${where}: ${(e as Error).message}`, { registry: ref.registry, repository: ref.repository }, { cause: e });
    }
    const stated = headerDigest(res.headers["docker-content-digest"]);
    return { digest, mediaType: manifest.mediaType, manifest, raw, ...(stated ? { statedDigest: stated } : {}) };
  }

  /**
   * Resolves a reference to the image manifest for `platform` (default from configuration), walking
   * nested indexes. Tag -> HEAD for the digest -> GET by digest (hashed), so the tag's answer is verified.
   */
  async resolve(ref: Reference, opts: { platform?: Platform; signal?: AbortSignal } = {}): Promise<ResolvedImage> {
    const wanted = opts.platform ?? this.platform;
    const resolvedDigest = await this.resolveDigest(ref, opts.signal);
    let current = await this.getManifest(ref, resolvedDigest, opts.signal);
    for (let depth = 0; depth < 4; depth++) {
      if (current.manifest.kind === "manifest") {
        return { digest: current.digest, resolvedDigest, manifest: current.manifest, mediaType: current.mediaType, platform: depth > 0 ? wanted : undefined };
      }
      const chosen: Descriptor | undefined = selectManifest(current.manifest, wanted);
      if (!chosen) {
        const available = platformCandidates(current.manifest);
        throw new RegistryError("PLATFORM_NOT_FOUND", `${ref.registry}/${ref.repository}@${current.digest}: no ${formatPlatform(wanted)} image in the index; it has ${available.length ? available.join(", ") : "no usable platform"}`, { registry: ref.registry, repository: ref.repository });
      }
      current = await this.getManifest(ref, chosen.digest, opts.signal);
    }
    throw new RegistryError("UNSUPPORTED", `${ref.registry}/${ref.repository}: indexes nested more than 4 deep`);
  }

  /** The image config blob, parsed (os, architecture, rootfs.diff_ids, history). */
  async getConfig(ref: Reference, desc: Descriptor, signal?: AbortSignal): Promise<ImageConfig> {
    const max = this.transport.options.maxConfigBytes;
    if (desc.size > max) throw new RegistryError("TOO_LARGE", `${ref.registry}/${ref.repository}: config ${desc.digest} of ${desc.size} bytes is over the ${max}-byte limit`);
    const chunks: Buffer[] = [];
    for await (const c of this.getBlob(ref, desc, signal)) chunks.push(c as Buffer);
    return (await manifestParsers()).parseImageConfig(Buffer.concat(chunks));
  }

  /** A blob as a verified stream (see verifiedBlobStream). */
  getBlob(ref: Reference, desc: { digest: string; size?: number }, signal?: AbortSignal): Readable {
    return verifiedBlobStream({
      registry: ref.registry,
      repository: ref.repository,
      digest: desc.digest,
      size: desc.size,
      maxResumes: this.transport.options.maxBlobResumes,
      onBytes: (n) => this.metrics.bytes?.({ registry: ref.registry, bytes: n }),
      open: (offset) =>
        this.transport.send(ref.registry, ref.repository, {
          method: "GET",
          path: `/v2/${ref.repository}/blobs/${desc.digest}`,
          headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
          signal,
        }),
    });
  }

  /**
   * Bytes [start, end) of a blob by an HTTP Range request (partial layer reads), through the same auth,
   * retries, limits and redirects as every request. The answer must be a 206 for exactly that range: a 200
   * (a registry or proxy that ignores Range) is refused as UNSUPPORTED after reading none of its body. The
   * bytes are not checked here: the caller checks them against the digests of a table of contents.
   */
  async getBlobRange(ref: Reference, digest: string, start: number, end: number, signal?: AbortSignal): Promise<Buffer> {
    const where = `${ref.registry}/${ref.repository}@${digest}`;
    const details = { registry: ref.registry, repository: ref.repository };
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && end > start)) throw new RangeError(`bad byte range ${start}-${end}`);
    const want = end - start;
    for (let attempt = 0; ; attempt++) {
      const res = await this.transport.send(ref.registry, ref.repository, {
        method: "GET", path: `/v2/${ref.repository}/blobs/${digest}`, headers: { range: `bytes=${start}-${end - 1}` }, signal,
      });
      if (res.statusCode !== 206) {
        res.body.destroy();
        throw new RegistryError("UNSUPPORTED", `${where}: asked for bytes ${start}-${end - 1}, the registry answered ${res.statusCode} (it does not serve byte ranges)`, { ...details, status: res.statusCode });
      }
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers["content-range"] ?? "").trim());
      if (!range || Number(range[1]) !== start || Number(range[2]) !== end - 1) {
        res.body.destroy();
        throw new RegistryError("UNEXPECTED_STATUS", `${where}: asked for bytes ${start}-${end - 1}, got Content-Range ${JSON.stringify(String(res.headers["content-range"] ?? "").slice(0, 80))}`, details);
      }
      try {
        const data = await readCapped(res.body, want, () => new RegistryError("SIZE_MISMATCH", `${where}: more than the ${want} bytes of range ${start}-${end - 1}`, details));
        this.metrics.bytes?.({ registry: ref.registry, bytes: data.length });
        if (data.length !== want) throw new RegistryError("SIZE_MISMATCH", `${where}: ${data.length} bytes for range ${start}-${end - 1} of ${want}`, details);
        return data;
      } catch (e) {
        // A dropped connection is asked again, as many times as a blob may be resumed.
        if (e instanceof RegistryError || signal?.aborted || attempt >= this.transport.options.maxBlobResumes) throw e instanceof RegistryError || signal?.aborted ? e : new RegistryError("NETWORK", `${where}: range ${start}-${end - 1}: ${(e as Error).message}`, details, { cause: e });
      }
    }
  }

  /**
   * Pushes an OCI artifact (an image manifest with `artifactType` and the empty config, or the config form
   * for registries that refuse that; see push.ts): blobs the registry lacks, then the manifest by tag or
   * digest. Returns the manifest digest.
   */
  pushArtifact(ref: Reference, a: ArtifactInput<ArtifactLayer | ArtifactFileLayer>, signal?: AbortSignal): Promise<PushedArtifact> {
    return pushArtifact(this, ref, a, signal);
  }

  /** Pulls an artifact's layers of one media type into files under `opts.dir` (see pullArtifactToFiles). */
  pullArtifactToFiles(ref: Reference, opts: PullArtifactOptions & { dir: string; mediaType: string }): ReturnType<typeof pullArtifactToFiles> {
    return pullArtifactToFiles(this, ref, opts);
  }

  /** Pulls an OCI artifact pushed by pushArtifact (either form): manifest and layers, all verified. */
  pullArtifact(ref: Reference, opts: PullArtifactOptions): Promise<PulledArtifact> {
    return pullArtifact(this, ref, opts);
  }

  /**
   * A repository's tags: `/v2/<name>/tags/list?n=…`, following the `Link: <…>; rel="next"` pages the
   * distribution spec defines, through the transport's auth, retries and Retry-After. Bounded: each page's
   * bytes (maxTagPageBytes), the pages and the tags (truncated says so); a next link must stay on this
   * repository's tag list (BLOCKED_URL otherwise) and move forward (a page repeating itself ends the listing
   * with UNEXPECTED_STATUS).
   */
  async listTags(ref: Reference, o: ListTagsOptions = {}): Promise<TagListing> {
    const pageSize = Math.max(1, Math.min(o.pageSize ?? 1000, 10_000));
    const maxTags = o.maxTags ?? 10_000;
    const maxPages = o.maxPages ?? 100;
    const where = `${ref.registry}/${ref.repository}`;
    const base = `/v2/${ref.repository}/tags/list`;
    const seen = new Set<string>();
    const tags: string[] = [];
    const visited = new Set<string>();
    let invalid = 0;
    let path: string | undefined = `${base}?n=${pageSize}`;
    let requests = 0;
    while (path) {
      if (requests >= maxPages || tags.length >= maxTags) return { tags, requests, truncated: true, invalid };
      visited.add(path);
      const res = await this.transport.send(ref.registry, ref.repository, { method: "GET", path, headers: { accept: "application/json" }, signal: o.signal });
      requests++;
      const max = this.transport.options.maxTagPageBytes;
      const raw = await readCapped(res.body, max, () => new RegistryError("TOO_LARGE", `${where}: a page of the tag list is over the ${max}-byte limit`, { registry: ref.registry, repository: ref.repository }));
      this.metrics.bytes?.({ registry: ref.registry, bytes: raw.length });
      let body: { tags?: unknown };
      try {
        body = JSON.parse(raw.toString("utf8")) as { tags?: unknown };
      } catch {
        throw new RegistryError("UNEXPECTED_STATUS", `${where}: the tag list is not JSON`, { registry: ref.registry, repository: ref.repository });
      }
      // A repository without tags answers `"tags": null` on some registries.
      const page = body?.tags ?? [];
      if (!Array.isArray(page)) throw new RegistryError("UNEXPECTED_STATUS", `${where}: the tag list has no "tags" array`, { registry: ref.registry, repository: ref.repository });
      for (const [i, t] of page.entries()) {
        if (tags.length >= maxTags) return { tags, requests, truncated: page.slice(i).some((x) => typeof x === "string" && isValidTag(x) && !seen.has(x)) || nextLink(res.headers.link) !== undefined, invalid };
        if (typeof t !== "string" || !isValidTag(t)) {
          invalid++;
          continue;
        }
        if (seen.has(t)) continue;
        seen.add(t);
        tags.push(t);
      }
      const next = nextLink(res.headers.link);
      if (next === undefined) {
        path = undefined;
        break;
      }
      path = tagPagePath(next, base, res.url);
      if (path === undefined) throw new RegistryError("BLOCKED_URL", `${where}: the tag list's next page ${JSON.stringify(next.slice(0, 200))} is not this repository's tag list on this registry`, { registry: ref.registry, repository: ref.repository });
      if (visited.has(path)) throw new RegistryError("UNEXPECTED_STATUS", `${where}: the tag list's next page repeats an earlier page (${path.slice(0, 200)})`, { registry: ref.registry, repository: ref.repository });
      if (tags.length >= maxTags) return { tags, requests, truncated: true, invalid };
    }
    return { tags, requests, truncated: false, invalid };
  }

  /**
   * Manifests that refer to `digest` (signatures, SBOMs, SOCI indexes): the referrers API, or the
   * `sha256-<hex>` tag schema where the registry lacks it (404, 400 or 406). Follows `Link` pages.
   */
  async listReferrers(ref: Reference, digest: string, opts: { artifactType?: string; signal?: AbortSignal } = {}): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    let path: string | undefined = `/v2/${ref.repository}/referrers/${digest}${opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : ""}`;
    let filtered = true;
    for (let page = 0; path && page < 50; page++) {
      const res = await this.transport.send(ref.registry, ref.repository, { method: "GET", path, headers: { accept: MediaTypes.OCI_INDEX }, signal: opts.signal, passStatuses: [400, 404, 406] });
      if (res.statusCode !== 200) {
        await res.body.dump();
        if (page > 0) break;
        return this.referrersByTag(ref, digest, opts);
      }
      filtered &&= Boolean(res.headers["oci-filters-applied"]);
      const raw = await readCapped(res.body, this.transport.options.maxManifestBytes, () => new RegistryError("TOO_LARGE", `${ref.registry}/${ref.repository}: referrers page over the limit`));
      const index = (await manifestParsers()).parseManifest(raw, MediaTypes.OCI_INDEX);
      if (index.kind === "index") out.push(...index.manifests);
      const link = String(res.headers.link ?? "");
      path = /<([^>]+)>;\s*rel="?next"?/.exec(link)?.[1];
    }
    return opts.artifactType && !filtered ? out.filter((d) => d.artifactType === opts.artifactType) : out;
  }

  private async referrersByTag(ref: Reference, digest: string, opts: { artifactType?: string; signal?: AbortSignal }): Promise<Descriptor[]> {
    const tag = digest.replace(":", "-");
    try {
      const m = await this.getManifest(ref, tag, opts.signal);
      if (m.manifest.kind !== "index") return [];
      return m.manifest.manifests.filter((d) => !opts.artifactType || d.artifactType === opts.artifactType);
    } catch (e) {
      if (e instanceof RegistryError && e.code === "MANIFEST_UNKNOWN") return [];
      throw e;
    }
  }
}

/** The target of a `Link` header's rel="next" entry, if any. */
function nextLink(header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header.join(", ") : header;
  if (!v) return undefined;
  for (const part of v.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?next"?(?:\s*;|\s*$)/i.test(m[2]!)) return m[1]!;
  }
  return undefined;
}

/**
 * A next-page link as a path on the registry, or undefined when it leaves the repository's tag list: relative
 * (`/v2/<name>/tags/list?...`), or absolute on the very host and port the page came from.
 */
function tagPagePath(link: string, base: string, pageUrl: string): string | undefined {
  let u: URL;
  try {
    u = new URL(link, pageUrl);
  } catch {
    return undefined;
  }
  const from = new URL(pageUrl);
  if (u.protocol !== from.protocol || u.host !== from.host || u.pathname !== base) return undefined;
  return `${u.pathname}${u.search}`;
}
