// A pool of worker processes that parse layer bytes (./child.ts), as the Indexer's LayerScanning. The pool
// is the worker's only window on the world: it opens the layer at its source (the registry client, with
// its credentials, retries and digest checks) and streams the blob to the worker, or serves the byte ranges
// a partial read asks for. What a hostile layer can do to a worker ends with that worker:
// - memory: each worker runs with a V8 heap limit, and the pool reads its resident set every 250 ms and
//   kills it above `memoryMb` (a heap limit alone does not count buffers: a worker thread whose old
//   generation was capped at 256 MiB allocated 3 GiB of ArrayBuffers in the process it shared);
// - time: the scan's signal (its deadline) kills the worker, whatever its event loop is doing;
// - a crash of any kind fails that layer with a coded error, and a new worker takes the dead one's place.
// Child processes rather than worker threads for those two reasons: a thread's buffers and a thread's
// blocked loop are the host process's.
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { setPriority } from "node:os";
import { createRequire } from "node:module";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { LayerError } from "../../layers/errors.js";
import { DEFAULT_WALK_LIMITS } from "../../layers/walk.js";
import type { LayerScanning, LayerScanRequest, ScannedLayer } from "../scan-layer.js";
import { FRAME_ABORT, FRAME_DATA, FRAME_END, FRAME_HEADER, FRAME_MAX, fromWire, toWire, type FromWorker, type ToWorker, type WorkerTuning } from "./protocol.js";
import { PortcullisError } from "../../errors.js";

