// `portcullis scan IMAGE`: index one image on this machine with the embedded store (or PostgreSQL) and
// print a summary or Clair's IndexReport. The flags, output formats and exit codes are a contract that
// users' scripts and CI depend on: change them only compatibly.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { parsePlatform, defaultPlatform, formatPlatform, type Platform } from "../image/platform.js";
import { parseReference } from "../image/reference.js";
import type { IndexProgress, IndexResult } from "../indexer/indexer.js";
import type { LayerRead, LayerSource } from "../indexer/scan-layer.js";
import type { IndexReport } from "../model/index-report.js";
import type { Severity } from "../model/advisory.js";
import type { ManifestToIndex } from "../model/image.js";
import type { Credential, Keyring } from "../registry/auth/types.js";
import type { RegistryClient } from "../registry/client.js";
import type { Store } from "../store/types.js";
import { EXIT, UsageError } from "./exit.js";
import { NO_ADVISORY_DATA, parseSeverities, vulnTable } from "./vuln-table.js";
import type * as ScanVulns from "./scan-vulns.js";
import { errorCode } from "../errors.js";

// Only the argument parsing above is imported with this module, so `scan --help` and usage errors answer at
// once. A scan imports what it uses when it uses it: the store and the scanners always; the indexer unless a
// registry image is answered from the store; the registry client only for a registry image (a digest already
// in the store needs none); the cloud credential helpers (aws4) only when named; the matcher
// (./scan-vulns.ts) for table and vuln-json output unless the store has no advisory data, and its matching
// half only when the store's match cache misses. None of these may import the Kubernetes client, pino or
// prom-client (src/cli/startpath.test.ts checks).

export const SCAN_HELP = `Usage: portcullis scan IMAGE [options]

Index one image for installed packages and print what it found.

IMAGE is one of:
  REFERENCE                    a registry image: nginx:1.25, registry.example.com/app@sha256:...
  oci:DIR[:TAG]                an OCI image layout folder
  oci-archive:FILE[:TAG]       an OCI image layout in a tar file
  docker-archive:FILE[:TAG]    the output of docker save

Options:
  --format table|json|vuln-json|cyclonedx|spdx-json
                               table (default): a summary and the vulnerabilities found; json: exactly one
                               Clair v4 IndexReport on stdout; vuln-json: exactly one Clair v4
                               VulnerabilityReport on stdout; cyclonedx: a CycloneDX 1.5 SBOM (JSON);
                               spdx-json: an SPDX 2.3 SBOM (JSON)
  --severity LIST              show and count only these severities, comma separated: CRITICAL, HIGH,
                               MEDIUM, LOW, NEGLIGIBLE, UNKNOWN (default: all)
  --ignore-unfixed             show and count only vulnerabilities with a fixed version to upgrade to
  --exit-code N                exit N when at least one vulnerability remains after --severity and
                               --ignore-unfixed (default 0: vulnerabilities do not change the exit code)
  --store PATH|URL             the index store: a folder for the embedded store (default
                               ~/.local/share/portcullis/store) or postgres://... for PostgreSQL
  --platform OS/ARCH[/VARIANT] which image of a multi-platform image (default: linux and this machine's
                               architecture)
  --username USER              registry user name (with --password-stdin)
  --password-stdin             read the registry password or token from standard input
  -h, --help                   show this help

Credentials come from $DOCKER_CONFIG/config.json, else ~/.docker/config.json, and from the cloud helpers
named in $PORTCULLIS_CREDENTIAL_HELPERS (ecr, gcr; comma separated). Registries on localhost and
127.0.0.0/8 may be plain HTTP, as Docker allows.

Vulnerabilities are matched against the advisory data in the store (\`portcullis db update\`, or
\`db import\` / \`db pull\` for offline bundles); without any, the table says so in one line and
vuln-json has no vulnerabilities. --severity, --ignore-unfixed and --exit-code do not apply to json,
cyclonedx or spdx-json.

Exit codes: 0 indexed, 1 the scan failed (the error says what and where), 2 usage, N (--exit-code) a
vulnerability was found.
`;

