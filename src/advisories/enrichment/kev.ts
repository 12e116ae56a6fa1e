// CISA's Known Exploited Vulnerabilities catalogue: `known_exploited_vulnerabilities.json`
// (`catalogVersion`, `dateReleased`, `count`, `vulnerabilities[]` with `cveID`, `dateAdded`, `dueDate`,
// `knownRansomwareCampaignUse`, ...).

import { z } from "zod";
import { AdvisoryInputError, MiB, contentText, firstIssue, isCveId, parseJsonText, sniffText } from "../input.js";
import type { Enrichment, RawFile } from "../../model/advisory.js";
import { isIsoDate, type EnrichmentParseResult } from "./common.js";

export interface KevParseOptions {
  /** Largest (decompressed) file; the catalogue is about 1.5 MB (default 64 MiB). */
  maxBytes?: number;
}

export interface KevParseResult extends EnrichmentParseResult {
  kev: NonNullable<Enrichment["kev"]>;
  catalogVersion: string;
  dateReleased?: string;
}

const Text = z.string().max(1024);
const Entry = z.object({
  cveID: z.string().refine(isCveId, "not a CVE id"),
  vendorProject: Text.nullish(),
  product: Text.nullish(),
  vulnerabilityName: Text.nullish(),
  dateAdded: z.string().refine(isIsoDate, "not a YYYY-MM-DD date"),
  dueDate: z.string().refine(isIsoDate, "not a YYYY-MM-DD date").nullish(),
  knownRansomwareCampaignUse: z.string().max(64).nullish(),
});

/** Parses the KEV JSON. An entry of the wrong shape is skipped with the reason; a file that is not the catalogue throws. */
export function parseKev(file: RawFile, options?: KevParseOptions): KevParseResult {
  const value = parseJsonText(file.path, contentText(file, options?.maxBytes ?? 64 * MiB));
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AdvisoryInputError("BAD_SHAPE", file.path, "not the KEV catalogue: expected a JSON object");
  }
  const o = value as Record<string, unknown>;
  if (typeof o.catalogVersion !== "string" || o.catalogVersion.length > 64 || !Array.isArray(o.vulnerabilities)) {
    throw new AdvisoryInputError("BAD_SHAPE", file.path, "not the KEV catalogue: no catalogVersion or vulnerabilities list");
  }
  const out: KevParseResult = { kev: [], skipped: [], catalogVersion: o.catalogVersion };
  if (typeof o.dateReleased === "string" && o.dateReleased.length <= 64) out.dateReleased = o.dateReleased;
  const seen = new Set<string>();
  o.vulnerabilities.forEach((raw, i) => {
    const parsed = Entry.safeParse(raw);
    const cve = raw !== null && typeof raw === "object" ? (raw as { cveID?: unknown }).cveID : undefined;
    const record = isCveId(cve) ? cve : `vulnerabilities[${i}]`;
    if (!parsed.success) {
      out.skipped.push({ file: file.path, record, reason: `invalid entry: ${firstIssue(parsed.error)}` });
      return;
    }
    const e = parsed.data;
    if (seen.has(e.cveID)) {
      out.skipped.push({ file: file.path, record, reason: `${e.cveID} repeated` });
      return;
    }
    seen.add(e.cveID);
    const entry: KevParseResult["kev"][number] = { cve: e.cveID, dateAdded: e.dateAdded };
    if (e.dueDate) entry.dueDate = e.dueDate;
    if (e.knownRansomwareCampaignUse) entry.ransomware = e.knownRansomwareCampaignUse;
    if (e.vendorProject) entry.vendor = e.vendorProject;
    if (e.product) entry.product = e.product;
    if (e.vulnerabilityName) entry.name = e.vulnerabilityName;
    out.kev.push(entry);
  });
  return out;
}

/** The KEV catalogue, by a `catalogVersion` key near the top of a JSON object. */
export function detectKev(file: RawFile): boolean {
  const head = sniffText(file.bytes, 16 * 1024).trimStart();
  return head.startsWith("{") && /"catalogVersion"\s*:\s*"/.test(head);
}
