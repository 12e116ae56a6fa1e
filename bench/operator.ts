// The operator at scale (figures for the closing note; baselines measured in the same run so the figures
// can be read as ratios on a noisy machine):
//   2,000 pods over 200 unique images, created at once against a real kube-apiserver: time until every
//   ImageScan is Indexed, the operator's peak RSS, and the API requests it makes per pod (watch, no polling).
//   Then the operator is restarted on the same database: the resync must not re-index anything.
//
// What runs: etcd + kube-apiserver, PostgreSQL (a fresh database), a registry (anonymous, loopback HTTP),
// all from the test environment's library, and `portcullis serve` as a child process (so its RSS is its
// own). Two counting reverse proxies sit in front of the services the operator talks to, so that every
// request it makes is seen and classified without touching the operator:
//   - the Kubernetes API: the operator's kubeconfig points at an HTTPS proxy (its own CA) that forwards to
//     the API server; the benchmark's own traffic goes straight to the API server and is not counted;
//   - the registry: pods name images by the proxy's host:port, so tag resolutions (HEAD), manifests and
//     blob downloads are counted at the registry side, independently of the operator's logs.
// The API server's apiserver_request_total is read before and after as a cross-check of the proxy's count.
//
// Usage: npx tsx bench/operator.ts [--pods N] [--images M] [--namespaces K] [--quick] [--webhook] [--compiled]
//          [--concurrency C] [--create-concurrency N] [--timeout-min T] [--keep]
//   --quick: 200 pods, 20 images, 10 namespaces (flags given explicitly still win).
//   --webhook: also run the admission webhook (off by default: the controllers are measured here, the
//     webhook has its own benchmark, bench/webhook.ts). Registered by URL on a loopback port with
//     --on-missing-scan warn so that pods are admitted; every pod creation then goes through it.
//   --compiled: run the operator compiled by tsc (into the run folder) with plain node, as deployed,
//     instead of through tsx (whose loader costs RSS of its own).
//   --keep: keep the run folder (logs, diagnostic reports).
// Exit status 1 when a correctness check fails (not every scan Indexed in time, layers downloaded or scans
// re-indexed after the restart, the operator not exiting cleanly).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, copyFileSync, existsSync, fstatSync, mkdirSync, mkdtempSync, readdirSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, request as httpRequest, Agent as HttpAgent, type IncomingMessage, type IncomingHttpHeaders, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest, Agent as HttpsAgent, type Server as HttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs, promisify } from "node:util";
import { gzipSync } from "node:zlib";
import * as k8s from "@kubernetes/client-node";
import { pack } from "tar-stream";
import { Agent, request } from "undici";
import { findTool } from "../src/cli/tools.js";
import { issueCert, makeCA } from "../test/env/certs.js";
import { ociBookworm, skopeoPush } from "../test/env/images.js";
import { RegistryPusher, sha256 } from "../test/env/oci-push.js";
import { freePort, ProcessSupervisor, waitUntil, type Managed } from "../test/env/process.js";
import { kubeconfigYaml, startKube, startPostgres, startRegistry, type KubeService, type RegistryService } from "../test/env/services.js";
import { median } from "./env.js";
import { GROUP, type ImageScan, VERSION } from "../src/kube/api/v1alpha1/index.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));

// ------------------------------------------------------------------ options

