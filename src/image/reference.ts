// Image references, parsed and normalised as distribution/reference (the library docker and containerd
// use) does in ParseNormalizedNamed, with errors that say which part is wrong:
//
//   reference := [domain "/"] path [":" tag] ["@" digest]
//   domain    := host [":" port], host a DNS-like name (either case) or an IPv6 address in brackets
//   path      := component ("/" component)*, component := [a-z0-9]+ (("." | "_" | "__" | "-"+) [a-z0-9]+)*
//   tag       := [\w][\w.-]{0,127}        digest := sha256:<64 hex> | sha512:<128 hex>
//
// The first path element is a domain only if it contains "." or ":", is "localhost", or has an uppercase
// letter (Docker Hub namespaces are lowercase, so distribution/reference takes `Foo/bar` as host `Foo`).
// Otherwise the image is on Docker Hub, where a one-element name gets `library/`.
import { parseDigest } from "./digest.js";
import { ReferenceError, type ReferencePart } from "./errors.js";

export { ReferenceError, type ReferencePart } from "./errors.js";

export interface Reference {
  /** The API host[:port] to contact: Docker Hub (`docker.io`, `index.docker.io`) is registry-1.docker.io. */
  registry: string;
  /** The repository path, with `library/` for Docker Hub official images. */
  repository: string;
  /** The tag; `latest` when the reference has neither tag nor digest. */
  tag?: string;
  /**
   * The manifest digest. With both a tag and a digest (`app:1.2@sha256:…`) both are kept, but the digest
   * is what gets fetched and the tag is only shown (docker and containerd do the same); see manifestReference.
   */
  digest?: string;
}

/** The name users write for Docker Hub, used for the 255-character name limit and familiar names. */
export const DOCKER_HUB = "docker.io";
/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API = "registry-1.docker.io";
/**
 * Names of Docker Hub. distribution/reference knows docker.io and index.docker.io; registry-1.docker.io is
 * added because it is what `registry` holds, so `parseReference(referenceString(r))` gives `r` back.
 */
const HUB_NAMES = new Set([DOCKER_HUB, "index.docker.io", DOCKER_HUB_API]);
const OFFICIAL_PREFIX = "library/";
export const DEFAULT_TAG = "latest";
export const NAME_MAX_LENGTH = 255;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DOMAIN_LABEL = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
/** A bare image ID: refused as a name, since it would be taken for a Docker Hub repository. */
const IDENTIFIER = /^[a-f0-9]{64}$/;

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

export function isValidRegistryHost(host: string): boolean {
  return HOST.test(host);
}

/** Splits off the domain the way distribution/reference's splitDockerDomain decides what a domain is. */
function splitDomain(name: string): { domain?: string; remainder: string } {
  const slash = name.indexOf("/");
  if (slash < 0) return { remainder: name };
  const first = name.slice(0, slash);
  const isDomain = first === "localhost" || /[.:]/.test(first) || first.toLowerCase() !== first;
  return isDomain ? { domain: first, remainder: name.slice(slash + 1) } : { remainder: name };
}

/**
 * Parses an image reference (`nginx`, `ghcr.io/org/app:1.2`, `host:5000/app@sha256:…`). `defaultRegistry`
 * (default Docker Hub) is used when the reference names no registry; `library/` is added only on Docker Hub.
 * Throws ReferenceError whose `part` names the bad piece.
 */
export function parseReference(input: string, opts: { defaultRegistry?: string } = {}): Reference {
  const bad = (part: ReferencePart, why: string) => new ReferenceError(`invalid reference ${JSON.stringify(input)}: ${why}`, part);
  if (!input) throw bad("reference", "empty");
  if (input !== input.trim()) throw bad("reference", "leading or trailing whitespace");
  // Said before anything else: the parts of a URL would be quoted one by one, its password among them
  // (the quoted whole input is scrubbed wherever the message goes; a quoted fragment would not be).
  const url = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(input);
  if (url) throw bad("registry", `registry ${JSON.stringify(url[1])} is a URL scheme: write host[:port]/repository[:tag], not a URL`);
  if (IDENTIFIER.test(input)) throw bad("repository", "a 64-character hex string is an image ID, not a repository name (use name@sha256:… for a digest)");

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch (e) {
      throw bad("digest", (e as Error).message.replace(/^invalid digest /, "digest "));
    }
  }

  const split = splitDomain(rest);
  if (split.domain === undefined && rest.startsWith("[")) throw bad("registry", "a registry host must be followed by /repository");
  let domain = split.domain ?? opts.defaultRegistry ?? DOCKER_HUB;
  let remainder = split.remainder;
  let tag: string | undefined;
  const colon = remainder.indexOf(":");
  if (colon >= 0) {
    tag = remainder.slice(colon + 1);
    remainder = remainder.slice(0, colon);
    if (!TAG.test(tag)) throw bad("tag", `tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`);
  }

  if (!HOST.test(domain)) {
    const where = split.domain === undefined ? "default registry" : "registry";
    throw bad("registry", `${where} ${JSON.stringify(domain)} is not a valid host[:port]`);
  }
  if (!remainder) throw bad("repository", "no repository name");
  if (remainder !== remainder.toLowerCase()) throw bad("repository", `repository ${JSON.stringify(remainder)} must be lowercase`);
  for (const c of remainder.split("/")) {
    if (!c) throw bad("repository", `repository ${JSON.stringify(remainder)} has an empty path component`);
    if (!COMPONENT.test(c)) throw bad("repository", `repository component ${JSON.stringify(c)} is not valid (lowercase letters and digits, separated by ".", "_", "__" or dashes)`);
  }

  const hub = HUB_NAMES.has(domain);
  if (hub) {
    domain = DOCKER_HUB;
    if (!remainder.includes("/")) remainder = OFFICIAL_PREFIX + remainder;
  }
  if (domain.length + 1 + remainder.length > NAME_MAX_LENGTH) throw bad("repository", `name ${JSON.stringify(`${domain}/${remainder}`)} is longer than ${NAME_MAX_LENGTH} characters`);
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const ref: Reference = { registry: hub ? DOCKER_HUB_API : domain, repository: remainder };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** What to ask the registry's manifest endpoint for: the digest when there is one, else the tag. */
export function manifestReference(r: Reference): string {
  return r.digest ?? r.tag ?? DEFAULT_TAG;
}

function suffix(r: Reference): string {
  return `${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;
}

/** Canonical: `registry/repository[:tag][@digest]`, with the API host (registry-1.docker.io for Hub). */
export function referenceString(r: Reference): string {
  return `${repositoryKey(r)}${suffix(r)}`;
}

/** As a user writes it: Docker Hub's host dropped, and `library/` for a one-element official image. */
export function familiarString(r: Reference): string {
  if (!HUB_NAMES.has(r.registry)) return referenceString(r);
  const name = r.repository.startsWith(OFFICIAL_PREFIX) && !r.repository.slice(OFFICIAL_PREFIX.length).includes("/") ? r.repository.slice(OFFICIAL_PREFIX.length) : r.repository;
  return `${name}${suffix(r)}`;
}

/** `registry/repository`: the key for per-repository state (tokens, caches). */
export function repositoryKey(r: Reference): string {
  return `${r.registry}/${r.repository}`;
}