export interface WorkerPoolOptions {
  /** Worker processes (at least 1). */
  size: number;
  /** Each worker's V8 heap limit, MiB. */
  heapMb: number;
  /** The resident memory a worker may reach, MiB: above it the worker is killed and its layer fails. */
  memoryMb: number;
  tuning?: WorkerTuning;
  log?: (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  /** The workers' niceness (default 19: below the serve process; 0 leaves them at its priority). */
  nice?: number;
  /** A worker ended while parsing a layer (metrics). */
  onWorkerExit?(reason: "memory" | "crashed" | "aborted"): void;
}

/** A layer the pool could not scan because its worker died: `code` says why. */
export class WorkerError extends PortcullisError {
  readonly domain = "indexer";
  override name = "WorkerError";
  constructor(
    readonly code: "WORKER_MEMORY_LIMIT" | "WORKER_CRASHED" | "WORKER_UNAVAILABLE",
    readonly layer: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the pool is doing, for metrics. */
export interface WorkerPoolStats {
  size: number;
  busy: number;
  queued: number;
  /** Age of the oldest layer waiting for a worker, ms (0 when none). */
  oldestQueuedMs: number;
  /** Workers that died and were replaced since the pool started. */
  restarts: number;
}

interface Job {
  id: number;
  req: LayerScanRequest;
  /** Bytes of the scan's capture budget held for this layer (its walk's cap), given back as they go unused. */
  reserved: number;
  queuedAt: number;
  resolve(r: ScannedLayer): void;
  reject(e: Error): void;
  /** Blob streams being pumped to the worker, by stream id. */
  streams: Map<number, Readable>;
  /** Streams the worker closed (it needs no more of them). */
  closed: Set<number>;
  onAbort?: () => void;
}

interface Worker {
  proc: ChildProcess;
  data: Writable;
  ready: boolean;
  job?: Job;
  /** Why the pool killed it, when it did. */
  killed?: { code: WorkerError["code"] | "ABORTED"; message: string };
  stderr: string;
}

const WATCH_MS = 250;
export const DEFAULT_WORKER_NICE = 19;
/** Environment variables a worker gets: none of the operator's secrets (database URL, cloud credentials). */
const WORKER_ENV = ["PATH", "LANG", "LC_ALL", "TZ", "NODE_ENV", "TMPDIR"];

export class WorkerPool implements LayerScanning {
  private readonly workers = new Set<Worker>();
  private readonly queue: Job[] = [];
  private seq = 0;
  private stopped = false;
  private restarts = 0;
  private failedStarts = 0;
  private readonly watch: NodeJS.Timeout;
  private readonly entry: string;
  private readonly execArgv: string[];

  constructor(private readonly options: WorkerPoolOptions) {
    if (options.size < 1) throw new Error("a worker pool needs at least one worker");
    const ts = import.meta.url.endsWith(".ts");
    this.entry = fileURLToPath(new URL(`./child.${ts ? "ts" : "js"}`, import.meta.url));
    // From source (tests, `npm run portcullis`) the worker needs the same TypeScript loader as this process.
    this.execArgv = [`--max-old-space-size=${options.heapMb}`, ...(ts ? ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href] : [])];
    for (let i = 0; i < options.size; i++) this.spawn();
    this.watch = setInterval(() => this.checkMemory(), WATCH_MS);
    this.watch.unref();
  }

  scan(req: LayerScanRequest): Promise<ScannedLayer> {
    if (this.stopped) return Promise.reject(new WorkerError("WORKER_UNAVAILABLE", req.layer.digest, "the worker pool is stopped"));
    req.signal.throwIfAborted();
    // The scan's budget for wanted files cannot be shared with other processes: each layer takes its share up
    // front (at most the per-layer cap, at most what is left) as its walk's cap, and gives back what it did not hold.
    let reserved = 0;
    if (req.capture) {
      const perLayer = this.options.tuning?.limits?.maxCapturedBytes ?? DEFAULT_WALK_LIMITS.maxCapturedBytes;
      reserved = Math.min(perLayer, req.capture.max - req.capture.used);
      if (reserved <= 0) return Promise.reject(new LayerError("CAPTURED_TOO_LARGE", req.layer.digest, `the files the scanners read from this image's layers exceed ${req.capture.max} bytes in all`));
      req.capture.take(reserved, req.layer.digest, "(reserved for this layer)");
    }
    return new Promise<ScannedLayer>((resolve, reject) => {
      const job: Job = { id: ++this.seq, req, reserved, queuedAt: Date.now(), resolve, reject, streams: new Map(), closed: new Set() };
      job.onAbort = () => this.abort(job);
      req.signal.addEventListener("abort", job.onAbort, { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  stats(): WorkerPoolStats {
    const busy = [...this.workers].filter((w) => w.job).length;
    return { size: this.options.size, busy, queued: this.queue.length, oldestQueuedMs: this.queue.length ? Date.now() - this.queue[0]!.queuedAt : 0, restarts: this.restarts };
  }

  /** Process ids of the live workers (for operators' tools and tests). */
  pids(): number[] {
    return [...this.workers].map((w) => w.proc.pid!).filter(Boolean);
  }

  /** Process ids of the workers scanning a layer now. */
  busyPids(): number[] {
    return [...this.workers].filter((w) => w.job).map((w) => w.proc.pid!).filter(Boolean);
  }

  /** Kills every worker; layers in flight or queued fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watch);
    for (const job of this.queue.splice(0)) this.settle(job, new WorkerError("WORKER_UNAVAILABLE", job.req.layer.digest, "the worker pool stopped"));
    await Promise.all([...this.workers].map((w) => new Promise<void>((resolve) => {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) return resolve();
      w.proc.once("exit", () => resolve());
      w.proc.kill("SIGKILL");
    })));
  }

  private spawn(): void {
    const env: NodeJS.ProcessEnv = {};
    for (const k of WORKER_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
    const proc = fork(this.entry, [], { execArgv: this.execArgv, env, serialization: "advanced", stdio: ["ignore", "ignore", "pipe", "ipc", "pipe"] });
    const w: Worker = { proc, data: proc.stdio[4] as Writable, ready: false, stderr: "" };
    // Parsing layers is batch work; answering admission is not. At the same CPU, a worker gets about a
    // seventieth of what the serve process gets (nice 19), so a busy pool does not delay reviews on a small
    // node (the attack benchmark: admission p99 attacked/quiet 2.59 at nice 19, 4.32 at nice 10, same run).
    if (proc.pid !== undefined && this.options.nice !== 0) {
      try {
        setPriority(proc.pid, this.options.nice ?? DEFAULT_WORKER_NICE);
      } catch (e) {
        this.options.log?.("warn", "indexer worker: could not lower its CPU priority", { pid: proc.pid, error: (e as Error).message });
      }
    }
    this.workers.add(w);
    w.data.on("error", () => undefined); // a dead worker's pipe: its exit is handled below
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (s: string) => {
      w.stderr = (w.stderr + s).slice(-4096);
    });
    proc.on("message", (m: FromWorker) => this.onMessage(w, m));
    proc.on("error", (e) => this.options.log?.("warn", "indexer worker: process error", { pid: proc.pid, error: e.message }));
    proc.on("exit", (code, signal) => this.onExit(w, code, signal));
    this.send(w, { t: "init", tuning: this.options.tuning ?? {} });
  }

  private send(w: Worker, m: ToWorker): void {
    if (w.proc.connected) w.proc.send(m, (e) => e && undefined);
  }

  private dispatch(): void {
    for (const w of this.workers) {
      if (!this.queue.length) return;
      if (!w.ready || w.job || w.killed) continue;
      const job = this.queue.shift()!;
      w.job = job;
      const { layer, scanners, source } = job.req;
      this.send(w, { t: "scan", job: job.id, layer, scanners: scanners.map((s) => s.name), verifiesDigests: source.verifiesDigests, ranges: !!source.ranges, ...(job.req.capture ? { limits: { maxCapturedBytes: job.reserved } } : {}) });
    }
  }

  private onMessage(w: Worker, m: FromWorker): void {
    switch (m.t) {
      case "ready":
        w.ready = true;
        this.failedStarts = 0;
        this.dispatch();
        return;
      case "log":
        this.options.log?.(m.level, m.msg, { ...m.fields, pid: w.proc.pid });
        return;
      case "open":
        if (w.job?.id === m.job) void this.pump(w, w.job, m.stream);
        return;
      case "close":
        w.job?.closed.add(m.stream);
        w.job?.streams.get(m.stream)?.destroy();
        return;
      case "range": {
        const job = w.job;
        if (job?.id !== m.job || !job.req.source.ranges) return;
        job.req.source.ranges(job.req.layer).read(m.start, m.end, job.req.signal).then(
          (data) => this.send(w, { t: "range", req: m.req, data }),
          (e: unknown) => this.send(w, { t: "range", req: m.req, error: toWire(e) }),
        );
        return;
      }
      case "done":
      case "failed": {
        const job = w.job;
        if (job?.id !== m.job) return;
        w.job = undefined;
        for (const s of job.streams.values()) s.destroy();
        if (m.t === "done") this.settle(job, undefined, m.result);
        else this.settle(job, fromWire(m.error));
        this.dispatch();
        return;
      }
    }
  }

  /** Streams the job's blob to the worker in frames, at the pace the worker reads it. */
  private async pump(w: Worker, job: Job, stream: number): Promise<void> {
    const frame = (kind: number, payload: Buffer = Buffer.alloc(0)): boolean => {
      const head = Buffer.alloc(FRAME_HEADER);
      head[0] = kind;
      head.writeUInt32BE(stream, 1);
      head.writeUInt32BE(payload.length, 5);
      w.data.write(head);
      return w.data.write(payload);
    };
    let blob: Readable;
    try {
      blob = await job.req.source.open(job.req.layer, job.req.signal);
    } catch (e) {
      frame(FRAME_ABORT, Buffer.from(JSON.stringify(toWire(e))));
      return;
    }
    if (w.job !== job) {
      blob.destroy();
      return;
    }
    job.streams.set(stream, blob);
    try {
      for await (const chunk of blob as AsyncIterable<Buffer>) {
        for (let off = 0; off < chunk.length; off += FRAME_MAX) {
          if (!frame(FRAME_DATA, chunk.subarray(off, off + FRAME_MAX))) await this.drained(w);
          if (w.job !== job) return;
        }
      }
      frame(FRAME_END);
    } catch (e) {
      // The worker closed the stream (it needs no more), or the source failed: the worker hears which.
      if (w.job === job) {
        if (job.closed.has(stream)) frame(FRAME_END);
        else frame(FRAME_ABORT, Buffer.from(JSON.stringify(toWire(e))));
      }
    } finally {
      job.streams.delete(stream);
    }
  }

  private drained(w: Worker): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        w.data.off("drain", done);
        w.proc.off("exit", done);
        resolve();
      };
      w.data.once("drain", done);
      w.proc.once("exit", done);
    });
  }

  private abort(job: Job): void {
    const i = this.queue.indexOf(job);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.settle(job, job.req.signal.reason as Error);
      return;
    }
    for (const w of this.workers) {
      if (w.job !== job) continue;
      // Whatever the worker is doing (a blocked loop included), its scan is over.
      w.killed = { code: "ABORTED", message: "aborted" };
      w.proc.kill("SIGKILL");
    }
  }

  private checkMemory(): void {
    for (const w of this.workers) {
      if (!w.job || w.killed || !w.proc.pid) continue;
      const rss = residentMb(w.proc.pid);
      if (rss === undefined || rss <= this.options.memoryMb) continue;
      w.killed = { code: "WORKER_MEMORY_LIMIT", message: `the worker scanning layer ${w.job.req.layer.digest} reached ${rss} MiB of memory, over its limit of ${this.options.memoryMb} MiB; it was stopped` };
      w.proc.kill("SIGKILL");
    }
  }

  private onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(w);
    const job = w.job;
    w.job = undefined;
    if (job) {
      for (const s of job.streams.values()) s.destroy();
      const layer = job.req.layer.digest;
      let error: Error;
      if (w.killed?.code === "ABORTED") error = job.req.signal.reason as Error;
      else if (w.killed) error = new WorkerError(w.killed.code, layer, w.killed.message);
      else if (/heap out of memory|Reached heap limit/i.test(w.stderr)) error = new WorkerError("WORKER_MEMORY_LIMIT", layer, `the worker scanning layer ${layer} ran out of its ${this.options.heapMb} MiB heap; it was stopped`);
      else error = new WorkerError("WORKER_CRASHED", layer, `the worker scanning layer ${layer} exited (${signal ? `signal ${signal}` : `code ${code}`})${signal === "SIGKILL" ? ", perhaps at the container's memory limit" : ""}`);
      this.options.onWorkerExit?.(w.killed?.code === "ABORTED" ? "aborted" : (error as { code?: string }).code === "WORKER_MEMORY_LIMIT" ? "memory" : "crashed");
      this.settle(job, error);
    }
    if (!w.ready) this.failedStarts++;
    if (this.stopped) return;
    this.restarts++;
    if (!w.killed || w.killed.code !== "ABORTED") this.options.log?.(job ? "warn" : "error", "indexer worker exited; starting another", { pid: w.proc.pid, code, signal, layer: job?.req.layer.digest, stderr: w.stderr.trim().split("\n").slice(-3).join(" | ") || undefined });
    // A worker that cannot even start (a broken install) is retried with backoff, not in a tight loop.
    const delay = this.failedStarts ? Math.min(30_000, 500 * 2 ** Math.min(this.failedStarts, 6)) : 0;
    setTimeout(() => {
      if (this.stopped) return;
      this.spawn();
    }, delay).unref();
    this.dispatch();
  }

  private settle(job: Job, error: Error | undefined, result?: ScannedLayer): void {
    if (job.onAbort) job.req.signal.removeEventListener("abort", job.onAbort);
    // What the layer held stays counted while the scan runs (as in process); the rest of its share goes back.
    job.req.capture?.give(job.reserved - (result?.capturedBytes ?? 0));
    if (error) job.reject(error);
    else job.resolve(result!);
  }
}

/** A process's resident set in MiB, from /proc (undefined where there is none, or the process is gone). */
function residentMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}
