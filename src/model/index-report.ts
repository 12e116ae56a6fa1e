// Clair v4's IndexReport, exactly as it goes on the wire (../shared/clair-api-v1/index_report.schema.json).
import type { Digest } from "./image.js";
import type { Distribution, Environment, Repository } from "./packages.js";

export type IndexState =
  | "CheckManifest"
  | "FetchLayers"
  | "ScanLayers"
  | "Coalesce"
  | "IndexManifest"
  | "IndexFinished"
  | "IndexError";

export interface WirePackage {
  id: string;
  name: string;
  version: string;
  kind?: "BINARY" | "SOURCE";
  source?: WirePackage;
  normalized_version?: string;
  module?: string;
  arch?: string;
  cpe?: string;
}

export interface IndexReport {
  manifest_hash: Digest;
  state: IndexState;
  success: boolean;
  err?: string;
  packages?: Record<string, WirePackage>;
  distributions?: Record<string, Omit<Distribution, "cpe"> & { id: string; cpe?: string }>;
  repository?: Record<string, Omit<Repository, "cpe" | "uri"> & { id: string; cpe?: string; uri?: string }>;
  environments?: Record<string, Environment[]>;
}

/**
 * The key of a Repository that names the OS package owning a language package's files (coalesce.ts): its
 * `name` is the OS package's name, and the language package's environment lists it in repository_ids.
 * Clair's schema is closed everywhere else; a Repository with an unknown key is ignored by Clair's matchers.
 */
export const OWNER_REPOSITORY_KEY = "portcullis.dev/os-package-owner";
