// The ImageScan controller: level-based, like controller-runtime's reconcilers. For each ImageScan it
// compares the spec with the status (observedGeneration, scanner set, rescanAfter) and, when they differ,
// resolves the image, indexes it and writes a summary into the status. The informer cache is the only read
// path for ImageScans; the full report stays in the store.
import * as k8s from "@kubernetes/client-node";
import { errorCode, isTransientCode, PortcullisError } from "../errors.js";
import { apiErrorDetail } from "../kube/api-error.js";
import { parsePlatform, formatPlatform, type Platform } from "../image/platform.js";
import { parseReference, type Reference } from "../image/reference.js";
import { matchManifest, type ManifestMatch } from "../findings/findings.js";
import { seriousDiff, type ManifestChange } from "../findings/rematch.js";
import type { Finding, FindingsSummary } from "../model/findings.js";
import { layersReused, type Indexer, type IndexResult } from "../indexer/indexer.js";
import { openRegistryImage } from "../indexer/sources/registry.js";
import type { RegistryConnections } from "../registry/connections.js";
import type { CredentialProvider } from "../registry/auth/types.js";
import { RegistryClient } from "../registry/client.js";
import type { RegistryOptionsInput } from "../registry/options.js";
import type { RegistryMetrics } from "../registry/transport.js";
import type { IndexJob, IndexJobStore, Store } from "../store/types.js";
import { attemptText, LIMIT_CODES } from "./indexjobs.js";
import type { EventRecorder } from "../kube/events.js";
import { formatDuration, parseDuration } from "../kube/duration.js";
import { objectKey, type Informer, type InformerEvent } from "../kube/informer.js";
import { SharedCache } from "../kube/cache.js";
import { GROUP, IMAGESCAN_INDEXERS, IMAGESCANS, ImageScanSpecSchema, PRIORITY_ANNOTATION, VERSION, type Condition, type ImageScan, type ImageScanStatus } from "../kube/api/v1alpha1/index.js";
import { WorkQueue } from "../kube/workqueue.js";
import { runWorker, TerminalError, type Result } from "../kube/reconcile.js";
import { logId, withLogContext, type LogFn } from "../log/logger.js";
import { tenantRedactor } from "../log/redact.js";
import { type OperatorSecrets, RecordingKeyring, SecretCache, workloadKeyring } from "../registry/auth/workload.js";

/** Error codes (registry, layer, reference) to the condition reasons users see. */
export function reasonFor(code: string | undefined): string {
  switch (code) {
    case "AUTH_FAILED":
    case "DENIED":
    case "TOKEN_FAILED":
    case "ECR_AUTH_FAILED":
    case "GCR_AUTH_FAILED":
      return "AuthFailed";
    case "MANIFEST_UNKNOWN":
    case "NAME_UNKNOWN":
    case "BLOB_UNKNOWN":
      return "ManifestUnknown";
    case "RATE_LIMITED":
      return "RateLimited";
    case "DIGEST_MISMATCH":
    case "SIZE_MISMATCH":
      return "DigestMismatch";
    case "FILE_TOO_LARGE":
    case "CAPTURED_TOO_LARGE":
    case "ZSTD_WINDOW_TOO_LARGE":
    case "ZIP_LIMIT":
    case "SCAN_LIMIT":
    case "DECOMPRESSED_TOO_LARGE":
    case "EXPANSION_RATIO":
    case "TOO_LARGE":
      return "LayerTooLarge";
    case "INVALID_REFERENCE":
    case "INVALID_PLATFORM":
    case "INVALID_SPEC":
      return "InvalidSpec";
    case "PLATFORM_NOT_FOUND":
      return "PlatformNotFound";
    case "SECRET_NOT_FOUND":
      return "PullSecretMissing";
    case "DOCKER_CONFIG_INVALID":
      return "PullSecretInvalid";
    case "SERVER_ERROR":
    case "NETWORK":
      return "RegistryUnavailable";
    case "BAD_TAR":
    case "BAD_COMPRESSION":
    case "BAD_TOC":
      return "InvalidLayer";
    case "UNSUPPORTED_MEDIA_TYPE":
      return "UnsupportedMediaType";
    case "SCANNER_ERROR":
    case "ZIP_BOMB":
      return "InvalidPackageData";
    case "WORKER_MEMORY_LIMIT":
      return "ResourceLimitExceeded";
    case "SCAN_TIMEOUT":
      return "Timeout";
    case "WORKER_CRASHED":
      return "WorkerCrashed";
    default:
      return "IndexFailed";
  }
}

