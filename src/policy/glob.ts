// The image glob language of ImagePolicies and ClusterImagePolicies (docs/policy.md): compiling a glob, its
// specificity, matching a reference against it.
import { isDigest } from "../image/digest.js";
import { DOCKER_HUB, DOCKER_HUB_API, isValidRegistryHost, parseReference, type Reference } from "../image/reference.js";
import { PortcullisError } from "../errors.js";

////   glob     := name [":" tag] ["@" digest]
//   name     := "**" | registry ("/" segment)+        (the registry is explicit: docker.io/library/nginx)
//   segment  := "**" | [a-z0-9._*-]+                   ("**" only as a whole segment)
//   registry := "**" | host[:port] with "*" allowed    (Docker Hub's names all become docker.io)
//
// `*` matches any characters within one segment (never `/`); `**` matches one or more whole segments;
// everything else matches exactly. Globs match the normalised `registry/repository` of a reference, with
// docker.io for Docker Hub and `library/` for its official images (so `docker.io/nginx` means
// `docker.io/library/nginx`, as docker understands it). A glob without a tag matches every tag and digest;
// with a tag it needs a reference with a matching tag (`*` in a tag matches any characters); a digest is
// compared exactly.

/** How specific a glob is; see compareSpecificity. */
export interface GlobSpecificity {
  /** No wildcard at all. */
  exact: boolean;
  /** Characters that are not wildcards. */
  literals: number;
  doubleStars: number;
  stars: number;
}

export interface ImageGlob {
  /** As written. */
  pattern: string;
  /** After normalisation (registry lowercased, Docker Hub aliases folded, `library/` added). */
  normalized: string;
  name: RegExp;
  tag?: RegExp;
  digest?: string;
  specificity: GlobSpecificity;
}

export class ImageGlobError extends PortcullisError {
  readonly domain = "policy";
  readonly code = "INVALID_IMAGE_GLOB";
  constructor(
    readonly pattern: string,
    why: string,
  ) {
    super(`invalid image glob ${JSON.stringify(pattern)}: ${why}`);
    this.name = "ImageGlobError";
  }
}

const HUB_ALIASES = new Set([DOCKER_HUB, "index.docker.io", DOCKER_HUB_API]);
const REGISTRY_GLOB_CHARS = /^[A-Za-z0-9.:*[\]-]+$/;
const SEGMENT_CHARS = /^[a-z0-9._*-]+$/;
const TAG_GLOB = /^[\w*][\w.*-]{0,127}$/;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const starsToRegExp = (s: string, star: string) => s.split("*").map(escapeRegExp).join(star);

function specificityOf(normalized: string): GlobSpecificity {
  const doubleStars = normalized.match(/\*\*/g)?.length ?? 0;
  const allStars = normalized.match(/\*/g)?.length ?? 0;
  return { exact: allStars === 0, literals: normalized.length - allStars, doubleStars, stars: allStars - 2 * doubleStars };
}

/** The specificity of a policy whose `images` is empty: the same as `**`. */
export const MATCH_ALL_SPECIFICITY: GlobSpecificity = specificityOf("**");

