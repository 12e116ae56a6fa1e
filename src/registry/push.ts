// Pushing and pulling OCI artifacts: the offline advisory bundle (issue 15) goes to a registry with
// `portcullis db push` and comes back in an air-gapped cluster from its own registry with `db pull`.
//
// The manifest is an OCI image manifest (`application/vnd.oci.image.manifest.v1+json`) in one of two forms:
//
//  - "artifact" (the default, image-spec 1.1's guidance for artifacts): `artifactType` names what it is and
//    the config is the empty descriptor (`application/vnd.oci.empty.v1+json`, the two bytes `{}`,
//    sha256:44136fa3…). Debian's distribution 2.8.2 (the test registries) stores and serves it byte for
//    byte: it ignores fields it does not know and only checks that the config and layer blobs exist. It has
//    no referrers API (404), which an artifact without `subject` does not need.
//  - "config", for registries that refuse OCI 1.1 fields (a 400 MANIFEST_INVALID or UNSUPPORTED, or 415, on
//    the manifest PUT): no `artifactType`; the config is the JSON blob `{"artifactType":"…"}` with media
//    type `configMediaType` (default application/vnd.portcullis.artifact.config.v1+json). By image-spec
//    1.1 a manifest without `artifactType` has its config's media type as artifact type; the blob keeps the
//    exact type for pullArtifact. With form "auto" (the default) a push tries "artifact" and falls back to
//    "config" when the registry refuses it; a push by digest cannot fall back (the digest would change).
//
// pullArtifact reads both: `artifactType` if the manifest has one, else the config blob's `artifactType`,
// else the config's media type.
//
// Blobs are pushed only when a HEAD says the registry lacks them. A blob in memory goes as one monolithic
// upload (POST to start, PUT `?digest=` with the whole body): distribution takes a monolithic PUT of any
// size. A blob in a file (an advisory bundle of GBs) goes as a chunked upload, as the distribution spec
// describes it: PATCH each chunk (`Content-Range: start-end`, inclusive) to the Location the previous
// answer named, then PUT `?digest=` with no body; one chunk is in memory at a time. The blob PUT is idempotent in effect (it names the
// digest of content-addressed bytes), so the transport retries it on 5xx; the POST is not retried blindly.
// When an upload fails with a transient error or the upload session is gone (404 BLOB_UPLOAD_UNKNOWN: a
// retried PUT after the first one was stored), the registry is asked (HEAD) whether it has the blob, and a
// blob it lacks is uploaded once more from a fresh POST.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { CONFIG_TYPES, MediaTypes } from "../image/mediatypes.js";
import type { Descriptor, ImageManifest } from "../image/manifest.js";
import type { Reference } from "../image/reference.js";
import type { RegistryClient } from "./client.js";
import { RegistryError } from "./errors.js";
import { isTransient } from "../errors.js";
import type { RegistryResponse } from "./transport.js";

/** The empty config of an artifact without one: `{}`, as image-spec 1.1 defines it. */
export const EMPTY_CONFIG: Readonly<Descriptor> & { bytes: Buffer } = Object.freeze({
  mediaType: MediaTypes.OCI_EMPTY,
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
  bytes: Buffer.from("{}"),
});

/** The config media type of the "config" form when the caller names none. */
export const DEFAULT_ARTIFACT_CONFIG_MEDIA_TYPE = "application/vnd.portcullis.artifact.config.v1+json";

export type ArtifactManifestForm = "artifact" | "config";

export interface ArtifactLayer {
  mediaType: string;
  bytes: Buffer;
  annotations?: Record<string, string>;
}

