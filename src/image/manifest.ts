// Manifests, indexes and image configs, validated with zod. Content-Type is trusted (parameters ignored)
// but a body whose mediaType disagrees is refused; without a useful Content-Type the body is sniffed
// (`manifests[]` an index, `layers[]` an image manifest). Schema 1 is refused with a way out.
import { z } from "zod";
import { isDigest } from "./digest.js";
import { baseMediaType, INDEX_TYPES, MANIFEST_TYPES, MediaTypes, SCHEMA1_TYPES } from "./mediatypes.js";
import type { Platform } from "./platform.js";
import { PortcullisError } from "../errors.js";

export type ManifestErrorCode = "MANIFEST_INVALID" | "MANIFEST_UNSUPPORTED";

export class ManifestError extends PortcullisError {
  readonly domain = "image";
  override name = "ManifestError";
  /** `field` is the first offending field, e.g. `layers[2].digest`, when one is to blame. */
  constructor(readonly code: ManifestErrorCode, message: string, readonly field?: string) {
    super(message);
  }
}

const DigestSchema = z.string().refine(isDigest, "not a sha256:<64 hex> or sha512:<128 hex> digest");
const AnnotationsSchema = z.record(z.string(), z.string());
const PlatformSchema = z.object({
  os: z.string().min(1),
  architecture: z.string().min(1),
  variant: z.string().optional(),
  "os.version": z.string().optional(),
  "os.features": z.array(z.string()).optional(),
});

const DescriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: DigestSchema,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string().min(1)).optional(),
  annotations: AnnotationsSchema.optional(),
  platform: PlatformSchema.optional(),
  artifactType: z.string().optional(),
});

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  /** Where a foreign or non-distributable layer lives instead of the registry. */
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageIndex {
  kind: "index";
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  kind: "manifest";
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
  artifactType?: string;
}

export const ImageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  annotations: AnnotationsSchema.optional(),
});

export const ImageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  annotations: AnnotationsSchema.optional(),
  subject: DescriptorSchema.optional(),
  artifactType: z.string().optional(),
});

function descriptor(d: z.infer<typeof DescriptorSchema>): Descriptor {
  const { platform, ...rest } = d;
  const out: Descriptor = { ...rest };
  if (platform) {
    out.platform = { os: platform.os, architecture: platform.architecture };
    if (platform.variant) out.platform.variant = platform.variant;
    if (platform["os.version"]) out.platform.osVersion = platform["os.version"];
  }
  return out;
}

/** `["layers", 0, "digest"]` -> `layers[0].digest` */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((s, k) => (typeof k === "number" ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), "") || "(top level)";
}

function invalid(what: string, e: z.ZodError): ManifestError {
  const shown = e.issues.slice(0, 3).map((i) => `${fieldPath(i.path)}: ${i.message}`);
  if (e.issues.length > 3) shown.push(`and ${e.issues.length - 3} more`);
  return new ManifestError("MANIFEST_INVALID", `invalid ${what}: ${shown.join("; ")}`, e.issues[0] ? fieldPath(e.issues[0].path) : undefined);
}

