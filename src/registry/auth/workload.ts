// Registry credentials for a workload, in the order the kubelet uses them: the pod's imagePullSecrets, then
// its ServiceAccount's, then the operator-wide secrets (in Portcullis's own namespace), then the cloud
// helpers (ECR, GCR/Artifact Registry). The operator-wide ones (secrets and helpers) are the operator's, not
// the tenants': they apply only where the operator says (Portcullis's own namespace, the namespaces it lists,
// the registries it lists), or a tenant would learn through its scans the digests and packages of images only
// the operator may pull (a confused deputy). Secrets are read with GET (the RBAC rule is `get` only, never list
// or watch of every Secret in the cluster) and cached briefly, so a thousand pods with the same pull
// secret cost one read.
import type * as k8s from "@kubernetes/client-node";
import { parseDockerConfigSecret } from "./dockerconfig.js";
import { ChainKeyring, DOCKER_HUB_HOSTS, DockerConfigKeyring, imageRegistryHost, parseRegistryKey } from "./keyring.js";
import type { Credential, CredentialProvider, Keyring } from "./types.js";

export interface OperatorSecrets {
  namespace: string;
  names: string[];
  /** Namespaces whose images may be pulled with the operator's secrets and cloud helpers (besides `namespace`). */
  namespaces?: readonly string[];
  /** Registry hosts (`host[:port]`) for which every namespace may use them: registries the operator vouches for. */
  registries?: readonly string[];
}

/** Whether a scan in `namespace` of `host` may use the operator-wide credentials. */
export function operatorCredentialsApply(op: OperatorSecrets | undefined, namespace: string, host?: string): boolean {
  if (!op) return false;
  if (namespace === op.namespace || op.namespaces?.includes(namespace)) return true;
  return host !== undefined && registryListed(op.registries ?? [], host);
}

function registryListed(list: readonly string[], host: string): boolean {
  const h = host.toLowerCase();
  const hub = DOCKER_HUB_HOSTS.includes(h);
  return list.some((r) => r.toLowerCase() === h || (hub && DOCKER_HUB_HOSTS.includes(r.toLowerCase())));
}

/** A keyring that answers only for images on the listed registries. */
class RegistryScopedKeyring implements Keyring {
  constructor(private readonly inner: Keyring, private readonly registries: readonly string[]) {}
  lookup(image: string, signal?: AbortSignal): Promise<Credential[]> {
    const host = imageRegistryHost(image);
    return host && registryListed(this.registries, host) ? this.inner.lookup(image, signal) : Promise.resolve([]);
  }
}

interface Cached<T> {
  value: T;
  expires: number;
}

export class SecretCache {
  private readonly secrets = new Map<string, Cached<k8s.V1Secret | undefined>>();
  private readonly accounts = new Map<string, Cached<string[]>>();
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(private readonly core: k8s.CoreV1Api, private readonly ttlMs = 30_000) {}

  /** The secret, or undefined when it does not exist. Other API errors are thrown. */
  secret(namespace: string, name: string): Promise<k8s.V1Secret | undefined> {
    return this.cached(this.secrets, `secret ${namespace}/${name}`, async () => {
      try {
        return await this.core.readNamespacedSecret({ name, namespace });
      } catch (e) {
        if ((e as { code?: number }).code === 404) return undefined;
        throw e;
      }
    });
  }

  /** The names of a ServiceAccount's imagePullSecrets ([] when the account does not exist). */
  serviceAccountPullSecrets(namespace: string, name: string): Promise<string[]> {
    return this.cached(this.accounts, `serviceaccount ${namespace}/${name}`, async () => {
      try {
        const sa = await this.core.readNamespacedServiceAccount({ name, namespace });
        return (sa.imagePullSecrets ?? []).map((s) => s.name).filter((n): n is string => !!n);
      } catch (e) {
        if ((e as { code?: number }).code === 404) return [];
        throw e;
      }
    });
  }