interface ScanArgs {
  image: string;
  format: "table" | "json" | "vuln-json" | "cyclonedx" | "spdx-json";
  /** --severity: only these are shown and counted. */
  severities?: Set<Severity>;
  ignoreUnfixed: boolean;
  exitCode: number;
  store?: string;
  platform: Platform;
  username?: string;
  passwordStdin: boolean;
}

export function parseScanArgs(args: string[]): ScanArgs | "help" {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: "string", default: "table" },
      severity: { type: "string" },
      "ignore-unfixed": { type: "boolean", default: false },
      "exit-code": { type: "string", default: "0" },
      store: { type: "string" },
      platform: { type: "string" },
      username: { type: "string" },
      "password-stdin": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `scan takes one IMAGE, got ${positionals.length}` : "scan needs an IMAGE");
  const format = values.format;
  if (format !== "table" && format !== "json" && format !== "vuln-json" && format !== "cyclonedx" && format !== "spdx-json") {
    throw new UsageError(`--format must be table, json, vuln-json, cyclonedx or spdx-json, not ${JSON.stringify(format)}`);
  }
  const severities = values.severity !== undefined ? parseSeverities(values.severity) : undefined;
  const exitCodeText = values["exit-code"] ?? "0";
  if (!/^\d{1,3}$/.test(exitCodeText) || Number(exitCodeText) > 255) throw new UsageError(`--exit-code must be a number from 0 to 255, not ${JSON.stringify(exitCodeText)}`);
  const ignoreUnfixed = values["ignore-unfixed"] ?? false;
  if ((format === "json" || format === "cyclonedx" || format === "spdx-json") && (severities || ignoreUnfixed || exitCodeText !== "0")) {
    throw new UsageError(`--severity, --ignore-unfixed and --exit-code apply to vulnerabilities: use them with --format table or vuln-json, not ${format} (${format === "json" ? "the IndexReport" : "an SBOM"})`);
  }
  if (values["password-stdin"] && !values.username) throw new UsageError("--password-stdin needs --username");
  let platform: Platform;
  try {
    platform = values.platform ? parsePlatform(values.platform) : defaultPlatform();
  } catch (e) {
    throw new UsageError(`--platform: ${(e as Error).message}`);
  }
  return { image: positionals[0]!, format, severities, ignoreUnfixed, exitCode: Number(exitCodeText), store: values.store, platform, username: values.username, passwordStdin: values["password-stdin"] ?? false };
}

/** Standard input as text, without its final newline (a password or token). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

/** The keyring of `portcullis scan`: --username/--password-stdin first, then the Docker config file. */
export async function cliKeyring(env: NodeJS.ProcessEnv, explicit?: { registry: string; credential: Credential }): Promise<Keyring> {
  const path = join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
  const keyrings: Keyring[] = [];
  if (explicit) {
    keyrings.push({ lookup: async (image) => (image.startsWith(`${explicit.registry}/`) ? [explicit.credential] : []) });
  }
  const raw = await readFile(path).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? undefined : Promise.reject(e)));
  // The config's parser (zod) loads only when there is a config to parse.
  const [{ ChainKeyring, DockerConfigKeyring }, parser] = await Promise.all([import("../registry/auth/keyring.js"), raw ? import("../registry/auth/dockerconfig.js") : undefined]);
  if (raw && parser) keyrings.push(new DockerConfigKeyring(parser.parseDockerConfig(raw, `docker config ${path}`, "config")));
  // Cloud helpers are opt-in: PORTCULLIS_CREDENTIAL_HELPERS=ecr,gcr.
  const helpers = (env.PORTCULLIS_CREDENTIAL_HELPERS ?? "").split(",").filter((h) => h.trim());
  const providers = helpers.length ? (await import("../registry/auth/cloud/providers.js")).cloudProviders(helpers, { ecr: { env }, gcr: { env } }) : [];
  return new ChainKeyring(keyrings, providers);
}