export const DEFAULT_SCAN_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_SCAN_ATTEMPTS = 3;
/** How often a scan waiting for its index job looks at it (one small query). */
const JOB_POLL_MS = 1000;

class ScanError extends PortcullisError {
  readonly domain = "controller";
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface ImageScanControllerOptions {
  kc: k8s.KubeConfig;
  indexer: Indexer;
  registry?: RegistryOptionsInput;
  /** Registry connections shared with the process's other clients (serve's); by default each client opens its own. */
  registryConnections?: RegistryConnections;
  /** Cloud credential helpers, tried after the pull secrets. */
  providers?: CredentialProvider[];
  /** Scans at once. */
  concurrency?: number;
  /** A scan's wall deadline, resolving to indexed (default 10 minutes). */
  scanTimeoutMs?: number;
  /**
   * Attempts of one generation that may end at an indexer worker's limit (memory, deadline, a crash) before
   * the scan stays Failed until its spec or the scanner set changes (default 3).
   */
  scanAttempts?: number;
  defaultPlatform?: Platform;
  /** The report API's base path, for status.reportRef. */
  reportPath?: string;
  /** Pull secrets in Portcullis's namespace tried after the ImageScan's own. */
  operatorSecrets?: OperatorSecrets;
  secretCache?: SecretCache;
  events?: EventRecorder;
  /**
   * Log lines (level info when absent). Lines written during a scan attempt, by this controller or what it
   * calls, run in a log context (../log/logger.ts) with `scan` (namespace/name) and `attempt` (an id per attempt).
   */
  log?: LogFn;
  /** Where the ImageScan informer comes from (shared with the other consumers in the process); default its own. */
  cache?: SharedCache;
  /** Only ImageScans in these namespaces are reconciled; default all (see PodControllerOptions.namespaces). */
  namespaces?: string[];
  /** The registry clients' metrics hooks. */
  registryMetrics?: RegistryMetrics;
  /** Every status write (metrics). */
  onStatusWrite?(): void;
  /** Called after every scan attempt, with its result and time (metrics). */
  onScanned?(e: ScanObservation): void;
  /**
   * The store whose advisory data indexed images are matched against (the indexer's). Without it scans are
   * indexed only and carry no vulnerabilities.
   */
  store?: Store;
  /**
   * The index job queue (PostgreSQL): when set, a resolved image is not indexed here but queued for the
   * indexer processes of every replica (./indexjobs.ts), and the status is written from the job's outcome.
   */
  jobs?: IndexJobStore;
  /** A job was queued (the process's own runner may look at once). */
  onEnqueued?(): void;
}

/** One scan attempt, as onScanned reports it. */
export interface ScanObservation {
  result: "indexed" | "failed" | "retrying";
  durationMs: number;
  layersFetched?: number;
  layersReused?: number;
  bytesFetched?: number;
}

export class ImageScanController {
  readonly queue = new WorkQueue({ baseDelayMs: 1000, maxDelayMs: 5 * 60_000 });
  readonly informer: Informer<ImageScan>;
  private readonly cache: SharedCache;
  private removeHandler: (() => void) | undefined;
  private readonly custom: k8s.CustomObjectsApi;
  readonly secrets: SecretCache;
  private readonly stopping = new AbortController();
  private workers: Promise<void>[] = [];

  /** What tenants read in status: scrubbed, operator pull secrets by kind only. */
  private readonly redact: (s: string) => string;

  constructor(private readonly options: ImageScanControllerOptions) {
    this.custom = options.kc.makeApiClient(k8s.CustomObjectsApi);
    this.redact = tenantRedactor(options.operatorSecrets);
    this.secrets = options.secretCache ?? new SecretCache(options.kc.makeApiClient(k8s.CoreV1Api));
    this.cache = options.cache ?? new SharedCache(options.kc, { log: (m, f, l) => options.log?.(m, f, l) });
    this.informer = this.cache.informer(IMAGESCANS, IMAGESCAN_INDEXERS);
  }

