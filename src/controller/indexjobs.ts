// The indexer role's workers across replicas: every process with the indexer role takes index jobs from the
// PostgreSQL queue (../store/jobs.ts) the ImageScan controller fills, fetches the manifest's layers with the
// pull secrets of the namespace that asked, indexes them (layer bytes parsed in its worker processes) and
// records how the attempt ended. The ImageScan controller, on the Lease holder, reads the outcome and writes
// the status. A process that dies mid-job loses its lease, and the next claim after it expired takes the job
// over; layers it finished are in the store and are not fetched again.
import { randomBytes } from "node:crypto";
import { errorCode, isTransientCode } from "../errors.js";
import { layersReused, type Indexer } from "../indexer/indexer.js";
import { formatDuration } from "../kube/duration.js";
import { openRegistryImage } from "../indexer/sources/registry.js";
import { parsePlatform } from "../image/platform.js";
import { parseReference } from "../image/reference.js";
import type { RegistryConnections } from "../registry/connections.js";
import type { CredentialProvider } from "../registry/auth/types.js";
import { type OperatorSecrets, type SecretCache, workloadKeyring } from "../registry/auth/workload.js";
import { RegistryClient } from "../registry/client.js";
import type { RegistryOptionsInput } from "../registry/options.js";
import type { RegistryMetrics } from "../registry/transport.js";
import { isConnectionError } from "../store/postgres.js";
import type { IndexJob, IndexJobOutcome, IndexJobStore } from "../store/types.js";

export interface IndexJobRunnerOptions {
  jobs: IndexJobStore;
  indexer: Indexer;
  secrets: SecretCache;
  operatorSecrets?: OperatorSecrets;
  providers?: CredentialProvider[];
  registry?: RegistryOptionsInput;
  /** Registry connections shared with the process's other clients (serve's); by default each client opens its own. */
  registryConnections?: RegistryConnections;
  registryMetrics?: RegistryMetrics;
  /** This process, in the jobs' owner (the pod's name, then the claim's own token). */
  identity: string;
  /** Jobs at once. */
  concurrency: number;
  /** How long a claimed job stays this process's without a heartbeat (default 30 s). */
  leaseMs?: number;
  /** An attempt's wall deadline. */
  scanTimeoutMs: number;
  /** How often an idle runner looks for work (default 1 s). */
  pollMs?: number;
  log?: (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  /** Every attempt's end, for metrics. */
  onAttempt?(outcome: IndexJobOutcome["state"], durationMs: number): void;
}

/** Failures at an indexer worker's limit and the scan's deadline: the job's attempts bound them. */
export const LIMIT_CODES = new Set(["WORKER_MEMORY_LIMIT", "SCAN_TIMEOUT", "WORKER_CRASHED"]);

/** A retried failure's message with its attempt: `... (attempt 2 of 3; retrying)`. */
export function attemptText(message: string, attempt: number, max: number, final: boolean): string {
  return `${message} (attempt ${attempt} of ${max}; ${final ? "not retried until the spec or the scanner versions change" : "retrying"})`;
}

export class IndexJobRunner {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly running = new Map<string, AbortController>();
  /** The idle loops' wake-ups. */
  private readonly wakers = new Set<() => void>();

  constructor(private readonly options: IndexJobRunnerOptions) {}

  get leaseMs(): number {
    return this.options.leaseMs ?? 30_000;
  }

  start(): void {
    this.loops = Array.from({ length: Math.max(1, this.options.concurrency) }, () => this.loop());
  }

  /** Stops taking jobs; the jobs in flight are given back to the queue at once (another replica takes them). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.poke();
    for (const c of this.running.values()) c.abort(new Error("the indexer is stopping"));
    await Promise.all(this.loops);
  }

  /** Looks for work now (the controller queued a job). */
  poke(): void {
    for (const w of [...this.wakers]) w();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      let job: IndexJob | undefined;
      try {
        // The owner names this process and this claim: a late word from an attempt whose lease expired (and
        // which this same process may have claimed again since) cannot touch the new attempt.
        job = await this.options.jobs.claim(`${this.options.identity}/${randomBytes(4).toString("hex")}`, this.leaseMs, this.options.indexer.scannerSet);
        failures = 0;
      } catch (e) {
        // The database is away (restarting, failing over): wait and ask again; the process stays up.
        failures++;
        this.options.log?.(failures === 1 ? "warn" : "debug", "claiming an index job failed; trying again", { error: (e as Error).message });
        await this.idle(Math.min(30_000, 500 * 2 ** Math.min(failures, 6)));
        continue;
      }
      if (!job) {
        await this.idle(this.options.pollMs ?? 1000);
        continue;
      }
      await this.run(job);
    }
  }

