// SBOM documents of an indexed image: CycloneDX 1.5 JSON and SPDX 2.3 JSON, from the coalesced packages
// (Indexer.inventory) and a few facts about the image. `portcullis scan --format cyclonedx|spdx-json` and
// the report API's GET /indexer/api/v1/sbom/{digest} both write them through here.
import { randomUUID } from "node:crypto";
import { cyclonedx } from "./cyclonedx.js";
import { spdx } from "./spdx.js";
import type { SbomFormat, SbomInput } from "./types.js";

export type { SbomFormat, SbomImage, SbomInput } from "./types.js";

export const SBOM_FORMATS: readonly SbomFormat[] = ["cyclonedx", "spdx-json"];

/** The media type each format is served with. */
export const SBOM_MEDIA_TYPES: Readonly<Record<SbomFormat, string>> = {
  cyclonedx: "application/vnd.cyclonedx+json; version=1.5",
  "spdx-json": "application/spdx+json",
};

export function isSbomFormat(s: string): s is SbomFormat {
  return (SBOM_FORMATS as readonly string[]).includes(s);
}

/** The document as one line of JSON and a newline. */
export function writeSbom(format: SbomFormat, input: SbomInput): string {
  return `${JSON.stringify(format === "cyclonedx" ? cyclonedx(input) : spdx(input))}\n`;
}

/** The time and UUID of a new document: now, to the second, and a random UUID. */
export function documentStamp(now = new Date()): Pick<SbomInput, "timestamp" | "uuid"> {
  return { timestamp: `${now.toISOString().slice(0, 19)}Z`, uuid: randomUUID() };
}