  /**
   * Only what changes the spec matters (controller-runtime's GenerationChangedPredicate): the controller's own
   * status writes must not wake it again, or a backoff would be cut short by its own "Pending" write.
   */
  private readonly onEvent = (type: InformerEvent, obj: ImageScan, old?: ImageScan): void => {
    if (type === "delete" || (this.options.namespaces && !this.options.namespaces.includes(obj.metadata?.namespace ?? ""))) return;
    const priority = obj.metadata?.annotations?.[PRIORITY_ANNOTATION] === "true" && obj.status?.phase !== "Indexed";
    const prioritized = priority && old?.metadata?.annotations?.[PRIORITY_ANNOTATION] !== "true";
    if (type === "update" && old && old.metadata?.generation === obj.metadata?.generation && !prioritized) return;
    this.queue.add(objectKey(obj), { priority });
  };

  /** The ImageScans in `namespace` whose status says the controller resolved or indexed `digest`. */
  scansFor(namespace: string, digest: string): ImageScan[] {
    return this.informer.byIndex("digest", `${namespace}/${digest}`);
  }

  /** Puts a scan in the priority lane (an admission review is waiting on it). */
  prioritize(namespace: string, name: string): void {
    this.queue.add(`${namespace}/${name}`, { priority: true });
  }

  async start(): Promise<void> {
    this.removeHandler = this.informer.addEventHandler(this.onEvent);
    await this.informer.start();
    const n = this.options.concurrency ?? 4;
    this.workers = Array.from({ length: n }, () => runWorker(this.queue, (key, signal) => withLogContext({ scan: key, attempt: logId() }, () => this.reconcile(key, signal)), {
      signal: this.stopping.signal,
      onError: (key, e, delay) => {
        const code = (e as { code?: unknown }).code;
        this.options.log?.(`scan ${key}: ${(e as Error).message}${apiErrorDetail(e)}; retrying in ${delay} ms`, { scan: key, ...(typeof code === "string" ? { code, reason: reasonFor(code) } : {}) }, "warn");
      },
      onTerminal: (key, e) => this.options.log?.(`scan ${key}: ${e.message}; not retried until the scan changes`, { scan: key }, "error"),
    }));
  }

  async stop(): Promise<void> {
    this.removeHandler?.();
    if (!this.options.cache) this.cache.stop();
    // In-flight scans finish (their status written) before the Lease is given up; none starts after this.
    this.stopping.abort();
    this.queue.shutDown();
    await Promise.all(this.workers);
  }

  /** Whether the status already answers the spec (so nothing is to be done). */
  upToDate(scan: ImageScan, now = Date.now()): boolean {
    const s = scan.status;
    if (!s || s.observedGeneration !== scan.metadata?.generation) return false;
    if (s.phase === "Indexed" && s.scannerSet !== this.options.indexer.scannerSet) return false;
    // A scan that failed at a worker's limit is tried again by other scanner versions.
    if (s.phase === "Failed" && s.limitFailures && s.scannerSet !== this.options.indexer.scannerSet) return false;
    if (s.phase !== "Indexed" && s.phase !== "Failed") return false;
    const after = scan.spec.rescanAfter ? parseDuration(scan.spec.rescanAfter) : undefined;
    const last = Date.parse(s.lastAttempt ?? s.indexedAt ?? "");
    if (after !== undefined && !Number.isNaN(last) && now - last >= after) return false;
    return true;
  }

  /** When to look at a scan again: at rescanAfter after its last attempt (else when it changes). */
  private rescan(scan: ImageScan): Result {
    const after = scan.spec.rescanAfter ? parseDuration(scan.spec.rescanAfter) : undefined;
    if (after === undefined) return;
    const last = Date.parse(scan.status?.lastAttempt ?? "");
    return { requeueAfterMs: Number.isNaN(last) ? after : Math.max(0, last + after - Date.now()) };
  }