const { values: opt } = parseArgs({
  options: {
    pods: { type: "string" }, images: { type: "string" }, namespaces: { type: "string" }, quick: { type: "boolean", default: false }, keep: { type: "boolean", default: false },
    webhook: { type: "boolean", default: false }, compiled: { type: "boolean", default: false },
    concurrency: { type: "string", default: "4" }, "create-concurrency": { type: "string", default: "50" }, "timeout-min": { type: "string", default: "15" },
  },
});
const num = (v: string | undefined, dflt: number, what: string): number => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${what} must be a positive integer, got ${v}`);
  return n;
};
const PODS = num(opt.pods, opt.quick ? 200 : 2000, "pods");
const IMAGES = num(opt.images, opt.quick ? 20 : 200, "images");
const NAMESPACES = num(opt.namespaces, 10, "namespaces");
const CONCURRENCY = num(opt.concurrency, 4, "concurrency");
const CREATE_CONCURRENCY = num(opt["create-concurrency"], 50, "create-concurrency");
const TIMEOUT_MS = num(opt["timeout-min"], 15, "timeout-min") * 60_000;
/** How long without any operator activity counts as settled, and the bound on waiting for it. */
const QUIET_MS = 5000;
const SETTLE_BOUND_MS = 180_000;

// Image assignment: namespace n runs a window of W consecutive images starting at n*S (S = M/K, W = 2S),
// pod j of namespace n runs image (n*S + j mod W) mod M. With the defaults (2,000 pods, 200 images, 10
// namespaces): S = 20, W = 40, so each namespace runs 40 images with 5 pods each, every image runs in two
// neighbouring namespaces, and there are 10 x 40 = 400 ImageScans (one per (namespace, digest)): 200 need a
// fresh index, the other 200 are the same digests in a second namespace (answered from the store).
const STRIDE = Math.max(1, Math.floor(IMAGES / NAMESPACES));
const WINDOW = Math.min(IMAGES, 2 * STRIDE);
const podsIn = (n: number) => Math.floor(PODS / NAMESPACES) + (n < PODS % NAMESPACES ? 1 : 0);
const imageOf = (n: number, j: number) => (n * STRIDE + (j % WINDOW)) % IMAGES;
const nsName = (n: number) => `bench-ns-${n}`;

// ------------------------------------------------------------------ small helpers

const T0 = performance.now();
function progress(msg: string): void {
  console.error(`[bench +${((performance.now() - T0) / 1000).toFixed(1)}s] ${msg}`);
}
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;

async function pool<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      await fn(items[i]!, i);
    }
  }));
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")).join("\n");
}

/** VmRSS, VmHWM (kB) and CPU seconds of a process, from /proc. */
function procStats(pid: number): { rssKb: number; hwmKb: number; cpuS: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command; clock ticks of 1/100 s.
    const cpuS = (Number(fields[11]) + Number(fields[12])) / 100;
    return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM"), cpuS };
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ counting proxies

interface ProxyRecord {
  /** performance.now() at the request's arrival. */
  t: number;
  method: string;
  path: string;
  query: URLSearchParams;
  status: number;
  bytes: number;
  /** The client's port: which connection the request came on. */
  clientPort: number;
  /** performance.now() when the response ended or the connection closed (0 while open). */
  end: number;
}

const HOP = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"];
function strip(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...h };
  for (const k of HOP) delete out[k];
  return out;
}

/**
 * A reverse proxy that records every request (method, path, query, status, response bytes) and forwards
 * it, streaming both ways (watches stay open), over a keep-alive pool to the upstream.
 */
class CountingProxy {
  readonly records: ProxyRecord[] = [];
  connections = 0;
  /** Requests that were not HTTP (a TLS ClientHello on the plain HTTP proxy, say). */
  clientErrors = 0;
  private readonly server: HttpServer | HttpsServer;
  private readonly agent: HttpAgent;
  port = 0;

  constructor(private readonly upstream: { https: boolean; host: string; port: number; ca?: string }, tls?: { cert: string; key: string }) {
    this.agent = upstream.https ? new HttpsAgent({ keepAlive: true, maxSockets: 256, ca: upstream.ca }) : new HttpAgent({ keepAlive: true, maxSockets: 256 });
    const handler = (req: IncomingMessage, res: ServerResponse) => this.forward(req, res);
    this.server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
    this.server.on(tls ? "secureConnection" : "connection", () => this.connections++);
    this.server.on("clientError", (_e, socket) => {
      this.clientErrors++;
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
      else socket.destroy();
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => this.server.once("error", reject).listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    this.agent.destroy();
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? "/", "http://x");
    const rec: ProxyRecord = { t: performance.now(), method: req.method ?? "GET", path: u.pathname, query: u.searchParams, status: 0, bytes: 0, clientPort: req.socket.remotePort ?? 0, end: 0 };
    this.records.push(rec);
    const headers = { ...strip(req.headers), host: `${this.upstream.host}:${this.upstream.port}` };
    const send = this.upstream.https ? httpsRequest : httpRequest;
    const up = send({ host: this.upstream.host, port: this.upstream.port, method: req.method, path: req.url, headers, agent: this.agent }, (ures) => {
      rec.status = ures.statusCode ?? 0;
      res.writeHead(ures.statusCode ?? 502, strip(ures.headers));
      ures.on("data", (c: Buffer) => (rec.bytes += c.length));
      ures.pipe(res);
      ures.on("error", () => res.destroy());
    });
    up.on("error", (e) => {
      if (!res.headersSent) res.writeHead(502).end(String(e));
      else res.destroy();
    });
    res.on("close", () => {
      rec.end = performance.now();
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }
}

/** A Kubernetes API request as apiserver_request_total names it: verb, resource, subresource. */
interface KubeRequest {
  verb: string;
  resource: string;
  subresource: string;
  namespace: string;
}

function classifyKube(r: ProxyRecord): KubeRequest {
  // /api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]] or /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME[/SUB]]
  const parts = r.path.split("/").filter(Boolean);
  let rest = parts[0] === "api" ? parts.slice(2) : parts[0] === "apis" ? parts.slice(3) : [];
  let namespace = "";
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1]!;
    rest = rest.slice(2);
  }
  const [resource = r.path, name, subresource = ""] = rest;
  const verb = (() => {
    switch (r.method) {
      case "GET": return r.query.get("watch") === "true" || r.query.get("watch") === "1" ? "WATCH" : name ? "GET" : "LIST";
      case "POST": return "CREATE";
      case "PUT": return "UPDATE";
      default: return r.method;
    }
  })();
  return { verb, resource, subresource, namespace };
}

const VERBS = ["LIST", "WATCH", "GET", "CREATE", "UPDATE", "PATCH", "DELETE"];

interface KubeCount {
  /** resource[/subresource] -> verb -> count */
  byResource: Map<string, Map<string, number>>;
  total: number;
  lease: number;
  errors: number;
  /** "VERB resource -> status" -> count, for responses >= 400. */
  errorKinds: Map<string, number>;
}

function countKube(records: ProxyRecord[], from: number, to: number): KubeCount {
  const byResource = new Map<string, Map<string, number>>();
  let total = 0;
  let lease = 0;
  let errors = 0;
  const errorKinds = new Map<string, number>();
  for (const r of records) {
    if (r.t < from || r.t >= to) continue;
    const k = classifyKube(r);
    const key = k.subresource ? `${k.resource}/${k.subresource}` : k.resource;
    let m = byResource.get(key);
    if (!m) byResource.set(key, (m = new Map()));
    m.set(k.verb, (m.get(k.verb) ?? 0) + 1);
    if (k.resource === "leases") lease++;
    else total++;
    if (r.status >= 400) {
      errors++;
      const kind = `${k.verb} ${key} -> ${r.status}`;
      errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
    }
  }
  return { byResource, total, lease, errors, errorKinds };
}

function kubeTable(c: KubeCount, pods: number, scans: number): string {
  const verbs = VERBS.filter((v) => [...c.byResource.values()].some((m) => m.has(v)));
  for (const m of c.byResource.values()) for (const v of m.keys()) if (!verbs.includes(v)) verbs.push(v);
  const rows = [["resource", ...verbs, "total", "per pod", "per scan"]];
  const keys = [...c.byResource.keys()].sort();
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  for (const key of keys) {
    const m = c.byResource.get(key)!;
    rows.push([key, ...verbs.map((v) => String(m.get(v) ?? 0)), String(sum(m)), (sum(m) / pods).toFixed(3), (sum(m) / Math.max(1, scans)).toFixed(2)]);
  }
  const nonLease = keys.filter((k) => !k.startsWith("leases"));
  const byVerb = (v: string) => nonLease.reduce((a, k) => a + (c.byResource.get(k)!.get(v) ?? 0), 0);
  rows.push(["all but leases", ...verbs.map((v) => String(byVerb(v))), String(c.total), (c.total / pods).toFixed(3), (c.total / Math.max(1, scans)).toFixed(2)]);
  rows.push(["per pod (all but leases)", ...verbs.map((v) => (byVerb(v) / pods).toFixed(3)), (c.total / pods).toFixed(3), "", ""]);
  return table(rows);
}

interface RegistryCount {
  ping: number;
  manifestHead: number;
  manifestGet: number;
  layerGet: number;
  layerBytes: number;
  configGet: number;
  otherBlob: number;
  other: number;
}

function countRegistry(records: ProxyRecord[], from: number, to: number, layerDigests: Set<string>, configDigests: Set<string>): RegistryCount {
  const c: RegistryCount = { ping: 0, manifestHead: 0, manifestGet: 0, layerGet: 0, layerBytes: 0, configGet: 0, otherBlob: 0, other: 0 };
  for (const r of records) {
    if (r.t < from || r.t >= to) continue;
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(r.path);
    if (r.path === "/v2/" || r.path === "/v2") c.ping++;
    else if (m?.[2] === "manifests") {
      if (r.method === "HEAD") c.manifestHead++;
      else c.manifestGet++;
    } else if (m?.[2] === "blobs" && r.method === "GET") {
      if (layerDigests.has(m[3]!)) {
        c.layerGet++;
        c.layerBytes += r.bytes;
      } else if (configDigests.has(m[3]!)) c.configGet++;
      else c.otherBlob++;
    } else c.other++;
  }
  return c;
}

// ------------------------------------------------------------------ the operator's log

interface OpLine {
  time?: string;
  level?: string;
  msg?: string;
  layersFetched?: number;
  layersReused?: number;
  cached?: boolean;
  bytesFetched?: number;
  durationMs?: number;
}

/** Follows the operator's log file (JSON lines on stderr), parsing as it goes. */
class LogTail {
  readonly lines: Array<{ at: number; line: OpLine; raw: string }> = [];
  lastAt = performance.now();
  private offset = 0;
  private partial = "";
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly file: string) {
    this.timer = setInterval(() => this.poll(), 200);
  }

  poll(): void {
    let fd: number | undefined;
    try {
      fd = openSync(this.file, "r");
      const size = fstatSync(fd).size;
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.partial + buf.toString("utf8");
      const parts = text.split("\n");
      this.partial = parts.pop() ?? "";
      const at = performance.now();
      for (const raw of parts) {
        if (!raw.trim()) continue;
        let line: OpLine = {};
        try {
          line = JSON.parse(raw) as OpLine;
        } catch {
          line = { msg: raw };
        }
        // When it was written (its own timestamp, same host clock), else when it was read.
        const written = Date.parse(line.time ?? "");
        const lineAt = Number.isNaN(written) ? at : Math.min(at, at - (Date.now() - written));
        this.lines.push({ at: lineAt, line, raw });
        this.lastAt = Math.max(this.lastAt, lineAt);
      }
    } catch {
      // not there yet
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }

  has(msg: string): boolean {
    return this.lines.some((l) => l.line.msg === msg);
  }

  indexed(): OpLine[] {
    return this.lines.map((l) => l.line).filter((l) => l.msg?.startsWith("indexed "));
  }

  /** Lines that say something went wrong (warnings, errors, retries), for the report. */
  trouble(): string[] {
    return this.lines.filter((l) => l.line.level === "warn" || l.line.level === "error" || /fail|retry|retrying|error/i.test(l.line.msg ?? "")).map((l) => l.raw);
  }
}

// ------------------------------------------------------------------ operator process

interface Operator {
  proc: Managed;
  log: LogTail;
  spawnedAt: number;
  readyAt: number;
  runningAt: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  rssSamples: number[];
  sampler: NodeJS.Timeout;
}

/** How the operator is started: through tsx from src/, or compiled JavaScript with plain node. */
interface Launch {
  /** Node arguments before `serve`. */
  entry: string[];
  label: string;
}

async function prepareLaunch(runDir: string): Promise<Launch> {
  if (!opt.compiled) return { entry: ["--import", "tsx", join(root, "src/cli/bin.ts")], label: "node --import tsx src/cli/bin.ts" };
  // tsc emits even when another engineer's file in progress does not typecheck; only a missing bin.js is fatal.
  const outDir = join(runDir, "dist");
  await run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json"), "--outDir", outDir, "--sourceMap", "false"], { maxBuffer: 64 * 1024 * 1024 }).catch((e: unknown) => {
    progress(`tsc reported errors (emitted anyway): ${String((e as { stdout?: string }).stdout ?? e).split("\n").slice(0, 5).join(" | ")}`);
  });
  if (!existsSync(join(outDir, "cli/bin.js"))) throw new Error("tsc emitted no cli/bin.js");
  // Bare imports resolve from the run folder's node_modules; main.js reads ../../package.json.
  symlinkSync(join(root, "node_modules"), join(runDir, "node_modules"));
  copyFileSync(join(root, "package.json"), join(runDir, "package.json"));
  return { entry: [join(outDir, "cli/bin.js")], label: "node dist/cli/bin.js (compiled by tsc)" };
}

/** RSS of a node process that has loaded the operator's modules and does nothing: the floor under the figures. */
async function moduleLoadRss(runDir: string): Promise<number> {
  const probe = join(runDir, "rss-probe.mjs");
  const target = opt.compiled ? join(runDir, "dist/cli/serve.js") : join(root, "src/cli/serve.ts");
  writeFileSync(probe, [
    `import { readFileSync } from "node:fs";`,
    `await import(${JSON.stringify(target)});`,
    `setTimeout(() => process.stdout.write(/VmRSS:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]), 1500);`,
  ].join("\n"));
  const loader = opt.compiled ? [] : ["--import", "tsx"];
  const { stdout } = await run(process.execPath, [...loader, probe], { cwd: root });
  return Number(stdout.trim());
}

async function startOperator(sup: ProcessSupervisor, name: string, kubeconfig: string, databaseUrl: string, launch: Launch): Promise<Operator> {
  const port = await freePort();
  const webhookPort = await freePort();
  // The controllers are measured here; the webhook has its own benchmark (bench/webhook.ts). With --webhook
  // it runs too, registered by URL so the API server calls it, warning instead of denying unscanned images.
  const webhookArgs = opt.webhook
    ? ["--webhook", "true", "--webhook-addr", `127.0.0.1:${webhookPort}`, "--webhook-url", `https://127.0.0.1:${webhookPort}`, "--on-missing-scan", "warn"]
    : ["--webhook", "false"];
  const reportDir = join(sup.runDir, `${name}-reports`);
  mkdirSync(reportDir, { recursive: true });
  const spawnedAt = performance.now();
  const proc = sup.spawn(name, process.execPath, [
    // A diagnostic report (libuv handles) on SIGUSR2, for an operator that does not exit on SIGTERM.
    "--report-on-signal", "--report-signal=SIGUSR2", `--report-directory=${reportDir}`,
    ...launch.entry, "serve",
    "--database-url", databaseUrl, "--health-addr", `127.0.0.1:${port}`, "--concurrency", String(CONCURRENCY), ...webhookArgs,
    // The benchmark measures scans; advisory updates would reach for the internet.
    "--advisory-update-interval", "0",
  ], { cwd: root, env: { ...process.env, KUBECONFIG: kubeconfig } });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) resolve({ code: proc.child.exitCode, signal: proc.child.signalCode });
    proc.child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const log = new LogTail(proc.logFile);
  const rssSamples: number[] = [];
  const sampler = setInterval(() => {
    const st = procStats(proc.child.pid!);
    if (st) rssSamples.push(st.rssKb);
  }, 500);
  const op: Operator = { proc, log, spawnedAt, readyAt: 0, runningAt: 0, exit, rssSamples, sampler };
  await waitUntil(`${name} /readyz`, async () => {
    const r = await request(`http://127.0.0.1:${port}/readyz`);
    await r.body.dump();
    return r.statusCode === 200;
  }, { timeoutMs: 120_000, process: proc });
  op.readyAt = performance.now();
  // /readyz answers once leader election has started; the controllers run once the Lease is ours and the
  // informers have listed.
  await waitUntil(`${name} controllers running`, async () => (log.poll(), log.has("controllers running")), { timeoutMs: 120_000, process: proc });
  op.runningAt = performance.now();
  return op;
}

