// `portcullis serve`: runs the operator's controllers (Pods -> ImageScans, ImageScans -> index) with
// /healthz and /readyz. Configuration from flags and environment, validated with zod.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { z } from "zod";
import { ImageScanController } from "../controller/imagescan.js";
import { DEFAULT_EXCLUDED_NAMESPACES, PodController } from "../controller/pods.js";
import { parseDuration } from "../controller/imagescan.js";
import { EventRecorder } from "../kube/events.js";
import { MUTATING_NAME, registerWebhooks, VALIDATING_NAME } from "../webhook/register.js";
import { AdmissionWebhook, DEFAULT_WEBHOOK_EXCLUDED } from "../webhook/server.js";
import { WebhookCertificates, webhookSans } from "../webhook/tls.js";
import type { Server as TlsServer } from "node:tls";
import { LeaderElector } from "../kube/leader.js";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { parsePlatform } from "../image/platform.js";
import { Indexer } from "../indexer/indexer.js";
import { cloudProviders } from "../registry/auth/cloud/providers.js";
import { defaultScanners } from "../scanners/index.js";
import { openStore } from "../store/open.js";
import { EXIT, UsageError } from "./exit.js";
import { PortcullisMetrics } from "../metrics/metrics.js";
import { ReportApi } from "../api/report.js";

export const SERVE_HELP = `Usage: portcullis serve [options]

Run the Portcullis operator: make an ImageScan for every image pods run, index them, write their status.

Options (each also an environment variable):
  --database-url URL       PostgreSQL (PORTCULLIS_DATABASE_URL); without it an embedded store in
                           --store-path (only for a single replica)
  --store-path PATH        the embedded store's folder (PORTCULLIS_STORE, default ./portcullis-store)
  --namespace NS           Portcullis's own namespace (POD_NAMESPACE, default portcullis-system)
  --health-addr HOST:PORT  where /healthz, /readyz, /metrics and the report API (/indexer/api/v1/, Kubernetes
                           bearer tokens) answer, plain HTTP (PORTCULLIS_HEALTH_ADDR, default 0.0.0.0:8081)
  --concurrency N          scans at once (PORTCULLIS_CONCURRENCY, default 4)
  --platform OS/ARCH       platform to index from multi-platform images (PORTCULLIS_PLATFORM, default linux/amd64)
  --credential-helpers L   cloud helpers, comma separated: ecr, gcr (PORTCULLIS_CREDENTIAL_HELPERS)
  --pull-secrets L         pull secrets in --namespace tried for every image after the pod's own and its
                           ServiceAccount's, comma separated (PORTCULLIS_PULL_SECRETS)
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
  --webhook-addr HOST:PORT where it listens, HTTPS (PORTCULLIS_WEBHOOK_ADDR, default 0.0.0.0:8443)
  --webhook-url URL        outside the cluster: register https://HOST:PORT as the webhook's address
                           (certificate SAN from its host) instead of the Service (PORTCULLIS_WEBHOOK_URL)
  --webhook-service NAME   the Service in --namespace that fronts the replicas (PORTCULLIS_WEBHOOK_SERVICE,
                           default portcullis)
  --webhook-timeout SECS   the API server's timeout for a review, 1-30; verdicts take at most 70% of it
                           (PORTCULLIS_WEBHOOK_TIMEOUT, default 5)
  --failure-policy P       Fail or Ignore when the webhook cannot answer (PORTCULLIS_FAILURE_POLICY, default Fail)
  --tls-mode M             builtin (own CA, rotated) or external (cert-manager writes the Secret)
                           (PORTCULLIS_TLS_MODE, default builtin)
  --pin-digests BOOL       also register the mutating webhook that pins image:tag to its digest where a policy
                           asks (PORTCULLIS_PIN_DIGESTS, default false)
  --webhook-namespace-label KEY=VALUE
                           send only namespaces with this label (PORTCULLIS_WEBHOOK_NAMESPACE_LABEL; default:
                           every namespace but the excluded ones and those labelled portcullis.dev/ignore=true)
  --on-missing-scan A      when no policy applies: deny, warn or allow an image without an Indexed scan
                           (PORTCULLIS_ON_MISSING_SCAN, default deny)
The cluster comes from KUBECONFIG, else the in-cluster service account.
`;

