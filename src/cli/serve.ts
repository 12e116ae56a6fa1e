// `portcullis serve`: runs the operator's controllers (Pods -> ImageScans, ImageScans -> index) with
// /healthz and /readyz. Configuration from flags, environment and a file, validated by one zod schema
// (./serve-config.ts); JSON log lines on standard error (pino, ../log/pino.ts).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { apiErrorDetail } from "../kube/api-error.js";
import { createServer as createHttpsServer } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { ImageScanController } from "../controller/imagescan.js";
import { parseDuration } from "../kube/duration.js";
import { SharedCache } from "../kube/cache.js";
import { Manager, runnable, type Runnable } from "../kube/manager.js";
import { DEFAULT_EXCLUDED_NAMESPACES } from "../kube/api/v1alpha1/index.js";
import { PolicyStatusController } from "../controller/policies.js";
import { PodController } from "../controller/pods.js";
import { ImageRepositoryController } from "../controller/repositories.js";
import { EventRecorder } from "../kube/events.js";
import { KeepAliveKubeConfig } from "../kube/kubeconfig.js";
import { RegistryConnections } from "../registry/connections.js";
import { MUTATING_NAME, registerWebhooks, VALIDATING_NAME } from "../webhook/register.js";
import { AdmissionWebhook } from "../webhook/server.js";
import { WebhookCertificates, webhookSans } from "../webhook/tls/index.js";
import { ClientCa } from "../webhook/client-ca.js";
import type { Server as TlsServer } from "node:tls";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { parsePlatform } from "../image/platform.js";
import { Indexer } from "../indexer/indexer.js";
import { WorkerPool } from "../indexer/workers/pool.js";
import { IndexJobRunner } from "../controller/indexjobs.js";
import { cloudProviders } from "../registry/auth/cloud/providers.js";
import { defaultScanners } from "../scanners/index.js";
import { openStore } from "../store/open.js";
import { EXIT } from "./exit.js";
import { PortcullisMetrics } from "../metrics/metrics.js";
import { kubeAuthority, ReportApi } from "../api/report.js";
import { version } from "./version.js";
import { levelLogFn, logFn, logId, withLogContext, type LogFields, type LogLevel } from "../log/logger.js";
import { createLogger } from "../log/pino.js";
import { describeConfig, loadServeConfig } from "./serve-config.js";
import { AdvisoryScheduler } from "../advisories/scheduler.js";
import { Rematcher } from "../findings/rematch.js";
import { defaultCatalogue } from "../advisories/catalogue.js";
import { tenantRedactor } from "../log/redact.js";
import { advisoryRound, checkAdvisorySources } from "./advisory-round.js";
import { operatorRegistryHosts, SecretCache, workloadKeyring } from "../registry/auth/workload.js";

export { loadServeConfig, serveConfig, type ServeConfig } from "./serve-config.js";

