// What every part says about an error it reports: the message, then the code callers branch on
// (`AUTH_FAILED`, `ADVISORY_HTTP_STATUS`), as `message [CODE]`. A leaf: imports nothing of the project.

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
 * The one place that decides it (the registry client's retries, the ImageScan and ImageRepository controllers).
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set(["RATE_LIMITED", "SERVER_ERROR", "NETWORK", "LOCK_TIMEOUT"]);

export function isTransientCode(code: string | undefined): boolean {
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** Whether `e` (by its string code) is worth trying again later. */
export function isTransient(e: unknown): boolean {
  return isTransientCode(errorCode(e));
}