const Config = z
  .object({
    databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
    storePath: z.string().min(1).default("./portcullis-store"),
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a namespace name").default("portcullis-system"),
    healthAddr: z.string().regex(/^[^:]*:\d+$/, "must be HOST:PORT").default("0.0.0.0:8081"),
    concurrency: z.coerce.number().int().min(1).max(64).default(4),
    platform: z.string().default("linux/amd64"),
    credentialHelpers: z.string().default(""),
    pullSecrets: z.string().regex(/^[a-z0-9.,-]*$/, "must be secret names, comma separated").default(""),
    excludeNamespaces: z.string().regex(/^[a-z0-9,-]*$/, "must be namespace names, comma separated").default(DEFAULT_EXCLUDED_NAMESPACES.join(",")),
    watchNamespaces: z.string().regex(/^[a-z0-9,-]*$/, "must be namespace names, comma separated").default(""),
    gcAfter: z.string().refine((v) => parseDuration(v) !== undefined, "must be a duration such as 24h or 90m").default("24h"),
    watchPods: z.enum(["true", "false"]).default("true"),
    leaderElect: z.enum(["true", "false"]).default("true"),
    leaseDuration: z.string().refine((v) => (parseDuration(v) ?? 0) >= 3000, "must be a duration of at least 3s").default("15s"),
    webhook: z.enum(["true", "false"]).default("true"),
    webhookAddr: z.string().regex(/^[^:]*:\d+$/, "must be HOST:PORT").default("0.0.0.0:8443"),
    webhookUrl: z.string().regex(/^https:\/\/[^/]+\/?$/, "must be https://HOST:PORT").optional(),
    webhookService: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a Service name").default("portcullis"),
    webhookTimeout: z.coerce.number().int().min(1).max(30).default(5),
    failurePolicy: z.enum(["Fail", "Ignore"]).default("Fail"),
    tlsMode: z.enum(["builtin", "external"]).default("builtin"),
    pinDigests: z.enum(["true", "false"]).default("false"),
    webhookNamespaceLabel: z.string().regex(/^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$/, "must be KEY=VALUE").optional(),
    onMissingScan: z.enum(["deny", "warn", "allow"]).default("deny"),
  })
  .strict();

export type ServeConfig = z.output<typeof Config>;

