import { z } from "zod";

/** Registry client configuration. Every field has a default; unknown keys are errors. */
export const RegistryOptionsSchema = z
  .object({
    /**
     * Registries (host[:port], `*` globs per label) reached over plain HTTP or with unverified TLS.
     * Loopback registries (localhost, 127.0.0.0/8, ::1) may always use plain HTTP, as Docker allows.
     */
    insecureRegistries: z.array(z.string()).default([]),
    /** Extra CA certificates (PEM) per registry host, for registries with a private CA. */
    caCertificates: z.record(z.string(), z.string()).default({}),
    /** Requests in flight at once to one registry. */
    maxConcurrentPerRegistry: z.number().int().positive().default(8),
    /** Requests per second to one registry (a token bucket; 0 = no limit). */
    requestsPerSecond: z.number().nonnegative().default(0),
    /** Attempts for 5xx, 429 and connection errors, the first included. */
    maxAttempts: z.number().int().min(1).max(10).default(4),
    /** Base of the exponential backoff (ms), with full jitter. */
    backoffBaseMs: z.number().int().nonnegative().default(200),
    /** Longest Retry-After (ms) honoured before giving up with RATE_LIMITED. */
    maxRetryAfterMs: z.number().int().nonnegative().default(30_000),
    connectTimeoutMs: z.number().int().positive().default(10_000),
    headersTimeoutMs: z.number().int().positive().default(30_000),
    /** Longest silence while a body streams. */
    bodyTimeoutMs: z.number().int().positive().default(60_000),
    maxManifestBytes: z.number().int().positive().default(8 * 1024 * 1024),
    maxConfigBytes: z.number().int().positive().default(4 * 1024 * 1024),
    maxTokenBytes: z.number().int().positive().default(64 * 1024),
    /** One page of a tag listing (`/v2/<name>/tags/list`). */
    maxTagPageBytes: z.number().int().positive().default(1024 * 1024),
    /** Range resumes of one blob after dropped connections. */
    maxBlobResumes: z.number().int().nonnegative().default(5),
    userAgent: z.string().default("portcullis"),
  })
  .strict();

export type RegistryOptions = z.infer<typeof RegistryOptionsSchema>;
export type RegistryOptionsInput = z.input<typeof RegistryOptionsSchema>;