export const SERVE_HELP = `Usage: portcullis serve [options]

Run the Portcullis operator: make an ImageScan for every image pods run, index them, write their status.

Options (each also an environment variable, and a key of the --config file):
  --roles L                what this process runs, comma separated (PORTCULLIS_ROLES, default all three):
                           webhook (the admission webhook and its certificate reloader, every replica),
                           controller (Pod, policy and repository controllers, webhook registration,
                           certificate rotation, advisory updates; under the Lease portcullis-controller),
                           indexer (the scans: resolve, index, match, write their status; re-matching; under
                           the Lease, portcullis-indexer when the process has no controller role). Every role
                           serves /healthz, /readyz, /metrics and the report API; a role not started opens no
                           watch it does not need
  --config FILE            read options from a YAML or JSON file (PORTCULLIS_CONFIG): its keys are the options'
                           camelCase names (databaseUrl, concurrency, watchNamespaces, logLevel; --no-pods is
                           watchPods: false), lists may be YAML lists; an unknown key or a wrong type is an
                           error. Flags win over the environment, which wins over the file
  --log-level L            debug, info, warn or error (PORTCULLIS_LOG_LEVEL, default info): JSON lines on
                           standard error, secrets redacted; the effective configuration is logged at start
  --database-url URL       PostgreSQL (PORTCULLIS_DATABASE_URL); without it an embedded store in
                           --store-path (only for a single replica)
  --store-path PATH        the embedded store's folder (PORTCULLIS_STORE, default ./portcullis-store)
  --namespace NS           Portcullis's own namespace (POD_NAMESPACE, default portcullis-system)
  --health-addr HOST:PORT  where /healthz, /readyz, /metrics and, without --report-tls, the report API
                           (/indexer/api/v1/, /matcher/api/v1/, Kubernetes bearer tokens) answer, plain HTTP
                           (PORTCULLIS_HEALTH_ADDR, default 0.0.0.0:8081)
  --concurrency N          scans at once (PORTCULLIS_CONCURRENCY, default 4)
  --index-workers N        worker processes that parse layer bytes for the indexer role; a layer that exhausts
                           a worker's memory, outlives its scan's deadline or crashes it fails that scan only
                           (PORTCULLIS_INDEX_WORKERS, default 2; 0 parses in this process)
  --worker-memory MIB      resident memory a worker may reach before it is stopped and its layer fails with
                           ResourceLimitExceeded (PORTCULLIS_WORKER_MEMORY, default 1024)
  --worker-heap MIB        a worker's JavaScript heap limit (PORTCULLIS_WORKER_HEAP, default 512)
  --worker-nice N          the workers' CPU niceness, 0-19: above 0 they yield the CPU to this process (admission
                           reviews, the controller) when both want it (PORTCULLIS_WORKER_NICE, default 19)
  --scan-timeout D         a scan's wall deadline, resolving to indexed (PORTCULLIS_SCAN_TIMEOUT, default 10m);
                           past it the scan fails with Timeout
  --scan-attempts N        attempts of a scan whose worker hit a limit or crashed, with backoff, before it
                           stays Failed until its spec or the scanner set changes (PORTCULLIS_SCAN_ATTEMPTS,
                           default 3)
  --max-layer-mib N        bytes a layer may decompress to, MiB (PORTCULLIS_MAX_LAYER_MIB, default 32768)
  --max-captured-mib N     bytes of the files the scanners read that one layer may hold, MiB
                           (PORTCULLIS_MAX_CAPTURED_MIB, default 512)
  --max-scan-captured-mib N
                           the same for all the layers of one scan (PORTCULLIS_MAX_SCAN_CAPTURED_MIB, default 1024)
  --job-lease D            with --database-url, indexing is handed out through a job queue in PostgreSQL to the
                           indexer role of every replica; a claimed job is renewed every third of this and taken
                           over by another replica when its owner stops renewing it (PORTCULLIS_JOB_LEASE,
                           default 30s)
  --platform OS/ARCH       platform to index from multi-platform images (PORTCULLIS_PLATFORM, default linux/amd64)
  --credential-helpers L   cloud helpers, comma separated: ecr, gcr (PORTCULLIS_CREDENTIAL_HELPERS)
  --pull-secrets L         pull secrets in --namespace tried after the pod's own and its ServiceAccount's,
                           comma separated (PORTCULLIS_PULL_SECRETS); with --credential-helpers they are the
                           operator's credentials, used only for --namespace and the two lists below
  --operator-credentials-namespaces L
                           namespaces whose images may be pulled with the operator's credentials
                           (PORTCULLIS_OPERATOR_CREDENTIALS_NAMESPACES, default none but --namespace)
  --operator-credentials-registries L
                           registries (host[:port]) for which every namespace may use them
                           (PORTCULLIS_OPERATOR_CREDENTIALS_REGISTRIES, default none)
  --exclude-namespaces L   namespaces whose pods are not scanned (PORTCULLIS_EXCLUDE_NAMESPACES, default
                           kube-system,kube-public,kube-node-lease); Portcullis's own is always excluded
  --watch-namespaces L     handle only these namespaces' pods and ImageScans, comma separated
                           (PORTCULLIS_WATCH_NAMESPACES, default all); the webhook is unaffected
  --gc-after DURATION      delete the ImageScans Portcullis made once no pod in their namespace has used
                           the image for this long (PORTCULLIS_GC_AFTER, default 24h)
  --no-pods                watch ImageScans only, make none for pods (PORTCULLIS_WATCH_PODS=false)
  --leader-elect BOOL      run the controllers only while holding the Lease portcullis-controller in
                           --namespace, so replicas can run side by side (PORTCULLIS_LEADER_ELECT,
                           default true)
  --lease-duration DUR     how long a replica waits for a silent leader before taking over
                           (PORTCULLIS_LEASE_DURATION, default 15s; attempts every 2/15 of it, renew deadline 2/3)
Admission webhook (on every replica; the leader registers it and keeps its certificate):
  --webhook BOOL           serve the validating webhook (PORTCULLIS_WEBHOOK, default true)
  --webhook-addr HOST:PORT where it listens, HTTPS (PORTCULLIS_WEBHOOK_ADDR, default 0.0.0.0:8443, or
                           --webhook-url's host and port when that is given)
  --webhook-url URL        outside the cluster: register https://HOST:PORT as the webhook's address
                           (certificate SAN from its host) instead of the Service, and listen there unless
                           --webhook-addr says where (PORTCULLIS_WEBHOOK_URL)
  --webhook-service NAME   the Service in --namespace that fronts the replicas (PORTCULLIS_WEBHOOK_SERVICE,
                           default portcullis)
  --webhook-timeout SECS   the API server's timeout for a review, 1-30; verdicts take at most 70% of it
                           (PORTCULLIS_WEBHOOK_TIMEOUT, default 5)
  --failure-policy P       Fail or Ignore when the webhook cannot answer (PORTCULLIS_FAILURE_POLICY, default Fail)
  --tls-mode M             builtin (own CA, rotated) or external (cert-manager writes the Secret)
                           (PORTCULLIS_TLS_MODE, default builtin)
  --pin-digests BOOL       also register the mutating webhook that pins image:tag to its digest where a policy
                           asks (PORTCULLIS_PIN_DIGESTS, default false)
  --webhook-exclude-namespaces L
                           namespaces never judged, by name, besides kube-system, kube-public, kube-node-lease
                           and --namespace (PORTCULLIS_WEBHOOK_EXCLUDE_NAMESPACES)
  --webhook-namespace-label KEY=VALUE
                           send only namespaces with this label (PORTCULLIS_WEBHOOK_NAMESPACE_LABEL; default:
                           every namespace but the excluded ones); whoever may label a namespace can then take
                           it out, so choose a label only the platform team sets
  --break-glass BOOL       whether the break-glass annotation works for images no policy decides for
                           (PORTCULLIS_BREAK_GLASS, default false); it is used only by users allowed the verb
                           break-glass on imagepolicies.portcullis.dev in the namespace (docs/policy.md)
  --on-missing-scan A      when no policy applies: deny, warn or allow an image without an Indexed scan
                           (PORTCULLIS_ON_MISSING_SCAN, default deny)
  --webhook-client-ca FILE require a client certificate signed by this CA (PEM) for every connection to the
                           webhook: the API server's, from its --admission-control-config-file
                           (PORTCULLIS_WEBHOOK_CLIENT_CA; re-read when it changes; docs/trust.md). Without it
                           anyone who reaches the port can send a review, so answers say only allowed or denied
                           and which rule (no digest, registry error or scan name), Events name no user, and
                           --pin-digests pins nothing
  --webhook-scan-rate N    ImageScans reviews may ask for per namespace and second (PORTCULLIS_WEBHOOK_SCAN_RATE,
                           default 1), with a burst of --webhook-scan-burst (PORTCULLIS_WEBHOOK_SCAN_BURST,
                           default 20); a repeat within a minute is free, a request beyond is dropped and counted
                           in portcullis_webhook_scan_requests_total{result="rate-limited"}
Advisory database (updated by the leader; see portcullis db --help):
  --advisory-update-interval DUR
                           how often to update the advisory sources (PORTCULLIS_ADVISORY_UPDATE_INTERVAL,
                           default 6h; 0 never: for clusters fed by 'portcullis db import' or 'db push')
  --advisory-sources L     sources to update, comma separated (PORTCULLIS_ADVISORY_SOURCES, default those
                           'portcullis db sources' marks default)
  --advisory-mirrors L     NAME=URL pairs: fetch source NAME's files from URL/<path> (PORTCULLIS_ADVISORY_MIRRORS)
  --advisory-bundle REF    air-gapped clusters: pull this OCI artifact (made by 'portcullis db push') instead
                           of the upstreams, with the operator's pull secrets (PORTCULLIS_ADVISORY_BUNDLE)
  --rematch-interval DUR   how often the leader looks for advisory operations recorded by others ('db import'
                           against the same database) and re-matches the images they touch
                           (PORTCULLIS_REMATCH_INTERVAL, default 30s; its own updates re-match at once)
Report API:
  --report-tls BOOL        serve the report API over HTTPS on --report-addr with the webhook's certificate
                           (the Secret portcullis-webhook-tls: its ca.crt is what clients trust) and refuse it on
                           the plain --health-addr (PORTCULLIS_REPORT_TLS, default false; the chart sets true)
  --report-addr HOST:PORT  where the HTTPS report API listens (PORTCULLIS_REPORT_ADDR, default 0.0.0.0:8444)
  --report-token-audiences L  accept only bearer tokens issued for one of these audiences (comma separated;
                           PORTCULLIS_REPORT_TOKEN_AUDIENCES), e.g. portcullis, with tokens from
                           'kubectl create token SA --audience portcullis'; default: the API server's own,
                           so a kubeconfig token works (and could be replayed to the API server by whoever
                           reads it on the way: the port is plain HTTP)
The cluster comes from KUBECONFIG, else the in-cluster service account.
`;

