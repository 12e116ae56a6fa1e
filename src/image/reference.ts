// Image references, parsed and normalised as distribution/reference (docker's library) does.
import { parseDigest } from "./digest.js";

export type ReferencePart = "reference" | "registry" | "repository" | "tag" | "digest";

export class ReferenceError extends Error {
  override name = "ReferenceError";
  readonly code = "INVALID_REFERENCE";
  constructor(message: string, readonly part: ReferencePart) {
    super(message);
  }
}

export interface Reference {
  /** The API host[:port] to contact: Docker Hub is registry-1.docker.io. */
  registry: string;
  /** The repository path, with `library/` for Docker Hub official images. */
  repository: string;
  /** The tag; `latest` when the reference has neither tag nor digest. */
  tag?: string;
  /** When both tag and digest are given, the digest is what gets fetched (the tag is kept for display). */
  digest?: string;
}

export const DOCKER_HUB_API = "registry-1.docker.io";
const HUB_NAMES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST = /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const MAX_NAME = 255;

export function parseReference(input: string, opts: { defaultRegistry?: string } = {}): Reference {
  const bad = (part: ReferencePart, why: string) => new ReferenceError(`invalid reference ${JSON.stringify(input)}: ${why}`, part);
  if (!input || input !== input.trim()) throw bad("reference", input ? "surrounding whitespace" : "empty");
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
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad("tag", `tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`);
  }
  if (!rest) throw bad("repository", "no repository name");
  let registry: string;
  let path: string;
  const slash = rest.indexOf("/");
  const first = slash < 0 ? "" : rest.slice(0, slash);
  if (slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost" || first.startsWith("["))) {
    registry = first;
    path = rest.slice(slash + 1);
    if (!HOST.test(registry)) throw bad("registry", `registry host ${JSON.stringify(registry)} is not a valid host[:port]`);
  } else {
    registry = opts.defaultRegistry ?? "docker.io";
    path = rest;
  }
  if (HUB_NAMES.has(registry.toLowerCase())) {
    registry = DOCKER_HUB_API;
    if (!path.includes("/")) path = `library/${path}`;
  }
  for (const c of path.split("/")) {
    if (!COMPONENT.test(c)) {
      const why = c !== c.toLowerCase() ? `repository ${JSON.stringify(path)} must be lowercase` : `repository component ${JSON.stringify(c)} is not valid (lowercase letters, digits and . _ __ - between them)`;
      throw bad("repository", why);
    }
  }
  if (`${registry}/${path}`.length > MAX_NAME) throw bad("repository", `name is longer than ${MAX_NAME} characters`);
  if (!tag && !digest) tag = "latest";
  return { registry, repository: path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** registry/repository[:tag][@digest] */
export function referenceString(r: Reference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** As a user writes it: Docker Hub's host and `library/` dropped. */
export function familiarString(r: Reference): string {
  let name = `${r.registry}/${r.repository}`;
  if (r.registry === DOCKER_HUB_API) name = r.repository.startsWith("library/") && r.repository.split("/").length === 2 ? r.repository.slice(8) : r.repository;
  return `${name}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

export function repositoryKey(r: Reference): string {
  return `${r.registry}/${r.repository}`;
}
