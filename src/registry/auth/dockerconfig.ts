// Docker config files and image pull secrets, parsed into plain entries (no I/O, no helper binaries).
//
// Formats:
//   - config.json and `kubernetes.io/dockerconfigjson` secrets (key `.dockerconfigjson`):
//       { "auths": { "<registry>": { auth?, username?, password?, identitytoken?, registrytoken?, email? } },
//         "credHelpers": { "<registry>": "<helper>" }, "credsStore": "<helper>", ...other settings }
//   - legacy `.dockercfg` (and `kubernetes.io/dockercfg` secrets): the bare map, without the "auths" wrapper.
// In an entry, `auth` = base64("user:pass") overrides username/password; it is split on the first ":" and
// may be padded or unpadded standard base64.
//
// Errors are DockerConfigError: they name the source label and the offending registry key and field, and
// never contain a password, token, the `auth` field or any other part of the input's values.

import { z } from "zod";
import { PortcullisError } from "../../errors.js";

export interface DockerConfigEntry {
  /** The registry key exactly as written in the file (`https://index.docker.io/v1/`, `*.azurecr.io`, ...). */
  key: string;
  username?: string;
  password?: string;
  /** `identitytoken`: an OAuth2 refresh token. */
  identityToken?: string;
  /** `registrytoken`: a bearer token sent as is. */
  registryToken?: string;
  email?: string;
}

export interface DockerConfig {
  /** A label for logs and errors: "secret default/regcred", "docker-config /root/.docker/config.json". */
  source: string;
  /** The `auths` entries (or the legacy map's), in file order. */
  entries: DockerConfigEntry[];
  /** `credHelpers`: registry key -> helper name (`docker-credential-<name>`). Not run; callers report them. */
  credHelpers: Record<string, string>;
  /** `credsStore`: the default helper's name, if any. Not run; callers report it. */
  credsStore?: string;
}

export type DockerConfigFormat = "config" | "legacy" | "auto";

export class DockerConfigError extends PortcullisError {
  readonly domain = "registry";
  readonly code = "DOCKER_CONFIG_INVALID";
  /** The source label the caller passed. */
  readonly source: string;
  /** The registry key (or top-level field) at fault, when there is one. */
  readonly key: string | undefined;

  constructor(source: string, message: string, key?: string) {
    super(`${source}: ${message}`);
    this.name = "DockerConfigError";
    this.source = source;
    this.key = key;
  }
}

// Docker and some tools write null for absent fields.
const optString = z.string().nullish();

const entrySchema = z.object({
  auth: optString,
  username: optString,
  password: optString,
  identitytoken: optString,
  registrytoken: optString,
  email: optString,
});

// The maps (`auths`, the legacy map, `credHelpers`) are walked by hand rather than with z.record: their keys
// come from the file, and a key such as "__proto__" must stay an ordinary key.
const configSchema = z.object({
  auths: z.unknown().optional(),
  credHelpers: z.unknown().optional(),
  credsStore: optString,
});

type RawEntry = z.infer<typeof entrySchema>;

/** Describes a zod issue without quoting the input (zod does not put values in messages; we do not either). */
function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (issue?.code !== "invalid_type") return "invalid value";
  return issue.expected === "object" ? "expected an object" : `expected a ${issue.expected}`;
}