  private async cached<T>(map: Map<string, Cached<T>>, key: string, load: () => Promise<T>): Promise<T> {
    const hit = map.get(key);
    if (hit && hit.expires > Date.now()) return hit.value;
    // Identical reads in flight are coalesced (keys carry their kind, so one map serves both caches).
    const running = this.inflight.get(key) as Promise<T> | undefined;
    if (running) return running;
    const p = load()
      .then((value) => {
        map.set(key, { value, expires: Date.now() + this.ttlMs });
        return value;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }
}

export interface WorkloadKeyring {
  keyring: Keyring;
  /** Secrets named but absent (`ns/name`): the kubelet skips them, and so do we, but a failure says so. */
  missing: string[];
}

/**
 * A keyring for images of a workload in `namespace` whose pull secrets are `names` (the pod's, then its
 * ServiceAccount's), then the operator's secrets and cloud helpers where operatorCredentialsApply says so
 * (without `operator`, there are none: the helpers are the operator's too). A secret that is not a pull
 * secret or is malformed fails with DOCKER_CONFIG_INVALID, naming it: silently going anonymous would hide the
 * mistake behind a 401.
 */
export async function workloadKeyring(
  cache: SecretCache,
  namespace: string,
  names: readonly string[],
  opts: { operator?: OperatorSecrets; providers?: readonly CredentialProvider[] } = {},
): Promise<WorkloadKeyring> {
  const missing: string[] = [];
  const load = async (ns: string, list: readonly string[]) => {
    const configs = [];
    for (const name of list) {
      const secret = await cache.secret(ns, name);
      if (!secret) {
        missing.push(`${ns}/${name}`);
        continue;
      }
      configs.push(parseDockerConfigSecret({ type: secret.type, data: secret.data }, `secret ${ns}/${name}`));
    }
    return configs;
  };
  const keyrings: Keyring[] = [];
  const own = await load(namespace, dedupe(names));
  if (own.length) keyrings.push(new DockerConfigKeyring(own));
  // The operator's credentials: for the whole namespace, for the listed registries only, or not at all.
  const op = opts.operator;
  const whole = operatorCredentialsApply(op, namespace);
  if (op && (whole || op.registries?.length)) {
    const wide = op.names.length ? await load(op.namespace, op.names) : [];
    const operator = new ChainKeyring(wide.length ? [new DockerConfigKeyring(wide)] : [], opts.providers ?? []);
    keyrings.push(whole ? operator : new RegistryScopedKeyring(operator, op.registries!));
  }
  return { keyring: new ChainKeyring(keyrings), missing };
}

/**
 * The registries (`host[:port]`, globs kept) the operator-wide pull secrets hold credentials for: the
 * registries the operator configured (the registry metrics name them; others are `other`). Secrets that
 * are missing or malformed are skipped (workloadKeyring reports them where they are used).
 */
export async function operatorRegistryHosts(cache: SecretCache, operator: OperatorSecrets): Promise<string[]> {
  const hosts = new Set<string>();
  for (const name of operator.names) {
    const secret = await cache.secret(operator.namespace, name);
    if (!secret) continue;
    try {
      for (const e of parseDockerConfigSecret({ type: secret.type, data: secret.data }, `secret ${operator.namespace}/${name}`).entries) {
        const k = parseRegistryKey(e.key);
        if (k) hosts.add(`${k.host}${k.port ? `:${k.port}` : ""}`);
      }
    } catch {
      // Not a pull secret: nothing to name.
    }
  }
  return [...hosts];
}

/** A keyring that remembers which credential sources it handed out (for status.credentialSource). */
export class RecordingKeyring implements Keyring {
  used = "anonymous";
  constructor(private readonly inner: Keyring) {}
  async lookup(image: string, signal?: AbortSignal): Promise<Credential[]> {
    const creds = await this.inner.lookup(image, signal);
    if (creds.length) this.used = [...new Set(creds.map((c) => c.source))].join(", ");
    return creds;
  }
}

export function dedupe(names: readonly string[]): string[] {
  return [...new Set(names.filter((n) => n))];
}