/** Parses and compiles a glob; throws ImageGlobError naming what is wrong. */
export function compileImageGlob(pattern: string): ImageGlob {
  const bad = (why: string) => new ImageGlobError(pattern, why);
  if (!pattern) throw bad("empty");
  if (/\s/.test(pattern)) throw bad("contains whitespace");

  let rest = pattern;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad("a digest must be written in full (sha256:<64 lowercase hex digits>); wildcards are not allowed in it");
  }
  let tag: string | undefined;
  const colon = rest.indexOf(":", rest.lastIndexOf("/") + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_GLOB.test(tag)) throw bad(`tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-*], not starting with . or -`);
  }
  if (!rest) throw bad("no registry/repository before the tag or digest");

  const segments = rest.split("/");
  if (segments.length === 1 && segments[0] !== "**") {
    const hostLike = /[.:]/.test(pattern) || rest === "localhost";
    throw bad(`name the registry and the repository: ${hostLike ? `${pattern}/** for everything on a registry` : `docker.io/library/${pattern} for a Docker Hub official image`}`);
  }
  for (const seg of segments) {
    if (!seg) throw bad("empty path segment");
    if (seg.includes("**") && seg !== "**") throw bad(`"**" must be a whole path segment (write .../${seg.replace(/\*+/g, "")}/** or use a single *)`);
  }
  const [first, ...repo] = segments as [string, ...string[]];
  let registry = first;
  if (first !== "**") {
    if (!REGISTRY_GLOB_CHARS.test(first)) throw bad(`registry ${JSON.stringify(first)} may only contain letters, digits, ".", "-", ":", "[", "]" and "*"`);
    if (!first.includes("*")) {
      const hostLike = first === "localhost" || first.includes(".") || first.includes(":");
      if (!hostLike || !isValidRegistryHost(first)) {
        throw bad(`${JSON.stringify(first)} is not a registry host; globs start with the registry (docker.io/${rest} for Docker Hub)`);
      }
    }
    registry = first.toLowerCase();
    if (HUB_ALIASES.has(registry)) registry = DOCKER_HUB;
  }
  for (const seg of repo) {
    if (seg !== "**" && !SEGMENT_CHARS.test(seg)) throw bad(`repository segment ${JSON.stringify(seg)} may only contain lowercase letters, digits, ".", "_", "-" and "*"`);
  }
  // docker.io/nginx is docker.io/library/nginx, as distribution/reference normalises it.
  if (registry === DOCKER_HUB && repo.length === 1 && repo[0] !== "**") repo.unshift("library");

  const nameSegments = [registry, ...repo];
  const nameSource = nameSegments.map((s) => (s === "**" ? "[^/]+(?:/[^/]+)*" : starsToRegExp(s, "[^/]*"))).join("/");
  const normalized = `${nameSegments.join("/")}${tag !== undefined ? `:${tag}` : ""}${digest !== undefined ? `@${digest}` : ""}`;
  const glob: ImageGlob = { pattern, normalized, name: new RegExp(`^${nameSource}$`), specificity: specificityOf(normalized) };
  if (tag !== undefined) glob.tag = new RegExp(`^${starsToRegExp(tag, ".*")}$`);
  if (digest !== undefined) glob.digest = digest;
  return glob;
}

/** Why a glob is invalid, or undefined when it is valid. */
export function imageGlobError(pattern: string): string | undefined {
  try {
    compileImageGlob(pattern);
    return undefined;
  } catch (e) {
    if (e instanceof ImageGlobError) return e.message.replace(/^invalid image glob "(?:[^"\\]|\\.)*": /, "");
    throw e;
  }
}

const globCache = new Map<string, ImageGlob>();
const GLOB_CACHE_MAX = 4096;

export function cachedGlob(pattern: string): ImageGlob {
  let g = globCache.get(pattern);
  if (!g) {
    g = compileImageGlob(pattern);
    if (globCache.size >= GLOB_CACHE_MAX) globCache.clear();
    globCache.set(pattern, g);
  }
  return g;
}

/** `registry/repository` as globs see it: docker.io for Docker Hub, the registry lowercased. */
export function imageName(ref: Reference): string {
  const registry = ref.registry.toLowerCase();
  return `${HUB_ALIASES.has(registry) ? DOCKER_HUB : registry}/${ref.repository}`;
}

/**
 * Whether an image reference matches a glob (see the grammar above): `*` matches within one path segment,
 * `**` one or more whole segments, anything else exactly, against the normalised `registry/repository`, and
 * the tag and digest when the glob has them. `ref` may be a string (parsed with parseReference, so `nginx`
 * is `docker.io/library/nginx:latest`) or a parsed Reference. Throws ImageGlobError for an invalid glob and
 * ReferenceError for an unparsable reference.
 */
export function matchImageGlob(pattern: string | ImageGlob, ref: string | Reference): boolean {
  const glob = typeof pattern === "string" ? cachedGlob(pattern) : pattern;
  const r = typeof ref === "string" ? parseReference(ref) : ref;
  if (!glob.name.test(imageName(r))) return false;
  if (glob.tag && (r.tag === undefined || !glob.tag.test(r.tag))) return false;
  if (glob.digest !== undefined && r.digest !== glob.digest) return false;
  return true;
}

/**
 * Orders globs by specificity: positive when `a` is more specific than `b`. A glob without wildcards beats any
 * glob with one; then more literal characters win; then fewer `**`; then fewer `*`.
 */
export function compareSpecificity(a: GlobSpecificity, b: GlobSpecificity): number {
  if (a.exact !== b.exact) return a.exact ? 1 : -1;
  if (a.literals !== b.literals) return a.literals - b.literals;
  if (a.doubleStars !== b.doubleStars) return b.doubleStars - a.doubleStars;
  return b.stars - a.stars;
}

/** The most specific glob of `patterns` that matches `ref`, or undefined when none does. */
export function bestMatchingGlob(patterns: readonly string[], ref: string | Reference): ImageGlob | undefined {
  const r = typeof ref === "string" ? parseReference(ref) : ref;
  let best: ImageGlob | undefined;
  for (const p of patterns) {
    const g = cachedGlob(p);
    if (matchImageGlob(g, r) && (!best || compareSpecificity(g.specificity, best.specificity) > 0)) best = g;
  }
  return best;
}
