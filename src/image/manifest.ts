// Manifests, indexes and image configs, validated with zod. Content-Type is trusted (parameters ignored)
// but a body whose mediaType disagrees is refused; without a useful Content-Type the body is sniffed.
// Schema 1 is refused with a message that says how to fix it.
import { z } from "zod";
import { INDEX_TYPES, MANIFEST_TYPES, MediaTypes, SCHEMA1_TYPES } from "./mediatypes.js";
import type { Platform } from "./platform.js";

export class ManifestError extends Error {
  override name = "ManifestError";
  constructor(readonly code: "MANIFEST_INVALID" | "MANIFEST_UNSUPPORTED", message: string) {
    super(message);
  }
}

const DigestSchema = z.string().regex(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/, "not a sha256 or sha512 digest");
const PlatformSchema = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  "os.version": z.string().optional(),
  "os.features": z.array(z.string()).optional(),
});

const DescriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: DigestSchema,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: PlatformSchema.optional(),
  artifactType: z.string().optional(),
});

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
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

const IndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
});

const ManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
  subject: DescriptorSchema.optional(),
  artifactType: z.string().optional(),
});

function descriptor(d: z.infer<typeof DescriptorSchema>): Descriptor {
  const { platform, ...rest } = d;
  const out: Descriptor = { ...rest };
  if (platform) out.platform = { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}), ...(platform["os.version"] ? { osVersion: platform["os.version"] } : {}) };
  return out;
}

function issues(e: z.ZodError): string {
  return e.issues.slice(0, 3).map((i) => `${i.path.length ? i.path.join(".") : "(top)"}: ${i.message}`).join("; ");
}

const schema1Hint = "Docker schema 1 manifests are not supported (Docker and containerd 2 refuse them too); re-push the image with a current client";

export function parseManifest(body: Uint8Array, contentType: string | undefined): ImageIndex | ImageManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(body).toString("utf8"));
  } catch (e) {
    throw new ManifestError("MANIFEST_INVALID", `manifest is not valid JSON: ${(e as Error).message.slice(0, 120)}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new ManifestError("MANIFEST_INVALID", "manifest is not a JSON object");
  const obj = doc as Record<string, unknown>;
  const header = contentType?.split(";")[0]?.trim().toLowerCase();
  const field = typeof obj.mediaType === "string" ? obj.mediaType : undefined;
  if ((header && SCHEMA1_TYPES.has(header)) || (field && SCHEMA1_TYPES.has(field)) || obj.schemaVersion === 1) throw new ManifestError("MANIFEST_UNSUPPORTED", schema1Hint);
  const generic = !header || header === "application/json" || header === "application/octet-stream" || header === "text/plain";
  let type = generic ? field : header;
  if (!generic && field && field !== header) throw new ManifestError("MANIFEST_INVALID", `the body says mediaType ${field}, but it was served as ${header}`);
  if (!type) type = Array.isArray(obj.manifests) ? MediaTypes.OCI_INDEX : Array.isArray(obj.layers) ? MediaTypes.OCI_MANIFEST : undefined;
  if (!type) throw new ManifestError("MANIFEST_INVALID", "neither an index (manifests[]) nor an image manifest (layers[])");
  if (INDEX_TYPES.has(type)) {
    const r = IndexSchema.safeParse(doc);
    if (!r.success) throw new ManifestError("MANIFEST_INVALID", `invalid image index: ${issues(r.error)}`);
    return { kind: "index", mediaType: type, manifests: r.data.manifests.map(descriptor), ...(r.data.annotations ? { annotations: r.data.annotations } : {}) };
  }
  if (MANIFEST_TYPES.has(type)) {
    const r = ManifestSchema.safeParse(doc);
    if (!r.success) throw new ManifestError("MANIFEST_INVALID", `invalid image manifest: ${issues(r.error)}`);
    const m: ImageManifest = { kind: "manifest", mediaType: type, config: descriptor(r.data.config), layers: r.data.layers.map(descriptor) };
    if (r.data.annotations) m.annotations = r.data.annotations;
    if (r.data.subject) m.subject = descriptor(r.data.subject);
    if (r.data.artifactType) m.artifactType = r.data.artifactType;
    return m;
  }
  throw new ManifestError("MANIFEST_UNSUPPORTED", `media type ${type} is not an image manifest or index`);
}

const ConfigSchema = z.object({
  os: z.string().optional(),
  architecture: z.string().optional(),
  variant: z.string().optional(),
  rootfs: z.object({ type: z.string(), diff_ids: z.array(DigestSchema) }),
  history: z.array(z.object({ created_by: z.string().optional(), empty_layer: z.boolean().optional(), comment: z.string().optional() }).passthrough()).optional(),
  created: z.string().optional(),
});

export type ImageConfig = z.infer<typeof ConfigSchema>;

export function parseImageConfig(body: Uint8Array): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(body).toString("utf8"));
  } catch (e) {
    throw new ManifestError("MANIFEST_INVALID", `image config is not valid JSON: ${(e as Error).message.slice(0, 120)}`);
  }
  const r = ConfigSchema.safeParse(doc);
  if (!r.success) throw new ManifestError("MANIFEST_INVALID", `invalid image config: ${issues(r.error)}`);
  return r.data;
}