  private idle(ms: number): Promise<void> {
    if (this.stopping.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  /** One attempt at a job: index it, then record how it ended (unless the job stopped being ours). */
  private async run(job: IndexJob): Promise<void> {
    const o = this.options;
    const t0 = performance.now();
    const stop = new AbortController();
    this.running.set(job.id, stop);
    const deadline = AbortSignal.timeout(o.scanTimeoutMs);
    const signal = AbortSignal.any([stop.signal, deadline]);
    let lost = false;
    const beat = setInterval(() => {
      o.jobs.heartbeat(job.id, job.owner!, this.leaseMs).then((mine) => {
        if (mine) return;
        lost = true;
        stop.abort(new Error("the job's lease was lost"));
      }, (e: unknown) => o.log?.("warn", "renewing an index job's lease failed", { job: job.id, manifest: job.manifest, error: (e as Error).message }));
    }, Math.max(500, Math.floor(this.leaseMs / 3)));
    let client: RegistryClient | undefined;
    let outcome: IndexJobOutcome;
    try {
      const creds = await workloadKeyring(o.secrets, job.namespace, job.pullSecrets, { operator: o.operatorSecrets, providers: o.providers });
      const platform = job.platform ? parsePlatform(job.platform) : undefined;
      client = new RegistryClient({ connections: o.registryConnections, options: o.registry, keyring: creds.keyring, defaultPlatform: platform, metrics: o.registryMetrics });
      const img = await openRegistryImage(client, parseReference(job.reference), { platform, signal });
      if (img.manifest.digest !== job.manifest) throw Object.assign(new Error(`${job.reference} is ${img.manifest.digest}, not the job's ${job.manifest}`), { code: "MANIFEST_CHANGED" });
      const result = await o.indexer.index(img.manifest, img.source, { signal });
      if (result.report.state !== "IndexFinished") {
        throw Object.assign(new Error(result.report.err ?? "indexing failed"), { code: errorCode(result.error) ?? "INDEX_FAILED" });
      }
      const s = result.stats;
      outcome = { state: "done", stats: { layers: s.layers, layersFetched: s.layersFetched, layersReused: layersReused(s), bytesFetched: s.bytesFetched, durationMs: Math.round(s.durationMs) } };
    } catch (e) {
      if ((stop.signal.aborted && !deadline.aborted) || isConnectionError(e)) {
        // Stopping (given back), the lease lost (someone else has it now: nothing is recorded), or the database
        // away mid-job (a restart: not the image's fault, so the attempt is given back uncounted once it answers).
        if (isConnectionError(e)) o.log?.("warn", "the database went away during an index job; it is given back once the database answers", { job: job.id, manifest: job.manifest, error: (e as Error).message });
        outcome = { state: "release" };
      } else {
        const code = deadline.aborted ? "SCAN_TIMEOUT" : errorCode(e) ?? "INDEX_FAILED";
        const message = deadline.aborted ? `the scan did not finish within its deadline of ${formatDuration(o.scanTimeoutMs)}` : (e as Error).message;
        const retryable = LIMIT_CODES.has(code) || isTransientCode(code);
        outcome = retryable && job.attempts < job.maxAttempts
          ? { state: "retry", code, message: attemptText(message, job.attempts, job.maxAttempts, false), afterMs: Math.min(5 * 60_000, 1000 * 2 ** job.attempts) }
          : { state: "failed", code, message: retryable ? attemptText(message, job.attempts, job.maxAttempts, true) : message };
      }
    } finally {
      clearInterval(beat);
      this.running.delete(job.id);
      await client?.close();
    }
    if (lost) {
      o.log?.("warn", "an index job's lease was lost; another process has it", { job: job.id, manifest: job.manifest });
      return;
    }
    const level = outcome.state === "done" || outcome.state === "release" ? "info" : "warn";
    o.log?.(level, `index job ${outcome.state}`, { job: job.id, manifest: job.manifest, attempt: job.attempts, ...(outcome.state === "failed" || outcome.state === "retry" ? { code: outcome.code, error: outcome.message } : {}) });
    o.onAttempt?.(outcome.state, performance.now() - t0);
    for (let i = 0; ; i++) {
      try {
        await o.jobs.finish(job.id, job.owner!, outcome);
        return;
      } catch (e) {
        // The outcome is kept until the database takes it (the lease may expire meanwhile: then the job runs again).
        if (i >= 8 || this.stopping.signal.aborted) {
          o.log?.("error", "recording an index job's outcome failed; the job will run again after its lease", { job: job.id, error: (e as Error).message });
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** i)));
      }
    }
  }
}
