// Keyrings: which credentials to try for an image, by the kubelet's matching rules (research §1.3).
//
// A docker config key is normalised to `host[:port][/path]`: a missing scheme is assumed (any scheme is
// dropped), a leading `/v1/` or `/v2/` path segment is dropped, so `https://index.docker.io/v1/` becomes
// `index.docker.io`. Keys are tried in reverse lexical order (longer, more specific keys before their
// prefixes; non-wildcard before wildcard). A key matches an image when
//   - both hosts have the same number of dot-separated labels and each label matches its glob (`*` stands
//     for any run of characters inside one label: `*.azurecr.io` matches neither `azurecr.io` nor
//     `a.b.azurecr.io`; `app*.k8s.io` matches `app1.k8s.io`). Hosts compare case-insensitively;
//   - the ports are identical as written (`reg:443` is not `reg`; no glob in ports);
//   - the key's path is a raw string prefix of the image's path (`reg.io/team` matches `reg.io/teamX/app`).
// Docker Hub images (host `docker.io`, `index.docker.io`, `registry-1.docker.io`, or no host at all) also
// match keys written for any of those three hosts: keys for the image's own host come first, then keys for
// `index.docker.io`, `docker.io`, `registry-1.docker.io`. Every matching credential is returned, in order,
// without duplicates; an empty list means anonymous.
//
// Differences from kubelet, on purpose: kubelet consults `index.docker.io` keys for Hub images only when no
// other key matched, and ignores `docker.io` / `registry-1.docker.io` aliases; here all three aliases are
// always consulted, after the image's own host. Kubelet treats a first component `localhost` (or one with
// upper-case letters) as a Docker Hub namespace; here, as in Docker's reference grammar, it is a host. Only
// `*` is a glob character (kubelet's filepath.Match also knows `?` and `[...]`, which no host contains).

import type { DockerConfig, DockerConfigEntry } from "./dockerconfig.js";
import type { Credential, CredentialProvider, Keyring } from "./types.js";

/** The host names Docker Hub goes by; images on any of them share credentials. */
export const DOCKER_HUB_HOSTS: readonly string[] = ["index.docker.io", "docker.io", "registry-1.docker.io"];
/** The host the registry client talks to for Docker Hub. */
export const DOCKER_HUB_REGISTRY = "registry-1.docker.io";

interface HostPort {
  host: string;
  port: string;
}

/** A normalised keyring key. */
export interface RegistryKey {
  /** Lowercased host, possibly with `*` globs; `[...]` kept for IPv6 literals. */
  host: string;
  /** The port as written, or "". */
  port: string;
  /** The path, starting with "/", or "" for none. */
  path: string;
  /** `host[:port][path]`: the string keys are sorted by. */
  key: string;
}

/** A parsed image reference, for matching. */
export interface ImageLocation {
  /** Lowercased host; "" for a Docker Hub image written without a host (`nginx`, `library/nginx`). */
  host: string;
  port: string;
  /** The repository (and whatever follows: tag, digest) with a leading "/". Hub names get `library/`. */
  path: string;
  /** True for Docker Hub images. */
  dockerHub: boolean;
}

function stripScheme(s: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(s);
  return m ? s.slice(m[0].length) : s;
}

/** Splits `host[:port]` (with `[v6]:port` support); undefined when malformed. */
function splitHostPort(authority: string): HostPort | undefined {
  let host: string;
  let port = "";
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) return undefined;
    host = authority.slice(0, close + 1);
    const rest = authority.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return undefined;
      port = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0) {
      host = authority.slice(0, colon);
      port = authority.slice(colon + 1);
    } else {
      host = authority;
    }
  }
  if (host === "") return undefined;
  return { host: host.toLowerCase(), port };
}

/** Normalises a docker config / matchImages key; undefined when it has no host. */
export function parseRegistryKey(raw: string): RegistryKey | undefined {
  const s = stripScheme(raw.trim());
  const slash = s.indexOf("/");
  let authority = slash < 0 ? s : s.slice(0, slash);
  let path = slash < 0 ? "" : s.slice(slash);
  const at = authority.lastIndexOf("@");
  if (at >= 0) authority = authority.slice(at + 1);
  const hp = splitHostPort(authority);
  if (!hp) return undefined;
  if (path.startsWith("/v1/") || path.startsWith("/v2/")) path = path.slice(3);
  else if (path === "/v1" || path === "/v2") path = "";
  if (path === "/") path = "";
  const key = `${hp.host}${hp.port ? `:${hp.port}` : ""}${path}`;
  return { host: hp.host, port: hp.port, path, key };
}

/** The normalised form of a key (`https://index.docker.io/v1/` => `index.docker.io`), or undefined. */
export function normalizeRegistryKey(raw: string): string | undefined {
  return parseRegistryKey(raw)?.key;
}