/** A layer in a file whose digest and size the caller knows (checked as it is uploaded, a chunk at a time). */
export interface ArtifactFileLayer {
  mediaType: string;
  file: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

function layerDescriptor(l: ArtifactLayer | ArtifactFileLayer): { digest: string; size: number } {
  return "bytes" in l ? { digest: sha256(l.bytes), size: l.bytes.length } : { digest: l.digest, size: l.size };
}

export interface ArtifactInput<L extends ArtifactLayer | ArtifactFileLayer = ArtifactLayer> {
  /** What the artifact is, e.g. application/vnd.portcullis.advisory-bundle.v1. */
  artifactType: string;
  layers: L[];
  /** Annotations of the manifest. */
  annotations?: Record<string, string>;
  /** The config media type of the "config" form (unused by the "artifact" form). */
  configMediaType?: string;
  /** "auto" (default): "artifact", or "config" if the registry refuses OCI 1.1 fields. */
  form?: ArtifactManifestForm | "auto";
}

export interface PushedArtifact {
  /** The manifest digest (sha256 of the manifest bytes as pushed). */
  digest: string;
  /** The manifest's size in bytes. */
  size: number;
  form: ArtifactManifestForm;
  /** Blobs uploaded (config included); those the registry had already were skipped. */
  uploadedBlobs: number;
}

export interface PullArtifactOptions {
  /** Refuse (UNSUPPORTED) an artifact of another type. */
  artifactType?: string;
  /** Refuse (TOO_LARGE) a layer larger than this, before fetching it. */
  maxLayerBytes: number;
  signal?: AbortSignal;
}

export interface PulledLayer {
  mediaType: string;
  digest: string;
  annotations?: Record<string, string>;
  bytes: Buffer;
}

export interface PulledArtifact {
  digest: string;
  manifest: ImageManifest;
  /** The manifest bytes exactly as served (their sha256 is `digest`). */
  raw: Buffer;
  /** From `artifactType`, else the config blob's `artifactType`, else the config's media type. */
  artifactType?: string;
  layers: PulledLayer[];
}

// RFC 6838 type/subtype, as image-spec requires of media types (parameters are not allowed here).
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

function sha256(b: Uint8Array): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

function checkMediaType(what: string, t: string): void {
  if (!MEDIA_TYPE.test(t)) throw new RegistryError("UNSUPPORTED", `${what} ${JSON.stringify(t.slice(0, 200))} is not a media type (type/subtype, RFC 6838)`);
}

function where(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The manifest bytes of an artifact in `form`, and the config blob it names. */
export function artifactManifest(a: ArtifactInput<ArtifactLayer | ArtifactFileLayer>, form: ArtifactManifestForm): { raw: Buffer; config: Descriptor & { bytes: Buffer } } {
  const config = form === "artifact"
    ? { mediaType: EMPTY_CONFIG.mediaType, digest: EMPTY_CONFIG.digest, size: EMPTY_CONFIG.size, bytes: EMPTY_CONFIG.bytes }
    : (() => {
        const bytes = Buffer.from(JSON.stringify({ artifactType: a.artifactType }));
        return { mediaType: a.configMediaType ?? DEFAULT_ARTIFACT_CONFIG_MEDIA_TYPE, digest: sha256(bytes), size: bytes.length, bytes };
      })();
  const doc: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaTypes.OCI_MANIFEST };
  if (form === "artifact") doc.artifactType = a.artifactType;
  doc.config = { mediaType: config.mediaType, digest: config.digest, size: config.size };
  doc.layers = a.layers.map((l) => ({ mediaType: l.mediaType, ...layerDescriptor(l), ...(l.annotations && Object.keys(l.annotations).length ? { annotations: l.annotations } : {}) }));
  if (a.annotations && Object.keys(a.annotations).length) doc.annotations = a.annotations;
  return { raw: Buffer.from(JSON.stringify(doc)), config };
}

/** Whether the repository has the blob (HEAD; 404 is no). */
export async function blobExists(client: RegistryClient, ref: Reference, digest: string, signal?: AbortSignal): Promise<boolean> {
  const res = await client.transport.send(ref.registry, ref.repository, { method: "HEAD", path: `/v2/${ref.repository}/blobs/${digest}`, push: true, passStatuses: [404], signal });
  await res.body.dump();
  return res.statusCode === 200;
}

function expectStatus(ref: Reference, res: RegistryResponse, want: number, what: string): void {
  if (res.statusCode !== want) throw new RegistryError("UNEXPECTED_STATUS", `${where(ref)}: ${what}: the registry answered ${res.statusCode}, not ${want}`, { registry: ref.registry, repository: ref.repository, status: res.statusCode });
}

function checkDigestHeader(ref: Reference, res: RegistryResponse, digest: string, what: string): void {
  const h = res.headers["docker-content-digest"];
  const said = Array.isArray(h) ? h[0] : h;
  if (said && said !== digest) throw new RegistryError("DIGEST_MISMATCH", `${where(ref)}: ${what} ${digest} was stored as ${said}`, { registry: ref.registry, repository: ref.repository });
}

/** One monolithic upload: POST for an upload URL, then PUT the whole blob there with `?digest=`. */
async function uploadMonolithic(client: RegistryClient, ref: Reference, bytes: Buffer, digest: string, signal?: AbortSignal): Promise<void> {
  const t = client.transport;
  const start = await t.send(ref.registry, ref.repository, { method: "POST", path: `/v2/${ref.repository}/blobs/uploads/`, body: Buffer.alloc(0), signal });
  await start.body.dump();
  expectStatus(ref, start, 202, "starting a blob upload");
  const path = t.uploadPath(ref.registry, start);
  const put = await t.send(ref.registry, ref.repository, {
    method: "PUT", path: `${path}${path.includes("?") ? "&" : "?"}digest=${digest}`, headers: { "content-type": "application/octet-stream" }, body: bytes, idempotent: true, signal,
  });
  await put.body.dump();
  expectStatus(ref, put, 201, `uploading blob ${digest}`);
  checkDigestHeader(ref, put, digest, "blob");
}

/** Pushes a blob unless the registry has it; true when it was uploaded. */
export async function pushBlob(client: RegistryClient, ref: Reference, bytes: Buffer, signal?: AbortSignal): Promise<{ digest: string; uploaded: boolean }> {
  const digest = sha256(bytes);
  if (await blobExists(client, ref, digest, signal)) return { digest, uploaded: false };
  for (let attempt = 0; ; attempt++) {
    try {
      await uploadMonolithic(client, ref, bytes, digest, signal);
      return { digest, uploaded: true };
    } catch (e) {
      const retry = e instanceof RegistryError && (isTransient(e) || e.details.registryCode === "BLOB_UPLOAD_UNKNOWN") && !signal?.aborted;
      if (!retry) throw e;
      // The upload may have been stored before the error: ask before sending it again.
      if (await blobExists(client, ref, digest, signal)) return { digest, uploaded: true };
      if (attempt >= 1) throw e;
    }
  }
}

/** The chunk of a chunked upload: a round trip per 16 MiB, 16 MiB in memory. */
export const UPLOAD_CHUNK_BYTES = 16 << 20;

/**
 * A chunked upload of a file: POST, a PATCH per chunk, PUT `?digest=`. The file is hashed as it is sent and
 * must have the digest and size the caller gave (else DIGEST_MISMATCH / SIZE_MISMATCH, before the PUT
 * that would commit it).
 */
async function uploadChunked(client: RegistryClient, ref: Reference, f: { file: string; digest: string; size: number }, chunkBytes: number, signal?: AbortSignal): Promise<void> {
  const t = client.transport;
  const start = await t.send(ref.registry, ref.repository, { method: "POST", path: `/v2/${ref.repository}/blobs/uploads/`, body: Buffer.alloc(0), signal });
  await start.body.dump();
  expectStatus(ref, start, 202, "starting a blob upload");
  let path = t.uploadPath(ref.registry, start);
  const hash = createHash("sha256");
  let sent = 0;
  const h = await open(f.file, "r");
  try {
    const buf = Buffer.alloc(Math.min(chunkBytes, Math.max(1, f.size)));
    for (;;) {
      const { bytesRead } = await h.read(buf, 0, buf.length, sent);
      if (!bytesRead) break;
      if (sent + bytesRead > f.size) throw new RegistryError("SIZE_MISMATCH", `${f.file} is longer than the ${f.size} bytes given for blob ${f.digest}`, { registry: ref.registry, repository: ref.repository });
      const chunk = Buffer.from(buf.subarray(0, bytesRead));
      hash.update(chunk);
      const res = await t.send(ref.registry, ref.repository, {
        method: "PATCH", path, headers: { "content-type": "application/octet-stream", "content-range": `${sent}-${sent + bytesRead - 1}` }, body: chunk, signal,
      });
      await res.body.dump();
      expectStatus(ref, res, 202, `uploading bytes ${sent}-${sent + bytesRead - 1} of blob ${f.digest}`);
      path = t.uploadPath(ref.registry, res);
      sent += bytesRead;
    }
  } finally {
    await h.close();
  }
  if (sent !== f.size) throw new RegistryError("SIZE_MISMATCH", `${f.file} is ${sent} bytes, not the ${f.size} given for blob ${f.digest}`, { registry: ref.registry, repository: ref.repository });
  const got = `sha256:${hash.digest("hex")}`;
  if (got !== f.digest) throw new RegistryError("DIGEST_MISMATCH", `${f.file} has digest ${got}, not ${f.digest} as given`, { registry: ref.registry, repository: ref.repository });
  const put = await t.send(ref.registry, ref.repository, {
    method: "PUT", path: `${path}${path.includes("?") ? "&" : "?"}digest=${f.digest}`, headers: { "content-type": "application/octet-stream" }, body: Buffer.alloc(0), idempotent: true, signal,
  });
  await put.body.dump();
  expectStatus(ref, put, 201, `finishing the upload of blob ${f.digest}`);
  checkDigestHeader(ref, put, f.digest, "blob");
}

/**
 * Pushes a blob from a file of known digest and size unless the registry has it, a chunk at a time (see
 * uploadChunked); a failed upload is retried once from a fresh POST, as pushBlob does.
 */
export async function pushBlobFile(client: RegistryClient, ref: Reference, f: { file: string; digest: string; size: number }, signal?: AbortSignal, chunkBytes = UPLOAD_CHUNK_BYTES): Promise<{ digest: string; uploaded: boolean }> {
  if (!/^sha256:[a-f0-9]{64}$/.test(f.digest)) throw new RegistryError("UNSUPPORTED", `blob ${JSON.stringify(f.digest.slice(0, 100))}: only sha256 digests are pushed`);
  if (await blobExists(client, ref, f.digest, signal)) return { digest: f.digest, uploaded: false };
  for (let attempt = 0; ; attempt++) {
    try {
      await uploadChunked(client, ref, f, chunkBytes, signal);
      return { digest: f.digest, uploaded: true };
    } catch (e) {
      const retry = e instanceof RegistryError && (isTransient(e) || e.details.registryCode === "BLOB_UPLOAD_UNKNOWN") && !signal?.aborted;
      if (!retry) throw e;
      if (await blobExists(client, ref, f.digest, signal)) return { digest: f.digest, uploaded: true };
      if (attempt >= 1) throw e;
    }
  }
}

/** PUTs manifest bytes by tag or digest; returns the digest (checked against the registry's, if it says one). */
export async function pushManifest(client: RegistryClient, ref: Reference, reference: string, raw: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
  const digest = sha256(raw);
  const res = await client.transport.send(ref.registry, ref.repository, {
    method: "PUT", path: `/v2/${ref.repository}/manifests/${reference}`, headers: { "content-type": mediaType }, body: raw, idempotent: true, signal,
  });
  await res.body.dump();
  expectStatus(ref, res, 201, `pushing manifest ${reference}`);
  checkDigestHeader(ref, res, digest, "manifest");
  return digest;
}

/** A refusal of the manifest itself (not of a blob, a name or a tag): the OCI 1.1 fields, probably. */
function refusesForm(e: unknown): boolean {
  if (!(e instanceof RegistryError)) return false;
  const { status, registryCode } = e.details;
  return status === 415 || (status === 400 && (registryCode === undefined || registryCode === "MANIFEST_INVALID" || registryCode === "UNSUPPORTED"));
}

/**
 * Pushes an artifact: its blobs (those the registry lacks), then the manifest by `ref.tag`, or by
 * `ref.digest` when the reference has no tag (the digest must be that of the manifest; checked before
 * anything is sent). With both, the manifest goes to the tag and must have the digest.
 */
export async function pushArtifact(client: RegistryClient, ref: Reference, a: ArtifactInput<ArtifactLayer | ArtifactFileLayer>, signal?: AbortSignal): Promise<PushedArtifact> {
  checkMediaType("artifactType", a.artifactType);
  for (const [i, l] of a.layers.entries()) checkMediaType(`layers[${i}].mediaType`, l.mediaType);
  if (a.configMediaType !== undefined) checkMediaType("configMediaType", a.configMediaType);
  const forms: ArtifactManifestForm[] = a.form === "artifact" || a.form === "config" ? [a.form] : ref.digest ? ["artifact"] : ["artifact", "config"];
  const reference = ref.tag ?? ref.digest;
  if (!reference) throw new RegistryError("UNSUPPORTED", `${where(ref)}: a push needs a tag or a digest`);
  let uploadedBlobs = 0;
  const pushed = new Set<string>();
  const ensure = async (l: { bytes: Buffer } | { file: string; digest: string; size: number }) => {
    const d = "bytes" in l ? sha256(l.bytes) : l.digest;
    if (pushed.has(d)) return;
    const r = "bytes" in l ? await pushBlob(client, ref, l.bytes, signal) : await pushBlobFile(client, ref, l, signal);
    if (r.uploaded) uploadedBlobs++;
    pushed.add(d);
  };
  for (const [i, form] of forms.entries()) {
    const { raw, config } = artifactManifest(a, form);
    const digest = sha256(raw);
    if (ref.digest && digest !== ref.digest) {
      throw new RegistryError("DIGEST_MISMATCH", `${where(ref)}: the artifact's manifest has digest ${digest}, not ${ref.digest} as the reference says`, { registry: ref.registry, repository: ref.repository });
    }
    for (const l of a.layers) await ensure(l);
    await ensure({ bytes: config.bytes });
    try {
      await pushManifest(client, ref, reference, raw, MediaTypes.OCI_MANIFEST, signal);
      return { digest, size: raw.length, form, uploadedBlobs };
    } catch (e) {
      if (i + 1 >= forms.length || !refusesForm(e)) throw e;
    }
  }
  throw new Error("unreachable");
}

async function readBlob(client: RegistryClient, ref: Reference, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of client.getBlob(ref, desc, signal)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The artifact type of a manifest: `artifactType`, else its config blob's `artifactType`, else the config's media type. */
async function artifactTypeOf(client: RegistryClient, ref: Reference, m: ImageManifest, signal?: AbortSignal): Promise<string | undefined> {
  if (m.artifactType) return m.artifactType;
  const configType = m.config.mediaType;
  if (configType === MediaTypes.OCI_EMPTY) return undefined;
  if (CONFIG_TYPES.has(configType) || m.config.size > client.transport.options.maxConfigBytes) return configType;
  try {
    const doc = JSON.parse((await readBlob(client, ref, m.config, signal)).toString("utf8")) as unknown;
    const t = typeof doc === "object" && doc !== null && !Array.isArray(doc) ? (doc as { artifactType?: unknown }).artifactType : undefined;
    return typeof t === "string" && t ? t : configType;
  } catch (e) {
    if (e instanceof RegistryError) throw e;
    return configType; // not JSON: the config's media type is all there is
  }
}

/** The manifest of an artifact, checked: its type (UNSUPPORTED on a mismatch) and every layer's size. */
async function resolveArtifact(client: RegistryClient, ref: Reference, opts: PullArtifactOptions): Promise<{ digest: string; manifest: ImageManifest; raw: Buffer; artifactType?: string }> {
  const { signal } = opts;
  const digest = await client.resolveDigest(ref, signal);
  const fetched = await client.getManifest(ref, digest, signal);
  const at = `${where(ref)}@${digest}`;
  const d = { registry: ref.registry, repository: ref.repository };
  if (fetched.manifest.kind !== "manifest") throw new RegistryError("UNSUPPORTED", `${at}: an image index (${fetched.mediaType}), not an artifact manifest`, d);
  const manifest = fetched.manifest;
  const artifactType = await artifactTypeOf(client, ref, manifest, signal);
  if (opts.artifactType !== undefined && artifactType !== opts.artifactType) {
    throw new RegistryError("UNSUPPORTED", `${at}: artifact type is ${artifactType ? JSON.stringify(artifactType) : "not given"}, not ${JSON.stringify(opts.artifactType)}`, d);
  }
  for (const [i, l] of manifest.layers.entries()) {
    if (l.size > opts.maxLayerBytes) throw new RegistryError("TOO_LARGE", `${at}: layer ${i} (${l.digest}) of ${l.size} bytes is over the ${opts.maxLayerBytes}-byte limit`, d);
  }
  return { digest, manifest, raw: fetched.raw, ...(artifactType !== undefined ? { artifactType } : {}) };
}

/**
 * Pulls an artifact: the manifest (tag -> HEAD for the digest -> GET by digest, hashed), its type checked
 * against `artifactType` (UNSUPPORTED on a mismatch), then every layer through the verified blob stream,
 * each refused (TOO_LARGE) before fetching if its descriptor is over `maxLayerBytes`.
 */
export async function pullArtifact(client: RegistryClient, ref: Reference, opts: PullArtifactOptions): Promise<PulledArtifact> {
  const { digest, manifest, raw, artifactType } = await resolveArtifact(client, ref, opts);
  const layers: PulledLayer[] = [];
  for (const l of manifest.layers) {
    const layer: PulledLayer = { mediaType: l.mediaType, digest: l.digest, bytes: await readBlob(client, ref, l, opts.signal) };
    if (l.annotations) layer.annotations = l.annotations;
    layers.push(layer);
  }
  const out: PulledArtifact = { digest, manifest, raw, layers };
  if (artifactType !== undefined) out.artifactType = artifactType;
  return out;
}

/**
 * Pulls an artifact as pullArtifact does, but only the layers of `mediaType`, each streamed (verified: its
 * size and digest) into a file under `dir` rather than into memory. A layer that fails its check leaves
 * no file behind.
 */
export async function pullArtifactToFiles(client: RegistryClient, ref: Reference, opts: PullArtifactOptions & { dir: string; mediaType: string }): Promise<{ digest: string; manifest: ImageManifest; artifactType?: string; layers: Array<{ mediaType: string; digest: string; size: number; file: string }> }> {
  const { digest, manifest, artifactType } = await resolveArtifact(client, ref, opts);
  const layers = [];
  for (const [i, l] of manifest.layers.entries()) {
    if (l.mediaType !== opts.mediaType) continue;
    const file = join(opts.dir, `layer-${i}`);
    try {
      await pipeline(client.getBlob(ref, l, opts.signal), createWriteStream(file, { flags: "wx" }));
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
    layers.push({ mediaType: l.mediaType, digest: l.digest, size: l.size, file });
  }
  return { digest, manifest, ...(artifactType !== undefined ? { artifactType } : {}), layers };
}