  /**
   * Resolves, indexes and matches the scan `key` names unless its status already answers its spec, writing each
   * step into the status. A failure worth retrying (the registry busy or unreachable) is written as Pending and
   * thrown, so the key comes back after its backoff; any other is written as Failed and is final until the
   * spec changes or rescanAfter comes. `signal` (the controller stopping) is not used to cut a scan short:
   * one in flight finishes and writes its status.
   */
  async reconcile(key: string, _signal?: AbortSignal): Promise<Result> {
    const scan = this.informer.get(key);
    if (!scan || scan.metadata?.deletionTimestamp) return;
    if (this.upToDate(scan)) return this.rescan(scan);
    const ns = scan.metadata!.namespace!;
    const name = scan.metadata!.name!;
    const generation = scan.metadata!.generation;
    // Waiting for an index job queued by an earlier pass of this generation: its outcome, without resolving again.
    const waited = this.options.jobs ? await this.awaitJob(scan) : undefined;
    if (waited) return waited.result;
    const started = new Date().toISOString();
    const t0 = performance.now();
    this.options.log?.(`scan ${key}: resolving ${scan.spec.image}`, { generation }, "debug");
    // (client-node serialises an empty string as null, which the schema refuses: every message says something.)
    await this.patchStatus(ns, name, { phase: "Resolving", observedGeneration: generation, lastAttempt: started, message: `resolving ${scan.spec.image}` });
    let client: RegistryClient | undefined;
    let missing: string[] = [];
    const timeoutMs = this.options.scanTimeoutMs ?? DEFAULT_SCAN_TIMEOUT_MS;
    const deadline = AbortSignal.timeout(timeoutMs);
    let layersDone = 0;
    let layersTotal = 0;
    try {
      let ref: Reference;
      let platform: Platform | undefined;
      try {
        // What the CRD's schema says, again: an object written before the schema was (or past it, by an older CRD).
        const spec = ImageScanSpecSchema.safeParse(scan.spec);
        if (!spec.success) throw new ScanError("INVALID_SPEC", `spec: ${spec.error.issues.map((i) => `${i.path.join(".") || "spec"}: ${i.message}`).join("; ")}`.slice(0, 1000));
        ref = parseReference(scan.spec.image);
        platform = scan.spec.platform ? parsePlatform(scan.spec.platform) : this.options.defaultPlatform;
      } catch (e) {
        throw new ScanError((e as { code?: string }).code ?? "INVALID_REFERENCE", (e as Error).message);
      }
      const creds = await workloadKeyring(this.secrets, ns, (scan.spec.imagePullSecrets ?? []).map((s) => s.name), { operator: this.options.operatorSecrets, providers: this.options.providers });
      missing = creds.missing;
      const recording = new RecordingKeyring(creds.keyring);
      client = new RegistryClient({ connections: this.options.registryConnections, options: this.options.registry, keyring: recording, defaultPlatform: platform, metrics: this.options.registryMetrics });
      const img = await openRegistryImage(client, ref, { platform, signal: deadline });
      layersTotal = img.manifest.layers.length;
      const used = recording.used;
      await this.patchStatus(ns, name, {
        phase: "Indexing", digest: img.manifest.digest, shortDigest: img.manifest.digest.split(":")[1]!.slice(0, 12), resolvedDigest: img.resolved.resolvedDigest,
        platform: img.resolved.platform ? formatPlatform(img.resolved.platform) : platform ? formatPlatform(platform) : undefined,
        credentialSource: used, message: `indexing ${img.manifest.digest}`, conditions: [cond("Resolved", "True", "Resolved", `resolved to ${img.manifest.digest}`, generation)],
      });
      if (this.options.jobs) {
        const known = await this.options.indexer.finishedReport(img.manifest.digest);
        if (!known) {
          const job = await this.options.jobs.enqueue({
            manifest: img.manifest.digest, scannerSet: this.options.indexer.scannerSet, reference: `${ref.registry}/${ref.repository}@${img.manifest.digest}`,
            ...(platform ? { platform: formatPlatform(platform) } : {}), namespace: ns, pullSecrets: (scan.spec.imagePullSecrets ?? []).map((x) => x.name),
            priority: scan.metadata?.annotations?.[PRIORITY_ANNOTATION] === "true", maxAttempts: this.options.scanAttempts ?? DEFAULT_SCAN_ATTEMPTS,
          });
          this.options.onEnqueued?.();
          this.options.log?.(`scan ${key}: queued index job ${job.id} for ${img.manifest.digest}`, { job: job.id, state: job.state }, "debug");
          return { requeueAfterMs: JOB_POLL_MS };
        }
        return await this.indexed(scan, started, t0, img.manifest.digest, { report: known, stats: { layers: img.manifest.layers.length, layersFetched: 0, layersReused: img.manifest.layers.length, layersSkipped: 0, bytesFetched: 0, bytesDecompressed: 0, cached: true, durationMs: 0 } });
      }
      const result = await this.options.indexer.index(img.manifest, img.source, { signal: deadline, onProgress: (p) => void (p.state === "ScanLayers" && layersDone++) });
      if (result.report.state !== "IndexFinished") {
        // A scanner's refusal of a file it asked for (a malformed package database, a zip bomb) is SCANNER_ERROR.
        throw new ScanError(errorCode(result.error) ?? "INDEX_FAILED", result.report.err ?? "indexing failed");
      }
      return await this.indexed(scan, started, t0, img.manifest.digest, result);
    } catch (e) {
      let code = errorCode(e);
      let message = (e as Error).message;
      if (deadline.aborted) {
        code = "SCAN_TIMEOUT";
        message = `the scan did not finish within its deadline of ${formatDuration(timeoutMs)}${layersTotal ? ` (${layersDone} of ${layersTotal} layers scanned)` : " (resolving the image)"}`;
      }
      if (missing.length && (code === "AUTH_FAILED" || code === "DENIED" || code === "TOKEN_FAILED" || code === "NAME_UNKNOWN" || code === "MANIFEST_UNKNOWN")) {
        // The kubelet skips a missing pull secret too; when the registry then refuses, the missing secret is the likely cause.
        code = "SECRET_NOT_FOUND";
        message = `pull secret ${missing.join(", ")} does not exist; without it: ${message}`;
      }
      return await this.failure(scan, started, t0, e, code, message);
    } finally {
      await client?.close();
    }
  }

