// What the API server said, for log lines and statuses.

/** The API server's own message inside a client-node ApiException (its `body` is the Status JSON). */
export function apiErrorDetail(e: unknown): string {
  const body = (e as { body?: unknown }).body;
  if (body === undefined) return "";
  try {
    const status = (typeof body === "string" ? JSON.parse(body) : body) as { message?: string };
    return status.message ? ` (${status.message})` : "";
  } catch {
    return ` (${String(body).slice(0, 300)})`;
  }
}
