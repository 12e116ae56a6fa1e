// Per-CVE enrichment on matches (AdvisoryStore.enrichment: EPSS, CISA KEV, NVD CVSS): EPSS and KEV are
// attached, and a match whose records give no severity (Alpine's secdb, golang/vulndb, PyPA, a Debian
// "not yet assigned") takes one from the enrichment's CVSS: v3.x first, then v4.0, then v2.0, each list
// in the enrichment's own order (NVD's primary score before secondary ones), as the OSV parser ranks a
// record's own vectors.
import { severityFromCvss } from "../advisories/cvss.js";
import type { Cvss } from "../model/advisory.js";
import type { EnrichmentRow } from "../store/advisory-types.js";
import type { Match } from "../model/match.js";

const VERSION_ORDER: ReadonlyArray<Cvss["version"]> = ["3.1", "3.0", "4.0", "2.0"];

/** The CVEs to ask the store's enrichment for: every CVE id among the matches' ids and aliases. */
export function enrichmentKeys(matches: readonly Match[]): string[] {
  const out = new Set<string>();
  for (const m of matches) for (const id of [m.id, ...m.aliases]) if (/^CVE-\d{4}-\d+$/.test(id)) out.add(id);
  return [...out].sort();
}

function bestScored(list: readonly Cvss[]): Cvss | undefined {
  for (const v of VERSION_ORDER) {
    const c = list.find((x) => x.version === v && typeof x.score === "number");
    if (c) return c;
  }
  return undefined;
}

/** Copies of the matches with EPSS, KEV and (where the records had none) a CVSS-derived severity. */
export function enrichMatches(matches: readonly Match[], enrichment: ReadonlyMap<string, EnrichmentRow>): Match[] {
  return matches.map((m) => {
    const rows = [m.id, ...m.aliases].map((id) => enrichment.get(id)).filter((r): r is EnrichmentRow => r !== undefined);
    if (rows.length === 0) return m;
    const out: Match = { ...m };
    const epss = rows.find((r) => r.epss)?.epss;
    const kev = rows.find((r) => r.kev)?.kev;
    if (epss) out.epss = epss;
    if (kev) out.kev = kev;
    if (m.severity === "Unknown") {
      const own = bestScored(m.cvss);
      const extra = own ? undefined : bestScored(rows.flatMap((r) => r.cvss ?? []));
      const c = own ?? extra;
      if (c && typeof c.score === "number") {
        out.severity = severityFromCvss(c.score);
        out.severityFrom = `CVSS ${c.version} ${c.score}${c.source ? ` (${c.source})` : ""}`;
        if (extra) out.cvss = [...m.cvss, extra];
      }
    }
    return out;
  });
}