  /**
   * Writes a failed attempt's status, Event and log line: Failed (final until the spec changes or rescanAfter
   * comes), or Pending and thrown when retrying is worth it (the runner backs off).
   */
  private async failure(scan: ImageScan, started: string, t0: number, e: unknown, code: string | undefined, message: string, job?: IndexJob): Promise<Result> {
    const key = objectKey(scan);
    const ns = scan.metadata!.namespace!;
    const name = scan.metadata!.name!;
    const generation = scan.metadata!.generation;
      const reason = reasonFor(code);
    const unresolved = ["AuthFailed", "ManifestUnknown", "InvalidSpec", "PlatformNotFound", "PullSecretMissing", "PullSecretInvalid", "RegistryUnavailable", "RateLimited"].includes(reason);
    const conditions = [unresolved ? cond("Resolved", "False", reason, message, generation) : cond("Resolved", "True", "Resolved", "resolved", generation), cond("Indexed", "False", reason, message, generation)];
    if (LIMIT_CODES.has(code ?? "")) {
      // The layer cost a worker its memory, its deadline or its life: tried again a few times with backoff
      // (another worker, perhaps a registry that is faster now), then Failed until the spec or scanners change.
      // An index job counted its own attempts (and its message says so).
      const failures = job ? job.attempts : (scan.status?.observedGeneration === generation ? scan.status?.limitFailures ?? 0 : 0) + 1;
      const attempts = job ? job.maxAttempts : this.options.scanAttempts ?? DEFAULT_SCAN_ATTEMPTS;
      const final = failures >= attempts;
      const text = job ? message : attemptText(message, failures, attempts, final);
      if (!final) {
        await this.patchStatus(ns, name, { phase: "Pending", message: text, conditions, limitFailures: failures, observedGeneration: generation });
        this.options.events?.record(withKind(scan), "Warning", reason, text);
        this.options.onScanned?.({ result: "retrying", durationMs: performance.now() - t0 });
        throw Object.assign(new Error(text, { cause: e }), { code });
      }
      await this.patchStatus(ns, name, { phase: "Failed", message: text, conditions, limitFailures: failures, observedGeneration: generation, scannerSet: this.options.indexer.scannerSet });
      this.options.log?.(`scan ${key} failed: ${text}`, { reason, code }, "warn");
      this.options.onScanned?.({ result: "failed", durationMs: performance.now() - t0 });
      this.options.events?.record(withKind(scan), "Warning", reason, text);
      return this.rescan({ ...scan, status: { ...scan.status, lastAttempt: started } });
    }
    if (isTransientCode(code)) {
      // Worth retrying on our own: keep the phase honest and back off.
      await this.patchStatus(ns, name, { phase: "Pending", message, conditions });
      this.options.events?.record(withKind(scan), "Warning", reason, `${message} (retrying)`);
      this.options.onScanned?.({ result: "retrying", durationMs: performance.now() - t0 });
      // The runner brings the key back after its backoff (and logs the delay).
      throw Object.assign(new Error(message, { cause: e }), { code });
    }
    await this.patchStatus(ns, name, { phase: "Failed", message, conditions, observedGeneration: generation });
    this.options.log?.(`scan ${key} failed: ${message}`, { reason, code }, "warn");
    this.options.onScanned?.({ result: "failed", durationMs: performance.now() - t0 });
    this.options.events?.record(withKind(scan), "Warning", reason, message);
    return this.rescan({ ...scan, status: { ...scan.status, lastAttempt: started } });
  }

