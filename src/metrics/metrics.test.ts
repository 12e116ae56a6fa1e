import { describe, expect, it } from "vitest";
import type { Decision } from "../webhook/decide.js";
import { METRIC_PREFIX, PortcullisMetrics } from "./metrics.js";

const NAMES = [
  "portcullis_scan_duration_seconds", "portcullis_workqueue_depth", "portcullis_workqueue_oldest_item_age_seconds",
  "portcullis_layers_fetched_total", "portcullis_layers_reused_total", "portcullis_downloaded_bytes_total",
  "portcullis_registry_requests_total", "portcullis_registry_request_duration_seconds", "portcullis_registry_received_bytes_total",
  "portcullis_registry_token_fetches_total", "portcullis_webhook_review_duration_seconds", "portcullis_webhook_decisions_total", "portcullis_webhook_scan_requests_total",
  "portcullis_webhook_break_glass_total", "portcullis_webhook_certificate_expiry_timestamp_seconds", "portcullis_leader",
  "portcullis_advisory_updates_total", "portcullis_advisory_age_seconds", "portcullis_advisory_records",
  "portcullis_rematch_manifests_total", "portcullis_imagescan_vulnerabilities",
  "portcullis_indexer_workers", "portcullis_indexer_layers_waiting", "portcullis_indexer_worker_exits_total",
  "portcullis_index_jobs", "portcullis_index_job_oldest_queued_age_seconds", "portcullis_index_job_attempt_duration_seconds",
  "portcullis_status_writes_total", "portcullis_leader_election_requests_total",
  "portcullis_repository_tags_listed_total", "portcullis_repository_new_digests_total", "portcullis_repository_listing_errors_total",
];