interface Stopped {
  code: number | null;
  signal: NodeJS.Signals | null;
  hwmKb: number;
  cpuS: number;
  stopMs: number;
  /** When it had to be killed: how long after its "stopped" line, and the handles that kept it alive. */
  hung?: { afterStoppedMs: number | undefined; handles: string[] };
}

const STOP_GRACE_MS = 20_000;

async function stopOperator(op: Operator, apiRecords: ProxyRecord[] = []): Promise<Stopped> {
  const pid = op.proc.child.pid!;
  const st = procStats(pid);
  clearInterval(op.sampler);
  const t = performance.now();
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // already gone
  }
  const res = await Promise.race([op.exit, sleep(STOP_GRACE_MS).then(() => undefined)]);
  const stopMs = performance.now() - t;
  const base = { hwmKb: st?.hwmKb ?? NaN, cpuS: st?.cpuS ?? NaN, stopMs };
  if (res) {
    op.log.stop();
    return { ...res, ...base };
  }
  // Still alive: ask Node for a diagnostic report and list the libuv handles that keep the loop alive.
  op.log.poll();
  const stoppedLine = op.log.lines.find((l) => l.line.msg === "stopped");
  const handles: string[] = [];
  try {
    process.kill(pid, "SIGUSR2");
    const dir = join(op.proc.logFile, "..", `${op.proc.name}-reports`);
    const file = await waitUntil("diagnostic report", async () => readdirSync(dir).find((f) => f.endsWith(".json")), { timeoutMs: 10_000 });
    await sleep(500);
    const report = JSON.parse(readFileSync(join(dir, file), "utf8")) as { libuv?: Array<Record<string, unknown>> };
    for (const h of report.libuv ?? []) {
      if (!h.is_active || !h.is_referenced) continue;
      const ends = [h.localEndpoint, h.remoteEndpoint].map((e) => (e && typeof e === "object" ? `${(e as { host?: string; ip4?: string }).host ?? (e as { ip4?: string }).ip4}:${(e as { port?: number }).port}` : undefined)).filter(Boolean);
      // A connection to the API proxy: which requests the proxy saw on it (by the client's port).
      const local = (h.localEndpoint as { port?: number } | undefined)?.port;
      const seen = h.type === "tcp" && local ? apiRecords.filter((r) => r.clientPort === local && r.t >= op.spawnedAt) : [];
      const onIt = seen.map((r) => `${r.method} ${r.path}${r.query.size ? `?${r.query.toString()}` : ""} -> ${r.status || "no response yet"}, ${r.end ? `closed by the proxy side at +${s(r.end - t)} after SIGTERM` : "still open at the proxy"}`);
      handles.push(`${String(h.type)}${ends.length ? ` ${ends.join(" -> ")}` : ""}${h.repeat !== undefined ? ` repeat=${String(h.repeat)}` : ""}${h.firesInMsFromNow !== undefined ? ` firesIn=${String(h.firesInMsFromNow)}ms` : ""}${h.filename ? ` ${String(h.filename)}` : ""}${onIt.length ? ` [API proxy saw on it: ${onIt.join("; ")}]` : ""}`);
    }
  } catch (e) {
    handles.push(`(no diagnostic report: ${(e as Error).message})`);
  }
  await op.proc.stop();
  op.log.stop();
  return { code: null, signal: "SIGKILL", ...base, hung: { afterStoppedMs: stoppedLine ? t + STOP_GRACE_MS - stoppedLine.at : undefined, handles } };
}

