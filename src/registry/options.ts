// Registry client configuration, checked by hand rather than with zod: the client is on the path of a warm
// `portcullis scan` (one HEAD), where loading zod costs about 70 ms of a budget of 300.
import { PortcullisError } from "../errors.js";

/** Registry client configuration. Every field has a default; unknown keys are errors. */
export interface RegistryOptions {
  /**
   * Registries (host[:port], `*` globs per label) reached over plain HTTP or with unverified TLS.
   * Loopback registries (localhost, 127.0.0.0/8, ::1) may always use plain HTTP, as Docker allows.
   */
  insecureRegistries: string[];
  /** Extra CA certificates (PEM) per registry host, for registries with a private CA. */
  caCertificates: Record<string, string>;
  /** Requests in flight at once to one registry. */
  maxConcurrentPerRegistry: number;
  /** Requests per second to one registry (a token bucket; 0 = no limit). */
  requestsPerSecond: number;
  /** Attempts for 5xx, 429 and connection errors, the first included (1 to 10). */
  maxAttempts: number;
  /** Base of the exponential backoff (ms), with full jitter. */
  backoffBaseMs: number;
  /** Longest Retry-After (ms) honoured before giving up with RATE_LIMITED. */
  maxRetryAfterMs: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  /** Longest silence while a body streams. */
  bodyTimeoutMs: number;
  maxManifestBytes: number;
  maxConfigBytes: number;
  maxTokenBytes: number;
  /** One page of a tag listing (`/v2/<name>/tags/list`). */
  maxTagPageBytes: number;
  /** Range resumes of one blob after dropped connections. */
  maxBlobResumes: number;
  userAgent: string;
}

export type RegistryOptionsInput = Partial<RegistryOptions>;

/** The numeric options: whole numbers unless `real`, at least `min`, at most `max`. */
const NUMBERS: Record<string, { real?: boolean; min: number; max?: number; default: number }> = {
  maxConcurrentPerRegistry: { min: 1, default: 8 },
  requestsPerSecond: { real: true, min: 0, default: 0 },
  maxAttempts: { min: 1, max: 10, default: 4 },
  backoffBaseMs: { min: 0, default: 200 },
  maxRetryAfterMs: { min: 0, default: 30_000 },
  connectTimeoutMs: { min: 1, default: 10_000 },
  headersTimeoutMs: { min: 1, default: 30_000 },
  bodyTimeoutMs: { min: 1, default: 60_000 },
  maxManifestBytes: { min: 1, default: 8 * 1024 * 1024 },
  maxConfigBytes: { min: 1, default: 4 * 1024 * 1024 },
  maxTokenBytes: { min: 1, default: 64 * 1024 },
  maxTagPageBytes: { min: 1, default: 1024 * 1024 },
  maxBlobResumes: { min: 0, default: 5 },
};
const OTHERS = ["insecureRegistries", "caCertificates", "userAgent"];

/** A registry option that is not what it must be; the message names the option. */
export class RegistryOptionsError extends PortcullisError {
  readonly domain = "registry";
  readonly code = "INVALID_OPTIONS";
}

function fail(key: string, what: string): never {
  throw new RegistryOptionsError(`registry option ${key} ${what}`);
}

function parse(input: unknown = {}): RegistryOptions {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new RegistryOptionsError("registry options must be an object");
  const o = input as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !(k in NUMBERS) && !OTHERS.includes(k));
  if (unknown.length) throw new RegistryOptionsError(`unknown registry option${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}`);
  const out: Record<string, unknown> = {};
  for (const [key, rule] of Object.entries(NUMBERS)) {
    const v = o[key] ?? rule.default;
    if (typeof v !== "number" || !Number.isFinite(v)) fail(key, "must be a number");
    if (!rule.real && !Number.isInteger(v)) fail(key, "must be a whole number");
    if (v < rule.min) fail(key, `must be at least ${rule.min}`);
    if (rule.max !== undefined && v > rule.max) fail(key, `must be at most ${rule.max}`);
    out[key] = v;
  }
  const insecure = o.insecureRegistries ?? [];
  if (!Array.isArray(insecure) || !insecure.every((x) => typeof x === "string")) fail("insecureRegistries", "must be a list of strings");
  const ca = o.caCertificates ?? {};
  if (typeof ca !== "object" || ca === null || Array.isArray(ca) || !Object.values(ca).every((x) => typeof x === "string")) fail("caCertificates", "must map registry hosts to PEM text");
  const ua = o.userAgent ?? "portcullis";
  if (typeof ua !== "string") fail("userAgent", "must be a string");
  return { ...out, insecureRegistries: [...(insecure as string[])], caCertificates: { ...(ca as Record<string, string>) }, userAgent: ua } as RegistryOptions;
}

/** Fills in the defaults and checks every value; throws RegistryOptionsError naming the option. */
export const RegistryOptionsSchema = { parse };
