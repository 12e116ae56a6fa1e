// `portcullis db import PATH…`: a Portcullis bundle, or upstream files as their sources publish them (a
// directory or .zip of OSV records, a Debian tracker JSON, Alpine secdb files, a directory of CSAF VEX
// documents, EPSS/KEV/NVD files). Each file's source is detected from its content (or given with
// --kind); the files of one source become one operation, parsed by the same parser as `db update`.
import { lstat, open, readdir, readFile } from "node:fs/promises";
import { basename, join, relative, sep } from "node:path";
import type { AdvisoryStore, Operation, OperationInput } from "../store/advisory-types.js";
import { BundleError, readBundle, walkBundle, type BundleEntry, type BundleInput, type BundleLimits, type BundleManifest, DEFAULT_BUNDLE_LIMITS } from "./bundle.js";
import { sniffCompression } from "../layers/decompress.js";
import type { AdvisorySource } from "./source.js";
import { createHash } from "node:crypto";
import type { RawFile } from "../model/advisory.js";
import { describeError, PortcullisError } from "../errors.js";
import { DocumentBatch } from "./batch.js";

export interface SourceCatalogue {
  all(): readonly AdvisorySource[];
  /** The source of this name (OSV sources exist per ecosystem: `osv-npm`), or undefined. */
  get(name: string): AdvisorySource | undefined;
}

export interface ImportLimits {
  /** Most files read from the paths given. */
  maxFiles: number;
  /** Most bytes read from the paths given, all files together. */
  maxBytes: number;
}

export const DEFAULT_IMPORT_LIMITS: ImportLimits = { maxFiles: 2_000_000, maxBytes: 4 * 1024 ** 3 };

export interface ImportPlan {
  source: AdvisorySource;
  origin: string;
  files: RawFile[];
}

export interface ImportResult {
  source: string;
  status: "imported" | "unchanged" | "failed";
  operation?: Operation;
  error?: string;
  files: number;
}

export class ImportError extends PortcullisError {
  readonly domain = "advisory";
  override name = "ImportError";
  readonly code = "ADVISORY_IMPORT";
}

/** True for the bytes of a bundle (a compressed or plain tar); OSV exports are zips, the rest is text. */
function looksLikeTar(bytes: Buffer): boolean {
  const c = sniffCompression(bytes.subarray(0, 4));
  if (c === "zstd" || c === "gzip") return true;
  return bytes.length >= 512 && bytes.subarray(257, 262).toString("latin1") === "ustar";
}

/**
 * Works out which source each file belongs to. Files no source recognises are returned, not dropped
 * silently; with `kind`, every file goes to that source.
 */
export async function planImport(paths: readonly string[], catalogue: SourceCatalogue, o: { kind?: string; limits?: ImportLimits } = {}): Promise<{ plans: ImportPlan[]; bundles: Array<{ path: string }>; unrecognised: string[] }> {
  const limits = o.limits ?? DEFAULT_IMPORT_LIMITS;
  const forced = o.kind ? catalogue.get(o.kind) : undefined;
  if (o.kind && !forced) throw new ImportError(`unknown --kind ${JSON.stringify(o.kind)}; known: ${catalogue.all().map((s) => s.name).join(", ")}`);
  const groups = new Map<string, ImportPlan>();
  const bundles: Array<{ path: string }> = [];
  const unrecognised: string[] = [];
  let files = 0;
  let bytes = 0;
  for (const p of paths) {
    const st = await lstat(p).catch((e: NodeJS.ErrnoException) => {
      throw new ImportError(`${p}: ${e.code === "ENOENT" ? "no such file or directory" : e.message}`);
    });
    const entries: Array<{ full: string; rel: string }> = [];
    if (st.isDirectory()) {
      for await (const full of walk(p)) entries.push({ full, rel: relative(p, full).split(sep).join("/") });
    } else if (st.isFile()) {
      entries.push({ full: p, rel: basename(p) });
    } else {
      throw new ImportError(`${p}: not a file or directory`);
    }
    for (const e of entries) {
      if (++files > limits.maxFiles) throw new ImportError(`more than ${limits.maxFiles} files under ${paths.join(", ")}`);
      // A bundle is read as a stream when imported (its own limits apply), never whole.
      if (!forced && st.isFile() && looksLikeTar(await readHead(e.full))) {
        bundles.push({ path: e.full });
        continue;
      }
      const data = await readFile(e.full);
      bytes += data.length;
      if (bytes > limits.maxBytes) throw new ImportError(`more than ${limits.maxBytes} bytes under ${paths.join(", ")}`);
      const raw: RawFile = { path: e.rel, bytes: data };
      const source = forced ?? catalogue.all().find((s) => s.detect(raw));
      if (!source) {
        unrecognised.push(e.full);
        continue;
      }
      const key = source.name;
      const plan = groups.get(key) ?? { source, origin: `import ${paths.join(" ")}`, files: [] };
      plan.files.push(raw);
      groups.set(key, plan);
    }
  }
  // Sources that name themselves from their files (OSV by ecosystem) do so now.
  const plans: ImportPlan[] = [];
  for (const plan of groups.values()) {
    const name = plan.source.nameFor?.(plan.files) ?? plan.source.name;
    const source = name === plan.source.name ? plan.source : catalogue.get(name);
    if (!source) throw new ImportError(`source ${name} (named by the files of ${plan.source.name}) is not known`);
    plans.push({ ...plan, source });
  }
  return { plans, bundles, unrecognised };
}

