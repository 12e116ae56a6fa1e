// `portcullis serve`'s configuration: one zod schema for flags, environment variables and a configuration
// file (YAML or JSON, the chart mounts a ConfigMap there) whose keys are the schema's camelCase names.
// Precedence: flags > environment > file > defaults. Unknown keys and wrong types are errors that name the
// key and where it came from.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { z } from "zod";
import { DEFAULT_WORKER_NICE } from "../indexer/workers/pool.js";
import { parseDuration } from "../kube/duration.js";
import { LOG_LEVELS } from "../log/logger.js";
import { scrub } from "../log/redact.js";
import { UsageError } from "./exit.js";
import { DEFAULT_EXCLUDED_NAMESPACES } from "../kube/api/v1alpha1/index.js";

// Each option is a string on the command line and in the environment; in a file it may also be a YAML
// number, boolean or list. The output types are those serve has always had.
const wholeNumber = (min: number, max: number) =>
  z.union([z.number(), z.string().trim().regex(/^-?\d+(\.\d+)?$/).transform(Number)], { error: "must be a whole number" })
    .pipe(z.number().int("must be a whole number").min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
const bool = z.union([z.boolean(), z.enum(["true", "false"])], { error: "must be true or false" }).transform((v) => String(v) as "true" | "false");
const list = (re: RegExp, message: string) =>
  z.union([z.string(), z.array(z.string())], { error: "must be a list: comma separated, or a YAML list of strings" })
    .transform((v) => (Array.isArray(v) ? v.join(",") : v))
    .pipe(z.string().regex(re, message));
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const Config = z
  .object({
    databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
    storePath: z.string().min(1).default("./portcullis-store"),
    namespace: z.string().regex(NAME, "must be a namespace name").default("portcullis-system"),
    healthAddr: z.string().regex(/^[^:]*:\d+$/, "must be HOST:PORT").default("0.0.0.0:8081"),
    concurrency: wholeNumber(1, 64).default(4),
    indexWorkers: wholeNumber(0, 64).default(2),
    workerMemory: wholeNumber(128, 1 << 20).default(1024),
    workerHeap: wholeNumber(64, 1 << 20).default(512),
    workerNice: wholeNumber(0, 19).default(DEFAULT_WORKER_NICE),
    scanTimeout: z.string().refine((v) => (parseDuration(v) ?? 0) >= 1000, "must be a duration of at least 1s, such as 10m").default("10m"),
    scanAttempts: wholeNumber(1, 100).default(3),
    maxLayerMib: wholeNumber(1, 1 << 24).default(32768),
    maxCapturedMib: wholeNumber(1, 1 << 20).default(512),
    maxScanCapturedMib: wholeNumber(1, 1 << 20).default(1024),
    jobLease: z.string().refine((v) => (parseDuration(v) ?? 0) >= 1000, "must be a duration of at least 1s, such as 30s").default("30s"),
    platform: z.string().default("linux/amd64"),
    credentialHelpers: list(/^[\s\S]*$/, "must be helper names, comma separated").default(""),
    pullSecrets: list(/^[a-z0-9.,-]*$/, "must be secret names, comma separated").default(""),
    excludeNamespaces: list(/^[a-z0-9,-]*$/, "must be namespace names, comma separated").default(DEFAULT_EXCLUDED_NAMESPACES.join(",")),
    watchNamespaces: list(/^[a-z0-9,-]*$/, "must be namespace names, comma separated").default(""),
    gcAfter: z.string().refine((v) => parseDuration(v) !== undefined, "must be a duration such as 24h or 90m").default("24h"),
    watchPods: bool.default("true"),
    leaderElect: bool.default("true"),
    roles: list(/^(webhook|controller|indexer)(,(webhook|controller|indexer))*$/, "must be roles, comma separated: webhook, controller, indexer").default("webhook,controller,indexer"),
    leaseDuration: z.string().refine((v) => (parseDuration(v) ?? 0) >= 3000, "must be a duration of at least 3s").default("15s"),
    webhook: bool.default("true"),
    webhookAddr: z.string().regex(/^[^:]*:\d+$/, "must be HOST:PORT").default("0.0.0.0:8443"),
    webhookUrl: z.string().regex(/^https:\/\/[^/]+\/?$/, "must be https://HOST:PORT").optional(),
    webhookService: z.string().regex(NAME, "must be a Service name").default("portcullis"),
    webhookTimeout: wholeNumber(1, 30).default(5),
    failurePolicy: z.enum(["Fail", "Ignore"]).default("Fail"),
    tlsMode: z.enum(["builtin", "external"]).default("builtin"),
    pinDigests: bool.default("false"),
    webhookExcludeNamespaces: list(/^[a-z0-9,-]*$/, "must be namespace names, comma separated").default(""),
    breakGlass: bool.default("false"),
    webhookClientCa: z.string().min(1, "must be a file name").optional(),
    webhookScanRate: z.union([z.number(), z.string().trim().regex(/^\d+(\.\d+)?$/).transform(Number)], { error: "must be a number" })
      .pipe(z.number().positive("must be more than 0").max(1000, "must be at most 1000")).default(1),
    webhookScanBurst: wholeNumber(1, 10_000).default(20),
    reportTls: bool.default("false"),
    reportAddr: z.string().regex(/^[^:]*:\d+$/, "must be HOST:PORT").default("0.0.0.0:8444"),
    operatorCredentialsNamespaces: list(/^[a-z0-9,-]*$/, "must be namespace names, comma separated").default(""),
    operatorCredentialsRegistries: list(/^[a-z0-9.:,[\]-]*$/, "must be registry hosts (host[:port]), comma separated").default(""),
    webhookNamespaceLabel: z.string().regex(/^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$/, "must be KEY=VALUE").optional(),
    onMissingScan: z.enum(["deny", "warn", "allow"]).default("deny"),
    logLevel: z.enum(LOG_LEVELS).default("info"),
    advisoryUpdateInterval: z.string().refine((v) => v === "0" || parseDuration(v) !== undefined, "must be a duration such as 6h, or 0 for never").default("6h"),
    advisorySources: list(/^[a-z0-9.,_-]*$/, "must be source names, comma separated").default(""),
    advisoryMirrors: list(/^([a-z0-9._-]+=https?:\/\/[^,\s]+)?(,[a-z0-9._-]+=https?:\/\/[^,\s]+)*$/, "must be NAME=URL pairs, comma separated").default(""),
    advisoryBundle: z.string().optional(),
    reportTokenAudiences: list(/^[A-Za-z0-9.:/_,-]*$/, "must be audiences, comma separated").default(""),
    rematchInterval: z.string().refine((v) => (parseDuration(v) ?? 0) >= 1000, "must be a duration of at least 1s, such as 30s").default("30s"),
  })
  .strict();

export type ServeConfig = z.output<typeof Config>;
export type ServeConfigKey = keyof z.input<typeof Config>;

/** Each option's flag and environment variable. (`watchPods` has the flag --no-pods, which sets it false.) */
export const SERVE_OPTIONS: Record<ServeConfigKey, { flag: string; env: string }> = {
  databaseUrl: { flag: "database-url", env: "PORTCULLIS_DATABASE_URL" },
  storePath: { flag: "store-path", env: "PORTCULLIS_STORE" },
  namespace: { flag: "namespace", env: "POD_NAMESPACE" },
  healthAddr: { flag: "health-addr", env: "PORTCULLIS_HEALTH_ADDR" },
  concurrency: { flag: "concurrency", env: "PORTCULLIS_CONCURRENCY" },
  indexWorkers: { flag: "index-workers", env: "PORTCULLIS_INDEX_WORKERS" },
  workerMemory: { flag: "worker-memory", env: "PORTCULLIS_WORKER_MEMORY" },
  workerHeap: { flag: "worker-heap", env: "PORTCULLIS_WORKER_HEAP" },
  workerNice: { flag: "worker-nice", env: "PORTCULLIS_WORKER_NICE" },
  scanTimeout: { flag: "scan-timeout", env: "PORTCULLIS_SCAN_TIMEOUT" },
  scanAttempts: { flag: "scan-attempts", env: "PORTCULLIS_SCAN_ATTEMPTS" },
  maxLayerMib: { flag: "max-layer-mib", env: "PORTCULLIS_MAX_LAYER_MIB" },
  maxCapturedMib: { flag: "max-captured-mib", env: "PORTCULLIS_MAX_CAPTURED_MIB" },
  maxScanCapturedMib: { flag: "max-scan-captured-mib", env: "PORTCULLIS_MAX_SCAN_CAPTURED_MIB" },
  jobLease: { flag: "job-lease", env: "PORTCULLIS_JOB_LEASE" },
  platform: { flag: "platform", env: "PORTCULLIS_PLATFORM" },
  credentialHelpers: { flag: "credential-helpers", env: "PORTCULLIS_CREDENTIAL_HELPERS" },
  pullSecrets: { flag: "pull-secrets", env: "PORTCULLIS_PULL_SECRETS" },
  excludeNamespaces: { flag: "exclude-namespaces", env: "PORTCULLIS_EXCLUDE_NAMESPACES" },
  watchNamespaces: { flag: "watch-namespaces", env: "PORTCULLIS_WATCH_NAMESPACES" },
  gcAfter: { flag: "gc-after", env: "PORTCULLIS_GC_AFTER" },
  watchPods: { flag: "no-pods", env: "PORTCULLIS_WATCH_PODS" },
  leaderElect: { flag: "leader-elect", env: "PORTCULLIS_LEADER_ELECT" },
  roles: { flag: "roles", env: "PORTCULLIS_ROLES" },
  leaseDuration: { flag: "lease-duration", env: "PORTCULLIS_LEASE_DURATION" },
  webhook: { flag: "webhook", env: "PORTCULLIS_WEBHOOK" },
  webhookAddr: { flag: "webhook-addr", env: "PORTCULLIS_WEBHOOK_ADDR" },
  webhookUrl: { flag: "webhook-url", env: "PORTCULLIS_WEBHOOK_URL" },
  webhookService: { flag: "webhook-service", env: "PORTCULLIS_WEBHOOK_SERVICE" },
  webhookTimeout: { flag: "webhook-timeout", env: "PORTCULLIS_WEBHOOK_TIMEOUT" },
  failurePolicy: { flag: "failure-policy", env: "PORTCULLIS_FAILURE_POLICY" },
  tlsMode: { flag: "tls-mode", env: "PORTCULLIS_TLS_MODE" },
  pinDigests: { flag: "pin-digests", env: "PORTCULLIS_PIN_DIGESTS" },
  webhookNamespaceLabel: { flag: "webhook-namespace-label", env: "PORTCULLIS_WEBHOOK_NAMESPACE_LABEL" },
  webhookExcludeNamespaces: { flag: "webhook-exclude-namespaces", env: "PORTCULLIS_WEBHOOK_EXCLUDE_NAMESPACES" },
  breakGlass: { flag: "break-glass", env: "PORTCULLIS_BREAK_GLASS" },
  webhookClientCa: { flag: "webhook-client-ca", env: "PORTCULLIS_WEBHOOK_CLIENT_CA" },
  webhookScanRate: { flag: "webhook-scan-rate", env: "PORTCULLIS_WEBHOOK_SCAN_RATE" },
  webhookScanBurst: { flag: "webhook-scan-burst", env: "PORTCULLIS_WEBHOOK_SCAN_BURST" },
  reportTls: { flag: "report-tls", env: "PORTCULLIS_REPORT_TLS" },
  reportAddr: { flag: "report-addr", env: "PORTCULLIS_REPORT_ADDR" },
  operatorCredentialsNamespaces: { flag: "operator-credentials-namespaces", env: "PORTCULLIS_OPERATOR_CREDENTIALS_NAMESPACES" },
  operatorCredentialsRegistries: { flag: "operator-credentials-registries", env: "PORTCULLIS_OPERATOR_CREDENTIALS_REGISTRIES" },
  onMissingScan: { flag: "on-missing-scan", env: "PORTCULLIS_ON_MISSING_SCAN" },
  logLevel: { flag: "log-level", env: "PORTCULLIS_LOG_LEVEL" },
  advisoryUpdateInterval: { flag: "advisory-update-interval", env: "PORTCULLIS_ADVISORY_UPDATE_INTERVAL" },
  advisorySources: { flag: "advisory-sources", env: "PORTCULLIS_ADVISORY_SOURCES" },
  advisoryMirrors: { flag: "advisory-mirrors", env: "PORTCULLIS_ADVISORY_MIRRORS" },
  advisoryBundle: { flag: "advisory-bundle", env: "PORTCULLIS_ADVISORY_BUNDLE" },
  rematchInterval: { flag: "rematch-interval", env: "PORTCULLIS_REMATCH_INTERVAL" },
  reportTokenAudiences: { flag: "report-token-audiences", env: "PORTCULLIS_REPORT_TOKEN_AUDIENCES" },
};
const KEYS = Object.keys(SERVE_OPTIONS) as ServeConfigKey[];

/** Where a value came from: "--concurrency", "PORTCULLIS_CONCURRENCY" or the file's path. */
export type ConfigSources = Partial<Record<ServeConfigKey, string>>;

export interface LoadedServeConfig {
  config: ServeConfig;
  /** The source of every value that is not a default. */
  sources: ConfigSources;
  /** The configuration file read (--config / PORTCULLIS_CONFIG), if any. */
  file?: string;
}

/** serve's configuration from its arguments, the environment and the file they name ("help" for --help). */
export function serveConfig(args: string[], env: NodeJS.ProcessEnv): ServeConfig | "help" {
  const loaded = loadServeConfig(args, env);
  return loaded === "help" ? loaded : loaded.config;
}

export function loadServeConfig(args: string[], env: NodeJS.ProcessEnv, readFile: (path: string) => string = (p) => readFileSync(p, "utf8")): LoadedServeConfig | "help" {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" }, config: { type: "string" } };
  for (const k of KEYS) options[SERVE_OPTIONS[k].flag] = { type: k === "watchPods" ? "boolean" : "string" };
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options });
  if (values.help) return "help";
  if (positionals.length) throw new UsageError(`serve takes no arguments, got ${JSON.stringify(positionals.join(" "))}`);

  const merged: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  const file = (values.config as string | undefined) ?? env.PORTCULLIS_CONFIG;
  if (file !== undefined) {
    if (!file) throw new UsageError("--config / PORTCULLIS_CONFIG: empty file name");
    for (const [k, v] of Object.entries(readConfigFile(file, readFile))) {
      merged[k] = v;
      sources[k] = file;
    }
  }
  for (const k of KEYS) {
    const v = env[SERVE_OPTIONS[k].env];
    if (v !== undefined) {
      merged[k] = v;
      sources[k] = SERVE_OPTIONS[k].env;
    }
  }
  for (const k of KEYS) {
    const flag = SERVE_OPTIONS[k].flag;
    const v = k === "watchPods" ? (values[flag] ? "false" : undefined) : (values[flag] as string | undefined);
    if (v !== undefined) {
      merged[k] = v;
      sources[k] = `--${flag}`;
    }
  }

  const parsed = Config.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((i) => {
      if (i.code === "unrecognized_keys") return i.keys.map((k) => `${file ?? "configuration"}: unknown key ${JSON.stringify(k)}${suggest(k)}`);
      const key = String(i.path[0] ?? "");
      return [`${i.path.join(".")}: ${i.message}${sources[key] ? ` (from ${sources[key]})` : ""}`];
    });
    throw new UsageError(`invalid configuration: ${problems.join("; ")}`);
  }
  const config = parsed.data;
  // Outside the cluster the webhook listens where it is registered: --webhook-url's host and port, unless
  // --webhook-addr (or its variable or key) says otherwise.
  if (config.webhookUrl && sources.webhookAddr === undefined) {
    try {
      config.webhookAddr = listenAddr(config.webhookUrl);
    } catch {
      throw new UsageError(`invalid configuration: webhookUrl: must be https://HOST:PORT (from ${sources.webhookUrl})`);
    }
    sources.webhookAddr = sources.webhookUrl!;
  }
  return { config, sources: sources as ConfigSources, ...(file ? { file } : {}) };
}

