// The security tracker JSON (https://security-tracker.debian.org/tracker/data/json):
//   { source: { id: { description?, scope?, debianbug?, releases: { codename: {status, fixed_version?,
//     urgency?, nodsa?, nodsa_reason?, repositories} } } } }
// Walked with Object.keys (never key order dependent), every leaf checked; a record of the wrong shape is a
// skipped record, never a crash.

import { z } from "zod";
import type { RawFile } from "../../../model/advisory.js";
import { LIMITS, SIZE_CAPS, clip, entriesOf, isRecord, kindOf, own, readTopRecord, zodReason, type SkipLog } from "../../input.js";
import type { DebianBuilder } from "./builder.js";
import { debianEcosystem, releaseRow, validBugId, validSourceName } from "./releases.js";

const Release = z.object({
  status: z.string().max(64),
  fixed_version: z.string().max(LIMITS.version).optional(),
  urgency: z.string().max(64).optional(),
  nodsa: z.string().optional(),
  nodsa_reason: z.string().max(64).optional(),
});

const Entry = z.object({
  description: z.string().optional(),
  scope: z.string().max(64).optional(),
  debianbug: z.number().int().nonnegative().optional(),
});

/** Reads one tracker JSON file into the builder; returns the number of rows added. */
export function readTrackerJson(file: RawFile, builder: DebianBuilder, skips: SkipLog): number {
  const top = readTopRecord(file, SIZE_CAPS.debianJson, "an object of source packages");
  const path = file.path;
  let rows = 0;
  for (const [source, ids] of entriesOf(top)) {
    if (!validSourceName(source)) {
      skips.add(path, source, "not a Debian source package name (or longer than 256 characters)");
      continue;
    }
    if (!isRecord(ids)) {
      skips.add(path, source, `value is ${kindOf(ids)}, expected an object of CVE ids`);
      continue;
    }
    for (const [id, raw] of entriesOf(ids)) {
      const record = `${source}/${id}`;
      if (!validBugId(id)) {
        skips.add(path, record, `not a tracker id (CVE-…, TEMP-…) or longer than ${LIMITS.id} characters`);
        continue;
      }
      if (!isRecord(raw)) {
        skips.add(path, record, `value is ${kindOf(raw)}, expected an object`);
        continue;
      }
      const entry = Entry.safeParse(raw);
      if (!entry.success) {
        skips.add(path, record, zodReason(entry.error));
        continue;
      }
      const releases = own(raw, "releases");
      if (!isRecord(releases)) {
        skips.add(path, record, `releases is ${kindOf(releases)}, expected an object of releases: no rows`);
        continue;
      }
      let added = 0;
      for (const [codename, relRaw] of entriesOf(releases)) {
        const relRecord = `${record}/${clip(codename, 40)}`;
        const ecosystem = debianEcosystem(codename);
        if (ecosystem === undefined) {
          skips.add(path, relRecord, `unknown Debian release ${JSON.stringify(clip(codename, 40))}`);
          continue;
        }
        const rel = Release.safeParse(relRaw);
        if (!rel.success) {
          skips.add(path, relRecord, isRecord(relRaw) ? zodReason(rel.error) : `value is ${kindOf(relRaw)}, expected an object`);
          continue;
        }
        const extra: Record<string, unknown> = {};
        if (entry.data.debianbug !== undefined) extra.bugs = [entry.data.debianbug];
        if (entry.data.scope !== undefined) extra.scope = entry.data.scope;
        const out = releaseRow(source, codename, ecosystem, rel.data, extra);
        if ("skip" in out) {
          skips.add(path, relRecord, out.skip);
          continue;
        }
        builder.row(id, path, out.row);
        added++;
      }
      if (added === 0) continue;
      rows += added;
      builder.summary(id, path, entry.data.description === undefined ? undefined : clip(entry.data.description, LIMITS.text));
      if (entry.data.debianbug !== undefined) builder.bug(id, path, entry.data.debianbug);
    }
  }
  return rows;
}
