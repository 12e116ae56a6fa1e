// `portcullis db …`: the advisory database. update (from upstream or mirrors), import (files, directories,
// OSV zips, bundles), export / push / pull (the offline bundle, as a file or an OCI artifact), status.
// Every command takes the store options of `scan` and serve's --database-url.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { defaultCatalogue } from "../advisories/catalogue.js";
import { BUNDLE_ARTIFACT_TYPE, BUNDLE_MEDIA_TYPE, writeBundle } from "../advisories/bundle.js";
import { importBundle, importPlans, planImport, reparseSources, type ImportResult } from "../advisories/import.js";
import { updateSources, type UpdateResult } from "../advisories/update.js";
import { parseReference } from "../image/reference.js";
import { RegistryClient } from "../registry/client.js";
import type { Operation, SourceStatus } from "../store/advisory-types.js";
import { openCliStore, waitNotice } from "../store/open.js";
import type { Store } from "../store/types.js";
import { age } from "./age.js";
import { EXIT, UsageError } from "./exit.js";
import { cliKeyring, readStdin } from "./scan.js";
import { pullBundle } from "./advisory-round.js";
import { version } from "./version.js";

export const DB_HELP = `Usage: portcullis db <command> [options]

The advisory database: which versions of which packages are vulnerable, from each distribution's and
ecosystem's own data, kept in the same store as the index.

Commands:
  update [--source NAME]... [--mirror NAME=URL]...
                          download the sources (all those updated by default, or the ones named) from
                          their upstream or a mirror (NAME's files are then fetched from URL/<path>);
                          unchanged files (ETag, Last-Modified) are not downloaded again
  import PATH... [--kind SOURCE]
                          import upstream files as published: a directory or .zip of OSV records, a Debian
                          tracker JSON, Alpine secdb files, CSAF VEX documents, EPSS/KEV/NVD files, or a
                          bundle made by 'db export'; each file's source is detected, or given by --kind
  export FILE [--source NAME]...
                          write a bundle (.tar.zst: the raw upstream files and a manifest with digests,
                          fetch times, licences) of the latest data of every source, or of those named
  push REF [--source NAME]...   the same bundle, pushed to an OCI registry as an artifact
  pull REF                pull a bundle from an OCI registry and import it
  reparse [--source NAME]...
                          parse each source's stored raw files again with this build's parsers (after an
                          upgrade, or for imported sources), without a download
  status [--json]         each source: when it was updated, from where, records, skipped records
  sources                 the sources this build knows, with their upstream files

Options:
  --store PATH|URL        the store: a folder for the embedded store (default ~/.local/share/portcullis/store,
                          PORTCULLIS_STORE) or postgres://... for PostgreSQL
  --database-url URL      PostgreSQL, as serve takes it (PORTCULLIS_DATABASE_URL)
  --username USER, --password-stdin   registry credentials for push and pull (else the Docker config)
  -h, --help              show this help

Exit codes: 0 done, 1 a source or the command failed (each failure is named), 2 usage.
`;

interface DbArgs {
  command: string;
  positionals: string[];
  sources: string[];
  mirrors: Record<string, string>;
  kind?: string;
  json: boolean;
  store?: string;
  username?: string;
  passwordStdin: boolean;
}

export function parseDbArgs(args: string[], env: NodeJS.ProcessEnv = process.env): DbArgs | "help" {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      source: { type: "string", multiple: true },
      mirror: { type: "string", multiple: true },
      kind: { type: "string" },
      json: { type: "boolean", default: false },
      store: { type: "string" },
      "database-url": { type: "string" },
      username: { type: "string" },
      "password-stdin": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || positionals[0] === "help") return "help";
  const [command, ...rest] = positionals;
  if (!command) throw new UsageError("db needs a command: update, import, export, push, pull, reparse, status or sources");
  if (values.store && values["database-url"]) throw new UsageError("give --store or --database-url, not both");
  const dbUrl = values["database-url"];
  if (dbUrl !== undefined && !/^postgres(ql)?:\/\//.test(dbUrl)) throw new UsageError("--database-url must be a postgres:// URL");
  const mirrors: Record<string, string> = {};
  for (const m of values.mirror ?? []) {
    const eq = m.indexOf("=");
    const name = m.slice(0, eq);
    const url = m.slice(eq + 1);
    if (eq <= 0 || !/^https?:\/\/[^/]/.test(url)) throw new UsageError(`--mirror must be NAME=http(s)://URL, got ${JSON.stringify(m)}`);
    mirrors[name] = url;
  }
  if (values["password-stdin"] && !values.username) throw new UsageError("--password-stdin needs --username");
  return {
    command, positionals: rest, sources: values.source ?? [], mirrors, kind: values.kind, json: values.json ?? false,
    store: values.store ?? dbUrl ?? env.PORTCULLIS_DATABASE_URL ?? env.PORTCULLIS_STORE,
    username: values.username, passwordStdin: values["password-stdin"] ?? false,
  };
}