/** HOST:PORT of an https:// URL (port 443 when it names none; an IPv6 host without its brackets). */
export function listenAddr(url: string): string {
  const u = new URL(url);
  return `${u.hostname.replace(/^\[(.*)\]$/, "$1")}:${u.port || "443"}`;
}

/** The file's options: a mapping (YAML, or JSON for *.json); null values count as unset. */
function readConfigFile(path: string, readFile: (path: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (e) {
    throw new UsageError(`cannot read the configuration file ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  if (/\.json$/i.test(path)) {
    try {
      data = text.trim() ? JSON.parse(text) : undefined;
    } catch (e) {
      throw new UsageError(`${path} is not valid JSON: ${(e as Error).message}`);
    }
  } else {
    try {
      data = k8s.loadYaml(text);
    } catch (e) {
      const y = e as Error & { reason?: string; mark?: { line: number; column: number } };
      if (y.name === "YAMLException") {
        throw new UsageError(`${path} is not valid YAML: ${y.reason ?? y.message}${y.mark ? ` (line ${y.mark.line + 1}, column ${y.mark.column + 1})` : ""}`);
      }
      // client-node's loadYaml refuses an empty document (or only comments): no options.
      if (y.message !== "Failed to load YAML") throw new UsageError(`${path}: ${y.message}`);
    }
  }
  if (data === undefined || data === null) return {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new UsageError(`${path}: expected a mapping of serve's options (camelCase keys such as concurrency or watchNamespaces), not ${Array.isArray(data) ? "a list" : `a ${typeof data}`}`);
  }
  const o = data as Record<string, unknown>;
  if (typeof o.kind === "string" && typeof o.apiVersion === "string") {
    throw new UsageError(`${path} is a Kubernetes manifest (kind ${o.kind}); --config takes the options file itself, such as the ConfigMap's key mounted as a file`);
  }
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));
}

/** " (did you mean "x"?)" for a near miss: another case, kebab or snake case, a flag's or variable's name, a typo. */
function suggest(key: string): string {
  const norm = (s: string) => s.toLowerCase().replace(/^-+|^portcullis_/g, "").replace(/[-_]/g, "");
  let best: { key: string; d: number } | undefined;
  for (const k of KEYS) {
    const d = norm(k) === norm(key) || SERVE_OPTIONS[k].flag === key.replace(/^-+/, "") || SERVE_OPTIONS[k].env === key ? 0 : distance(norm(k), norm(key));
    if (d <= 2 && (!best || d < best.d)) best = { key: k, d };
  }
  return best ? ` (did you mean ${JSON.stringify(best.key)}?)` : ` (the keys are serve's options in camelCase: ${KEYS.join(", ")})`;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The effective configuration as logged at start: secrets redacted (the database URL keeps all but its password). */
export function describeConfig(loaded: LoadedServeConfig): { config: Record<string, unknown>; sources: ConfigSources; file?: string } {
  return { config: scrub(loaded.config) as Record<string, unknown>, sources: loaded.sources, ...(loaded.file ? { file: loaded.file } : {}) };
}
