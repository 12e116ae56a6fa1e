// Platforms (os/architecture/variant) and choosing one image out of a multi-platform index.
import { ANNOTATION_REFERENCE_TYPE, INDEX_TYPES, REFERENCE_TYPE_ATTESTATION } from "./mediatypes.js";
import type { Descriptor, ImageIndex } from "./manifest.js";
import { PortcullisError } from "../errors.js";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  /** Windows images carry the OS build (`os.version` in the OCI platform). Not used for matching. */
  osVersion?: string;
}

export type PlatformPart = "platform" | "os" | "architecture" | "variant";

export class PlatformError extends PortcullisError {
  readonly domain = "image";
  override name = "PlatformError";
  readonly code = "INVALID_PLATFORM";
  constructor(message: string, readonly part: PlatformPart) {
    super(message);
  }
}

const OS_ALIASES: Record<string, string> = { macos: "darwin" };
/** Architecture aliases, with the variant an alias implies (armhf is ARMv7, armel ARMv6). */
const ARCH_ALIASES: Record<string, [string, string?]> = {
  x86_64: ["amd64"], "x86-64": ["amd64"], x86: ["386"], i386: ["386"], i686: ["386"],
  aarch64: ["arm64"], armhf: ["arm", "v7"], armel: ["arm", "v6"],
};
/** Variants an architecture has when none is given (as containerd and the OCI image index spec assume). */
const DEFAULT_VARIANT: Record<string, string> = { arm64: "v8", arm: "v7" };
/** Node's process.arch -> the OCI architecture. */
const NODE_ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loong64", mips: "mips", mipsel: "mipsle" };
const PART = /^[a-z0-9_.-]+$/i;

/** Parses `os/architecture[/variant]` (e.g. `linux/arm64/v8`, `linux/amd64`) and normalises it. */
export function parsePlatform(s: string): Platform {
  const bad = (part: PlatformPart, why: string) => new PlatformError(`invalid platform ${JSON.stringify(s)}: ${why}`, part);
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3) throw bad("platform", "expected os/architecture[/variant], e.g. linux/arm64/v8");
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  const names: Array<[PlatformPart, string | undefined]> = [["os", os], ["architecture", architecture], ["variant", variant]];
  for (const [part, value] of names) {
    if (value !== undefined && !PART.test(value)) throw bad(part, `${part} ${JSON.stringify(value)} must be letters, digits, ".", "_" or "-"`);
  }
  return normalizePlatform({ os, architecture, ...(variant !== undefined ? { variant } : {}) });
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/**
 * Lowercases, maps aliases (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7), writes numeric variants
 * as `v8`, drops amd64's baseline `v1`, and fills the default variants (arm64 v8, arm v7).
 */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  os = OS_ALIASES[os] ?? os;
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  const alias = ARCH_ALIASES[architecture];
  if (alias) {
    architecture = alias[0];
    variant ??= alias[1];
  }
  if (variant && /^\d+(\.0)?$/.test(variant)) variant = `v${variant.replace(/\.0$/, "")}`;
  if (variant === "v8.0") variant = "v8";
  if (architecture === "amd64" && variant === "v1") variant = undefined;
  variant ??= DEFAULT_VARIANT[architecture];
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p.osVersion) out.osVersion = p.osVersion;
  return out;
}

/** linux and this process's architecture (x64 -> amd64, arm64 -> arm64/v8). */
export function defaultPlatform(arch: string = process.arch): Platform {
  return normalizePlatform({ os: "linux", architecture: NODE_ARCH[arch] ?? arch });
}

/** BuildKit's attestation manifests and other entries that are not a runnable image. */
export function isAttestationOrUnknown(d: Descriptor): boolean {
  if (d.annotations?.[ANNOTATION_REFERENCE_TYPE] === REFERENCE_TYPE_ATTESTATION) return true;
  return d.platform?.os === "unknown" || d.platform?.architecture === "unknown";
}

/** Same os and architecture, and the same variant once defaults are filled (a missing one matches any). */
export function platformMatches(have: Platform, want: Platform): boolean {
  const h = normalizePlatform(have);
  const w = normalizePlatform(want);
  if (h.os !== w.os || h.architecture !== w.architecture) return false;
  return !w.variant || !h.variant || h.variant === w.variant;
}

/**
 * The index entry for `wanted`: an exact os/architecture/variant match first, then one where a variant
 * is missing on either side, then a nested index with no platform (the caller fetches it and recurses;
 * a nested index whose platform matches is returned like any entry). Attestation and unknown/unknown
 * entries are skipped. Undefined when nothing fits: see platformCandidates for the message.
 */
export function selectManifest(index: Pick<ImageIndex, "manifests">, wanted: Platform): Descriptor | undefined {
  const usable = index.manifests.filter((d) => !isAttestationOrUnknown(d));
  const w = normalizePlatform(wanted);
  const matching = usable.filter((d) => d.platform && platformMatches(d.platform, w));
  return (
    matching.find((d) => normalizePlatform(d.platform!).variant === w.variant) ??
    matching[0] ??
    usable.find((d) => !d.platform && INDEX_TYPES.has(d.mediaType))
  );
}

/** The platforms an index offers, normalised and without duplicates ("linux/amd64", "linux/arm64/v8"). */
export function platformCandidates(index: Pick<ImageIndex, "manifests">): string[] {
  const usable = index.manifests.filter((d) => d.platform && !isAttestationOrUnknown(d));
  return [...new Set(usable.map((d) => formatPlatform(normalizePlatform(d.platform!))))];
}

/** "no linux/s390x in index; it has linux/amd64, linux/arm64/v8" */
export function missingPlatformMessage(index: Pick<ImageIndex, "manifests">, wanted: Platform): string {
  const have = platformCandidates(index);
  return `no ${formatPlatform(normalizePlatform(wanted))} in index; it has ${have.length ? have.join(", ") : "no usable platform"}`;
}