export function serveConfig(args: string[], env: NodeJS.ProcessEnv): ServeConfig | "help" {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "database-url": { type: "string" }, "store-path": { type: "string" }, namespace: { type: "string" }, "health-addr": { type: "string" },
      concurrency: { type: "string" }, platform: { type: "string" }, "credential-helpers": { type: "string" }, help: { type: "boolean", short: "h" },
      "pull-secrets": { type: "string" }, "exclude-namespaces": { type: "string" }, "watch-namespaces": { type: "string" }, "gc-after": { type: "string" }, "no-pods": { type: "boolean" },
      "leader-elect": { type: "string" }, "lease-duration": { type: "string" },
      webhook: { type: "string" }, "webhook-addr": { type: "string" }, "webhook-url": { type: "string" }, "webhook-service": { type: "string" },
      "webhook-timeout": { type: "string" }, "failure-policy": { type: "string" }, "tls-mode": { type: "string" }, "pin-digests": { type: "string" },
      "webhook-namespace-label": { type: "string" }, "on-missing-scan": { type: "string" },
    },
  });
  if (values.help) return "help";
  if (positionals.length) throw new UsageError(`serve takes no arguments, got ${JSON.stringify(positionals.join(" "))}`);
  const raw = {
    databaseUrl: values["database-url"] ?? env.PORTCULLIS_DATABASE_URL,
    storePath: values["store-path"] ?? env.PORTCULLIS_STORE,
    namespace: values.namespace ?? env.POD_NAMESPACE,
    healthAddr: values["health-addr"] ?? env.PORTCULLIS_HEALTH_ADDR,
    concurrency: values.concurrency ?? env.PORTCULLIS_CONCURRENCY,
    platform: values.platform ?? env.PORTCULLIS_PLATFORM,
    credentialHelpers: values["credential-helpers"] ?? env.PORTCULLIS_CREDENTIAL_HELPERS,
    pullSecrets: values["pull-secrets"] ?? env.PORTCULLIS_PULL_SECRETS,
    excludeNamespaces: values["exclude-namespaces"] ?? env.PORTCULLIS_EXCLUDE_NAMESPACES,
    watchNamespaces: values["watch-namespaces"] ?? env.PORTCULLIS_WATCH_NAMESPACES,
    gcAfter: values["gc-after"] ?? env.PORTCULLIS_GC_AFTER,
    watchPods: values["no-pods"] ? "false" : env.PORTCULLIS_WATCH_PODS,
    leaderElect: values["leader-elect"] ?? env.PORTCULLIS_LEADER_ELECT,
    leaseDuration: values["lease-duration"] ?? env.PORTCULLIS_LEASE_DURATION,
    webhook: values.webhook ?? env.PORTCULLIS_WEBHOOK,
    webhookAddr: values["webhook-addr"] ?? env.PORTCULLIS_WEBHOOK_ADDR,
    webhookUrl: values["webhook-url"] ?? env.PORTCULLIS_WEBHOOK_URL,
    webhookService: values["webhook-service"] ?? env.PORTCULLIS_WEBHOOK_SERVICE,
    webhookTimeout: values["webhook-timeout"] ?? env.PORTCULLIS_WEBHOOK_TIMEOUT,
    failurePolicy: values["failure-policy"] ?? env.PORTCULLIS_FAILURE_POLICY,
    tlsMode: values["tls-mode"] ?? env.PORTCULLIS_TLS_MODE,
    pinDigests: values["pin-digests"] ?? env.PORTCULLIS_PIN_DIGESTS,
    webhookNamespaceLabel: values["webhook-namespace-label"] ?? env.PORTCULLIS_WEBHOOK_NAMESPACE_LABEL,
    onMissingScan: values["on-missing-scan"] ?? env.PORTCULLIS_ON_MISSING_SCAN,
  };
  const parsed = Config.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  if (!parsed.success) throw new UsageError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

function list(csv: string): string[] {
  return csv.split(",").map((s) => s.trim()).filter(Boolean);
}

function log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

