// The small interface the registry client takes its credentials through. It knows nothing of Kubernetes:
// whoever calls the client (the CLI, the controller) builds a Keyring from docker config files, pull
// secrets and cloud helpers.

/** One way to authenticate to a registry. Exactly one of the forms is used, in this order of preference. */
export interface Credential {
  /** Basic credentials (also used to obtain Bearer tokens from a token server). */
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker config `identitytoken`), exchanged at the token realm. */
  identityToken?: string;
  /** A bearer token sent to the registry as is (docker config `registrytoken`). */
  registryToken?: string;
  /**
   * Where it came from, for status and logs; never the secret itself. Examples: "secret default/regcred",
   * "docker-config /root/.docker/config.json", "ecr", "gcr-metadata".
   */
  source: string;
}

/**
 * Gives the credentials to try, in order, for an image. `image` is `host[:port]/repository` exactly as
 * the registry client normalised it (for Docker Hub: `registry-1.docker.io/library/nginx`... callers also
 * match `docker.io` / `index.docker.io` keys). An empty list means: go anonymous.
 */
export interface Keyring {
  lookup(image: string, signal?: AbortSignal): Promise<Credential[]>;
}

/** A cloud credential helper (ECR, GCR/Artifact Registry, ACR): opt-in, one registry family each. */
export interface CredentialProvider {
  readonly name: string;
  /** True when this provider is responsible for the registry host (`host[:port]`). Cheap, no I/O. */
  matches(host: string): boolean;
  /**
   * Credentials for the host, fetched or from the provider's cache. Undefined when the provider is
   * responsible but declines (an excluded account or region, an embargoed region): the caller goes on.
   * Throws a RegistryAuthError-like error with a `code` when the cloud call fails.
   */
  get(host: string, signal?: AbortSignal): Promise<Credential | undefined>;
}
