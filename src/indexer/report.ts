// Clair v4's IndexReport, exactly as it goes on the wire (../shared/clair-api-v1/index_report.schema.json).
import type { Digest, Distribution, Environment, IndexState, Repository } from "./types.js";

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

/** Whether a report is final (a later Index call returns it as is). */
export function isFinished(r: Pick<IndexReport, "state">): boolean {
  return r.state === "IndexFinished";
}
