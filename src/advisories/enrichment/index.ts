// Per-CVE enrichment that is not an advisory: FIRST EPSS, CISA KEV, NVD CVSS. docs/advisories.md has the mapping.

export type { EnrichmentParseResult } from "./common.js";
export { detectEpss, parseEpss, type EpssParseOptions, type EpssParseResult } from "./epss.js";
export { detectKev, parseKev, type KevParseOptions, type KevParseResult } from "./kev.js";
export { detectNvd, detectNvdMeta, parseNvd, parseNvdMeta, type NvdFeedMeta, type NvdParseOptions, type NvdParseResult } from "./nvd.js";