  /**
   * For a scan whose index job was queued by an earlier pass of this generation: its outcome written into the
   * status, or "look again soon" while it is queued or running; undefined when there is no such job to wait
   * for (then the scan is resolved and queued again).
   */
  private async awaitJob(scan: ImageScan): Promise<{ result: Result } | undefined> {
    const s = scan.status;
    const digest = s?.digest;
    if (!this.options.jobs || s?.phase !== "Indexing" || !digest || s.observedGeneration !== scan.metadata?.generation) return undefined;
    const started = s.lastAttempt ?? new Date().toISOString();
    const t0 = performance.now() - Math.max(0, Date.now() - Date.parse(started));
    const known = await this.options.indexer.finishedReport(digest);
    const job = await this.options.jobs.get(digest, this.options.indexer.scannerSet);
    if (known) {
      const layers = job?.stats?.layers ?? (await this.options.indexer.store.manifestLayers(digest))?.length ?? 0;
      const st = job?.state === "done" && job.stats ? job.stats : { layers, layersFetched: 0, layersReused: layers, bytesFetched: 0, durationMs: 0 };
      return { result: await this.indexed(scan, started, t0, digest, { report: known, stats: { ...st, layersSkipped: 0, bytesDecompressed: 0, cached: false } }) };
    }
    if (!job || job.state === "done") return undefined;
    // Asked for by an admission review since it was queued: into the priority lane (enqueue joins the job).
    if (job.state === "queued" && !job.priority && scan.metadata?.annotations?.[PRIORITY_ANNOTATION] === "true") {
      await this.options.jobs.enqueue({ manifest: digest, scannerSet: job.scannerSet, reference: job.reference, ...(job.platform ? { platform: job.platform } : {}), namespace: job.namespace, pullSecrets: job.pullSecrets, priority: true, maxAttempts: job.maxAttempts });
      this.options.onEnqueued?.();
    }
    if (job.state === "failed") return { result: await this.failure(scan, started, t0, undefined, job.code, job.message ?? "indexing failed", job) };
    const text = job.state === "running" ? `indexing ${digest} (attempt ${job.attempts} of ${job.maxAttempts})` : job.attempts ? `waiting for an indexer to retry ${digest} after: ${job.message ?? "a failed attempt"}` : `waiting for an indexer: ${digest}`;
    if (s.message !== text) await this.patchStatus(scan.metadata!.namespace!, scan.metadata!.name!, { message: text });
    return { result: { requeueAfterMs: JOB_POLL_MS } };
  }