export function summarize(image: string, platform: string | undefined, result: IndexResult): string {
  const r: IndexReport = result.report;
  const pkgs = Object.values(r.packages ?? {});
  const byDb = new Map<string, number>();
  for (const [id, envs] of Object.entries(r.environments ?? {})) {
    const db = envs[0]?.package_db ?? "";
    void id;
    byDb.set(db, (byDb.get(db) ?? 0) + 1);
  }
  const dist = Object.values(r.distributions ?? {})[0];
  const s = result.stats;
  const lines = [
    `image:         ${image}`,
    `manifest:      ${r.manifest_hash}`,
    ...(platform ? [`platform:      ${platform}`] : []),
    `distribution:  ${dist ? dist.pretty_name || `${dist.name} ${dist.version_id}`.trim() : "(none found)"}`,
    `packages:      ${pkgs.length}`,
    ...[...byDb].sort().map(([db, n]) => `  ${String(n).padStart(5)}  ${db || "(no database)"}`),
    `layers:        ${s.layers} (${s.layersFetched} fetched, ${s.layersReused} already indexed${s.layersSkipped ? `, ${s.layersSkipped} foreign skipped` : ""})${s.cached ? " — report from the store" : ""}`,
    ...layerReadLines(s.layerReads ?? []),
    `downloaded:    ${(s.bytesFetched / 1e6).toFixed(1)} MB`,
    `time:          ${(s.durationMs / 1000).toFixed(2)} s`,
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * How the fetched layers were read, when some carried a table of contents: `partial` (only the scanners'
 * files, by byte ranges) or in full, and why a partial read fell back.
 */
function layerReadLines(reads: readonly LayerRead[]): string[] {
  const withToc = reads.filter((r) => r.toc);
  if (!withToc.length) return [];
  const partial = withToc.filter((r) => r.mode === "partial");
  const formats = [...new Set(withToc.map((r) => r.toc))].join(", ");
  return [
    `partial reads: ${partial.length} of ${reads.length} fetched (${formats} table of contents)`,
    ...withToc.filter((r) => r.fallback).map((r) => `  ${r.digest.slice(0, 19)}… read in full: ${r.fallback!.replace(/^layer sha256:[0-9a-f]+: /, "")}`),
  ];
}

/** The line a failed scan prints: the report's error and, like every other error, its code. */
export function scanFailure(image: string, result: Pick<IndexResult, "report" | "error">): string {
  const code = errorCode(result.error);
  return `portcullis: scan of ${image} failed: ${result.report.err ?? result.report.state}${code ? ` [${code}]` : ""}\n`;
}

/** oci:, oci-archive: and docker-archive: images are on this machine (../indexer/sources/local.ts). */
const LOCAL = /^(oci|oci-archive|docker-archive):(.+)$/;

export async function scanCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseScanArgs(args);
  if (parsed === "help") {
    process.stdout.write(SCAN_HELP);
    return EXIT.ok;
  }
  // A reference that does not parse is a usage error before anything starts.
  const ref = LOCAL.test(parsed.image) ? undefined : parseReference(parsed.image);
  // The embedded store's advisory part is PostgreSQL compiled to WebAssembly (PGlite), opened when a scan
  // matches against advisory data it has not matched before (../store/local.ts). By default V8 recompiles its hot
  // functions with TurboFan on background threads, which in a process that lives for seconds costs more than
  // it saves: on two cores it competes with the scan, adds ~150 MB of RSS, and the process stalls 0.5-0.9 s
  // after the store closes while those compile jobs wind down. The baseline compiler alone, set before PGlite
  // compiles its module, made warm scans about 1 s and cold ones 1.5 s or more faster and took ~150 MB off
  // the peak RSS on a two-core machine (A/B against node --liftoff-only; bench/cli.ts has the whole figures).
  // `serve`, which runs for days, keeps the tier-up. (Layers are decompressed in JavaScript, not WebAssembly.)
  setFlagsFromString("--liftoff-only");
  // The store opens (a folder store: a mkdir; PostgreSQL: a connection) while the indexer's modules load.
  // Rejections are handled where they are awaited.
  const storeOpening = import("../store/open.js").then((m) => m.openCliStore(parsed.store ?? env.PORTCULLIS_STORE, { onWait: m.waitNotice }));
  storeOpening.catch(() => undefined);
  // The indexer's modules load when an image is to be indexed; a registry image already in the store needs
  // only the scanners' versions (to know its stored report is theirs).
  const scannerModule = import("../scanners/index.js");
  scannerModule.catch(() => undefined);
  // json (the IndexReport) and the SBOMs do not match. The matcher loads while an image is indexed, or when
  // a scan answered from the store needs it (not when the store says it has no advisory data).
  const sbom = parsed.format === "cyclonedx" || parsed.format === "spdx-json";
  const wantsVulns = parsed.format === "table" || parsed.format === "vuln-json";
  let vulnModule: Promise<typeof ScanVulns> | undefined;
  const loadVulns = () => {
    vulnModule ??= import("./scan-vulns.js");
    vulnModule.catch(() => undefined);
    return vulnModule;
  };
  const sbomModule = sbom ? import("../sbom/index.js") : undefined;
  sbomModule?.catch(() => undefined);
  let client: RegistryClient | undefined;
  let store: Store | undefined;
  try {
    let manifest!: ManifestToIndex;
    let source!: LayerSource;
    let platformShown: string | undefined;
    /** A registry image already indexed, answered from the store (../store/types.ts ResolutionCache). */
    let warm: IndexResult | undefined;
    // A partial read that fell back is in the table; with json output it goes to standard error.
    const log = parsed.format === "table" ? undefined : (_level: string, msg: string, f?: Record<string, unknown>) => process.stderr.write(`portcullis: layer ${String(f?.layer)}: ${msg}: ${String(f?.reason)}\n`);
    const scanners = async () => (await scannerModule).defaultScanners();
    const newIndexer = async (s: Store) => {
      const [{ Indexer }, list] = await Promise.all([import("../indexer/indexer.js"), scanners()]);
      return new Indexer({ store: s, scanners: list, ...(log ? { log } : {}) });
    };
    if (!ref) {
      const { openLocalImage } = await import("../indexer/sources/local.js");
      const local = await openLocalImage(parsed.image, parsed.platform);
      if (!local) throw new UsageError(`not a local image: ${JSON.stringify(parsed.image)}`);
      manifest = local.manifest;
      source = local.source;
      platformShown = local.platform ? formatPlatform(local.platform) : undefined;
    } else {
      const password = parsed.passwordStdin ? await readStdin() : undefined;
      const newClient = async () => {
        const [keyring, { RegistryClient }] = await Promise.all([
          cliKeyring(env, parsed.username ? { registry: ref.registry, credential: { username: parsed.username, password, source: "--username/--password-stdin" } } : undefined),
          import("../registry/client.js"),
        ]);
        return new RegistryClient({ keyring, defaultPlatform: parsed.platform });
      };
      // With a store that remembers resolutions, a digest is looked up without a request and a tag costs one
      // HEAD; the manifest is fetched only when the image is not indexed yet (by these scanner versions).
      store = await storeOpening;
      const platformKey = formatPlatform(parsed.platform);
      let resolvedDigest = ref.digest;
      if (store.resolutions) {
        if (!resolvedDigest) {
          client = await newClient();
          resolvedDigest = await client.resolveDigest(ref);
        }
        const known = await store.resolutions.get(resolvedDigest, platformKey);
        warm = known ? await storedResult(store, (await import("../indexer/scanner-set.js")).scannerSetHash(await scanners()), known.digest) : undefined;
        if (warm) {
          manifest = { digest: known!.digest, layers: [] };
          source = { verifiesDigests: true, open: () => Promise.reject(new Error("the image was answered from the store")) };
          platformShown = known!.platform;
        }
      }
      if (!warm) {
        client ??= await newClient();
        const { openRegistryImage } = await import("../indexer/sources/registry.js");
        const img = await openRegistryImage(client, resolvedDigest ? { ...ref, digest: resolvedDigest } : ref, { platform: parsed.platform });
        manifest = img.manifest;
        source = img.source;
        platformShown = img.resolved.platform ? formatPlatform(img.resolved.platform) : undefined;
        await store.resolutions?.put(img.resolved.resolvedDigest, platformKey, { digest: img.resolved.digest, ...(platformShown ? { platform: platformShown } : {}) });
      }
    }
    store ??= await storeOpening;
    // An answer from the store needs no indexer, except for an SBOM (read from the stored layer results).
    const indexer = warm && !sbom ? undefined : await newIndexer(store);
    if (wantsVulns && !warm) void loadVulns();
    const progress = process.stderr.isTTY && parsed.format === "table" && !warm ? ttyProgress(manifest.layers.length) : undefined;
    const result = warm ?? (await indexer!.index(manifest, source, { onProgress: progress }));
    if (progress) process.stderr.write("\n");
    const finished = result.report.state === "IndexFinished";
    if (parsed.format === "json") process.stdout.write(`${JSON.stringify(result.report)}\n`);
    else if (parsed.format === "table") process.stdout.write(summarize(parsed.image, platformShown, result));
    if (!finished) {
      process.stderr.write(scanFailure(parsed.image, result));
      return EXIT.failed;
    }
    if (sbomModule && (parsed.format === "cyclonedx" || parsed.format === "spdx-json")) {
      const [{ writeSbom, documentStamp }, inventory] = await Promise.all([sbomModule, indexer!.inventory(manifest.digest)]);
      const image = { name: parsed.image, manifest: manifest.digest, layers: inventory.layers };
      process.stdout.write(writeSbom(parsed.format, { image, packages: inventory.packages, distribution: inventory.distribution, tool: { name: "portcullis", version: await toolVersion() }, ...documentStamp() }));
      return EXIT.ok;
    }
    if (!wantsVulns) return EXIT.ok;
    const filter = { severities: parsed.severities, ignoreUnfixed: parsed.ignoreUnfixed };
    if ((await store.matchCache?.state())?.data === false) {
      // No advisory data, and the store knows it without opening its database: nothing to load.
      if (parsed.format === "vuln-json") {
        process.stderr.write(`portcullis: ${NO_ADVISORY_DATA}`);
        process.stdout.write(`${JSON.stringify((await import("../matcher/vulnerability-report.js")).vulnerabilityReport(result.report, []))}\n`);
      } else process.stdout.write(vulnTable({ data: false }, filter));
      return EXIT.ok;
    }
    const vulns = await loadVulns();
    const found = await vulns.scanVulnerabilities(store, result.report, filter);
    if (parsed.format === "vuln-json") {
      if (!found.data) process.stderr.write(`portcullis: ${vulns.NO_ADVISORY_DATA}`);
      process.stdout.write(`${JSON.stringify(vulns.vulnJson(result.report, found))}\n`);
    } else process.stdout.write(vulns.vulnTable(found, filter));
    return found.data && found.summary.total > 0 && parsed.exitCode !== 0 ? parsed.exitCode : EXIT.ok;
  } finally {
    await client?.close();
    // After a failed resolution the store is still closed once open (PGlite writes its folder on close).
    await (store ?? (await storeOpening.catch(() => undefined)))?.close();
  }
}

/** The stored result of a manifest these scanner versions finished indexing, as Indexer.index would answer it. */
async function storedResult(store: Store, scannerSet: string, digest: string): Promise<IndexResult | undefined> {
  const t0 = performance.now();
  const stored = await store.indexReport(digest);
  if (!stored || stored.scannerSet !== scannerSet || stored.report.state !== "IndexFinished") return undefined;
  const layers = (await store.manifestLayers(digest))?.length ?? 0;
  return { report: stored.report, stats: { layers, layersFetched: 0, layersReused: 0, layersSkipped: 0, bytesFetched: 0, bytesDecompressed: 0, cached: true, layerReads: [], durationMs: performance.now() - t0 } };
}

/** This build's version, for the SBOM's tool entry. */
async function toolVersion(): Promise<string> {
  return (await import("./version.js")).version();
}

function ttyProgress(total: number): (p: IndexProgress) => void {
  let done = 0;
  let bytes = 0;
  return (p) => {
    if (p.state === "ScanLayers" && p.layer) {
      done++;
      bytes += p.bytes ?? 0;
      process.stderr.write(`\r  layers ${done}/${total}, ${(bytes / 1e6).toFixed(1)} MB`);
    }
  };
}