/**
 * Parses an image reference (`host[:port]/repo[:tag][@digest]`, or a Docker Hub short name) for matching;
 * undefined when it is empty or malformed.
 */
export function parseImageLocation(image: string): ImageLocation | undefined {
  const s = stripScheme(image.trim());
  if (s === "" || s.startsWith("/")) return undefined;
  const slash = s.indexOf("/");
  const first = slash < 0 ? s : s.slice(0, slash);
  const isHost =
    slash >= 0 &&
    (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase());
  let loc: ImageLocation;
  if (!isHost) {
    loc = { host: "", port: "", path: `/${s}`, dockerHub: true };
  } else {
    const hp = splitHostPort(first);
    if (!hp) return undefined;
    const dockerHub = hp.port === "" && DOCKER_HUB_HOSTS.includes(hp.host);
    loc = { host: hp.host, port: hp.port, path: s.slice(slash), dockerHub };
  }
  // Docker Hub official images live under library/: `nginx` is `docker.io/library/nginx`.
  if (loc.dockerHub && !loc.path.slice(1).includes("/")) loc.path = `/library${loc.path}`;
  return loc;
}

/**
 * The registry host (`host[:port]`, lowercased) an image is pulled from: what CredentialProvider.matches
 * receives. Docker Hub short names give `registry-1.docker.io`; a malformed image gives "".
 */
export function imageRegistryHost(image: string): string {
  const loc = parseImageLocation(image);
  if (!loc) return "";
  if (loc.host === "") return DOCKER_HUB_REGISTRY;
  return loc.port ? `${loc.host}:${loc.port}` : loc.host;
}

