// The public API of the registry auth folder: credentials and keyrings, WWW-Authenticate challenges,
// docker config files and pull secrets, and the opt-in cloud credential helpers (ECR, GCR/Artifact Registry).

export type { Credential, CredentialProvider, Keyring } from "./types.js";

export { bearerScopes, findChallenge, parseChallenges } from "./challenge.js";
export type { Challenge } from "./challenge.js";

export {
  DockerConfigError,
  parseDockerConfig,
  parseDockerConfigSecret,
  parseDockerConfigValue,
  SECRET_TYPE_DOCKERCFG,
  SECRET_TYPE_DOCKER_CONFIG_JSON,
} from "./dockerconfig.js";
export type { DockerConfig, DockerConfigEntry, DockerConfigFormat, DockerConfigSecret } from "./dockerconfig.js";

export {
  ChainKeyring,
  DOCKER_HUB_HOSTS,
  DOCKER_HUB_REGISTRY,
  DockerConfigKeyring,
  dedupeCredentials,
  imageRegistryHost,
  normalizeRegistryKey,
  parseImageLocation,
  parseRegistryKey,
  registryKeyMatches,
} from "./keyring.js";
export type { ChainKeyringOptions, ImageLocation, RegistryKey } from "./keyring.js";

export { EcrCredentialProvider, EcrOptionsSchema, parseEcrHost } from "./cloud/ecr.js";
export type { EcrOptions, EcrTarget } from "./cloud/ecr.js";
export { GcrCredentialProvider } from "./cloud/gcr.js";
export type { GcrOptions } from "./cloud/gcr.js";
export { CloudCredentialError } from "./cloud/errors.js";
export { cloudProviders } from "./cloud/providers.js";
