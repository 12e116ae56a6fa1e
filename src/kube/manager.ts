// The manager: what a process runs, in order, over one shared cache, after controller-runtime's pkg/manager.
// A Runnable is started with a signal and says when it is running; the ones that need the Lease
// (controller-runtime's LeaderElectionRunnable) start when this process becomes the leader and stop when it
// stops being it, once per leadership term; the others start at once and run until the process stops.
//
// Order. Runnables start one after another in the order they were added, each once the previous one is
// running (so a cache consumer that lists first, the webhook's caches, is synced before the next one, its
// HTTPS server, listens); the leader's runnables start after every other one, once the Lease is held.
// Shutdown is the reverse: the leader's runnables in reverse order (then the Lease is released, so another
// replica takes over at once), then the others in reverse, then the cache's informers.
//
// What differs from controller-runtime, on purpose: start() resolves when a runnable is running rather than
// blocking until it ends (TypeScript has no goroutines to park in Start), and a lost Lease ends the term and
// campaigns again instead of exiting the process (the existing failover behaviour, tested in
// test/controller/failover.test.ts).
import type { LogFn } from "../log/logger.js";
import type { SharedCache } from "./cache.js";
import { LeaderElector, type LeaderElectionOptions } from "./leader.js";

export interface Runnable {
  /** For log lines: `webhook-server`, `pod-controller`. */
  readonly name: string;
  /** Run only while this process holds the Lease (and once per term). */
  readonly needLeaderElection: boolean;
  /**
   * Starts and resolves once running. It runs until `signal` aborts, then winds down; `stopped` resolves when
   * it has. A leader runnable is started again for every leadership term, so it makes what a term needs (a
   * work queue that was shut down is not reused) inside start.
   */
  start(signal: AbortSignal): Promise<Running>;
}

export interface Running {
  readonly stopped: Promise<void>;
}

/**
 * A runnable from a start function that returns its stop function: the common shape of what the process runs
 * (a controller's start()/stop(), a server's listen()/close()).
 */
export function runnable(name: string, needLeaderElection: boolean, start: (signal: AbortSignal) => Promise<(() => Promise<void> | void) | void>): Runnable {
  return {
    name,
    needLeaderElection,
    async start(signal) {
      const stop = await start(signal);
      const stopped = new Promise<void>((resolve, reject) => {
        const run = () => void Promise.resolve(stop?.()).then(resolve, reject);
        if (signal.aborted) run();
        else signal.addEventListener("abort", run, { once: true });
      });
      return { stopped };
    },
  };
}

export interface ManagerOptions {
  cache: SharedCache;
  /** Without it, the leader's runnables start at once, as if this process held the Lease. */
  leaderElection?: Omit<LeaderElectionOptions, "onStartedLeading"> & {
    /** Called when a term starts, before the leader's runnables start. */
    onStartedLeading?(): void;
  };
  log?: LogFn;
}

interface Started {
  runnable: Runnable;
  abort: AbortController;
  running: Running;
}

export class Manager {
  readonly cache: SharedCache;
  private readonly runnables: Runnable[] = [];
  private readonly started: Started[] = [];
  private elector: LeaderElector | undefined;
  /** The current leadership term's work (its runnables' start and stop), when there is one. */
  private term: Promise<void> | undefined;
  private readonly noLease = new AbortController();
  private stopping: Promise<void> | undefined;
  private begun = false;

  constructor(private readonly options: ManagerOptions) {
    this.cache = options.cache;
  }

  add(r: Runnable): this {
    if (this.begun) throw new Error(`manager: ${r.name} added after start()`);
    this.runnables.push(r);
    return this;
  }

  /** The runnables, in start order, and whether each needs the Lease (for the log and the docs). */
  describe(): Array<{ name: string; needLeaderElection: boolean }> {
    return this.runnables.map((r) => ({ name: r.name, needLeaderElection: r.needLeaderElection }));
  }

  /**
   * Starts the runnables that need no Lease, in order, then campaigns for the Lease (or, without leader
   * election, starts the leader's runnables too). Resolves once the runnables that need no Lease are running
   * (and, without leader election, the others). A runnable that fails to start stops the ones started and
   * rejects.
   */
  async start(): Promise<void> {
    this.begun = true;
    for (const r of this.runnables.filter((x) => !x.needLeaderElection)) {
      if (this.stopping) return;
      const abort = new AbortController();
      try {
        this.started.push({ runnable: r, abort, running: await r.start(abort.signal) });
      } catch (e) {
        await this.stop();
        throw new Error(`${r.name}: ${(e as Error).message}`, { cause: e });
      }
      this.log(`started ${r.name}`, "debug");
    }
    const leaders = this.runnables.filter((x) => x.needLeaderElection);
    const le = this.options.leaderElection;
    // (A process without leader runnables, the webhook role alone, campaigns for nothing.)
    if (!leaders.length || this.stopping) return;
    if (!le) {
      this.term = this.lead(leaders, this.noLease.signal);
      await this.termStarted;
      return;
    }
    this.elector = new LeaderElector({
      ...le,
      onStartedLeading: (signal) => {
        le.onStartedLeading?.();
        this.term = this.lead(leaders, signal);
        return this.term;
      },
    });
    this.elector.start();
  }

  private termStarted: Promise<void> | undefined;

  /** One term: the leader's runnables start in order, run until `signal` aborts, and stop in reverse. */
  private lead(leaders: Runnable[], signal: AbortSignal): Promise<void> {
    let started!: () => void;
    this.termStarted = new Promise((r) => (started = r));
    return (async () => {
      const running: Started[] = [];
      try {
        for (const r of leaders) {
          if (signal.aborted) break;
          const abort = new AbortController();
          try {
            running.push({ runnable: r, abort, running: await r.start(abort.signal) });
            this.log(`started ${r.name}`, "debug");
          } catch (e) {
            // The term goes on without it (as a failed registration never stopped the controllers).
            this.log(`${r.name} failed to start: ${(e as Error).message}`, "error");
          }
        }
        this.log("controllers running", "info", { runnables: running.map((s) => s.runnable.name) });
      } finally {
        started();
      }
      if (!signal.aborted) await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
      await stopAll(running, (name, e) => this.log(`stopping ${name}: ${(e as Error).message}`, "error"));
      this.log("controllers stopped", "info", { runnables: running.map((s) => s.runnable.name) });
    })();
  }

  /**
   * Stops everything in reverse start order: the leader's runnables (then the Lease is released), the others,
   * then the cache. Never rejects; failures are logged. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.noLease.abort();
      // (The elector aborts the term's signal, waits for the term to end, then releases the Lease.)
      await this.elector?.stop();
      await this.term;
      await stopAll(this.started.splice(0), (name, e) => this.log(`stopping ${name}: ${(e as Error).message}`, "error"));
      this.cache.stop();
    })();
    return this.stopping;
  }

  /** Whether this process runs the leader's runnables now. */
  get leading(): boolean {
    return this.elector ? this.elector.isLeader : !!this.term && !this.noLease.signal.aborted;
  }

  private log(msg: string, level: "debug" | "info" | "warn" | "error" = "info", fields?: Record<string, unknown>): void {
    this.options.log?.(msg, fields, level);
  }
}

/** Aborts and awaits each, last started first. */
async function stopAll(started: Started[], onError: (name: string, e: unknown) => void): Promise<void> {
  for (const s of started.reverse()) {
    s.abort.abort();
    try {
      await s.running.stopped;
    } catch (e) {
      onError(s.runnable.name, e);
    }
  }
}