  /** Writes an indexed scan's status (matched, when the store has advisory data), its Event and log line. */
  private async indexed(scan: ImageScan, started: string, t0: number, digest: string, result: IndexResult): Promise<Result> {
    const key = objectKey(scan);
    const ns = scan.metadata!.namespace!;
    const name = scan.metadata!.name!;
    const generation = scan.metadata!.generation;
    const packages = Object.keys(result.report.packages ?? {}).length;
    const reused = layersReused(result.stats);
    const matched = await this.match(digest);
    await this.patchStatus(ns, name, { ...summarize(result, this.options.reportPath ?? "/indexer/api/v1/index_report"), scannerSet: this.options.indexer.scannerSet, phase: "Indexed", observedGeneration: generation, limitFailures: 0, message: `indexed: ${packages} packages${matched.summary ? `; ${countsText(matched.summary)}` : ""}`, conditions: [
      cond("Resolved", "True", "Resolved", `resolved to ${digest}`, generation),
      cond("Indexed", "True", "Indexed", `${packages} packages in ${result.stats.layers} layers`, generation),
      ...(matched.condition ? [matched.condition] : []),
    ], ...(matched.summary ? { vulnerabilities: matched.summary } : {}) });
    this.options.log?.(`indexed ${key} ${digest}`, {
      scan: key, digest: digest, layers: result.stats.layers, layersFetched: result.stats.layersFetched,
      layersReused: reused, bytesFetched: result.stats.bytesFetched,
      cached: result.stats.cached, durationMs: Math.round(result.stats.durationMs),
    });
    this.options.onScanned?.({ result: "indexed", durationMs: performance.now() - t0, layersFetched: result.stats.layersFetched, layersReused: reused, bytesFetched: result.stats.bytesFetched });
    if (scan.status?.phase !== "Indexed" || scan.status.digest !== digest) {
      this.options.events?.record(withKind(scan), "Normal", "Indexed", `${digest}: ${packages} packages, ${result.stats.layers} layers (${reused} already indexed)`);
    }
    return this.rescan({ ...scan, status: { ...scan.status, lastAttempt: started } });
  }

  /** Matches a freshly indexed manifest; a failure to match never fails the scan (the Matched condition says it). */
  private async match(digest: string): Promise<{ summary?: FindingsSummary; condition?: Condition }> {
    if (!this.options.store) return {};
    let r: ManifestMatch;
    try {
      r = await matchManifest(this.options.store, digest);
    } catch (e) {
      this.options.log?.(`matching ${digest} failed: ${(e as Error).message}`, undefined, "warn");
      return { condition: cond("Matched", "False", "MatchFailed", `matching against the advisory data failed: ${(e as Error).message}`) };
    }
    if (r.state === "no_data") return { condition: cond("Matched", "False", "NoAdvisoryData", NO_ADVISORY_DATA_MESSAGE) };
    if (r.state !== "matched") return {};
    return { summary: r.findings.summary, condition: matchedCondition(r.findings.summary) };
  }

  /**
   * Writes re-matched findings (after an advisory update) into the status of every ImageScan of that manifest,
   * and records an Event on each when Critical or High findings came or went. Returns the scans patched.
   */
  async applyFindings(change: ManifestChange): Promise<number> {
    const scans = this.informer.list().filter((s) => s.status?.phase === "Indexed" && s.status.digest === change.manifest
      && (!this.options.namespaces || this.options.namespaces.includes(s.metadata?.namespace ?? "")));
    const summary = change.findings.summary;
    const { gained, lost } = seriousDiff(change.previous?.findings, change.findings.findings);
    for (const scan of scans) {
      const conditions = [...(scan.status?.conditions ?? []).filter((c) => c.type !== "Matched"), matchedCondition(summary)];
      const packages = scan.status?.packages?.total;
      await this.patchStatus(scan.metadata!.namespace!, scan.metadata!.name!, {
        vulnerabilities: summary, conditions, ...(packages !== undefined ? { message: `indexed: ${packages} packages; ${countsText(summary)}` } : {}),
      });
      if (gained.length) this.options.events?.record(withKind(scan), "Warning", "NewVulnerabilities", diffMessage("new after an advisory update", gained, lost));
      else if (lost.length) this.options.events?.record(withKind(scan), "Normal", "VulnerabilitiesResolved", diffMessage("no longer found after an advisory update", lost, []));
    }
    return scans.length;
  }