describe("PortcullisMetrics", () => {
  it("reads the indexer's worker pool: busy and idle workers, layers waiting", async () => {
    const m = new PortcullisMetrics();
    const text0 = await m.registry.metrics();
    expect(text0).toContain('portcullis_indexer_workers{state="busy"} 0');
    m.watchWorkers(() => ({ size: 4, busy: 3, queued: 7 }));
    m.indexerWorkerExits.inc({ reason: "memory" });
    const text = await m.registry.metrics();
    expect(text).toContain('portcullis_indexer_workers{state="busy"} 3');
    expect(text).toContain('portcullis_indexer_workers{state="idle"} 1');
    expect(text).toContain("portcullis_indexer_layers_waiting 7");
    expect(text).toContain('portcullis_indexer_worker_exits_total{reason="memory"} 1');
  });

  it("registers every metric under portcullis_ with Prometheus naming (base units, _total counters)", async () => {
    const m = new PortcullisMetrics();
    const metrics = await m.registry.getMetricsAsJSON();
    const names = metrics.map((x) => x.name);
    expect(names.sort()).toEqual([...NAMES].sort());
    for (const x of metrics) {
      expect(x.name.startsWith(METRIC_PREFIX)).toBe(true);
      expect(x.name).toMatch(/^[a-z_]+$/);
      if (String(x.type) === "counter") expect(x.name).toMatch(/_total$/);
      else expect(x.name).not.toMatch(/_total$/);
      expect(x.help.length).toBeGreaterThan(10);
    }
    // Nothing of the process: prom-client's default registry is not ours.
    expect(await m.registry.metrics()).not.toMatch(/process_cpu/);
    expect(await new PortcullisMetrics({ defaultMetrics: true }).registry.metrics()).toMatch(/process_cpu_user_seconds_total/);
  });

  it("reads each advisory source's age and records at scrape time, and counts update rounds by source and result", async () => {
    const m = new PortcullisMetrics();
    const made = new Date(Date.now() - 3600_000).toISOString();
    m.watchAdvisories(async () => [{ source: "debian", advisories: 41234, latest: { createdAt: made } }]);
    m.observeAdvisoryRound([{ source: "debian", status: "updated" }, { source: "alpine", status: "failed" }]);
    const text = await m.registry.metrics();
    expect(text).toMatch(/portcullis_advisory_records\{source="debian"\} 41234/);
    const age = Number(/portcullis_advisory_age_seconds\{source="debian"\} ([\d.]+)/.exec(text)?.[1]);
    expect(age).toBeGreaterThanOrEqual(3600);
    expect(age).toBeLessThan(3700);
    expect(text).toMatch(/portcullis_advisory_updates_total\{source="alpine",result="failed"\} 1/);
    // A store that cannot answer leaves the gauges empty rather than failing the scrape.
    m.watchAdvisories(async () => Promise.reject(new Error("down")));
    expect(await m.registry.metrics()).not.toMatch(/portcullis_advisory_records\{/);
  });

  it("counts an advisory source's age from its last unchanged check when that is later than its data", async () => {
    const m = new PortcullisMetrics();
    m.watchAdvisories(async () => [{ source: "alpine", advisories: 1, latest: { createdAt: new Date(Date.now() - 86400_000).toISOString(), checkedAt: new Date(Date.now() - 60_000).toISOString() } }]);
    const age = Number(/portcullis_advisory_age_seconds\{source="alpine"\} ([\d.]+)/.exec(await m.registry.metrics())?.[1]);
    expect(age).toBeGreaterThanOrEqual(60);
    expect(age).toBeLessThan(120);
  });

  it("sums the ImageScans' vulnerabilities by severity, and counts re-matched images by result", async () => {
    const m = new PortcullisMetrics();
    const s = (critical: number, high: number, fixable: number) => ({ critical, high, medium: 0, low: 0, negligible: 0, unknown: 1, fixable });
    m.watchVulnerabilities(() => [s(1, 2, 3), undefined, s(0, 5, 1)]);
    m.observeRematch({ manifests: 10, changed: [1, 2, 3], failed: [1] });
    const text = await m.registry.metrics();
    expect(text).toContain('portcullis_imagescan_vulnerabilities{severity="critical"} 1');
    expect(text).toContain('portcullis_imagescan_vulnerabilities{severity="high"} 7');
    expect(text).toContain('portcullis_imagescan_vulnerabilities{severity="fixable"} 4');
    expect(text).toContain('portcullis_imagescan_vulnerabilities{severity="unknown"} 2');
    expect(text).toContain('portcullis_rematch_manifests_total{result="changed"} 3');
    expect(text).toContain('portcullis_rematch_manifests_total{result="unchanged"} 7');
    expect(text).toContain('portcullis_rematch_manifests_total{result="failed"} 1');
  });

  it("observes scans: a histogram sample by result, layers and bytes counted", async () => {
    const m = new PortcullisMetrics();
    m.observeScan({ result: "indexed", durationMs: 1500, layersFetched: 2, layersReused: 3, bytesFetched: 1000 });
    m.observeScan({ result: "failed", durationMs: 40 });
    const text = await m.registry.metrics();
    expect(text).toContain('portcullis_scan_duration_seconds_bucket{le="2.5",result="indexed"} 1');
    expect(text).toContain('portcullis_scan_duration_seconds_bucket{le="1",result="indexed"} 0');
    expect(text).toContain('portcullis_scan_duration_seconds_sum{result="indexed"} 1.5');
    expect(text).toContain('portcullis_scan_duration_seconds_count{result="failed"} 1');
    expect(text).toContain("portcullis_layers_fetched_total 2");
    expect(text).toContain("portcullis_layers_reused_total 3");
    expect(text).toContain("portcullis_downloaded_bytes_total 1000");
  });

  it("reads the queue, the certificates and the leader at scrape time", async () => {
    const m = new PortcullisMetrics();
    expect(await m.registry.metrics()).toContain("portcullis_workqueue_depth 0");
    m.watchQueue(() => ({ length: 7, oldestAgeMs: () => 2500 }));
    const leaf = new Date("2030-01-02T03:04:05Z");
    m.watchCertificates(() => ({ expiry: () => ({ leaf }) }));
    m.setLeader(true);
    const text = await m.registry.metrics();
    expect(text).toContain("portcullis_workqueue_depth 7");
    expect(text).toContain("portcullis_workqueue_oldest_item_age_seconds 2.5");
    expect(text).toContain(`portcullis_webhook_certificate_expiry_timestamp_seconds{certificate="leaf"} ${leaf.getTime() / 1000}`);
    expect(text).not.toContain('seconds{certificate="ca"}');
    expect(text).toContain("portcullis_leader 1");
    m.setLeader(false);
    expect(await m.registry.metrics()).toContain("portcullis_leader 0");
  });

  it("counts registry requests by registry, method and status, and token fetches", async () => {
    const m = new PortcullisMetrics();
    const h = m.registryHooks();
    h.request!({ registry: "ghcr.io", method: "GET", status: 200, durationMs: 30 });
    h.request!({ registry: "ghcr.io", method: "GET", status: 200, durationMs: 30 });
    h.request!({ registry: "ghcr.io", method: "HEAD", status: "error", durationMs: 5 });
    h.tokenFetch!({ registry: "ghcr.io", ok: true });
    h.tokenFetch!({ registry: "ghcr.io", ok: false });
    h.bytes!({ registry: "ghcr.io", bytes: 512 });
    const text = await m.registry.metrics();
    expect(text).toContain('portcullis_registry_requests_total{registry="ghcr.io",method="GET",status="200"} 2');
    expect(text).toContain('portcullis_registry_requests_total{registry="ghcr.io",method="HEAD",status="error"} 1');
    expect(text).toContain('portcullis_registry_token_fetches_total{registry="ghcr.io",result="ok"} 1');
    expect(text).toContain('portcullis_registry_token_fetches_total{registry="ghcr.io",result="error"} 1');
    expect(text).toContain('portcullis_registry_received_bytes_total{registry="ghcr.io"} 512');
    expect(text).toContain('portcullis_registry_request_duration_seconds_count{registry="ghcr.io"} 3');
  });

  it("counts watched repositories' listings: tags, new digests, errors by registry (tenant hosts are `other`)", async () => {
    const m = new PortcullisMetrics();
    m.observeListing({ registry: "ghcr.io", tags: 30, newDigests: 5 });
    m.observeListing({ registry: "ghcr.io", tags: 31, newDigests: 1 });
    m.observeListing({ registry: "ghcr.io", tags: 0, newDigests: 0, error: "RateLimited" });
    m.observeListing({ registry: "tenant-chosen.example:5000", tags: 0, newDigests: 0, error: "AuthFailed" });
    const text = await m.registry.metrics();
    expect(text).toContain('portcullis_repository_tags_listed_total{registry="ghcr.io"} 61');
    expect(text).toContain('portcullis_repository_new_digests_total{registry="ghcr.io"} 6');
    expect(text).toContain('portcullis_repository_listing_errors_total{registry="ghcr.io",reason="RateLimited"} 1');
    expect(text).toContain('portcullis_repository_listing_errors_total{registry="other",reason="AuthFailed"} 1');
  });

  it("names configured and well-known registries in the registry label, and every tenant-chosen host `other`", async () => {
    const m = new PortcullisMetrics();
    m.knowRegistries(["registry.corp.example:5000", "*.azurecr.io", "REGISTRY.Corp.example"]);
    const h = m.registryHooks();
    for (let i = 0; i < 500; i++) h.request!({ registry: `tenant-${i}.example.com`, method: "GET", status: 200, durationMs: 1 });
    for (const registry of ["registry.corp.example:5000", "team.azurecr.io", "a.b.azurecr.io", "docker.io", "registry.corp.example"]) h.request!({ registry, method: "GET", status: 200, durationMs: 1 });
    const text = await m.registry.metrics();
    const labels = [...new Set([...text.matchAll(/portcullis_registry_requests_total\{registry="([^"]+)"/g)].map((x) => x[1]))].sort();
    // `*` globs one label, as in docker config keys: a.b.azurecr.io is not *.azurecr.io.
    expect(labels).toEqual(["docker.io", "other", "registry.corp.example", "registry.corp.example:5000", "team.azurecr.io"]);
    expect(text).toContain('portcullis_registry_requests_total{registry="other",method="GET",status="200"} 501');
    // At most 256 configured names are kept.
    m.knowRegistries(Array.from({ length: 1000 }, (_, i) => `r${i}.example`));
    expect(m.registryLabel("r200.example")).toBe("r200.example");
    expect(m.registryLabel("r999.example")).toBe("other");
  });

  it("counts webhook decisions per verdict by mode, outcome and rule, latency and break-glass", async () => {
    const m = new PortcullisMetrics();
    const verdict = (outcome: "allowed" | "denied", rule: string) => ({ field: "spec.containers[0].image", image: "x", outcome, action: "deny", rule, results: [], mode: "Enforce", message: "" });
    const decision = { allowed: false, warnings: [], auditAnnotations: {}, scansWanted: [], verdicts: [verdict("denied", "missingScan"), verdict("allowed", "breakGlass")], breakGlass: { reason: "incident", fields: [] } } as unknown as Decision;
    m.observeDecision({ decision, durationMs: 20 });
    const text = await m.registry.metrics();
    expect(text).toContain('portcullis_webhook_decisions_total{mode="Enforce",outcome="denied",rule="missingScan"} 1');
    expect(text).toContain('portcullis_webhook_decisions_total{mode="Enforce",outcome="allowed",rule="breakGlass"} 1');
    expect(text).toContain('portcullis_webhook_review_duration_seconds_bucket{le="0.025",allowed="false"} 1');
    expect(text).toContain("portcullis_webhook_break_glass_total 1");
    m.observeScanRequest("requested");
    m.observeScanRequest("rate-limited");
    m.observeScanRequest("rate-limited");
    const after = await m.registry.metrics();
    expect(after).toContain('portcullis_webhook_scan_requests_total{result="requested"} 1');
    expect(after).toContain('portcullis_webhook_scan_requests_total{result="rate-limited"} 2');
  });
});