export async function serveCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const cfg = serveConfig(args, env);
  if (cfg === "help") {
    process.stdout.write(SERVE_HELP);
    return EXIT.ok;
  }
  const platform = parsePlatform(cfg.platform);
  const kc = new k8s.KubeConfig();
  if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
  else kc.loadFromCluster();
  const store = await openStore(cfg.databaseUrl ?? cfg.storePath);
  const helpers = list(cfg.credentialHelpers);
  const providers = cloudProviders(helpers);
  const operatorSecrets = { namespace: cfg.namespace, names: list(cfg.pullSecrets) };
  const events = new EventRecorder(kc, { log: (msg) => log("warn", msg) });
  const indexer = new Indexer({ store, scanners: defaultScanners() });
  const metrics = new PortcullisMetrics({ defaultMetrics: true });
  let currentScans: ImageScanController | undefined;
  metrics.watchQueue(() => currentScans?.queue);
  // One set of controllers per leadership term (a work queue that was shut down is not reused).
  const watched = list(cfg.watchNamespaces);
  const namespaces = watched.length ? { namespaces: watched } : {};
  const makeControllers = () => {
    const scans = new ImageScanController({
      ...namespaces,
      kc, indexer, concurrency: cfg.concurrency, defaultPlatform: platform,
      providers, operatorSecrets, events, log: (msg, fields) => log("info", msg, fields),
      registryMetrics: metrics.registryHooks(), onScanned: (e) => metrics.observeScan(e),
    });
    currentScans = scans;
    const pods = cfg.watchPods === "true"
      ? new PodController({
        ...namespaces, kc, scans, providers, operatorSecrets, events, gcAfterMs: parseDuration(cfg.gcAfter)!,
        excludeNamespaces: [...new Set([...list(cfg.excludeNamespaces), cfg.namespace])], log: (msg) => log("info", msg),
      })
      : undefined;
    return {
      async start() {
        await scans.start();
        await pods?.start();
      },
      async stop() {
        await pods?.stop();
        await scans.stop();
        if (currentScans === scans) currentScans = undefined;
      },
    };
  };
  // The webhook: every replica serves it from its own caches; the leader registers it and keeps its certificate.
  const webhookOn = cfg.webhook === "true";
  const excluded = [...new Set([...DEFAULT_WEBHOOK_EXCLUDED, cfg.namespace])];
  const webhook = webhookOn
    ? new AdmissionWebhook({
      kc, namespace: cfg.namespace, excludeNamespaces: excluded, timeoutSeconds: cfg.webhookTimeout, providers, operatorSecrets, events,
      defaultPolicy: { mode: "Enforce", onMissingScan: cfg.onMissingScan, requireDigest: false }, log: (level, msg, fields) => log(level, msg, fields),
      onDecision: (d) => metrics.observeDecision(d),
    })
    : undefined;
  const certs = webhookOn
    ? new WebhookCertificates({
      kc, namespace: cfg.namespace, mode: cfg.tlsMode,
      ...webhookSans(cfg.webhookUrl ? { url: cfg.webhookUrl } : { service: { name: cfg.webhookService, namespace: cfg.namespace } }),
      webhookConfigurations: { validating: [VALIDATING_NAME], mutating: cfg.pinDigests === "true" ? [MUTATING_NAME] : [] },
      log: (level, msg, fields) => log(level, msg, fields),
    })
    : undefined;
  metrics.watchCertificates(() => certs);
  // The report API reads ImageScans from the webhook's cache when there is one, else from its own informer.
  const reportApi = new ReportApi({ kc, store, scannerSet: indexer.scannerSet, scans: webhook?.scans, log: (level, msg, fields) => log(level, msg, fields) });
  const [label, labelValue] = cfg.webhookNamespaceLabel?.split("=") ?? [];
  const registerWebhook = async (signal?: AbortSignal) => {
    if (!certs) return;
    const r = await certs.reconcile();
    if (cfg.tlsMode === "builtin" && !r.caBundle) throw new Error("webhook TLS: no CA bundle after reconcile");
    await registerWebhooks(kc, {
      ...(cfg.webhookUrl ? { url: cfg.webhookUrl } : { service: { namespace: cfg.namespace, name: cfg.webhookService } }),
      caBundle: r.caBundle ?? certs.caBundle() ?? "", failurePolicy: cfg.failurePolicy, timeoutSeconds: cfg.webhookTimeout,
      excludeNamespaces: excluded, mutating: cfg.pinDigests === "true", ...(label ? { onlyLabel: { key: label, value: labelValue ?? "" } } : {}),
    });
    log("info", "webhook registered", { validating: VALIDATING_NAME, failurePolicy: cfg.failurePolicy, url: cfg.webhookUrl ?? null });
    if (signal) void certs.lead(signal);
  };
  let running: ReturnType<typeof makeControllers> | undefined;
  let term: Promise<void> = Promise.resolve();
  const startControllers = async () => {
    running = makeControllers();
    await running.start();
    log("info", "controllers running");
  };
  const stopControllers = async () => {
    const r = running;
    running = undefined;
    if (r) {
      await r.stop();
      log("info", "controllers stopped");
    }
  };
  let ready = false;
  const [host, port] = [cfg.healthAddr.slice(0, cfg.healthAddr.lastIndexOf(":")), Number(cfg.healthAddr.slice(cfg.healthAddr.lastIndexOf(":") + 1))];
  const health = createServer((req, res) => {
    if (req.url === "/healthz") res.writeHead(200).end("ok\n");
    else if (req.url === "/readyz") res.writeHead(ready ? 200 : 503).end(ready ? "ok\n" : "starting\n");
    else if (req.url === "/metrics") void metrics.serve(req, res);
    else if (reportApi.matches(req.url)) void reportApi.handle(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => health.once("error", reject).listen(port, host || "0.0.0.0", resolve));
  if (!cfg.databaseUrl && cfg.leaderElect === "true") log("warn", "the embedded store is this replica's own: run one replica, or give every replica the same --database-url");
  log("info", "starting", { store: cfg.databaseUrl ? "postgres" : "embedded", namespace: cfg.namespace, concurrency: cfg.concurrency, platform: cfg.platform, credentialHelpers: helpers, health: cfg.healthAddr });
  const identity = env.POD_NAME || `${hostname()}-${randomBytes(4).toString("hex")}`;
  const elector = cfg.leaderElect === "true"
    ? new LeaderElector({
      kc, namespace: cfg.namespace, name: "portcullis-controller", identity, leaseDurationMs: parseDuration(cfg.leaseDuration)!,
      renewDeadlineMs: Math.round((parseDuration(cfg.leaseDuration)! * 2) / 3), retryPeriodMs: Math.max(500, Math.round((parseDuration(cfg.leaseDuration)! * 2) / 15)),
      onStartedLeading: (signal) => {
        log("info", "became the leader", { identity });
        metrics.setLeader(true);
        term = (async () => {
          await registerWebhook(signal);
          await startControllers();
          if (!signal.aborted) await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
          await stopControllers();
        })().catch((e: unknown) => log("error", `controllers: ${(e as Error).message}`));
        return term;
      },
      onStoppedLeading: () => (metrics.setLeader(false), log("info", "no longer the leader", { identity })),
      onNewLeader: (id) => log("info", "leader", { leader: id ?? null }),
      log: (msg) => log("info", msg),
    })
    : undefined;
  let webhookServer: TlsServer | undefined;
  if (webhook && certs) {
    await webhook.start();
    await certs.start();
    const [whost, wport] = [cfg.webhookAddr.slice(0, cfg.webhookAddr.lastIndexOf(":")), Number(cfg.webhookAddr.slice(cfg.webhookAddr.lastIndexOf(":") + 1))];
    webhookServer = (await webhook.listen({ host: whost || "0.0.0.0", port: wport, https: true })) as unknown as TlsServer;
    certs.attach(webhookServer);
  }
  const noLease = new AbortController();
  if (elector) elector.start();
  else {
    await registerWebhook(noLease.signal);
    await startControllers();
    metrics.setLeader(true);
  }
  // Ready: the webhook's caches are listed and it has a certificate to serve.
  if (certs) await certs.ready();
  await reportApi.start();
  ready = true;
  log("info", "ready", { leaderElection: cfg.leaderElect === "true", identity });
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log("info", "stopping", { signal: sig });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  ready = false;
  // Finish the scans in flight, then give up the Lease so another replica takes over at once.
  // (stop() aborts the term's signal, waits for it to end, then releases the Lease.)
  noLease.abort();
  await stopControllers();
  await elector?.stop();
  await term;
  if (webhookServer) await new Promise<void>((r) => webhookServer!.close(() => r()));
  certs?.stop();
  await webhook?.stop();
  reportApi.stop();
  await events.flush();
  await store.close();
  await new Promise<void>((r) => health.close(() => r()));
  log("info", "stopped");
  return EXIT.ok;
}
