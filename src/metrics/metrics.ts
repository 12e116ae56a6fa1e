// Prometheus metrics of `portcullis serve` (prom-client, a Registry of our own, names prefixed portcullis_).
// Nothing here reaches into the controllers: they report through callbacks and hooks they already have
// (the registry client's RegistryMetrics, the webhook's onDecision, the ImageScanController's onScanned),
// and gauges are read at scrape time from the objects that own the numbers (the work queue, the certificates).
import type { IncomingMessage, ServerResponse } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ScanObservation } from "../controller/imagescan.js";
import type { ListingObservation } from "../controller/repositories.js";
import type { RegistryMetrics } from "../registry/transport.js";
import type { Decision } from "../webhook/decide.js";

export const METRIC_PREFIX = "portcullis_";


/** A work queue as the gauges read it (WorkQueue has both). */
export interface QueueLike {
  readonly length: number;
  oldestAgeMs(now?: number): number;
}

/** The index job queue as its gauges read it (IndexJobStore.stats()). */
export interface JobsLike {
  queued: number;
  running: number;
  oldestQueuedMs: number;
}

/** The indexer's worker pool as its gauges read it (WorkerPool.stats()). */
export interface WorkersLike {
  size: number;
  busy: number;
  queued: number;
}

/** The certificates as the expiry gauge reads them (WebhookCertificates.expiry()). */
export interface CertificatesLike {
  expiry(): { leaf?: Date; ca?: Date };
}

export interface AdvisoryStatusLike {
  source: string;
  advisories: number;
  latest: { createdAt: string; checkedAt?: string };
}

export interface MetricsOptions {
  /** Also the process_* and nodejs_* metrics of prom-client (unprefixed, as everyone names them). Default false. */
  defaultMetrics?: boolean;
}

/**
 * Registries the `registry` label names without being configured: the big public ones (a fixed list, so
 * the label stays bounded). Every other host an image names, which tenants choose, is `other` unless the
 * operator configured it (knowRegistries: the hosts of its pull secrets).
 */
export const WELL_KNOWN_REGISTRIES: readonly string[] = [
  "registry-1.docker.io", "docker.io", "index.docker.io", "ghcr.io", "quay.io", "gcr.io", "registry.k8s.io",
  "mcr.microsoft.com", "public.ecr.aws", "registry.gitlab.com", "nvcr.io",
];
/** The most configured registries kept by name (globs included). */
const MAX_KNOWN_REGISTRIES = 256;

