// What an SBOM is written from: the coalesced view of one indexed image (../indexer/coalesce.ts, which
// unlike Clair's IndexReport keeps purls, file paths, licences and dependencies) and a few facts about the
// image and the tool. The writers are pure: the same input gives the same document, byte for byte; only
// `timestamp` and `uuid` differ between two runs, and the caller chooses them.
import type { CoalescedPackage } from "../indexer/coalesce.js";
import type { Distribution, Package } from "../model/packages.js";

export interface SbomImage {
  /** What the user named: a registry reference, `oci:DIR:TAG`... (the document's name). */
  name: string;
  /** The image manifest's digest. */
  manifest: string;
  /** The layer digests, bottom to top. */
  layers: string[];
}

export interface SbomInput {
  image: SbomImage;
  packages: readonly CoalescedPackage[];
  distribution?: Distribution;
  tool: { name: string; version: string };
  /** When the document was made, ISO 8601 in UTC to the second (`2026-12-04T22:50:00Z`). */
  timestamp: string;
  /** A random UUID naming this document (CycloneDX serialNumber, SPDX documentNamespace). */
  uuid: string;
}

/** One package of the image, as both writers describe it. */
export interface Component {
  /** Unique in the document and the same for the same package in every run: the purl, made unique. */
  ref: string;
  pkg: Package;
  purl: string;
  /** The layer that introduced it. */
  layer: string;
  /** True for packages of the OS package manager (dpkg, apk, rpm). */
  os: boolean;
  /** The OS package that installed a language package's files, when one did. */
  ownedBy?: string;
  /** The refs of the installed packages its recorded dependencies resolve to, sorted. */
  dependsOn: string[];
}

export type SbomFormat = "cyclonedx" | "spdx-json";
