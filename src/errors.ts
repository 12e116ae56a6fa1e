// What every part says about an error it reports: the message, then the code callers branch on
// (`AUTH_FAILED`, `ADVISORY_HTTP_STATUS`), as `message [CODE]`; and the one decision whether a failure is
// worth trying again. A leaf: imports nothing of the project.

/** The part of Portcullis that reports an error: the namespace of its code. */
export type ErrorDomain =
  | "registry" // the registry client, its auth and options (src/registry)
  | "image" // references, platforms, manifests (src/image)
  | "layer" // a layer's bytes: digest, decompression, tar, table of contents (src/layers)
  | "scanner" // a scanner's complaint about a file it asked for (src/scanners)
  | "indexer" // indexing a manifest, local images, the worker pool (src/indexer)
  | "store" // the CLI's folder store (src/store)
  | "advisory" // advisory sources, bundles, imports, CVSS (src/advisories)
  | "versions" // version schemes (src/versions)
  | "policy" // policy images globs (src/policy)
  | "webhook" // admission reviews, the client CA (src/webhook)
  | "kube" // reconcilers (src/kube)
  | "controller" // the ImageScan controller's own checks of a scan (src/controller)
  | "api" // the report API's answers (src/api; codes are Clair's wire codes)
  | "net" // the egress guard (src/net)
  | "cli"; // the command line (src/cli)

/**
 * The base of the project's errors: a `code` callers branch on, stable and unchanged by the namespace (tests,
 * the ImageScan controller's reasons, exit codes and job records read it), and the `domain` that reports it, so
 * `qualifiedCode` (`registry/DIGEST_MISMATCH` vs `layer/DIGEST_MISMATCH`) is unique across the project.
 * Subclasses keep their own constructors and say their domain and code as fields.
 */
export abstract class PortcullisError extends Error {
  abstract readonly domain: ErrorDomain;
  abstract readonly code: string;

  /** `domain/CODE`, e.g. `registry/AUTH_FAILED`. */
  get qualifiedCode(): string {
    return `${this.domain}/${this.code}`;
  }
}

/** The error's string `code`, if it has one. */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** `message [CODE]`, or the message alone when the error has no string code. */
export function describeError(e: unknown): string {
  const code = errorCode(e);
  const message = e instanceof Error ? e.message : String(e);
  return code ? `${message} [${code}]` : message;
}

/**
 * The codes of failures worth trying again later on their own: a registry's rate limit, its 5xx, network trouble,
 * and a store lock another indexer held past the wait (LOCK_TIMEOUT: it is still at work on that manifest).
 * Decided by the bare code, not the class: the decision must hold for an error rebuilt from a worker's message or
 * a job record, and for the coded errors the controllers rethrow (`Object.assign(new Error(...), { code })`).
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set(["RATE_LIMITED", "SERVER_ERROR", "NETWORK", "LOCK_TIMEOUT"]);

/** Whether a failure with this code is worth trying again later (for callers that hold only the code). */
export function isTransientCode(code: string | undefined): boolean {
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/**
 * Whether `e` (by its string code) is worth trying again later. The one place that decides it: the registry
 * client's blob uploads, the Pod, ImageScan and ImageRepository controllers and the index job runner ask here.
 */
export function isTransient(e: unknown): boolean {
  return isTransientCode(errorCode(e));
}