/** The first 512 bytes of a file: enough to tell a (compressed) tar. */
async function readHead(path: string): Promise<Buffer> {
  const h = await open(path, "r");
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await h.read(buf, 0, 512, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await h.close();
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue; // .git, .DS_Store
    const full = join(dir, e.name);
    if (e.isDirectory()) yield* walk(full);
    else if (e.isFile()) yield full;
  }
}

/** Parses and records each plan; one source's failure is reported and changes nothing of it. */
export async function importPlans(store: AdvisoryStore, plans: readonly ImportPlan[]): Promise<ImportResult[]> {
  const out: ImportResult[] = [];
  for (const p of plans) {
    out.push(
      await recordPlan(store, p, () => {
        const parsed = p.source.parse(p.files);
        return {
          source: p.source.name, kind: p.source.kind, origin: p.origin, parserVersion: p.source.parserVersion, fingerprint: {},
          licence: p.source.licence, attribution: p.source.attribution,
          files: p.files.map((f) => ({ path: f.path, bytes: f.bytes, sha256: createHash("sha256").update(f.bytes).digest("hex"), size: f.bytes.length })),
          advisories: parsed.advisories, enrichment: parsed.enrichment, skipped: parsed.skipped,
        };
      }),
    );
  }
  return out;
}

/**
 * Records one plan's operation, built by `operation` (which may parse, and throw); any failure becomes a
 * `failed` result naming the error and its code, so one source's failure changes nothing of it and stops no other.
 */
async function recordPlan(store: AdvisoryStore, p: ImportPlan, operation: () => OperationInput): Promise<ImportResult> {
  try {
    const rec = await store.recordOperation(operation());
    return { source: p.source.name, status: rec.unchanged ? "unchanged" : "imported", operation: rec.operation, files: p.files.length };
  } catch (e) {
    return { source: p.source.name, status: "failed", error: describeError(e), files: p.files.length };
  }
}

/**
 * Imports a bundle (its bytes, or the path of a file, read as a stream). Nothing is written until the
 * whole bundle has been read through and checked (every file's size and digest against the manifest,
 * every source known to this build, every inline source parsed). Then each source is its own operation,
 * with the upstream's fingerprints and fetch details kept so a later update starts from them: a streamed
 * source (Red Hat) is read from the bundle a second time, a document at a time, into one streamed
 * operation (one transaction, so it is there whole or not at all), its digests checked again as it goes.
 * A file read twice that changed in between fails that source's operation, which then changes nothing.
 */