// ------------------------------------------------------------------ images

interface Images {
  refs: string[];
  layerDigests: Set<string>;
  configDigests: Set<string>;
  baseLayerBytes: number;
}

function tarGz(name: string, content: string): Promise<{ gz: Buffer; diffId: string }> {
  return new Promise((resolve, reject) => {
    const p = pack();
    const chunks: Buffer[] = [];
    p.on("data", (c: Buffer) => chunks.push(c));
    p.on("end", () => {
      const tar = Buffer.concat(chunks);
      resolve({ gz: gzipSync(tar), diffId: sha256(tar) });
    });
    p.on("error", reject);
    p.entry({ name: "etc/", type: "directory", mode: 0o755, mtime: new Date(0) });
    p.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
    p.finalize();
  });
}

/** The Debian base once (skopeo), then M images of base layer (mounted) + one tiny layer of their own. */
async function pushImages(reg: RegistryService, count: number, proxyHost: string): Promise<Images> {
  await skopeoPush(`oci:${ociBookworm()}:base`, reg, "bench/base:v1");
  const accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
  const mres = await request(`${reg.url}/v2/bench/base/manifests/v1`, { headers: { accept } });
  if (mres.statusCode !== 200) throw new Error(`base manifest: ${mres.statusCode}`);
  const baseManifestType = String(mres.headers["content-type"]);
  const base = (await mres.body.json()) as { schemaVersion: number; mediaType?: string; config: { mediaType: string; digest: string; size: number }; layers: Array<{ mediaType: string; digest: string; size: number }> };
  const cres = await request(`${reg.url}/v2/bench/base/blobs/${base.config.digest}`);
  const baseConfig = (await cres.body.json()) as { rootfs: { type: string; diff_ids: string[] }; history?: unknown[] } & Record<string, unknown>;
  const layerType = base.layers[0]!.mediaType.includes("docker") ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.oci.image.layer.v1.tar+gzip";
  const pusher = new RegistryPusher(reg);
  const layerDigests = new Set(base.layers.map((l) => l.digest));
  const configDigests = new Set<string>();
  const refs: string[] = [];
  try {
    await pool(Array.from({ length: count }, (_, i) => i), 8, async (i) => {
      const repo = `bench/app-${i}`;
      for (const l of base.layers) {
        const res = await pusher.send(repo, "POST", `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(l.digest)}&from=bench/base`);
        await res.body.dump();
        if (res.statusCode !== 201) throw new Error(`mount of ${l.digest} into ${repo}: ${res.statusCode}`);
      }
      const { gz, diffId } = await tarGz("etc/bench-id", `${i}\n`);
      const layerDigest = await pusher.pushBlob(repo, gz);
      const config = JSON.stringify({
        ...baseConfig,
        rootfs: { type: "layers", diff_ids: [...baseConfig.rootfs.diff_ids, diffId] },
        history: [...(baseConfig.history ?? []), { created: "2026-01-01T00:00:00Z", created_by: `bench: etc/bench-id ${i}` }],
      });
      const configDigest = await pusher.pushBlob(repo, Buffer.from(config));
      const manifest = JSON.stringify({
        ...base,
        config: { ...base.config, digest: configDigest, size: Buffer.byteLength(config) },
        layers: [...base.layers, { mediaType: layerType, digest: layerDigest, size: gz.length }],
      });
      await pusher.pushManifest(repo, "v1", manifest, baseManifestType);
      layerDigests.add(layerDigest);
      configDigests.add(configDigest);
      refs[i] = `${proxyHost}/${repo}:v1`;
    });
  } finally {
    await pusher.close();
  }
  return { refs, layerDigests, configDigests, baseLayerBytes: base.layers.reduce((a, l) => a + l.size, 0) };
}

// ------------------------------------------------------------------ Kubernetes side

type Snapshot = Map<string, number>;

