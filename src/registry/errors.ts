import { PortcullisError } from "../errors.js";

export type RegistryErrorCode =
  | "AUTH_FAILED" // 401 after every credential (or anonymous) was tried
  | "DENIED" // 403
  | "MANIFEST_UNKNOWN"
  | "BLOB_UNKNOWN"
  | "NAME_UNKNOWN"
  | "RATE_LIMITED" // 429 that did not clear within the retry budget
  | "DIGEST_MISMATCH"
  | "SIZE_MISMATCH"
  | "TOO_LARGE" // a manifest, config or token reply over its cap
  | "UNSUPPORTED" // schema1, a media type we do not read
  | "PLATFORM_NOT_FOUND"
  | "SERVER_ERROR" // 5xx after retries
  | "UNEXPECTED_STATUS"
  | "NETWORK" // connection refused, reset, TLS failure, timeout
  | "BLOCKED_URL" // a realm or redirect to a private / link-local address, or http where https is required
  | "TOKEN_FAILED"; // the token server refused or answered nonsense

/** What went wrong talking to a registry, with a code callers (status conditions, exit codes) branch on. */
export class RegistryError extends PortcullisError {
  readonly domain = "registry";
  override name = "RegistryError";
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly details: { registry?: string; repository?: string; status?: number; registryCode?: string; retryAfterMs?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The first error of a distribution-spec error body (`{"errors":[{"code","message"}]}`), if any. */
export function registryErrorBody(text: string): { code?: string; message?: string } {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = body.errors?.[0];
    if (!first) return {};
    return { code: typeof first.code === "string" ? first.code : undefined, message: typeof first.message === "string" ? first.message : undefined };
  } catch {
    return {};
  }
}