export async function importBundle(store: AdvisoryStore, catalogue: SourceCatalogue, input: BundleInput, origin: string, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS): Promise<ImportResult[]> {
  const { manifest, files } = await readBundle(input, limits);
  const plans: ImportPlan[] = [];
  for (const s of manifest.sources) {
    const source = catalogue.get(s.name);
    if (!source) throw new ImportError(`the bundle holds source ${s.name}, which this Portcullis does not know: use a newer Portcullis`);
    plans.push({ source, origin: `${origin} (bundle of ${manifest.created})`, files: files.get(s.name) ?? [] });
  }
  // Parse everything held before writing anything: a bundle one of whose sources this build cannot parse
  // changes nothing. (A streamed source is parsed a document at a time; a document that does not parse
  // is a skipped record, as in its updater.)
  const parsed = plans.map((p, i) => {
    if (manifest.sources[i]!.streamed) return undefined;
    try {
      return p.source.parse(p.files);
    } catch (e) {
      throw new ImportError(`the bundle's source ${p.source.name} cannot be parsed, nothing imported: ${(e as Error).message}`);
    }
  });
  const out = new Map<string, ImportResult>();
  if (manifest.sources.some((s) => s.streamed)) {
    for (const r of await importStreamed(store, plans, manifest, input, limits)) out.set(r.source, r);
  }
  for (const [i, p] of plans.entries()) {
    const m = manifest.sources[i]!;
    const r = parsed[i];
    if (!r) continue;
    out.set(p.source.name, await recordPlan(store, p, () => ({
      source: p.source.name, kind: p.source.kind, origin: p.origin, parserVersion: p.source.parserVersion, fingerprint: m.fingerprint,
      licence: m.licence || p.source.licence, attribution: m.attribution || p.source.attribution,
      files: m.files.map((f, j) => ({ ...f, bytes: p.files[j]!.bytes })),
      advisories: r.advisories, enrichment: r.enrichment, skipped: r.skipped,
    })));
  }
  return plans.map((p) => out.get(p.source.name)!);
}

/** The second pass: each streamed source's documents, from the bundle into one streamed operation. */
async function importStreamed(store: AdvisoryStore, plans: readonly ImportPlan[], manifest: BundleManifest, input: BundleInput, limits: BundleLimits): Promise<ImportResult[]> {
  const streamed = new Set(manifest.sources.filter((s) => s.streamed).map((s) => s.name));
  const out: ImportResult[] = [];
  const it = walkBundle(input, limits, (s) => streamed.has(s))[Symbol.asyncIterator]();
  const next = async (): Promise<BundleEntry | undefined> => {
    for (;;) {
      const r = await it.next();
      if (r.done) return undefined;
      if (!("manifest" in r.value)) return r.value;
    }
  };
  const record = async (name: string, first: BundleEntry | undefined): Promise<BundleEntry | undefined> => {
    const i = manifest.sources.findIndex((s) => s.name === name);
    const m = manifest.sources[i]!;
    const p = plans[i]!;
    let e = first;
    try {
      const rec = await store.recordStreamedOperation(
        { source: p.source.name, kind: p.source.kind, origin: p.origin, parserVersion: p.source.parserVersion, fingerprint: m.fingerprint, licence: m.licence || p.source.licence, attribution: m.attribution || p.source.attribution },
        async (w) => {
          const batch = new DocumentBatch(w, (files) => p.source.parse(files));
          while (e && e.source.name === name) {
            await batch.add(e.file, e.bytes!);
            e = await next();
          }
          await batch.flush();
        },
      );
      out.push({ source: name, status: rec.unchanged ? "unchanged" : "imported", operation: rec.operation, files: rec.operation.fileCount });
    } catch (err) {
      if (err instanceof BundleError) throw err;
      out.push({ source: name, status: "failed", error: describeError(err), files: m.files.length });
      while (e && e.source.name === name) e = await next();
    }
    return e;
  };
  let e = await next();
  const recorded = new Set<string>();
  try {
    while (e) {
      if (!streamed.has(e.source.name)) {
        e = await next();
        continue;
      }
      recorded.add(e.source.name);
      e = await record(e.source.name, e);
    }
    // A streamed source without files is an empty operation.
    for (const name of streamed) if (!recorded.has(name)) await record(name, undefined);
  } finally {
    await it.return?.(undefined);
  }
  return out;
}