/** What a process runs (docs/architecture.md): the admission webhook, the controllers, the scanning work. */
const MIB = 1024 * 1024;

export type Role = "webhook" | "controller" | "indexer";

function list(csv: string): string[] {
  return csv.split(",").map((s) => s.trim()).filter(Boolean);
}

export async function serveCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const loaded = loadServeConfig(args, env);
  if (loaded === "help") {
    process.stdout.write(SERVE_HELP);
    return EXIT.ok;
  }
  const cfg = loaded.config;
  const roles = new Set(list(cfg.roles) as Role[]);
  // One root logger; each part gets a child naming it, and the async log context adds the scan attempt,
  // the admission review's uid or the API request's id to the lines written on their behalf.
  const logger = createLogger({ level: cfg.logLevel });
  const log = (level: LogLevel, msg: string, fields?: LogFields) => logger[level](msg, fields);
  const part = (component: string, more: LogFields = {}) => logger.child({ component, ...more });
  log("info", "configuration", describeConfig(loaded));
  const identity = env.POD_NAME || `${hostname()}-${randomBytes(4).toString("hex")}`;
  const platform = parsePlatform(cfg.platform);
  // Its API clients keep their connections (the library's own open one per request: a TLS handshake each).
  const kc = new KeepAliveKubeConfig();
  if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
  else kc.loadFromCluster();
  // Configuration errors found now stop the start before anything is opened.
  const mirrors = Object.fromEntries(list(cfg.advisoryMirrors).map((m) => [m.slice(0, m.indexOf("=")), m.slice(m.indexOf("=") + 1)]));
  checkAdvisorySources({ catalogue: defaultCatalogue(), sources: list(cfg.advisorySources), mirrors });
  const store = await openStore(cfg.databaseUrl ?? cfg.storePath);
  const helpers = list(cfg.credentialHelpers);
  const providers = cloudProviders(helpers);
  const operatorSecrets = {
    namespace: cfg.namespace, names: list(cfg.pullSecrets),
    namespaces: list(cfg.operatorCredentialsNamespaces), registries: list(cfg.operatorCredentialsRegistries),
  };
  // Events are read by whoever may read the namespace: scrubbed, and operator pull secrets by kind only.
  const events = new EventRecorder(kc, { log: logFn(part("events"), "warn"), redact: tenantRedactor(operatorSecrets) });
  // What one layer and one scan may cost, wherever layers are parsed (here or in the worker processes).
  const scanTimeoutMs = parseDuration(cfg.scanTimeout)!;
  const walkLimits = { maxDecompressedBytes: cfg.maxLayerMib * MIB, maxCapturedBytes: cfg.maxCapturedMib * MIB };
  const scanLimits = { limits: walkLimits, maxScanCapturedBytes: cfg.maxScanCapturedMib * MIB };
  const indexer = new Indexer({ store, scanners: defaultScanners(), log: levelLogFn(part("indexer")), ...scanLimits });
  const metrics = new PortcullisMetrics({ defaultMetrics: true });
  metrics.watchAdvisories(() => store.advisories.status());
  // The process's one cache: an informer per kind, opened by the first role that needs the kind.
  const cache = new SharedCache(kc, { log: logFn(part("cache"), "warn") });
  // Advisory updates run on the leader, with the controllers (checked now: an unknown source fails the start).
  const advisoryIntervalMs = cfg.advisoryUpdateInterval === "0" ? 0 : parseDuration(cfg.advisoryUpdateInterval)!;
  const secretCache = new SecretCache(kc.makeApiClient(k8s.CoreV1Api));
  // One set of registry connections for every client this process makes (a client per scan, each with its
  // scan's credentials): kept alive across scans instead of a TCP connection and TLS handshake per scan.
  const registryConnections = new RegistryConnections();
  // The registry metrics name the registries of the operator's pull secrets (and the big public ones);
  // the hosts tenants' images name are `other`, so the label stays bounded. Re-read now and then.
  const learnRegistries = () => operatorRegistryHosts(secretCache, operatorSecrets).then((h) => metrics.knowRegistries(h), (e: unknown) => log("warn", `reading the operator pull secrets' registries for metrics: ${(e as Error).message}`));
  void learnRegistries();
  setInterval(() => void learnRegistries(), 10 * 60_000).unref();
  const runAdvisoryRound = advisoryRound({
    store, catalogue: defaultCatalogue(), sources: list(cfg.advisorySources), mirrors, bundle: cfg.advisoryBundle || undefined,
    keyring: async () => (await workloadKeyring(secretCache, cfg.namespace, [], { operator: operatorSecrets, providers })).keyring,
  });
  const advisoryLog = part("advisories");
  const rematchIntervalMs = parseDuration(cfg.rematchInterval)!;
  const watched = list(cfg.watchNamespaces);
  const namespaces = watched.length ? { namespaces: watched } : {};
  // Whether the cluster has the admission webhook: the controller registers it and keeps its certificate, the
  // webhook role serves it (two processes, or one).
  const webhookOn = cfg.webhook === "true";
  const reportTls = cfg.reportTls === "true";
  const excluded = [...new Set([...DEFAULT_EXCLUDED_NAMESPACES, cfg.namespace, ...list(cfg.webhookExcludeNamespaces)])];
  // The webhook's certificate also serves the report API over TLS (the same Service name, another port).
  const certs = webhookOn || reportTls
    ? new WebhookCertificates({
      kc, namespace: cfg.namespace, mode: cfg.tlsMode,
      ...webhookSans(cfg.webhookUrl ? { url: cfg.webhookUrl } : { service: { name: cfg.webhookService, namespace: cfg.namespace } }),
      webhookConfigurations: webhookOn ? { validating: [VALIDATING_NAME], mutating: cfg.pinDigests === "true" ? [MUTATING_NAME] : [] } : {},
      log: levelLogFn(part("webhook-tls")),
    })
    : undefined;
  metrics.watchCertificates(() => certs);
  const leaseName = roles.has("controller") ? "portcullis-controller" : "portcullis-indexer";
  const leaderLog = part("leader", { identity });
  const manager = new Manager({
    cache,
    ...(cfg.leaderElect === "true"
      ? {
        leaderElection: {
          kc, namespace: cfg.namespace, name: leaseName, identity, leaseDurationMs: parseDuration(cfg.leaseDuration)!,
          renewDeadlineMs: Math.round((parseDuration(cfg.leaseDuration)! * 2) / 3), retryPeriodMs: Math.max(500, Math.round((parseDuration(cfg.leaseDuration)! * 2) / 15)),
          onStartedLeading: () => (leaderLog.info("became the leader"), metrics.setLeader(true)),
          onRequest: () => metrics.leaderElectionRequests.inc(),
          onStoppedLeading: () => (metrics.setLeader(false), leaderLog.info("no longer the leader")),
          onNewLeader: (id) => leaderLog.info("leader", { leader: id ?? null }),
          log: logFn(leaderLog),
        },
      }
      : {}),
    log: logFn(part("manager")),
  });

  // ----- webhook role: every replica answers reviews from the shared caches.
  const clientCa = roles.has("webhook") && webhookOn && cfg.webhookClientCa ? new ClientCa({ file: cfg.webhookClientCa, log: levelLogFn(part("webhook-tls")) }) : undefined;
  if (roles.has("webhook") && webhookOn) {
    // Read now (above): a client CA that cannot be used stops the start (a webhook that would take anyone's review
    // instead of the operator's choice is worse than none).
    if (!clientCa) {
      log("warn", "the webhook takes reviews from anyone who reaches its port (no --webhook-client-ca): answers are generic, Events name no user"
        + (cfg.pinDigests === "true" ? ", and --pin-digests pins nothing" : ""));
    }
    const webhook = new AdmissionWebhook({
      kc, cache, secrets: secretCache, namespace: cfg.namespace, excludeNamespaces: excluded, timeoutSeconds: cfg.webhookTimeout, providers, operatorSecrets, events, registryConnections,
      defaultPolicy: { mode: "Enforce", onMissingScan: cfg.onMissingScan, requireDigest: false, breakGlassAllowed: cfg.breakGlass === "true" }, log: levelLogFn(part("webhook")),
      onDecision: (d) => metrics.observeDecision(d), findings: (digest) => store.findings.get(digest),
      scanRequests: { perSecond: cfg.webhookScanRate, burst: cfg.webhookScanBurst }, onScanRequest: (r) => metrics.observeScanRequest(r),
    });
    manager.add(runnable("webhook-caches", false, async () => {
      await webhook.start();
      return () => webhook.stop();
    }));
    manager.add(certificateReloader(certs!));
    manager.add(runnable("webhook-server", false, async () => {
      const [whost, wport] = [cfg.webhookAddr.slice(0, cfg.webhookAddr.lastIndexOf(":")), Number(cfg.webhookAddr.slice(cfg.webhookAddr.lastIndexOf(":") + 1))];
      const server = (await webhook.listen({ host: whost || "0.0.0.0", port: wport, https: true, ...(clientCa ? { clientCa } : {}) })) as unknown as TlsServer;
      certs!.attach(server, clientCa ? { clientCa } : {});
      clientCa?.start();
      return async () => {
        await new Promise<void>((r) => server.close(() => r()));
        clientCa?.stop();
      };
    }));
  }

  // ----- every role: the report API (the ImageScans it authorizes by come from the shared cache).
  const reportApi = new ReportApi({
    kc, cache, store, scannerSet: indexer.scannerSet, indexer, inventory: indexer, version: version(), log: levelLogFn(part("report-api")),
    authority: kubeAuthority(kc, { audiences: list(cfg.reportTokenAudiences) }),
  });
  // Each report API request gets an id (the caller's X-Request-Id when it is a plain token): on every line
  // written for it, and in the answer's X-Request-Id.
  const apiLog = part("report-api");
  const serveApi = (req: IncomingMessage, res: ServerResponse) => {
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && /^[A-Za-z0-9._:-]{1,64}$/.test(given) ? given : logId();
    const t0 = performance.now();
    res.setHeader("X-Request-Id", requestId);
    res.once("finish", () => apiLog.debug("report API request", { requestId, method: req.method, path: new URL(req.url ?? "/", "http://x").pathname, status: res.statusCode, durationMs: Math.round(performance.now() - t0) }));
    void withLogContext({ requestId }, () => reportApi.handle(req, res));
  };
  manager.add(runnable("report-api", false, async () => {
    await reportApi.start();
    return () => reportApi.stop();
  }));
  if (reportTls && certs) {
    if (!roles.has("webhook") || !webhookOn) manager.add(certificateReloader(certs));
    manager.add(runnable("report-server", false, async () => {
      const [rhost, rport] = [cfg.reportAddr.slice(0, cfg.reportAddr.lastIndexOf(":")), Number(cfg.reportAddr.slice(cfg.reportAddr.lastIndexOf(":") + 1))];
      const https = createHttpsServer({}, serveApi);
      https.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve, reject) => https.once("error", reject).listen(rport, rhost || "0.0.0.0", resolve));
      certs.attach(https as unknown as TlsServer);
      return () => new Promise<void>((r) => https.close(() => r()));
    }));
  }

  // ----- controller role, under the Lease: webhook registration and certificate rotation first (a healthy start
  // registers before the controllers run), advisory updates, then (with the indexer's) the controllers.
  const [label, labelValue] = cfg.webhookNamespaceLabel?.split("=") ?? [];
  const registerWebhook = async (signal: AbortSignal) => {
    if (!certs) return;
    const r = await certs.reconcile();
    if (cfg.tlsMode === "builtin" && !r.caBundle) throw new Error("webhook TLS: no CA bundle after reconcile");
    if (webhookOn) {
      await registerWebhooks(kc, {
        ...(cfg.webhookUrl ? { url: cfg.webhookUrl } : { service: { namespace: cfg.namespace, name: cfg.webhookService } }),
        caBundle: r.caBundle ?? certs.caBundle() ?? "", failurePolicy: cfg.failurePolicy, timeoutSeconds: cfg.webhookTimeout,
        excludeNamespaces: excluded, mutating: cfg.pinDigests === "true", ...(label ? { onlyLabel: { key: label, value: labelValue ?? "" } } : {}),
      });
      log("info", "webhook registered", { validating: VALIDATING_NAME, failurePolicy: cfg.failurePolicy, url: cfg.webhookUrl ?? null });
    }
    void certs.lead(signal);
  };
  // The current term's scans controller and rematcher (metrics, and the advisory scheduler's nudge).
  let currentScans: ImageScanController | undefined;
  let currentRematcher: Rematcher | undefined;
  metrics.watchQueue(() => currentScans?.queue);
  metrics.watchVulnerabilities(() => (currentScans?.informer.list() ?? []).map((s) => s.status?.vulnerabilities as Record<string, unknown> | undefined));
  if (roles.has("controller")) {
    // A failed registration (the configuration deleted by hand and no `create` granted, the API server busy) must
    // not stop the controllers: scans go on, and registration is tried again with a backoff for the whole term.
    // Started once its first attempt is over.
    if (certs) manager.add(runnable("webhook-registration", true, async (signal) => {
      await registerOrRetry(signal, registerWebhook, (e, delay) => log("error", `webhook registration failed: ${(e as Error).message}${apiErrorDetail(e)}; the controllers run meanwhile, retrying in ${delay / 1000} s`
        + " (after deleting the configuration by hand, `helm upgrade` restores it, or grant create with rbac.createWebhookConfigurations)"));
    }));
    // Advisory updates need nothing of the API server, so a missing CRD does not hold them up.
    if (advisoryIntervalMs > 0) manager.add(runnable("advisory-updates", true, async () => {
      const stop = new AbortController();
      const scheduler = new AdvisoryScheduler({
        store: store.advisories, intervalMs: advisoryIntervalMs, runOnce: runAdvisoryRound,
        log: (level, msg, fields) => advisoryLog[level](msg, fields),
        onRound: (r) => {
          metrics.observeAdvisoryRound(r);
          if (r.some((x) => x.status === "updated" || x.status === "imported")) currentRematcher?.nudge();
        },
      });
      const run = scheduler.run(stop.signal);
      return async () => (stop.abort(), await run);
    }));
  }
  // ----- indexer role, under the Lease: the scans (resolve, index, match, status), and re-matching after
  // advisory operations (this process's, or `portcullis db import|update|pull` against the same database).
  if (roles.has("indexer")) {
    // Layer bytes are parsed in worker processes (--index-workers), never in this process when there are any.
    const startPool = () => {
      const pool = cfg.indexWorkers > 0
        ? new WorkerPool({ size: cfg.indexWorkers, memoryMb: cfg.workerMemory, heapMb: cfg.workerHeap, nice: cfg.workerNice, tuning: { limits: walkLimits }, log: levelLogFn(part("indexer-worker")), onWorkerExit: (reason) => metrics.indexerWorkerExits.inc({ reason }) })
        : undefined;
      if (pool) metrics.watchWorkers(() => pool.stats());
      const scanIndexer = pool ? new Indexer({ store, scanners: defaultScanners(), log: levelLogFn(part("indexer")), scanning: pool, ...scanLimits }) : indexer;
      return { scanIndexer, stop: async () => {
        await pool?.stop();
        if (pool) metrics.watchWorkers(undefined);
      } };
    };
    // With PostgreSQL, indexing is handed out through its job queue to the indexer role of every replica (the
    // leader's controller queues and writes status); with the embedded store the leader indexes itself.
    const jobs = store.kind === "postgres" ? store.jobs : undefined;
    let runner: IndexJobRunner | undefined;
    if (jobs) {
      metrics.watchJobs(() => jobs.stats());
      manager.add(runnable("index-job-runner", false, async () => {
        const { scanIndexer, stop } = startPool();
        const r = new IndexJobRunner({
          jobs, indexer: scanIndexer, secrets: secretCache, operatorSecrets, providers, registryMetrics: metrics.registryHooks(), registryConnections, identity,
          concurrency: cfg.concurrency, leaseMs: parseDuration(cfg.jobLease)!, scanTimeoutMs,
          log: levelLogFn(part("index-jobs")), onAttempt: (outcome, durationMs) => metrics.observeIndexJob(outcome, durationMs),
        });
        r.start();
        runner = r;
        // Finished jobs are kept a day for the controller to read, then deleted (by any replica: it is idempotent).
        const prune = setInterval(() => void jobs.prune().catch(() => undefined), 3_600_000);
        return async () => {
          clearInterval(prune);
          await r.stop();
          if (runner === r) runner = undefined;
          await stop();
        };
      }));
    }
    manager.add(runnable("imagescan-controller", true, async () => {
      const pool = jobs ? undefined : startPool();
      const scans = new ImageScanController({
        ...namespaces, kc, cache, secretCache, indexer: pool?.scanIndexer ?? indexer, store, concurrency: cfg.concurrency, defaultPlatform: platform,
        scanTimeoutMs, scanAttempts: cfg.scanAttempts, ...(jobs ? { jobs, onEnqueued: () => runner?.poke() } : {}),
        providers, operatorSecrets, events, log: logFn(part("imagescan")),
        registryMetrics: metrics.registryHooks(), registryConnections, onScanned: (e) => metrics.observeScan(e), onStatusWrite: () => metrics.statusWrites.inc({ kind: "ImageScan" }),
      });
      await scans.start();
      currentScans = scans;
      return async () => {
        await scans.stop();
        await pool?.stop();
        if (currentScans === scans) currentScans = undefined;
      };
    }));
    // After the scans' cache is filled: re-matched findings are written into the ImageScans it holds.
    manager.add(runnable("rematcher", true, async () => {
      const scans = currentScans;
      if (!scans) return;
      const stop = new AbortController();
      const rematcher = new Rematcher({
        store, intervalMs: rematchIntervalMs, onChange: async (c) => void (await scans.applyFindings(c)),
        log: (level, msg, fields) => advisoryLog[level](msg, fields), onRound: (r) => metrics.observeRematch(r),
      });
      currentRematcher = rematcher;
      const run = rematcher.run(stop.signal);
      return async () => {
        stop.abort();
        await run;
        if (currentRematcher === rematcher) currentRematcher = undefined;
      };
    }));
  }
  if (roles.has("controller")) {
    // Watched repositories: new tags scanned before a pod asks (normal lane); their scans count as used by the
    // Pod controller's collection. Made first, started last.
    let currentRepositories: ImageRepositoryController | undefined;
    if (cfg.watchPods === "true") manager.add(runnable("pod-controller", true, async () => {
      const pods = new PodController({
        ...namespaces, kc, cache, secrets: secretCache, providers, operatorSecrets, events, gcAfterMs: parseDuration(cfg.gcAfter)!,
        alsoInUse: () => currentRepositories?.uses(), excludeNamespaces: [...new Set([...list(cfg.excludeNamespaces), cfg.namespace])], log: logFn(part("pods")), registryMetrics: metrics.registryHooks(), registryConnections,
      });
      await pods.start();
      return () => pods.stop();
    }));
    // Policies' Valid and Ready conditions: what the webhook makes of them.
    if (webhookOn) manager.add(runnable("policy-status-controller", true, async () => {
      const policies = new PolicyStatusController({ ...namespaces, kc, cache, log: logFn(part("policies")), onStatusWrite: (kind) => metrics.statusWrites.inc({ kind }) });
      await policies.start();
      return () => policies.stop();
    }));
    manager.add(runnable("repository-controller", true, async () => {
      const repositories = new ImageRepositoryController({
        ...namespaces, kc, cache, secrets: secretCache, store: store.repositories, providers, operatorSecrets, events, defaultPlatform: platform,
        registryMetrics: metrics.registryHooks(), registryConnections, onListing: (e) => metrics.observeListing(e), log: logFn(part("repositories")),
        onCall: (c) => void (c === "statusWrite" && metrics.statusWrites.inc({ kind: "ImageRepository" })),
      });
      currentRepositories = repositories;
      // Not awaited: without the ImageRepository CRD (Helm does not upgrade CRDs) the rest runs, and the Pod
      // controller's collection waits for this informer (uses() is undefined until it has synced).
      void repositories.start().catch((e: unknown) => log("warn", `watched repositories: ${(e as Error).message}`));
      return async () => {
        await repositories.stop();
        if (currentRepositories === repositories) currentRepositories = undefined;
      };
    }));
  }

  let ready = false;
  const [host, port] = [cfg.healthAddr.slice(0, cfg.healthAddr.lastIndexOf(":")), Number(cfg.healthAddr.slice(cfg.healthAddr.lastIndexOf(":") + 1))];
  const health = createServer((req, res) => {
    if (req.url === "/healthz") res.writeHead(200).end("ok\n");
    else if (req.url === "/readyz") res.writeHead(ready ? 200 : 503).end(ready ? "ok\n" : "starting\n");
    else if (req.url === "/metrics") void metrics.serve(req, res);
    else if (reportApi.matches(req.url)) {
      if (!reportTls) serveApi(req, res);
      else {
        // Refused before anything of the request is read: the token in it has crossed the network in clear already.
        res.writeHead(403, { "content-type": "application/json" }).end(JSON.stringify({ code: "tls-required", message: `the report API is served over HTTPS only, on port ${cfg.reportAddr.slice(cfg.reportAddr.lastIndexOf(":") + 1)} (--report-tls)` }));
      }
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => health.once("error", reject).listen(port, host || "0.0.0.0", resolve));
  if (!cfg.databaseUrl && cfg.leaderElect === "true") log("warn", "the embedded store is this replica's own: run one replica, or give every replica the same --database-url");
  log("info", "starting", {
    roles: [...roles], runnables: manager.describe().map((r) => `${r.name}${r.needLeaderElection ? " (leader)" : ""}`),
    store: cfg.databaseUrl ? "postgres" : "embedded", namespace: cfg.namespace, concurrency: cfg.concurrency, platform: cfg.platform, credentialHelpers: helpers, health: cfg.healthAddr,
  });
  await manager.start();
  if (cfg.leaderElect !== "true" && manager.describe().some((r) => r.needLeaderElection)) metrics.setLeader(true);
  // Ready: the caches are listed and, where a server uses it, there is a certificate to serve.
  if (certs && (roles.has("webhook") || reportTls)) await certs.ready();
  ready = true;
  log("info", "ready", { leaderElection: cfg.leaderElect === "true", identity, roles: [...roles], watches: cache.kinds() });
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log("info", "stopping", { signal: sig });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  ready = false;
  // Finish the scans in flight, give up the Lease so another replica takes over at once, then close the servers.
  await manager.stop();
  await events.flush();
  await store.close();
  await new Promise<void>((r) => health.close(() => r()));
  kc.destroyAgents();
  await registryConnections.close();
  log("info", "stopped");
  return EXIT.ok;
}

/** Every replica that serves TLS: loads the certificate Secret, keeps polling it. */
function certificateReloader(certs: WebhookCertificates): Runnable {
  return runnable("certificate-reloader", false, async () => {
    await certs.start();
    return () => certs.stop();
  });
}

/**
 * Runs `attempt` until it succeeds or `signal` aborts, backing off from 2 s to a minute; resolves after the
 * first attempt (the retries go on in the background).
 */
function registerOrRetry(signal: AbortSignal, attempt: (signal: AbortSignal) => Promise<void>, onError: (e: unknown, delayMs: number) => void): Promise<void> {
  return new Promise<void>((firstAttempt) => {
    void (async () => {
      for (let delay = 2000; !signal.aborted; delay = Math.min(delay * 2, 60_000)) {
        try {
          await attempt(signal);
          return;
        } catch (e) {
          onError(e, delay);
        } finally {
          firstAttempt();
        }
        // (The abort listener goes with the timer, so retries over a long term do not pile listeners up.)
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
      firstAttempt();
    })();
  });
}