  private async patchStatus(ns: string, name: string, status: Partial<ImageScanStatus>): Promise<void> {
    this.options.onStatusWrite?.();
    try {
      await this.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace: ns, plural: "imagescans", name, body: { status: redactStatus(status, this.redact) } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    } catch (e) {
      // The API server refuses the status as it is (the CRD's schema and this version disagree): the same
      // write would be refused again however often it is tried.
      if ((e as { code?: number }).code === 422) throw new TerminalError(`status of ImageScan ${ns}/${name} refused by the API server${apiErrorDetail(e)}`, { cause: e });
      throw e;
    }
  }
}

/** A status patch with its texts (message, conditions' messages, credentialSource) redacted for tenants. */
export function redactStatus(status: Partial<ImageScanStatus>, redact: (s: string) => string): Partial<ImageScanStatus> {
  return {
    ...status,
    ...(status.message !== undefined ? { message: redact(status.message) } : {}),
    ...(status.credentialSource !== undefined ? { credentialSource: redact(status.credentialSource) } : {}),
    ...(status.conditions ? { conditions: status.conditions.map((c) => ({ ...c, message: redact(c.message) })) } : {}),
  };
}

function withKind(scan: ImageScan): ImageScan & { apiVersion: string; kind: string } {
  return { ...scan, apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan" };
}

function cond(type: Condition["type"], status: Condition["status"], reason: string, message: string, observedGeneration?: number): Condition {
  return { type, status, reason, message: message.slice(0, 4000), lastTransitionTime: new Date().toISOString(), ...(observedGeneration !== undefined ? { observedGeneration } : {}) };
}

export const NO_ADVISORY_DATA_MESSAGE = "not matched: the store has no advisory data (enable advisoryUpdateInterval, or run `portcullis db update` / `db import` against this database)";

/** `2 critical, 5 high, 7 fixable (of 31)`. */
export function countsText(s: FindingsSummary): string {
  return `${s.critical} critical, ${s.high} high, ${s.fixable} fixable (of ${s.total} vulnerabilit${s.total === 1 ? "y" : "ies"})`;
}

function matchedCondition(s: FindingsSummary): Condition {
  const covered = s.coverage === "supported";
  return cond("Matched", "True", covered ? "Matched" : COVERAGE_REASONS[s.coverage] ?? "PartialCoverage", `${countsText(s)}; coverage: ${s.coverageMessage}`);
}

const COVERAGE_REASONS: Record<string, string> = { partial: "PartialCoverage", no_data: "NoAdvisoryData", unsupported: "UnsupportedDistribution", end_of_life: "EndOfLife" };

/** An Event's message: per vulnerability its packages and fix, at most a few, then how many more. */
function diffMessage(lead: string, list: readonly Finding[], lost: readonly Finding[]): string {
  const byId = new Map<string, Finding[]>();
  for (const f of list) byId.set(f.id, [...(byId.get(f.id) ?? []), f]);
  const shown = [...byId.values()].slice(0, 5).map((fs) => {
    const f = fs[0]!;
    const fixes = [...new Set(fs.map((x) => x.fixedIn).filter(Boolean))];
    return `${f.id} (${f.severity}, ${fs.map((x) => `${x.package} ${x.version}`).join(" and ")}${fixes.length ? `, fixed in ${fixes.join(" / ")}` : ""})`;
  });
  let msg = `${byId.size} Critical/High ${lead}: ${shown.join(", ")}${byId.size > 5 ? ` and ${byId.size - 5} more` : ""}`;
  const lostIds = [...new Set(lost.map((f) => f.id))];
  if (lostIds.length) msg += `; ${lostIds.length} no longer found: ${lostIds.slice(0, 5).join(", ")}${lostIds.length > 5 ? ` and ${lostIds.length - 5} more` : ""}`;
  return msg;
}

/** The status summary of a report: a few hundred bytes whatever the image. */
export function summarize(result: IndexResult, reportPath: string): Partial<ImageScanStatus> {
  const r = result.report;
  const byKind: Record<string, number> = {};
  for (const envs of Object.values(r.environments ?? {})) {
    const db = envs[0]?.package_db ?? "";
    const kind = db.includes(":") ? db.slice(0, db.indexOf(":")) : db.includes("dpkg") ? "deb" : db.includes("apk") ? "apk" : db.includes("rpm") ? "rpm" : "other";
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  const dist = Object.values(r.distributions ?? {})[0];
  return {
    digest: r.manifest_hash,
    shortDigest: r.manifest_hash.split(":")[1]!.slice(0, 12),
    distribution: dist ? { id: dist.did, versionId: dist.version_id, prettyName: dist.pretty_name || `${dist.name} ${dist.version_id}`.trim() } : undefined,
    packages: { total: Object.keys(r.packages ?? {}).length, byKind },
    layers: { total: result.stats.layers, reused: layersReused(result.stats) },
    indexedAt: new Date().toISOString(),
    reportRef: { manifestDigest: r.manifest_hash, path: `${reportPath}/${r.manifest_hash}` },
  };
}