function parseJsonObject(body: Uint8Array, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch (e) {
    throw new ManifestError("MANIFEST_INVALID", `${what} is not valid JSON: ${(e as Error).message.slice(0, 120)}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new ManifestError("MANIFEST_INVALID", `${what} is not a JSON object`);
  return doc as Record<string, unknown>;
}

const GENERIC_TYPES = new Set(["application/json", "application/octet-stream", "text/plain"]);
export const SCHEMA1_UNSUPPORTED =
  "Docker schema 1 manifests are not supported (Docker and containerd 2 refuse them too); " +
  "re-push the image with a current client (docker push, or skopeo copy --format oci) to get a schema 2 or OCI manifest";

/** The manifest type of a body the server did not label usefully: `manifests[]` an index, `layers[]` an image. */
function sniff(doc: Record<string, unknown>): string {
  const index = Array.isArray(doc.manifests);
  const image = Array.isArray(doc.layers);
  if (index && image) throw new ManifestError("MANIFEST_INVALID", "manifest has both manifests[] and layers[] and no mediaType: cannot tell an index from an image manifest");
  if (index) return MediaTypes.OCI_INDEX;
  if (image) return MediaTypes.OCI_MANIFEST;
  throw new ManifestError("MANIFEST_INVALID", "manifest has no mediaType and neither manifests[] (an index) nor layers[] (an image manifest)");
}

/**
 * Parses a manifest or index body served with `contentType` (the response's Content-Type, or the
 * descriptor's media type). Throws ManifestError: MANIFEST_UNSUPPORTED for schema 1 and types that are
 * not images, MANIFEST_INVALID for anything malformed (the message names the field and index).
 */
export function parseManifest(body: Uint8Array, contentType: string | undefined): ImageIndex | ImageManifest {
  const doc = parseJsonObject(body, "manifest");
  const header = contentType === undefined ? "" : baseMediaType(contentType);
  if (doc.mediaType !== undefined && typeof doc.mediaType !== "string") throw new ManifestError("MANIFEST_INVALID", "invalid manifest: mediaType: expected a string", "mediaType");
  const field = typeof doc.mediaType === "string" ? doc.mediaType.toLowerCase() : undefined;
  if (SCHEMA1_TYPES.has(header) || (field && SCHEMA1_TYPES.has(field)) || doc.schemaVersion === 1) throw new ManifestError("MANIFEST_UNSUPPORTED", SCHEMA1_UNSUPPORTED);
  const generic = !header || GENERIC_TYPES.has(header);
  if (!generic && field && field !== header) {
    throw new ManifestError("MANIFEST_INVALID", `manifest says mediaType ${field}, but it was served as ${header}`, "mediaType");
  }
  const type = generic ? (field ?? sniff(doc)) : header;
  if (INDEX_TYPES.has(type)) {
    const r = ImageIndexSchema.safeParse(doc);
    if (!r.success) throw invalid(`image index (${type})`, r.error);
    const index: ImageIndex = { kind: "index", mediaType: type, manifests: r.data.manifests.map(descriptor) };
    if (r.data.annotations) index.annotations = r.data.annotations;
    return index;
  }
  if (MANIFEST_TYPES.has(type)) {
    const r = ImageManifestSchema.safeParse(doc);
    if (!r.success) throw invalid(`image manifest (${type})`, r.error);
    const m: ImageManifest = { kind: "manifest", mediaType: type, config: descriptor(r.data.config), layers: r.data.layers.map(descriptor) };
    if (r.data.annotations) m.annotations = r.data.annotations;
    if (r.data.subject) m.subject = descriptor(r.data.subject);
    if (r.data.artifactType) m.artifactType = r.data.artifactType;
    return m;
  }
  throw new ManifestError("MANIFEST_UNSUPPORTED", `media type ${type} is not an image manifest or index (want one of ${[...INDEX_TYPES, ...MANIFEST_TYPES].join(", ")})`);
}

const HistorySchema = z.object({
  created: z.string().optional(),
  created_by: z.string().optional(),
  author: z.string().optional(),
  comment: z.string().optional(),
  empty_layer: z.boolean().optional(),
});

export const ImageConfigSchema = z.object({
  created: z.string().optional(),
  author: z.string().optional(),
  os: z.string().optional(),
  architecture: z.string().optional(),
  variant: z.string().optional(),
  "os.version": z.string().optional(),
  rootfs: z.object({ type: z.string(), diff_ids: z.array(DigestSchema) }),
  history: z.array(HistorySchema).optional(),
});

export type ImageConfig = z.infer<typeof ImageConfigSchema>;
export type HistoryEntry = z.infer<typeof HistorySchema>;

/** Parses an image config blob (OCI or Docker): os, architecture, variant, rootfs.diff_ids, history. */
export function parseImageConfig(body: Uint8Array): ImageConfig {
  const r = ImageConfigSchema.safeParse(parseJsonObject(body, "image config"));
  if (!r.success) throw invalid("image config", r.error);
  return r.data;
}

/**
 * The history entry behind each layer (entries with `empty_layer` made none), in layer order;
 * undefined where the history is shorter than the layer list.
 */
export function layerHistory(config: ImageConfig): Array<HistoryEntry | undefined> {
  const real = (config.history ?? []).filter((h) => !h.empty_layer);
  return config.rootfs.diff_ids.map((_, i) => real[i]);
}
