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
  repository?: Record<string, Omit<Repository, "cpe"> & { id: string; cpe?: string }>;
  environments?: Record<string, Environment[]>;
}

/** Whether a report is final (a later Index call returns it as is). */
export function isFinished(r: Pick<IndexReport, "state">): boolean {
  return r.state === "IndexFinished";
}