export async function dbCommand(args: string[], env: NodeJS.ProcessEnv = process.env, out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const a = parseDbArgs(args, env);
  if (a === "help") {
    out(DB_HELP);
    return EXIT.ok;
  }
  const catalogue = defaultCatalogue();
  const want = (n: number, what: string) => {
    if (a.positionals.length !== n) throw new UsageError(`db ${a.command} takes ${what}`);
  };
  const named = () => {
    const unknown = a.sources.filter((s) => !catalogue.get(s));
    if (unknown.length) throw new UsageError(`unknown --source ${unknown.join(", ")}; known: ${catalogue.all().map((s) => s.name).join(", ")}`);
    return a.sources.map((s) => catalogue.get(s)!);
  };
  switch (a.command) {
    case "sources": {
      want(0, "no arguments");
      out(table(["SOURCE", "KIND", "DEFAULT", "UPDATES FROM"], catalogue.all().map((s) => [s.name, s.kind, s.updateByDefault ? "yes" : "no", s.from])));
      return EXIT.ok;
    }
    case "update": {
      want(0, "no arguments (sources go in --source)");
      for (const m of Object.keys(a.mirrors)) if (!catalogue.get(m)) throw new UsageError(`--mirror names unknown source ${m}`);
      const sources = a.sources.length ? named() : catalogue.all().filter((s) => s.updateByDefault);
      return withStore(a, async (store) => {
        const results = await updateSources(store.advisories, sources, { mirrors: a.mirrors, userAgent: `portcullis/${version()}`, log: (m) => err(`portcullis: ${m}\n`) });
        out(updateTable(results));
        return results.some((r) => r.status === "failed") ? EXIT.failed : EXIT.ok;
      });
    }
    case "import": {
      if (!a.positionals.length) throw new UsageError("db import takes one or more PATHs");
      if (a.kind && !catalogue.get(a.kind)) throw new UsageError(`unknown --kind ${a.kind}; known: ${catalogue.all().map((s) => s.name).join(", ")}`);
      const plan = await planImport(a.positionals, catalogue, { kind: a.kind });
      if (!plan.plans.length && !plan.bundles.length) {
        throw Object.assign(new Error(`nothing to import: no file under ${a.positionals.join(", ")} is advisory data this build recognises${plan.unrecognised.length ? ` (${plan.unrecognised.length} files not recognised, e.g. ${plan.unrecognised[0]})` : ""}; name the source with --kind`), { code: "ADVISORY_IMPORT" });
      }
      return withStore(a, async (store) => {
        const results: ImportResult[] = [];
        for (const b of plan.bundles) results.push(...(await importBundle(store.advisories, catalogue, b.path, `bundle ${b.path}`)));
        results.push(...(await importPlans(store.advisories, plan.plans)));
        out(importTable(results));
        if (plan.unrecognised.length) err(`portcullis: ${plan.unrecognised.length} file(s) not recognised and left out, e.g. ${plan.unrecognised.slice(0, 3).join(", ")}\n`);
        return results.some((r) => r.status === "failed") ? EXIT.failed : EXIT.ok;
      });
    }
    case "export": {
      want(1, "one FILE");
      const file = a.positionals[0]!;
      return withStore(a, async (store) => {
        const { manifest, size } = await writeBundle(store.advisories, file, { sources: a.sources, generator: `portcullis ${version()}` });
        out(`${file}: ${manifest.sources.length} source(s), ${manifest.sources.reduce((n, s) => n + s.files.length, 0)} file(s), ${mb(size)}\n`);
        return EXIT.ok;
      });
    }
    case "push": {
      want(1, "one REF");
      const ref = parseReference(a.positionals[0]!);
      return withStore(a, async (store) => {
        // The bundle goes to a temporary file first (written as a stream), then up a chunk at a time.
        const dir = await mkdtemp(join(tmpdir(), "portcullis-push-"));
        try {
          const file = join(dir, "advisories.tar.zst");
          const { manifest, size, digest } = await writeBundle(store.advisories, file, { sources: a.sources, generator: `portcullis ${version()}` });
          const client = await registryClient(a, env, ref.registry);
          try {
            const pushed = await client.pushArtifact(ref, {
              artifactType: BUNDLE_ARTIFACT_TYPE,
              layers: [{ mediaType: BUNDLE_MEDIA_TYPE, file, digest, size, annotations: { "org.opencontainers.image.title": "advisories.tar.zst" } }],
              annotations: { "org.opencontainers.image.created": manifest.created, "dev.portcullis.sources": manifest.sources.map((s) => s.name).join(",") },
            });
            out(`${a.positionals[0]}@${pushed.digest}: ${manifest.sources.length} source(s), ${mb(size)}\n`);
            return EXIT.ok;
          } finally {
            await client.close();
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
    case "pull": {
      want(1, "one REF");
      const ref = parseReference(a.positionals[0]!);
      return withStore(a, async (store) => {
        const client = await registryClient(a, env, ref.registry);
        try {
          const { results } = await pullBundle(client, ref, store.advisories, catalogue, a.positionals[0]!);
          out(importTable(results));
          return results.some((r) => r.status === "failed") ? EXIT.failed : EXIT.ok;
        } finally {
          await client.close();
        }
      });
    }
    case "reparse": {
      want(0, "no arguments (sources go in --source)");
      return withStore(a, async (store) => {
        const results = await reparseSources(store.advisories, catalogue, a.sources);
        const missing = a.sources.filter((n) => !results.some((r) => r.source === n));
        if (missing.length) err(`portcullis: no data in the store for ${missing.join(", ")}\n`);
        out(importTable(results));
        return results.some((r) => r.status === "failed") || missing.length ? EXIT.failed : EXIT.ok;
      });
    }
    case "status": {
      want(0, "no arguments");
      return withStore(a, async (store) => {
        const st = await store.advisories.status();
        if (a.json) out(`${JSON.stringify(st.map(statusJson), null, 2)}\n`);
        else out(st.length ? statusTable(st) : "no advisory data yet: run portcullis db update, or db import / db pull for an offline bundle\n");
        return EXIT.ok;
      });
    }
    default:
      throw new UsageError(`unknown db command ${JSON.stringify(a.command)}`);
  }
}

async function withStore(a: DbArgs, fn: (store: Store) => Promise<number>): Promise<number> {
  const store = await openCliStore(a.store, { onWait: waitNotice });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function registryClient(a: DbArgs, env: NodeJS.ProcessEnv, registry: string): Promise<RegistryClient> {
  const password = a.passwordStdin ? await readStdin() : undefined;
  const keyring = await cliKeyring(env, a.username ? { registry, credential: { username: a.username, password, source: "--username/--password-stdin" } } : undefined);
  return new RegistryClient({ keyring });
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return `${[line(head), ...rows.map(line)].join("\n")}\n`;
}

function mb(n: number): string {
  return n < 1e5 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

function changes(op: Operation): string {
  const s = op.stats;
  if (op.kind === "enrichment") return `${s.enrichment} CVEs${s.skipped ? `, ${s.skipped} skipped` : ""}`;
  return `${s.advisories} records, ${s.affected} affected (+${s.added} -${s.removed} ~${s.modified})${s.skipped ? `, ${s.skipped} skipped` : ""}`;
}

function updateTable(results: readonly UpdateResult[]): string {
  return table(["SOURCE", "RESULT", "DOWNLOADED", "TIME", "DETAIL"], results.map((r) => [
    r.source, r.status, mb(r.downloaded), `${(r.durationMs / 1000).toFixed(1)} s`,
    r.status === "failed" ? r.error ?? "" : r.operation ? changes(r.operation) : "",
  ]));
}

function importTable(results: readonly ImportResult[]): string {
  return table(["SOURCE", "RESULT", "FILES", "DETAIL"], results.map((r) => [
    r.source, r.status, String(r.files), r.status === "failed" ? r.error ?? "" : r.operation ? changes(r.operation) : "",
  ]));
}

function statusTable(st: readonly SourceStatus[]): string {
  return table(["SOURCE", "KIND", "AGE", "RECORDS", "AFFECTED", "SKIPPED", "ORIGIN"], st.map((s) => [
    s.source, s.kind, age(s.latest.createdAt), s.kind === "enrichment" ? `${s.latest.stats.enrichment} CVEs` : String(s.advisories),
    s.kind === "enrichment" ? "-" : String(s.affected), String(s.latest.stats.skipped), s.latest.origin,
  ]));
}

function statusJson(s: SourceStatus) {
  return {
    source: s.source, kind: s.kind, updatedAt: s.latest.createdAt, ageSeconds: Math.round((Date.now() - Date.parse(s.latest.createdAt)) / 1000),
    operation: s.latest.ref, origin: s.latest.origin, parserVersion: s.latest.parserVersion, operations: s.operations,
    records: s.advisories, affected: s.affected, stats: s.latest.stats, files: s.latest.streamed ? undefined : s.latest.files, fileCount: s.latest.fileCount, licence: s.latest.licence, attribution: s.latest.attribution,
  };
}
