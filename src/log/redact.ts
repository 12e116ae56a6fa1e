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

/** Names of values that are secrets in `name=value`, `name: value`, `"name": "value"` (AWS_SECRET_ACCESS_KEY, PRIVATE-TOKEN, clientSecret ...). */
const SECRET_NAME = String.raw`[A-Za-z0-9_.-]{0,40}?(?:password|passwd|pwd|token|secret|secret_?access_?key|api_?key|private_?key|credentials?)`;

const RULES: Array<[RegExp, (...m: string[]) => string]> = [
  // scheme://user:password@host -> scheme://user:[REDACTED]@host. The password runs to the LAST @ before
  // the host (`postgres://u:p@ssw0rd@db`: the password is `p@ssw0rd`), as URL parsers read it.
  [/\b([a-z][a-z0-9+.-]{0,31}:\/\/)([^\s:/?#@]*):([^\s/?#]*)@(?=[^\s@/?#]*(?:[\s/?#]|$))/gi, (_, scheme, user) => `${scheme}${user}:${REDACTED}@`],
  // Authorization header values, any case (not a WWW-Authenticate challenge: Bearer realm="…",service="…").
  [/\b(Bearer|Basic)(\s+)(?!(?:realm|service|scope|error|charset)=)([A-Za-z0-9._~+/=-]+)/gi, (all, scheme, sp, cred) => (looksLikeCredential(cred!) ? `${scheme}${sp}${REDACTED}` : all)],
  // Authorization: <scheme> <credential> with any other scheme (token, Bearer in quotes ...).
  [/\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?)([^\s"',;]+)(?:(\s+)([^\s"',;]+))?/gi, (all, head, first, sp, second) => {
    // `Scheme credential` or a bare credential; what an earlier rule redacted, or prose, stays.
    if (second !== undefined && /^[A-Za-z-]{1,20}$/.test(first!)) return second === REDACTED || !looksLikeCredential(second) ? all : `${head}${first}${sp}${REDACTED}`;
    return first === REDACTED || !looksLikeCredential(first!) ? all : `${head}${REDACTED}${sp ?? ""}${second ?? ""}`;
  }],
  // "auth":"…", "password":"…", "AWS_SECRET_ACCESS_KEY": "…" (a docker config, a token response, an env in JSON).
  [new RegExp(String.raw`"(auth|identitytoken|registrytoken|${SECRET_NAME})"(\s*:\s*)"(?:[^"\\]|\\.)*"`, "gi"), (_, key, sep) => `"${key}"${sep}"${REDACTED}"`],
  // password=…, token: …, AWS_SECRET_ACCESS_KEY=…, PRIVATE-TOKEN: … (libpq keyword strings, form bodies, YAML, env, headers).
  [new RegExp(String.raw`\b(${SECRET_NAME})(\s*[=:]\s*)(?!\[REDACTED\])(?!")([^\s"'&,;]+)`, "gi"), (_, key, sep) => `${key}${sep}${REDACTED}`],
  // ?X-Amz-Signature=…, &token=…: signed URLs and tokens in query strings.
  [/([?&][^=&#\s]*(?:token|signature|credential|password|secret)[^=&#\s]*=)(?!\[REDACTED\])[^&#\s"']+/gi, (_, head) => `${head}${REDACTED}`],
  // Tokens recognisable by themselves: JWTs (service account tokens), GitLab and GitHub tokens.
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, () => REDACTED],
  [/\b(?:glpat|gldt|glrt|glptt|ghp|gho|ghu|ghs|ghr|github_pat)[-_][A-Za-z0-9_-]{16,}/g, () => REDACTED],
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

/** What an operator-wide pull secret is called where tenants read (its kind, never its name). */
export const OPERATOR_PULL_SECRET = "operator pull secret";

/**
 * The redaction for text that leaves the process towards tenants (Events, ImageScan status, admission
 * answers): scrubString, and the operator's own pull secrets (`--pull-secrets`, in Portcullis's namespace)
 * named by their kind, OPERATOR_PULL_SECRET, instead of `secret <namespace>/<name>` or `<namespace>/<name>`.
 * A tenant's own secrets keep their names (they are the tenant's).
 */
export function tenantRedactor(operatorSecrets?: { namespace: string; names: readonly string[] }): (s: string) => string {
  const names = operatorSecrets?.names.filter(Boolean) ?? [];
  if (!names.length) return scrubString;
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`(?<![\\w.-])(?:(?:pull )?secret )?${esc(operatorSecrets!.namespace)}/(?:${names.map(esc).join("|")})(?![\\w.-])`, "g");
  return (s) => scrubString(s).replace(re, OPERATOR_PULL_SECRET);
}