/** apiserver_request_total summed by verb|resource|subresource (non-resource requests left out). */
async function apiserverMetrics(kube: KubeService, agent: Agent): Promise<Snapshot> {
  const res = await request(`${kube.server}/metrics`, { headers: { authorization: `Bearer ${kube.token}` }, dispatcher: agent });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/metrics: ${res.statusCode}`);
  const out: Snapshot = new Map();
  for (const m of text.matchAll(/^apiserver_request_total\{([^}]*)\}\s+(\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (!labels.resource) continue;
    const key = `${labels.verb}|${labels.resource}|${labels.subresource ?? ""}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[2]));
  }
  return out;
}

interface ScanState {
  total: number;
  byPhase: Record<string, number>;
  versions: Map<string, string>;
}

async function scanState(custom: k8s.CustomObjectsApi, namespaces: Set<string>): Promise<ScanState> {
  const res = (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: "imagescans" })) as { items: ImageScan[] };
  const byPhase: Record<string, number> = {};
  const versions = new Map<string, string>();
  let total = 0;
  for (const it of res.items) {
    if (!namespaces.has(it.metadata?.namespace ?? "")) continue;
    total++;
    const p = it.status?.phase ?? "(none)";
    byPhase[p] = (byPhase[p] ?? 0) + 1;
    versions.set(`${it.metadata?.namespace}/${it.metadata?.name}`, it.metadata?.resourceVersion ?? "");
  }
  return { total, byPhase, versions };
}

/** Waits until nothing happened for QUIET_MS: no log line, no API request but leases, no registry request. */
async function settle(op: Operator, kubeProxy: CountingProxy, regProxy: CountingProxy, since: number): Promise<{ lastActivity: number; bounded: boolean }> {
  // The operator's own last activity (it may precede `since`); the quiet window starts at `since` at the earliest.
  const last = () => {
    let t = op.log.lines.length ? op.log.lastAt : op.spawnedAt;
    for (let i = kubeProxy.records.length - 1; i >= 0; i--) {
      const r = kubeProxy.records[i]!;
      if (classifyKube(r).resource !== "leases") {
        if (r.t >= op.spawnedAt) t = Math.max(t, r.t);
        break;
      }
    }
    const rr = regProxy.records.at(-1);
    if (rr && rr.t >= op.spawnedAt) t = Math.max(t, rr.t);
    return t;
  };
  for (;;) {
    op.log.poll();
    const now = performance.now();
    const t = last();
    if (now - Math.max(t, since) >= QUIET_MS) return { lastActivity: t, bounded: false };
    if (now - since > SETTLE_BOUND_MS) return { lastActivity: t, bounded: true };
    if (op.proc.child.exitCode !== null || op.proc.child.signalCode !== null) throw new Error(`operator exited while settling; see ${op.proc.logFile}`);
    await sleep(250);
  }
}

// ------------------------------------------------------------------ the benchmark