const SCAN_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
const REVIEW_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const REQUEST_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class PortcullisMetrics {
  readonly registry = new Registry();

  readonly scanDuration: Histogram<"result">;
  readonly queueDepth: Gauge;
  readonly queueOldestAge: Gauge;
  readonly layersFetched: Counter;
  readonly layersReused: Counter;
  readonly downloadedBytes: Counter;
  readonly registryRequests: Counter<"registry" | "method" | "status">;
  readonly registryRequestDuration: Histogram<"registry">;
  readonly registryBytes: Counter<"registry">;
  readonly tokenFetches: Counter<"registry" | "result">;
  readonly webhookReviewDuration: Histogram<"allowed">;
  readonly webhookDecisions: Counter<"mode" | "outcome" | "rule">;
  readonly breakGlass: Counter;
  readonly webhookScanRequests: Counter;
  readonly certificateExpiry: Gauge<"certificate">;
  readonly leader: Gauge;
  readonly advisoryUpdates: Counter<"source" | "result">;
  readonly advisoryAge: Gauge<"source">;
  readonly advisoryRecords: Gauge<"source">;
  readonly rematched: Counter<"result">;
  readonly imageVulnerabilities: Gauge<"severity">;
  readonly indexerWorkers: Gauge<"state">;
  readonly indexerLayersWaiting: Gauge;
  readonly indexerWorkerExits: Counter<"reason">;
  readonly statusWrites: Counter<"kind">;
  readonly leaderElectionRequests: Counter;
  readonly indexJobs: Gauge<"state">;
  readonly indexJobOldestAge: Gauge;
  readonly indexJobAttempts: Histogram<"outcome">;
  readonly repositoryTagsListed: Counter<"registry">;
  readonly repositoryNewDigests: Counter<"registry">;
  readonly repositoryListingErrors: Counter<"registry" | "reason">;

  private readonly knownRegistries = new Set<string>(WELL_KNOWN_REGISTRIES);
  private readonly knownGlobs: RegExp[] = [];
  private configured = 0;
  private queue: () => QueueLike | undefined = () => undefined;
  private certs: () => CertificatesLike | undefined = () => undefined;
  private advisories: () => Promise<AdvisoryStatusLike[]> = async () => [];
  private vulnerabilitySummaries: () => Iterable<Record<string, unknown> | undefined> = () => [];
  private workers: (() => WorkersLike) | undefined;
  private jobs: (() => Promise<JobsLike>) | undefined;

  constructor(o: MetricsOptions = {}) {
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    this.scanDuration = new Histogram({ name: `${p}scan_duration_seconds`, help: "Time to resolve and index an ImageScan's image, by result (indexed, failed, retrying).", labelNames: ["result"], buckets: SCAN_BUCKETS, registers });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.queueDepth = new Gauge({
      name: `${p}workqueue_depth`, help: "ImageScans waiting in the controller's work queue (0 on a replica that is not the leader).", registers,
      collect() {
        this.set(self.queue()?.length ?? 0);
      },
    });
    this.queueOldestAge = new Gauge({
      name: `${p}workqueue_oldest_item_age_seconds`, help: "How long the oldest ImageScan in the work queue has waited.", registers,
      collect() {
        this.set((self.queue()?.oldestAgeMs() ?? 0) / 1000);
      },
    });
    this.indexerWorkers = new Gauge({
      name: `${p}indexer_workers`, help: "Indexer worker processes, by state (busy: parsing a layer; idle). Saturation is busy / (busy + idle).", labelNames: ["state"], registers,
      collect() {
        const w = self.workers?.();
        this.set({ state: "busy" }, w?.busy ?? 0);
        this.set({ state: "idle" }, w ? w.size - w.busy : 0);
      },
    });
    this.indexerLayersWaiting = new Gauge({
      name: `${p}indexer_layers_waiting`, help: "Layers waiting for an indexer worker.", registers,
      collect() {
        this.set(self.workers?.().queued ?? 0);
      },
    });
    this.indexerWorkerExits = new Counter({ name: `${p}indexer_worker_exits_total`, help: "Indexer workers that ended while parsing a layer, by reason (memory: over its limit; crashed; aborted: its scan hit its deadline or failed in another layer): each is replaced.", labelNames: ["reason"], registers });
    this.statusWrites = new Counter({ name: `${p}status_writes_total`, help: "Status writes to the API server, by kind (ImageScan, ImagePolicy, ClusterImagePolicy, ImageRepository).", labelNames: ["kind"], registers });
    this.leaderElectionRequests = new Counter({ name: `${p}leader_election_requests_total`, help: "Requests to the API server about this replica's Lease (gets, creates, updates).", registers });
    this.indexJobs = new Gauge({
      name: `${p}index_jobs`, help: "Index jobs in the PostgreSQL queue, by state (queued, running): the whole cluster's, as every replica sees it.", labelNames: ["state"], registers,
      async collect() {
        const j = await self.jobs?.().catch(() => undefined);
        this.set({ state: "queued" }, j?.queued ?? 0);
        this.set({ state: "running" }, j?.running ?? 0);
      },
    });
    this.indexJobOldestAge = new Gauge({
      name: `${p}index_job_oldest_queued_age_seconds`, help: "How long the oldest queued index job has waited.", registers,
      async collect() {
        this.set(((await self.jobs?.().catch(() => undefined))?.oldestQueuedMs ?? 0) / 1000);
      },
    });
    this.indexJobAttempts = new Histogram({ name: `${p}index_job_attempt_duration_seconds`, help: "Index job attempts run by this replica, by outcome (done, failed, retry, release).", labelNames: ["outcome"], buckets: SCAN_BUCKETS, registers });
    this.layersFetched = new Counter({ name: `${p}layers_fetched_total`, help: "Layers downloaded and walked by scans.", registers });
    this.layersReused = new Counter({ name: `${p}layers_reused_total`, help: "Layers of scanned images whose results were already in the store (not downloaded).", registers });
    this.downloadedBytes = new Counter({ name: `${p}downloaded_bytes_total`, help: "Compressed layer bytes downloaded by scans.", registers });
    this.registryRequests = new Counter({ name: `${p}registry_requests_total`, help: "HTTP requests to registries, by registry, method and status (a number, or \"error\" when no response came).", labelNames: ["registry", "method", "status"], registers });
    this.registryRequestDuration = new Histogram({ name: `${p}registry_request_duration_seconds`, help: "Time to the response headers of registry requests.", labelNames: ["registry"], buckets: REQUEST_BUCKETS, registers });
    this.registryBytes = new Counter({ name: `${p}registry_received_bytes_total`, help: "Bytes read from registries (manifests and blobs).", labelNames: ["registry"], registers });
    this.tokenFetches = new Counter({ name: `${p}registry_token_fetches_total`, help: "Bearer token requests to registries' token services, by result (ok, error).", labelNames: ["registry", "result"], registers });
    this.webhookReviewDuration = new Histogram({ name: `${p}webhook_review_duration_seconds`, help: "Time to answer an admission review, by whether it was allowed.", labelNames: ["allowed"], buckets: REVIEW_BUCKETS, registers });
    this.webhookDecisions = new Counter({ name: `${p}webhook_decisions_total`, help: "Image verdicts of admission reviews, by policy mode, outcome and deciding rule.", labelNames: ["mode", "outcome", "rule"], registers });
    this.breakGlass = new Counter({ name: `${p}webhook_break_glass_total`, help: "Admitted objects that used the break-glass annotation.", registers });
    this.webhookScanRequests = new Counter({ name: `${p}webhook_scan_requests_total`, help: "ImageScans asked for after denials, by result: requested, or rate-limited (the namespace's bucket was empty, --webhook-scan-rate).", labelNames: ["result"], registers });
    this.certificateExpiry = new Gauge({
      name: `${p}webhook_certificate_expiry_timestamp_seconds`, help: "notAfter of the webhook's serving certificate (certificate=\"leaf\") and its CA (certificate=\"ca\"), Unix seconds.", labelNames: ["certificate"], registers,
      collect() {
        this.reset();
        const e = self.certs()?.expiry();
        if (e?.leaf) this.set({ certificate: "leaf" }, e.leaf.getTime() / 1000);
        if (e?.ca) this.set({ certificate: "ca" }, e.ca.getTime() / 1000);
      },
    });
    this.leader = new Gauge({ name: `${p}leader`, help: "1 while this replica holds the controller Lease (or runs without leader election), else 0.", registers });
    this.leader.set(0);
    this.advisoryUpdates = new Counter({ name: `${p}advisory_updates_total`, help: "Advisory source updates by serve, by source and result (updated, unchanged, imported, failed).", labelNames: ["source", "result"], registers });
    this.advisoryAge = new Gauge({
      name: `${p}advisory_age_seconds`, help: "Age of each advisory source's latest data in the store.", labelNames: ["source"], registers,
      async collect() {
        this.reset();
        for (const s of await self.advisories().catch(() => [])) {
          const at = s.latest.checkedAt && s.latest.checkedAt > s.latest.createdAt ? s.latest.checkedAt : s.latest.createdAt;
          this.set({ source: s.source }, Math.max(0, (Date.now() - Date.parse(at)) / 1000));
        }
      },
    });
    this.advisoryRecords = new Gauge({
      name: `${p}advisory_records`, help: "Current records of each advisory source.", labelNames: ["source"], registers,
      async collect() {
        this.reset();
        for (const s of await self.advisories().catch(() => [])) this.set({ source: s.source }, s.advisories);
      },
    });
    this.rematched = new Counter({ name: `${p}rematch_manifests_total`, help: "Images matched again after advisory updates, by result (changed, unchanged, failed); none of them downloads a layer.", labelNames: ["result"], registers });
    this.imageVulnerabilities = new Gauge({
      name: `${p}imagescan_vulnerabilities`, help: "Vulnerabilities of the Indexed ImageScans in this replica's cache, summed by severity (and fixable).", labelNames: ["severity"], registers,
      collect() {
        this.reset();
        const totals: Record<string, number> = { critical: 0, high: 0, medium: 0, low: 0, negligible: 0, unknown: 0, fixable: 0 };
        for (const v of self.vulnerabilitySummaries()) {
          if (!v) continue;
          for (const k of Object.keys(totals)) if (typeof v[k] === "number") totals[k]! += v[k] as number;
        }
        for (const [severity, n] of Object.entries(totals)) this.set({ severity }, n);
      },
    });
    this.repositoryTagsListed = new Counter({ name: `${p}repository_tags_listed_total`, help: "Tags read by the listings of watched repositories (ImageRepository), by registry.", labelNames: ["registry"], registers });
    this.repositoryNewDigests = new Counter({ name: `${p}repository_new_digests_total`, help: "Selected tags of watched repositories found pointing to a digest not seen for them before (new or moved tags), by registry.", labelNames: ["registry"], registers });
    this.repositoryListingErrors = new Counter({ name: `${p}repository_listing_errors_total`, help: "Failed listings of watched repositories, by registry and reason (AuthFailed, RateLimited, RegistryUnavailable, ...).", labelNames: ["registry", "reason"], registers });
    if (o.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** The queue the gauges read; a getter, since the controllers are made anew each leadership term. */
  watchQueue(queue: () => QueueLike | undefined): void {
    this.queue = queue;
  }

  watchCertificates(certs: () => CertificatesLike | undefined): void {
    this.certs = certs;
  }

  /** Where the index job gauges read the queue (with PostgreSQL). */
  watchJobs(stats: () => Promise<JobsLike>): void {
    this.jobs = stats;
  }

  observeIndexJob(outcome: string, durationMs: number): void {
    this.indexJobAttempts.observe({ outcome }, durationMs / 1000);
  }

  /** Where the indexer worker gauges read the pool (undefined while this replica runs none). */
  watchWorkers(stats: (() => WorkersLike) | undefined): void {
    this.workers = stats;
  }

  /** Where the advisory gauges read each source's age and records (only the leader updates; any replica reports). */
  watchAdvisories(status: () => Promise<AdvisoryStatusLike[]>): void {
    this.advisories = status;
  }

  /** Where the vulnerability gauge reads the ImageScans' status summaries (a getter: caches change with leadership). */
  watchVulnerabilities(summaries: () => Iterable<Record<string, unknown> | undefined>): void {
    this.vulnerabilitySummaries = summaries;
  }

  /** One round of re-matching after advisory updates. */
  observeRematch(r: { manifests: number; changed: readonly unknown[]; failed: readonly unknown[] }): void {
    if (r.changed.length) this.rematched.inc({ result: "changed" }, r.changed.length);
    if (r.manifests > r.changed.length) this.rematched.inc({ result: "unchanged" }, r.manifests - r.changed.length);
    if (r.failed.length) this.rematched.inc({ result: "failed" }, r.failed.length);
  }

  /** One round of serve's advisory updates. */
  observeAdvisoryRound(results: ReadonlyArray<{ source: string; status: string }>): void {
    for (const r of results) this.advisoryUpdates.inc({ source: r.source, result: r.status });
  }

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  /** An ImageScanController scan (its `onScanned` option). */
  observeScan(s: ScanObservation): void {
    this.scanDuration.observe({ result: s.result }, s.durationMs / 1000);
    if (s.layersFetched) this.layersFetched.inc(s.layersFetched);
    if (s.layersReused) this.layersReused.inc(s.layersReused);
    if (s.bytesFetched) this.downloadedBytes.inc(s.bytesFetched);
  }

  /** An ImageRepositoryController listing (its `onListing` option). */
  observeListing(e: ListingObservation): void {
    const registry = this.registryLabel(e.registry);
    if (e.error) this.repositoryListingErrors.inc({ registry, reason: e.error });
    if (e.tags) this.repositoryTagsListed.inc({ registry }, e.tags);
    if (e.newDigests) this.repositoryNewDigests.inc({ registry }, e.newDigests);
  }

  /**
   * Registries (`host[:port]`, `*` globbing one label) the operator configured: the `registry` label names
   * them; any other registry is `other`. At most 256 are kept.
   */
  knowRegistries(hosts: Iterable<string>): void {
    for (const raw of hosts) {
      const h = raw.trim().toLowerCase();
      if (!h || this.knownRegistries.has(h) || this.configured >= MAX_KNOWN_REGISTRIES) continue;
      this.configured++;
      if (h.includes("*")) this.knownGlobs.push(new RegExp(`^${h.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]*")}$`));
      else this.knownRegistries.add(h);
    }
  }

  /** The `registry` label for a registry: its name when known (configured or well known), else `other`. */
  registryLabel(registry: string): string {
    const r = registry.toLowerCase();
    return this.knownRegistries.has(r) || this.knownGlobs.some((g) => g.test(r)) ? r : "other";
  }

  /** Hooks for RegistryClient's `metrics` option. */
  registryHooks(): RegistryMetrics {
    return {
      request: (e) => {
        const registry = this.registryLabel(e.registry);
        this.registryRequests.inc({ registry, method: e.method, status: String(e.status) });
        this.registryRequestDuration.observe({ registry }, e.durationMs / 1000);
      },
      bytes: (e) => this.registryBytes.inc({ registry: this.registryLabel(e.registry) }, e.bytes),
      tokenFetch: (e) => this.tokenFetches.inc({ registry: this.registryLabel(e.registry), result: e.ok ? "ok" : "error" }),
    };
  }

  /** The AdmissionWebhook's `onDecision` option: one review, one latency sample, one count per image verdict. */
  observeDecision(d: { decision: Decision; durationMs: number }): void {
    this.webhookReviewDuration.observe({ allowed: String(d.decision.allowed) }, d.durationMs / 1000);
    for (const v of d.decision.verdicts) this.webhookDecisions.inc({ mode: v.mode, outcome: v.outcome, rule: v.rule });
    if (d.decision.breakGlass) this.breakGlass.inc();
  }

  /** The AdmissionWebhook's `onScanRequest` option. */
  observeScanRequest(result: "requested" | "rate-limited"): void {
    this.webhookScanRequests.inc({ result });
  }

  /** The exposition, in Prometheus's text format. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** GET /metrics. */
  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    try {
      const { contentType, body } = await this.text();
      res.writeHead(200, { "Content-Type": contentType, "Cache-Control": "no-store" }).end(req.method === "HEAD" ? undefined : body);
    } catch (e) {
      res.writeHead(500, { "Content-Type": "text/plain" }).end(`metrics: ${(e as Error).message}\n`);
    }
  }
}