/**
 * Parses each source's latest raw files again with this build's parser, from the store, without a
 * download: after an upgrade whose parsers changed, or for sources that are only imported. A source whose
 * parser version is the one that parsed its data is `unchanged`; a source this build does not know fails.
 */
export async function reparseSources(store: AdvisoryStore, catalogue: SourceCatalogue, names: readonly string[] = []): Promise<ImportResult[]> {
  const status = await store.status();
  const wanted = names.length ? status.filter((s) => names.includes(s.source)) : status;
  const out: ImportResult[] = [];
  for (const s of wanted) {
    const source = catalogue.get(s.source);
    if (!source) {
      out.push({ source: s.source, status: "failed", error: "this Portcullis has no parser for this source", files: s.latest.files.length });
      continue;
    }
    if (s.latest.streamed) {
      out.push(await reparseStreamed(store, source, s.latest));
      continue;
    }
    const files: RawFile[] = [];
    for (const f of s.latest.files) {
      const bytes = await store.rawFile(f.sha256);
      if (!bytes) {
        out.push({ source: s.source, status: "failed", error: `the store lost raw file ${f.path} (${f.sha256}): update or import the source again`, files: s.latest.files.length });
        break;
      }
      files.push({ path: f.path, bytes });
    }
    if (files.length !== s.latest.files.length) continue;
    out.push(await recordPlan(store, { source, origin: `reparse of ${s.latest.origin}`, files }, () => {
      const parsed = source.parse(files);
      return {
        source: source.name, kind: source.kind, origin: `reparse of ${s.latest.origin}`, parserVersion: source.parserVersion, fingerprint: s.latest.fingerprint,
        licence: s.latest.licence || source.licence, attribution: s.latest.attribution || source.attribution,
        files: s.latest.files.map((f, i) => ({ ...f, bytes: files[i]!.bytes })),
        advisories: parsed.advisories, enrichment: parsed.enrichment, skipped: parsed.skipped,
      };
    }));
  }
  return out;
}

/**
 * Reparses a streamed operation (Red Hat's documents) without holding it in memory: its raw files are
 * read from the store a batch at a time, each parsed on its own (one document per file), and written
 * as a new streamed operation.
 */
async function reparseStreamed(store: AdvisoryStore, source: AdvisorySource, latest: Operation): Promise<ImportResult> {
  const origin = `reparse of ${latest.origin}`;
  if (latest.parserVersion === source.parserVersion) return { source: source.name, status: "unchanged", operation: latest, files: latest.fileCount };
  try {
    const files = await store.operationFiles(latest.ref);
    const rec = await store.recordStreamedOperation(
      { source: source.name, kind: source.kind, origin, parserVersion: source.parserVersion, fingerprint: latest.fingerprint, licence: latest.licence || source.licence, attribution: latest.attribution || source.attribution },
      async (w) => {
        const BATCH_BYTES = 32 << 20;
        let batch: Array<{ file: (typeof files)[number]; bytes: Buffer }> = [];
        let size = 0;
        const flush = async () => {
          const advisories = [];
          const skipped = [];
          for (const { file, bytes } of batch) {
            try {
              const r = source.parse([{ path: file.path, bytes }]);
              advisories.push(...r.advisories);
              skipped.push(...r.skipped);
            } catch (e) {
              skipped.push({ file: file.path, record: file.path, reason: (e as Error).message });
            }
          }
          await w.add(batch.map(({ file, bytes }) => ({ ...file, bytes })), advisories, skipped);
          batch = [];
          size = 0;
        };
        for (const f of files) {
          const bytes = await w.rawFile(f.sha256);
          if (!bytes) throw new ImportError(`the store lost raw file ${f.path} (${f.sha256}): update or import the source again`);
          batch.push({ file: f, bytes });
          size += bytes.length;
          if (size >= BATCH_BYTES || batch.length >= 1000) await flush();
        }
        if (batch.length) await flush();
      },
    );
    return { source: source.name, status: rec.unchanged ? "unchanged" : "imported", operation: rec.operation, files: rec.operation.fileCount };
  } catch (e) {
    return { source: source.name, status: "failed", error: describeError(e), files: latest.fileCount };
  }
}
