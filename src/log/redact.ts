// Secrets never reach a log line: values under secret-like keys are replaced, and strings are scrubbed of
// the credentials they may carry (URL passwords, Authorization header values, password=… pairs, token
// query parameters, registry auth in JSON). Used by serve's logger on every line and for the effective
// configuration it logs at start.

export const REDACTED = "[REDACTED]";

/** Keys whose value is a secret whatever it looks like (compared lower-case). */
const SECRET_KEYS = new Set([
  "authorization", "proxy-authorization", "x-registry-auth", "cookie", "set-cookie", "auth", "auths", "pwd",
  ".dockerconfigjson", ".dockercfg", "dockerconfig", "dockerconfigjson", "tls.key", "ca.key", "privatekey", "private_key",
]);
/** Key endings that mark a secret: password, clientSecret, accessToken, apiKey... */
const SECRET_KEY_END = /(?:password|passwd|passphrase|token|secret_?key|secret_access_key|client_?secret|api_?key|private_?key)$/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase()) || SECRET_KEY_END.test(key);
}

// Credentials look like credentials: a digit, a symbol of base64/JWT, or mixed case (not "Basic authentication").
const looksLikeCredential = (v: string) => v.length >= 4 && (/[0-9+/=._~-]/.test(v) || (/[a-z]/.test(v) && /[A-Z]/.test(v)));

const RULES: Array<[RegExp, (...m: string[]) => string]> = [
  // scheme://user:password@host -> scheme://user:[REDACTED]@host
  [/\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/?#@]*):([^\s/?#@]*)@/gi, (_, scheme, user) => `${scheme}${user}:${REDACTED}@`],
  // Authorization header values (not a WWW-Authenticate challenge: Bearer realm="…",service="…").
  [/\b(Bearer|Basic)(\s+)(?!(?:realm|service|scope|error|charset)=)([A-Za-z0-9._~+/=-]+)/g, (all, scheme, sp, cred) => (looksLikeCredential(cred!) ? `${scheme}${sp}${REDACTED}` : all)],
  // "auth":"…", "password":"…" (a docker config or a token response in a message).
  [/"(auth|password|identitytoken|registrytoken|token|access_token|refresh_token|secret|client_secret)"(\s*:\s*)"(?:[^"\\]|\\.)*"/gi, (_, key, sep) => `"${key}"${sep}"${REDACTED}"`],
  // password=…, token: … (libpq keyword strings, form bodies, YAML).
  [/\b(password|passwd|pwd|token|access_token|refresh_token|client_secret|api_?key)(\s*[=:]\s*)(?!\[REDACTED\])([^\s"'&,;]+)/gi, (_, key, sep) => `${key}${sep}${REDACTED}`],
  // ?X-Amz-Signature=…, &token=…: signed URLs and tokens in query strings.
  [/([?&][^=&#\s]*(?:token|signature|credential|password|secret)[^=&#\s]*=)(?!\[REDACTED\])[^&#\s"']+/gi, (_, head) => `${head}${REDACTED}`],
];

/** A string with the credentials it carries replaced by [REDACTED]. */
export function scrubString(s: string): string {
  if (s.length < 6) return s;
  let out = s;
  for (const [re, f] of RULES) out = out.replace(re, f as (...m: string[]) => string);
  return out;
}

/**
 * A copy of `value` safe to log: values under secret-like keys replaced, strings scrubbed, Errors as
 * { type, message, stack }. Depth-limited and cycle-safe; the input is not modified.
 */
export function scrub(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string") return scrubString(value);
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[Circular]";
  if (depth >= 8) return "[Object]";
  seen.add(value);
  try {
    if (value instanceof Error) {
      const e = value as Error & { code?: unknown };
      return { type: e.name, message: scrubString(e.message), ...(e.code !== undefined ? { code: e.code } : {}), ...(e.stack ? { stack: scrubString(e.stack) } : {}) };
    }
    if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1, seen));
    if (value instanceof Date || value instanceof URL) return scrubString(value instanceof Date ? value.toISOString() : value.href);
    if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) && v !== undefined ? REDACTED : scrub(v, depth + 1, seen);
    return out;
  } finally {
    seen.delete(value);
  }
}