const runId = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
const runDir = mkdtempSync(join(tmpdir(), "portcullis-bench-operator-"));
const sup = new ProcessSupervisor(runDir);
sup.startReaper(!opt.keep);
const stops: Array<() => Promise<void>> = [];
const proxies: CountingProxy[] = [];
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await Promise.allSettled(stops.reverse().map((f) => f()));
  await Promise.allSettled(proxies.map((p) => p.close()));
  await sup.stopAll();
  if (opt.keep) progress(`kept ${runDir}`);
  else rmSync(runDir, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    progress(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

const checks: Array<{ what: string; ok: boolean; detail: string }> = [];
const operators: Operator[] = [];
const out: string[] = [];
const say = (line = "") => out.push(line);

try {
  progress(`pods ${PODS}, images ${IMAGES}, namespaces ${NAMESPACES}, operator concurrency ${CONCURRENCY}; run dir ${runDir}`);
  const kubectlPath = findTool("kubectl");
  if (!kubectlPath) throw new Error("kubectl not found; run `npm run env:setup` as root");
  const tServices = performance.now();
  const [kubeS, pgS, regS] = await Promise.all([
    startKube(sup),
    startPostgres(sup, runId),
    startRegistry(sup, { name: "bench", auth: "none" }),
  ]);
  stops.push(kubeS.stop, regS.stop, pgS.stop);
  const kube = kubeS.service;
  const reg = regS.service;
  const databaseUrl = pgS.service.url;
  progress(`services up in ${s(performance.now() - tServices)}: kube-apiserver ${kube.version} ${kube.server}, registry ${reg.host}, postgres ${pgS.service.origin} (${pgS.service.database})`);

  // Counting proxies in front of the API server (HTTPS, own CA) and the registry (loopback HTTP).
  const apiUrl = new URL(kube.server);
  const ca = await makeCA(runDir, "bench-proxy");
  const leaf = await issueCert(runDir, ca, "kube-proxy", ["IP:127.0.0.1", "DNS:localhost"], "serverAuth");
  const kubeProxy = new CountingProxy({ https: true, host: apiUrl.hostname, port: Number(apiUrl.port), ca: kube.caPem }, { cert: leaf.certPem, key: leaf.keyPem });
  proxies.push(kubeProxy);
  const kubeProxyPort = await kubeProxy.listen();
  const operatorKubeconfig = join(runDir, "operator.kubeconfig");
  writeFileSync(operatorKubeconfig, kubeconfigYaml(`https://127.0.0.1:${kubeProxyPort}`, ca.certPem, kube.token), { mode: 0o600 });
  const regUrl = new URL(reg.url);
  const regProxy = new CountingProxy({ https: false, host: regUrl.hostname, port: Number(regUrl.port) });
  proxies.push(regProxy);
  const regProxyHost = `127.0.0.1:${await regProxy.listen()}`;

  // Images.
  const tImages = performance.now();
  const images = await pushImages(reg, IMAGES, regProxyHost);
  const imagesMs = performance.now() - tImages;
  progress(`${IMAGES} images pushed in ${s(imagesMs)} (base layer ${(images.baseLayerBytes / 1e6).toFixed(1)} MB gzip, mounted into each)`);

  // CRDs and namespaces.
  const kubectl = (...a: string[]) => run(kubectlPath, ["--kubeconfig", kube.kubeconfig, ...a], { maxBuffer: 512 * 1024 * 1024 });
  await kubectl("apply", "-f", join(root, "crds"));
  await kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/imagescans.portcullis.dev");
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const benchNamespaces = Array.from({ length: NAMESPACES }, (_, n) => nsName(n));
  // portcullis-system: the operator's own namespace, where its leader-election Lease lives.
  for (const name of ["portcullis-system", ...benchNamespaces]) await core.createNamespace({ body: { metadata: { name } } });
  const nsSet = new Set(benchNamespaces);

  // The pods to create, and what they should give.
  const pods: Array<{ ns: string; name: string; image: number }> = [];
  const pairs = new Set<string>();
  for (let n = 0; n < NAMESPACES; n++) {
    for (let j = 0; j < podsIn(n); j++) {
      const image = imageOf(n, j);
      pods.push({ ns: nsName(n), name: `app-${j}`, image });
      pairs.add(`${n}/${image}`);
    }
  }
  const expectedScans = pairs.size;
  const imagesUsed = new Set(pods.map((p) => p.image)).size;
  const freshIndexes = imagesUsed;
  progress(`scheme: pod j of namespace n runs image (n*${STRIDE} + j mod ${WINDOW}) mod ${IMAGES}: ${imagesUsed} images used, ${expectedScans} ImageScans expected`);

  const metricsAgent = new Agent({ connect: { ca: kube.caPem } });
  stops.push(() => metricsAgent.close());

  const launch = await prepareLaunch(runDir);
  const loadRssKb = await moduleLoadRss(runDir);
  progress(`operator launched as: ${launch.label}; RSS with its modules loaded and idle: ${mb(loadRssKb)}`);

  // ---------------------------------------------------------------- run 1
  progress("run 1: starting the operator");
  const m0 = await apiserverMetrics(kube, metricsAgent);
  const op1 = await startOperator(sup, "operator-1", operatorKubeconfig, databaseUrl, launch);
  operators.push(op1);
  stops.push(async () => void (await op1.proc.stop()));
  progress(`run 1: ready in ${s(op1.readyAt - op1.spawnedAt)}, controllers running in ${s(op1.runningAt - op1.spawnedAt)}`);
  await sleep(2000);
  const idle1 = procStats(op1.proc.child.pid!);

  // Create every pod at once (bounded concurrency), while polling the scans.
  const t0 = performance.now();
  const t0Wall = Date.now();
  let createAttempts = 0;
  let createRetries = 0;
  let createdAt = 0;
  const creating = pool(pods, CREATE_CONCURRENCY, async (p) => {
    for (let attempt = 0; ; attempt++) {
      createAttempts++;
      try {
        await core.createNamespacedPod({
          namespace: p.ns,
          body: {
            metadata: { name: p.name, labels: { app: `app-${p.image}`, bench: "portcullis" } },
            spec: { containers: [{ name: "app", image: images.refs[p.image]! }], terminationGracePeriodSeconds: 0 },
          },
        });
        return;
      } catch (e) {
        const code = (e as { code?: number }).code ?? 0;
        if (attempt >= 4 || !(code === 429 || code >= 500 || code === 0)) throw e;
        createRetries++;
        await sleep(200 * 2 ** attempt);
      }
    }
  }).then(() => (createdAt = performance.now()));
  let polls = 0;
  let allCreatedAt = 0;
  let indexedAt = 0;
  let lastState: ScanState | undefined;
  let lastProgress = 0;
  let stuck = false;
  let createError: unknown;
  creating.catch((e: unknown) => (createError = e));
  for (;;) {
    if (createError) throw createError;
    if (op1.proc.child.exitCode !== null || op1.proc.child.signalCode !== null) throw new Error(`operator exited during run 1 (${op1.proc.child.exitCode ?? op1.proc.child.signalCode}); see the log tail:\n${op1.log.lines.slice(-20).map((l) => l.raw).join("\n")}`);
    polls++;
    lastState = await scanState(custom, nsSet);
    const now = performance.now();
    if (!allCreatedAt && lastState.total >= expectedScans) allCreatedAt = now;
    const indexed = lastState.byPhase.Indexed ?? 0;
    const failed = lastState.byPhase.Failed ?? 0;
    if (createdAt && lastState.total === expectedScans && indexed === expectedScans) {
      indexedAt = now;
      break;
    }
    if (createdAt && lastState.total === expectedScans && indexed + failed === expectedScans && failed > 0) {
      stuck = true;
      progress(`run 1: ${failed} scans Failed; stopping the wait`);
      break;
    }
    if (now - t0 > TIMEOUT_MS) {
      stuck = true;
      progress(`run 1: timeout after ${s(TIMEOUT_MS)}`);
      break;
    }
    if (now - lastProgress > 10_000) {
      lastProgress = now;
      const st = procStats(op1.proc.child.pid!);
      progress(`run 1: pods ${createdAt ? "all created" : "creating"}, scans ${lastState.total}/${expectedScans} ${JSON.stringify(lastState.byPhase)}, operator RSS ${st ? mb(st.rssKb) : "?"}, API requests so far ${kubeProxy.records.length}`);
    }
    await sleep(Math.max(0, 1000 - (performance.now() - now)));
  }
  await creating.catch(() => undefined);
  const createMs = createdAt - t0;
  progress(`run 1: pods created in ${s(createMs)}; ${indexedAt ? `all ${expectedScans} scans Indexed at +${s(indexedAt - t0)}` : "NOT all Indexed"}`);
  const settled1 = await settle(op1, kubeProxy, regProxy, performance.now());
  const settleEnd1 = performance.now();
  const regClientErrors1 = regProxy.clientErrors;
  const m1 = await apiserverMetrics(kube, metricsAgent);
  progress(`run 1: settled (last activity +${s(settled1.lastActivity - t0)})`);

  // Baselines, on the bench's own connection: LIST of every pod with kubectl, and of the scans.
  const listPods: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await kubectl("get", "--raw", "/api/v1/pods");
    listPods.push(performance.now() - t);
  }
  const listScans: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await kubectl("get", "--raw", `/apis/${GROUP}/${VERSION}/imagescans`);
    listScans.push(performance.now() - t);
  }
  const beforeRestart = await scanState(custom, nsSet);
  const stop1 = await stopOperator(op1, kubeProxy.records);
  progress(`run 1: operator stopped (exit ${stop1.code ?? stop1.signal}) in ${s(stop1.stopMs)}, peak RSS ${mb(stop1.hwmKb)}`);

  // ---------------------------------------------------------------- run 2: restart on the same database
  const r2From = performance.now();
  const op2 = await startOperator(sup, "operator-2", operatorKubeconfig, databaseUrl, launch);
  operators.push(op2);
  stops.push(async () => void (await op2.proc.stop()));
  progress(`run 2: ready in ${s(op2.readyAt - op2.spawnedAt)}, controllers running in ${s(op2.runningAt - op2.spawnedAt)}`);
  const settled2 = await settle(op2, kubeProxy, regProxy, op2.runningAt);
  const r2End = performance.now();
  const afterRestart = await scanState(custom, nsSet);
  const stop2 = await stopOperator(op2, kubeProxy.records);
  progress(`run 2: settled, last activity ${s(settled2.lastActivity - op2.spawnedAt)} after spawn; stopped (exit ${stop2.code ?? stop2.signal})`);

  // ---------------------------------------------------------------- figures
  const ix1 = op1.log.indexed();
  const ix2 = op2.log.indexed();
  const sum = (xs: OpLine[], f: (l: OpLine) => number | undefined) => xs.reduce((a, l) => a + (f(l) ?? 0), 0);
  const cold1 = ix1.filter((l) => l.cached === false);
  const warm1 = ix1.filter((l) => l.cached === true);
  const lastIndexedWall = Math.max(...ix1.map((l) => Date.parse(l.time ?? "")).filter((t) => !Number.isNaN(t)));
  // The single-image figure: the fresh index that downloaded the base layer (the most bytes fetched).
  const firstCold = cold1.reduce<OpLine | undefined>((a, l) => (!a || (l.bytesFetched ?? 0) > (a.bytesFetched ?? 0) ? l : a), undefined);
  const reg1 = countRegistry(regProxy.records, t0, settleEnd1, images.layerDigests, images.configDigests);
  const reg1Startup = countRegistry(regProxy.records, op1.spawnedAt, t0, images.layerDigests, images.configDigests);
  const reg2 = countRegistry(regProxy.records, r2From, r2End, images.layerDigests, images.configDigests);
  const kStart1 = countKube(kubeProxy.records, op1.spawnedAt, t0);
  const kBurst1 = countKube(kubeProxy.records, t0, settleEnd1);
  const kRun2 = countKube(kubeProxy.records, r2From, r2End);
  const changed = [...afterRestart.versions].filter(([k, v]) => beforeRestart.versions.get(k) !== v).length;
  const maxRss1 = Math.max(0, ...op1.rssSamples);
  const maxRss2 = Math.max(0, ...op2.rssSamples);

  // Cross-check with the API server's own count (non-watch verbs: a watch is counted when it ends), over
  // the resources the operator touches but leases (the API server renews its own): the delta minus the
  // bench's own requests (pod creates, the scan LIST polls) against the proxy's count over the same span.
  const crossResources = new Set(["pods", "imagescans", "events", "serviceaccounts", "secrets"]);
  let apiDelta = 0;
  for (const [key, v] of m1) {
    const [verb, resource] = key.split("|") as [string, string, string];
    if (verb === "WATCH" || !crossResources.has(resource)) continue;
    apiDelta += v - (m0.get(key) ?? 0);
  }
  const benchOwn = createAttempts + polls;
  const proxyCross = kubeProxy.records.filter((r) => r.t >= op1.spawnedAt && r.t < settleEnd1).map(classifyKube).filter((k) => k.verb !== "WATCH" && crossResources.has(k.resource)).length;

  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "-");
  const allIndexedMs = indexedAt ? indexedAt - t0 : NaN;
  const logIndexedMs = lastIndexedWall - t0Wall;

  say(`Portcullis operator at scale: ${PODS} pods over ${IMAGES} images in ${NAMESPACES} namespaces (kube-apiserver ${kube.version}, ${process.platform}/${process.arch}, node ${process.version})`);
  say(`scheme: pod j of namespace n runs image (n*${STRIDE} + j mod ${WINDOW}) mod ${IMAGES} -> ${imagesUsed} images used, ${expectedScans} ImageScans (one per namespace x digest), ${freshIndexes} needing a fresh index`);
  say(`images: base layer ${(images.baseLayerBytes / 1e6).toFixed(1)} MB gzip shared by all + one ~150-byte layer each; pushed in ${s(imagesMs)}`);
  say(`operator: ${launch.label} serve --concurrency ${CONCURRENCY} (PostgreSQL store, leader election on, admission webhook ${opt.webhook ? "on (URL registration, --on-missing-scan warn)" : "off"}), API via counting proxy`);
  say();
  say("Run 1: cold start, every pod created at once");
  say(table([
    ["figure", "value"],
    ["operator ready (/readyz) / controllers running", `${s(op1.readyAt - op1.spawnedAt)} / ${s(op1.runningAt - op1.spawnedAt)}`],
    ["operator RSS at idle (VmRSS, before pods)", idle1 ? mb(idle1.rssKb) : "?"],
    [`pods created (${CREATE_CONCURRENCY} in flight, client-node)`, `${pods.length} in ${s(createMs)} (${(pods.length / (createMs / 1000)).toFixed(0)}/s, ${createRetries} retries)`],
    ["all ImageScans created (poll)", allCreatedAt ? `+${s(allCreatedAt - t0)}` : "never"],
    ["all ImageScans Indexed (poll, 1 s)", indexedAt ? `+${s(allIndexedMs)}` : "NOT REACHED"],
    ["last 'indexed' log line", Number.isFinite(logIndexedMs) ? `+${s(logIndexedMs)}` : "-"],
    ["ImageScans (expected)", `${lastState?.total ?? 0} (${expectedScans}) ${JSON.stringify(lastState?.byPhase ?? {})}`],
    ["'indexed' log lines: total / fresh (cached false) / from store", `${ix1.length} / ${cold1.length} / ${warm1.length}`],
    [`layers fetched, sum of layersFetched (expected ${freshIndexes + 1})`, `${sum(ix1, (l) => l.layersFetched)} (${(sum(ix1, (l) => l.bytesFetched) / 1e6).toFixed(1)} MB)`],
    ["registry: layer blob GETs / config GETs / manifest GETs / HEADs", `${reg1.layerGet} (${(reg1.layerBytes / 1e6).toFixed(1)} MB) / ${reg1.configGet} / ${reg1.manifestGet} / ${reg1.manifestHead}`],
    ["registry: /v2/ pings / other / non-HTTP connects (https tries)", `${reg1.ping} / ${reg1.other + reg1.otherBlob} / ${regClientErrors1}`],
    ["registry requests before the first pod (startup)", String(Object.values(reg1Startup).reduce((a, b) => a + b, 0) - reg1Startup.layerBytes)],
    ["operator peak RSS (VmHWM) / max sampled VmRSS", `${mb(stop1.hwmKb)} / ${mb(maxRss1)}`],
    ["operator CPU time (user+sys)", `${stop1.cpuS.toFixed(1)} s`],
    ["last operator activity (request, log line), then 5 s quiet", `+${s(settled1.lastActivity - t0)}${settled1.bounded ? " (bounded: still busy)" : ""}`],
    ["operator exit on SIGTERM", `${stop1.code ?? stop1.signal} in ${s(stop1.stopMs)}`],
  ]));
  say();
  say(`API requests by the operator from pod creation until settled (${s(settleEnd1 - t0)}), ${PODS} pods, ${expectedScans} scans:`);
  say(kubeTable(kBurst1, PODS, expectedScans));
  say(`leases (leader election, time-driven not pod-driven): ${kBurst1.lease} in that span; error responses: ${kBurst1.errors}${kBurst1.errors ? ` (${[...kBurst1.errorKinds].map(([k, n]) => `${k}: ${n}`).join(", ")})` : ""}`);
  say(`startup (spawn to first pod, ${s(t0 - op1.spawnedAt)}): ${kStart1.total} requests + ${kStart1.lease} lease: ${[...kStart1.byResource].map(([r, m]) => `${r} ${[...m].map(([v, n]) => `${v}:${n}`).join(",")}`).join("; ")}`);
  say(`TLS connections opened to the API (proxy): ${kubeProxy.connections} for ${kubeProxy.records.length} requests over both runs`);
  say(`cross-check (apiserver_request_total, non-watch, ${[...crossResources].join("/")}): delta ${apiDelta} - bench's own ${benchOwn} (${createAttempts} pod creates + ${polls} scan LISTs) = ${apiDelta - benchOwn}; proxy counted ${proxyCross}`);
  say();
  say("Run 2: restart on the same database (resync)");
  say(table([
    ["figure", "value"],
    ["ready (/readyz) / controllers running", `${s(op2.readyAt - op2.spawnedAt)} / ${s(op2.runningAt - op2.spawnedAt)}`],
    ["resync done: last activity after spawn / after controllers running", `${s(settled2.lastActivity - op2.spawnedAt)} / ${s(Math.max(0, settled2.lastActivity - op2.runningAt))}${settled2.bounded ? " (bounded: still busy)" : ""}`],
    ["layer downloads, sum of layersFetched (expected 0)", String(sum(ix2, (l) => l.layersFetched))],
    ["registry layer blob GETs (expected 0)", String(reg2.layerGet)],
    ["scans re-indexed, 'indexed' lines cached false (expected 0)", String(ix2.filter((l) => l.cached === false).length)],
    ["'indexed' log lines at all", String(ix2.length)],
    ["ImageScans modified (resourceVersion changed)", `${changed} of ${afterRestart.total}`],
    ["registry: manifest HEADs (tag re-resolution) / GETs / config GETs", `${reg2.manifestHead} / ${reg2.manifestGet} / ${reg2.configGet}`],
    ["API requests (all but leases) / leases", `${kRun2.total} / ${kRun2.lease}`],
    ["peak RSS (VmHWM) / max sampled VmRSS", `${mb(stop2.hwmKb)} / ${mb(maxRss2)}`],
    ["CPU time", `${stop2.cpuS.toFixed(1)} s`],
    ["operator exit on SIGTERM", `${stop2.code ?? stop2.signal} in ${s(stop2.stopMs)}`],
  ]));
  say("API requests in run 2 (spawn to settled):");
  say(kubeTable(kRun2, PODS, expectedScans));
  if (kRun2.errors) say(`error responses: ${[...kRun2.errorKinds].map(([k, n]) => `${k}: ${n}`).join(", ")}`);
  say();
  say("Baselines (same run)");
  say(table([
    ["figure", "value"],
    [`create ${pods.length} pods alone (bench, ${CREATE_CONCURRENCY} in flight)`, s(createMs)],
    ["RSS of node with the operator's modules loaded, idle (same launcher)", mb(loadRssKb)],
    [`kubectl get --raw LIST of all ${pods.length} pods, median of 3`, s(median(listPods))],
    [`kubectl get --raw LIST of all ${afterRestart.total} ImageScans, median of 3`, s(median(listScans))],
    ["single-image cold index incl. the base layer (durationMs of the fresh 'indexed' line that fetched it)", firstCold?.durationMs !== undefined ? `${firstCold.durationMs} ms (${firstCold.layersFetched} layers, ${((firstCold.bytesFetched ?? 0) / 1e6).toFixed(1)} MB fetched)` : "-"],
    ["other fresh indexes: median durationMs (base layer already stored)", cold1.length > 1 ? `${median(cold1.filter((l) => l !== firstCold).map((l) => l.durationMs ?? 0))} ms` : "-"],
    ["answered from store: median durationMs", warm1.length ? `${median(warm1.map((l) => l.durationMs ?? 0))} ms` : "-"],
    ["ratio: all Indexed / pod creation", ratio(allIndexedMs, createMs)],
    ["ratio: all Indexed / single-image cold index", firstCold?.durationMs ? ratio(allIndexedMs, firstCold.durationMs) : "-"],
    ["ratio: resync (controllers running to last activity) / LIST of all pods", ratio(Math.max(0, settled2.lastActivity - op2.runningAt), median(listPods))],
  ]));
  for (const [label, st] of [["run 1", stop1], ["run 2", stop2]] as const) {
    if (!st.hung) continue;
    say();
    say(`${label}: the operator did not exit within ${s(STOP_GRACE_MS)} of SIGTERM (${st.hung.afterStoppedMs !== undefined ? `its "stopped" line was logged, the process lived on` : `no "stopped" line`}); killed. Active, referenced libuv handles from its diagnostic report:`);
    for (const h of st.hung.handles) say(`  ${h}`);
  }
  const trouble = [...op1.log.trouble().map((l) => `run 1: ${l}`), ...op2.log.trouble().map((l) => `run 2: ${l}`)];
  if (trouble.length) {
    say();
    say(`Operator log lines about failures/retries/warnings: ${trouble.length} (first 15)`);
    for (const l of trouble.slice(0, 15)) say(`  ${l.length > 400 ? `${l.slice(0, 400)}...` : l}`);
  }

  // Correctness checks.
  const pollingLists = [...kBurst1.byResource].reduce((a, [r, m]) => a + (r.startsWith("leases") ? 0 : m.get("LIST") ?? 0), 0);
  const conflicts = [...kBurst1.errorKinds].filter(([k]) => k.startsWith("CREATE imagescans -> 409")).reduce((a, [, n]) => a + n, 0);
  const scanGets = kBurst1.byResource.get("imagescans")?.get("GET") ?? 0;
  checks.push({ what: `every ImageScan Indexed within ${s(TIMEOUT_MS)}`, ok: !stuck && !!indexedAt, detail: indexedAt ? `+${s(allIndexedMs)}` : JSON.stringify(lastState?.byPhase ?? {}) });
  checks.push({ what: "no layer downloaded after the restart", ok: sum(ix2, (l) => l.layersFetched) === 0 && reg2.layerGet === 0, detail: `layersFetched ${sum(ix2, (l) => l.layersFetched)}, registry layer GETs ${reg2.layerGet}` });
  checks.push({ what: "no scan re-indexed after the restart", ok: ix2.filter((l) => l.cached === false).length === 0, detail: `${ix2.filter((l) => l.cached === false).length} fresh 'indexed' lines` });
  checks.push({ what: "operator exits 0 on SIGTERM (both runs)", ok: stop1.code === 0 && stop2.code === 0, detail: `${stop1.code ?? stop1.signal}, ${stop2.code ?? stop2.signal}` });
  say();
  say("Checks");
  for (const c of checks) say(`  ${c.ok ? "PASS" : "FAIL"}  ${c.what}: ${c.detail}`);
  say(`  info  LIST requests during the burst (polling would show here; informers list once at start): ${pollingLists}`);
  say(`  info  ImageScan CREATEs answered 409 (a sibling pod's create not yet in the informer cache) and GETs that followed: ${conflicts} / ${scanGets}, against ${expectedScans} scans`);
  say(`  info  layers fetched in run 1 vs ideal (${freshIndexes + 1}): ${sum(ix1, (l) => l.layersFetched)}; ImageScans modified by the restart: ${changed}`);
} catch (e) {
  checks.push({ what: "benchmark ran to the end", ok: false, detail: (e as Error).stack ?? String(e) });
  say(`benchmark failed: ${(e as Error).stack ?? String(e)}`);
  for (const op of operators) {
    op.log.poll();
    say(`last lines of ${op.proc.name}'s log:`);
    for (const l of op.log.lines.slice(-30)) say(`  ${l.raw.slice(0, 400)}`);
  }
} finally {
  console.log(out.join("\n"));
  await cleanup();
}
process.exitCode = checks.every((c) => c.ok) && checks.length > 0 ? 0 : 1;