function quoteKey(key: string): string {
  // JSON.stringify escapes control characters, so a hostile key cannot forge log lines.
  return JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}...` : key);
}

function entryError(source: string, key: string, message: string): DockerConfigError {
  return new DockerConfigError(source, `invalid docker config entry ${quoteKey(key)}: ${message}`, key);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict standard base64, padded or unpadded; undefined when invalid. */
function decodeBase64(s: string): Buffer | undefined {
  if (!BASE64.test(s)) return undefined;
  const body = s.replace(/=+$/, "");
  const padded = s.length !== body.length;
  if (padded && s.length % 4 !== 0) return undefined;
  if (body.length % 4 === 1) return undefined;
  return Buffer.from(body, "base64");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeAuth(source: string, key: string, auth: string): { username: string; password: string } {
  const bytes = decodeBase64(auth.trim());
  if (bytes === undefined) throw entryError(source, key, "auth is not valid base64");
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw entryError(source, key, "auth is not UTF-8");
  }
  const colon = text.indexOf(":");
  if (colon < 0) throw entryError(source, key, 'auth must be base64("username:password")');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function toEntry(source: string, key: string, value: unknown): DockerConfigEntry {
  const parsed = entrySchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = (issue?.path ?? []).map(String).join(".");
    throw entryError(source, key, `${field ? `field ${field}: ` : ""}${describeIssue(issue)}`);
  }
  const raw: RawEntry = parsed.data;
  const entry: DockerConfigEntry = { key };
  if (raw.username != null) entry.username = raw.username;
  if (raw.password != null) entry.password = raw.password;
  if (raw.auth != null && raw.auth.trim() !== "") {
    const { username, password } = decodeAuth(source, key, raw.auth);
    entry.username = username;
    entry.password = password;
  }
  if (raw.identitytoken != null && raw.identitytoken !== "") entry.identityToken = raw.identitytoken;
  if (raw.registrytoken != null && raw.registrytoken !== "") entry.registryToken = raw.registrytoken;
  if (raw.email != null) entry.email = raw.email;
  return entry;
}

function entriesOf(source: string, map: unknown, where: string): DockerConfigEntry[] {
  if (map === undefined || map === null) return [];
  if (!isPlainObject(map)) throw new DockerConfigError(source, `invalid docker config: ${where}: expected an object`);
  return Object.entries(map).map(([key, value]) => toEntry(source, key, value));
}

function helpersOf(source: string, map: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (map === undefined || map === null) return out;
  if (!isPlainObject(map)) {
    throw new DockerConfigError(source, "invalid docker config: credHelpers: expected an object", "credHelpers");
  }
  for (const [key, helper] of Object.entries(map)) {
    if (typeof helper !== "string") {
      const message = `invalid docker config: credHelpers ${quoteKey(key)}: expected a string`;
      throw new DockerConfigError(source, message, key);
    }
    Object.defineProperty(out, key, { value: helper, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses an already-decoded JSON value. `format`: "config" (config.json / .dockerconfigjson), "legacy"
 * (.dockercfg bare map) or "auto" (the default: config when the object has `auths`, `credHelpers` or
 * `credsStore`, legacy otherwise).
 */
export function parseDockerConfigValue(
  value: unknown,
  source: string,
  format: DockerConfigFormat = "auto",
): DockerConfig {
  if (!isPlainObject(value)) {
    throw new DockerConfigError(source, "invalid docker config: top level: expected an object");
  }
  const fmt =
    format !== "auto"
      ? format
      : "auths" in value || "credHelpers" in value || "credsStore" in value
        ? "config"
        : "legacy";
  if (fmt === "legacy") {
    return { source, entries: entriesOf(source, value, "top level"), credHelpers: {} };
  }
  const parsed = configSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = (issue?.path ?? []).map(String).join(".");
    const at = field || "top level";
    throw new DockerConfigError(source, `invalid docker config: ${at}: ${describeIssue(issue)}`, field || undefined);
  }
  const out: DockerConfig = {
    source,
    entries: entriesOf(source, parsed.data.auths, "auths"),
    credHelpers: helpersOf(source, parsed.data.credHelpers),
  };
  if (parsed.data.credsStore != null && parsed.data.credsStore !== "") out.credsStore = parsed.data.credsStore;
  return out;
}

/** Parses docker config JSON text (or its UTF-8 bytes). See parseDockerConfigValue for `format`. */
export function parseDockerConfig(
  json: string | Uint8Array,
  source: string,
  format: DockerConfigFormat = "auto",
): DockerConfig {
  let text: string;
  if (typeof json === "string") {
    text = json;
  } else {
    try {
      text = utf8.decode(json);
    } catch {
      throw new DockerConfigError(source, "invalid docker config: not UTF-8");
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // V8's message quotes the input (which may hold secrets): report no more than that it is not JSON.
    throw new DockerConfigError(source, "invalid docker config: not valid JSON");
  }
  return parseDockerConfigValue(value, source, format);
}

/** The parts of a Kubernetes Secret this module reads (`data` values are base64, as the API returns them). */
export interface DockerConfigSecret {
  type?: string;
  data?: Record<string, string | undefined> | undefined;
}

export const SECRET_TYPE_DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson";
export const SECRET_TYPE_DOCKERCFG = "kubernetes.io/dockercfg";

/**
 * Parses an image pull secret: `kubernetes.io/dockerconfigjson` (data key `.dockerconfigjson`) or
 * `kubernetes.io/dockercfg` (data key `.dockercfg`). Any other type, a missing key or bad base64 throws
 * DockerConfigError (callers warn and skip the secret, as kubelet does).
 */
export function parseDockerConfigSecret(secret: DockerConfigSecret, source: string): DockerConfig {
  let dataKey: string;
  let format: DockerConfigFormat;
  if (secret.type === SECRET_TYPE_DOCKER_CONFIG_JSON) {
    dataKey = ".dockerconfigjson";
    format = "config";
  } else if (secret.type === SECRET_TYPE_DOCKERCFG) {
    dataKey = ".dockercfg";
    format = "legacy";
  } else {
    const type = typeof secret.type === "string" ? JSON.stringify(secret.type.slice(0, 100)) : "none";
    throw new DockerConfigError(source, `not an image pull secret (type ${type})`);
  }
  const encoded = secret.data?.[dataKey];
  if (typeof encoded !== "string") {
    throw new DockerConfigError(source, `secret has no data key ${dataKey}`, dataKey);
  }
  const bytes = decodeBase64(encoded.replace(/\s+/g, ""));
  if (bytes === undefined) {
    throw new DockerConfigError(source, `secret data ${dataKey} is not valid base64`, dataKey);
  }
  return parseDockerConfig(bytes, source, format);
}