/** `*` matches any run of characters (possibly none) within one label. Linear-ish, no backtracking blowup. */
function globLabel(pattern: string, label: string): boolean {
  let p = 0;
  let l = 0;
  let star = -1;
  let mark = 0;
  while (l < label.length) {
    if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      mark = l;
    } else if (p < pattern.length && pattern[p] === label[l]) {
      p++;
      l++;
    } else if (star >= 0) {
      p = star + 1;
      l = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

function hostMatches(glob: string, host: string): boolean {
  const g = glob.split(".");
  const h = host.split(".");
  if (g.length !== h.length) return false;
  return g.every((label, i) => globLabel(label, h[i] as string));
}

function keyMatchesAt(key: RegistryKey, host: string, port: string, path: string): boolean {
  return key.port === port && hostMatches(key.host, host) && path.startsWith(key.path);
}

/**
 * Whether a key matches an image by the rules at the top of this file, including the Docker Hub aliases.
 * `key` may be raw (`https://index.docker.io/v1/`) or normalised.
 */
export function registryKeyMatches(key: string, image: string): boolean {
  const k = parseRegistryKey(key);
  const loc = parseImageLocation(image);
  if (!k || !loc) return false;
  return candidateHosts(loc).some((h) => keyMatchesAt(k, h, loc.port, loc.path));
}

/** The hosts to match keys against, in order: the image's own, then (Docker Hub) the aliases. */
function candidateHosts(loc: ImageLocation): string[] {
  if (!loc.dockerHub) return [loc.host];
  const hosts = loc.host === "" ? [] : [loc.host];
  for (const h of DOCKER_HUB_HOSTS) if (!hosts.includes(h)) hosts.push(h);
  return hosts;
}

/** Identity of a credential for de-duplication: its secret parts, not its source. */
function credentialIdentity(c: Credential): string {
  return JSON.stringify([c.username ?? "", c.password ?? "", c.identityToken ?? "", c.registryToken ?? ""]);
}

/** Drops later credentials identical (same secrets) to an earlier one; the first one's source is kept. */
export function dedupeCredentials(creds: readonly Credential[]): Credential[] {
  const seen = new Set<string>();
  const out: Credential[] = [];
  for (const c of creds) {
    const id = credentialIdentity(c);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(c);
  }
  return out;
}

/**
 * The credential for a docker config entry; undefined when it holds no secret. Docker writes an identity
 * token next to `auth` = base64("user:") with an empty password: then the pair is dropped, so that the
 * client (which prefers username/password) uses the token. A real password is kept next to a token.
 */
function toCredential(entry: DockerConfigEntry, source: string): Credential | undefined {
  const cred: Credential = { source };
  if (entry.identityToken) cred.identityToken = entry.identityToken;
  if (entry.registryToken) cred.registryToken = entry.registryToken;
  const hasToken = cred.identityToken !== undefined || cred.registryToken !== undefined;
  if (entry.password || (!hasToken && entry.username)) {
    // Username and password go together: a user with an empty password is still a Basic credential.
    cred.username = entry.username ?? "";
    cred.password = entry.password ?? "";
  }
  if (!hasToken && cred.username === undefined) return undefined;
  return cred;
}

interface IndexedKey {
  key: RegistryKey;
  creds: Credential[];
}

/**
 * A keyring over parsed docker configs (pull secrets, config.json). All configs share one index, as in
 * kubelet: keys from every config are sorted together, and credentials under the same normalised key keep
 * the order of the configs and entries. Entries with no secret at all (no username, password or token, as
 * docker writes when a credsStore holds the secret) are left out.
 */
export class DockerConfigKeyring implements Keyring {
  private readonly index: IndexedKey[];

  constructor(configs: DockerConfig | readonly DockerConfig[]) {
    const list: readonly DockerConfig[] = Array.isArray(configs) ? configs : [configs as DockerConfig];
    const byKey = new Map<string, IndexedKey>();
    for (const config of list) {
      for (const entry of config.entries) {
        const key = parseRegistryKey(entry.key);
        if (!key) continue;
        const cred = toCredential(entry, config.source);
        if (!cred) continue;
        let slot = byKey.get(key.key);
        if (!slot) byKey.set(key.key, (slot = { key, creds: [] }));
        slot.creds.push(cred);
      }
    }
    this.index = [...byKey.values()].sort((a, b) => (a.key.key < b.key.key ? 1 : a.key.key > b.key.key ? -1 : 0));
  }

  /** The normalised keys, in the order they are tried. */
  keys(): string[] {
    return this.index.map((e) => e.key.key);
  }

  /** Every matching credential, in order, without duplicates. */
  lookupSync(image: string): Credential[] {
    const loc = parseImageLocation(image);
    if (!loc) return [];
    const used = new Set<IndexedKey>();
    const out: Credential[] = [];
    for (const host of candidateHosts(loc)) {
      for (const e of this.index) {
        if (used.has(e) || !keyMatchesAt(e.key, host, loc.port, loc.path)) continue;
        used.add(e);
        out.push(...e.creds);
      }
    }
    return dedupeCredentials(out);
  }

  async lookup(image: string, signal?: AbortSignal): Promise<Credential[]> {
    signal?.throwIfAborted();
    return this.lookupSync(image);
  }
}

export interface ChainKeyringOptions {
  /**
   * Called with each error that lookup swallows (a provider or keyring failed but other credentials were
   * found), so the caller can log it. Not called for the error lookup throws.
   */
  onError?: (error: unknown, origin: string) => void;
}

/**
 * Keyrings first (in order), then the cloud credential providers responsible for the image's host (in
 * order), concatenated and de-duplicated. Everything is asked in parallel; the order of the result does
 * not depend on timing.
 *
 * Errors: a keyring or provider that throws does not stop the others. If some credential was found the
 * errors are passed to `onError` and the credentials are returned: a working pull secret must not be
 * blocked because, say, the ECR API is unreachable, and the client tries credentials in order anyway.
 * If nothing was found, the first error (in keyring/provider order) is thrown unchanged, keeping its
 * `code`, and any others go to `onError`: going anonymous would hide the real cause behind a confusing
 * 401 from the registry. An aborted signal always throws the abort reason.
 */
export class ChainKeyring implements Keyring {
  private readonly keyrings: readonly Keyring[];
  private readonly providers: readonly CredentialProvider[];
  private readonly onError: ((error: unknown, origin: string) => void) | undefined;

  constructor(
    keyrings: readonly Keyring[],
    providers: readonly CredentialProvider[] = [],
    options: ChainKeyringOptions = {},
  ) {
    this.keyrings = [...keyrings];
    this.providers = [...providers];
    this.onError = options.onError;
  }

  async lookup(image: string, signal?: AbortSignal): Promise<Credential[]> {
    signal?.throwIfAborted();
    const host = imageRegistryHost(image);
    const tasks: { origin: string; run: () => Promise<Credential[]> }[] = [];
    this.keyrings.forEach((k, i) => tasks.push({ origin: `keyring ${i}`, run: () => k.lookup(image, signal) }));
    for (const p of this.providers) {
      tasks.push({
        origin: `provider ${p.name}`,
        run: async () => {
          if (host === "" || !p.matches(host)) return [];
          const cred = await p.get(host, signal);
          return cred ? [cred] : [];
        },
      });
    }
    const settled = await Promise.allSettled(tasks.map((t) => Promise.resolve().then(t.run)));
    signal?.throwIfAborted();
    const creds: Credential[] = [];
    const errors: { error: unknown; origin: string }[] = [];
    settled.forEach((r, i) => {
      if (r.status === "fulfilled") creds.push(...r.value);
      else errors.push({ error: r.reason, origin: (tasks[i] as { origin: string }).origin });
    });
    const result = dedupeCredentials(creds);
    const thrown = result.length === 0 ? errors.shift() : undefined;
    for (const e of errors) {
      try {
        this.onError?.(e.error, e.origin);
      } catch {
        // A logging callback must not turn a successful lookup into a failure.
      }
    }
    if (thrown) throw thrown.error;
    return result;
  }
}
