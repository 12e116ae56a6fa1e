// Platforms (os/architecture/variant) and choosing one image out of a multi-platform index.
import { ANNOTATION_REFERENCE_TYPE, INDEX_TYPES } from "./mediatypes.js";
import type { Descriptor, ImageIndex } from "./manifest.js";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  osVersion?: string;
}

export class PlatformError extends Error {
  override name = "PlatformError";
  readonly code = "INVALID_PLATFORM";
}

const ARCH_ALIASES: Record<string, string> = { x86_64: "amd64", x86: "386", i386: "386", aarch64: "arm64", armhf: "arm", armel: "arm" };
const NODE_ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new PlatformError(`invalid platform ${JSON.stringify(s)}: expected os/architecture[/variant], e.g. linux/arm64/v8`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** Lowercases, maps aliases (x86_64 -> amd64, aarch64 -> arm64) and fills the default variants (arm64 v8, arm v7). */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === "armhf") variant ??= "v7";
  if (architecture === "armel") variant ??= "v6";
  architecture = ARCH_ALIASES[architecture] ?? architecture;
  if (architecture === "arm64" && !variant) variant = "v8";
  if (architecture === "arm" && !variant) variant = "v7";
  return { os, architecture, ...(variant ? { variant } : {}), ...(p.osVersion ? { osVersion: p.osVersion } : {}) };
}

export function defaultPlatform(arch: string = process.arch): Platform {
  return normalizePlatform({ os: "linux", architecture: NODE_ARCH[arch] ?? arch });
}

function isAttestationOrUnknown(d: Descriptor): boolean {
  if (d.annotations?.[ANNOTATION_REFERENCE_TYPE] === "attestation-manifest") return true;
  return d.platform?.os === "unknown" || d.platform?.architecture === "unknown";
}

function matches(have: Platform, want: Platform): boolean {
  const h = normalizePlatform(have);
  const w = normalizePlatform(want);
  if (h.os !== w.os || h.architecture !== w.architecture) return false;
  return !w.variant || !h.variant || h.variant === w.variant;
}

/**
 * The index entry for `wanted`: exact variant first, then an entry without a variant; attestation and
 * unknown/unknown entries are skipped; a nested index matches when its platform does or it has none.
 */
export function selectManifest(index: ImageIndex, wanted: Platform): Descriptor | undefined {
  const usable = index.manifests.filter((d) => !isAttestationOrUnknown(d));
  const w = normalizePlatform(wanted);
  const exact = usable.find((d) => d.platform && matches(d.platform, w) && normalizePlatform(d.platform).variant === w.variant);
  if (exact) return exact;
  const loose = usable.find((d) => d.platform && matches(d.platform, w));
  if (loose) return loose;
  return usable.find((d) => !d.platform && INDEX_TYPES.has(d.mediaType));
}

/** The platforms an index offers, for error messages ("it has linux/amd64, linux/arm64/v8"). */
export function platformCandidates(index: ImageIndex): string[] {
  return [...new Set(index.manifests.filter((d) => d.platform && !isAttestationOrUnknown(d)).map((d) => formatPlatform(normalizePlatform(d.platform!))))];
}
