// Leader election after client-go's leaderelection package, on a coordination.k8s.io/v1 Lease.
//
// Every candidate polls the Lease. The holder renews it every retryPeriod; a candidate takes it when it is
// free (no holderIdentity) or when the record has not changed for leaseDurationSeconds as measured on the
// candidate's own clock since it last saw the record change (client-go's observedTime: the remote renewTime
// is never compared with the local clock, so clock skew between replicas does not matter). Every write is a
// replace carrying the resourceVersion that was read, so of two candidates racing only one wins (409).
//
// Safety rests on renewDeadline < leaseDuration: a leader that has not renewed successfully within
// renewDeadline of the start of its last successful write steps down, while nobody else may take over before
// leaseDuration has passed since they saw that write, which was after it started.
import { CoordinationV1Api, Observable, V1MicroTime, type ConfigurationOptions, type KubeConfig, type ObservableMiddleware, type RequestContext, type ResponseContext, type V1Lease } from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import type { LogFn, LogLevel } from "../log/logger.js";

export interface LeaderElectionOptions {
  kc: KubeConfig;
  /** Namespace and name of the Lease. */
  namespace: string;
  name: string;
  /** This candidate's identity, unique among the candidates (the pod name, usually). */
  identity: string;
  /** Every request to the API server about the Lease (metrics). */
  onRequest?(): void;
  /** How long a candidate waits, after it last saw the Lease change, before it takes it over. Default 15000. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it steps down. Default 10000; must be < leaseDurationMs. */
  renewDeadlineMs?: number;
  /** The interval between attempts (jittered while not leading). Default 2000. */
  retryPeriodMs?: number;
  /**
   * Called when this candidate becomes the leader. `signal` aborts when leadership is lost or stop() is
   * called; a returned promise is awaited (up to renewDeadlineMs) by stop() before the Lease is released.
   */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Called after the leadership that onStartedLeading announced has ended (lost or stopped). */
  onStoppedLeading?(): void;
  /** Called when the observed holder of the Lease changes (undefined: nobody holds it). */
  onNewLeader?(identity: string | undefined): void;
  /** Log lines; the level is warn or error for failures (info when absent). */
  log?: LogFn;
}

/** The leader-election fields of a Lease's spec, times as the API server's strings. */
export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

type Attempt = "acquired" | "held" | "failed";

/** client-go's JitterFactor for the acquire loop: waits are spread over [base, base * 2.2]. */
const JITTER_FACTOR = 1.2;

export class LeaderElector {

  private readonly api: CoordinationV1Api;
  private readonly leaseMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  /** The last Lease object read or written: its resourceVersion is what the next replace carries. */
  private lease: V1Lease | undefined;
  /** The record last seen, and when (monotonic ms) it was first seen in that state. */
  private observed: LeaseRecord | undefined;
  private observedAt = 0;
  private reportedLeader: string | undefined;

  private leading = false;
  /** Monotonic time at which the last successful acquire or renew request was started. */
  private renewedAt = 0;
  private leaderAbort: AbortController | undefined;
  private work: Promise<void> | undefined;

  constructor(private readonly options: LeaderElectionOptions) {
    this.leaseMs = options.leaseDurationMs ?? 15_000;
    this.renewMs = options.renewDeadlineMs ?? 10_000;
    this.retryMs = options.retryPeriodMs ?? 2_000;
    if (!options.identity) throw new Error("leader election: identity must not be empty");
    if (!(this.retryMs > 0)) throw new Error("leader election: retryPeriodMs must be > 0");
    if (!(this.renewMs > this.retryMs)) throw new Error("leader election: renewDeadlineMs must be greater than retryPeriodMs");
    if (!(this.leaseMs > this.renewMs)) throw new Error("leader election: leaseDurationMs must be greater than renewDeadlineMs");
    this.api = options.kc.makeApiClient(CoordinationV1Api);
  }

  /** Starts campaigning; returns at once. A stopped elector cannot be started again. */
  start(): void {
    if (this.stopping) throw new Error("leader election: start() after stop()");
    if (this.loop) return;
    this.loop = this.run().catch((e: unknown) => this.log(`leader election: loop failed: ${describeError(e)}`, "error"));
  }

  /**
   * Stops campaigning. If leading: aborts the signal, waits (up to renewDeadlineMs) for onStartedLeading's
   * promise, releases the Lease so another candidate can take it at once, calls onStoppedLeading. Never
   * rejects; failures (the API server being gone, say) are logged.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** Whether this candidate leads: it has renewed the Lease within renewDeadline. */
  get isLeader(): boolean {
    return this.leading && now() - this.renewedAt < this.renewMs;
  }

  /** The holder of the Lease as last observed. */
  get leader(): string | undefined {
    return this.observed?.holderIdentity || undefined;
  }

  private get leaseName(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private log(msg: string, level: LogLevel = "info"): void {
    try {
      this.options.log?.(msg, { lease: this.leaseName }, level);
    } catch {
      // A logger that throws must not stop the election.
    }
  }

  private async run(): Promise<void> {
    const stop = this.stopper.signal;
    while (!stop.aborted) {
      if (!(await this.acquire(stop))) return;
      this.startLeading();
      const reason = await this.renewWhileLeading(stop);
      if (stop.aborted) return; // stop() steps down and releases.
      this.stopLeading(reason);
      await sleep(jittered(this.retryMs), stop);
    }
  }

  /** Tries until the Lease is ours (true) or stop() was called (false). */
  private async acquire(stop: AbortSignal): Promise<boolean> {
    this.log(`leader election: ${this.options.identity} campaigning for lease ${this.leaseName}`);
    for (;;) {
      if (stop.aborted) return false;
      const started = now();
      if ((await this.attempt(stop, this.renewMs)) === "acquired" && !stop.aborted) {
        this.renewedAt = started;
        return true;
      }
      await sleep(jittered(this.retryMs), stop);
    }
  }

  /** Renews every retryPeriod; returns why leadership ended (or "stopped"). */
  private async renewWhileLeading(stop: AbortSignal): Promise<string> {
    for (;;) {
      await sleep(this.retryMs, stop);
      for (;;) {
        if (stop.aborted) return "stopped";
        const remaining = this.renewedAt + this.renewMs - now();
        if (remaining <= 0) return `no successful renewal within ${this.renewMs} ms`;
        const started = now();
        const result = await this.attempt(stop, remaining);
        if (stop.aborted) return "stopped";
        if (result === "acquired") {
          this.renewedAt = started;
          break;
        }
        // Someone else holds a record we have just seen change: no point waiting for the deadline.
        if (result === "held") return `the lease is now held by ${this.leader ?? "someone else"}`;
        const left = this.renewedAt + this.renewMs - now();
        if (left <= 0) return `no successful renewal within ${this.renewMs} ms`;
        await sleep(Math.min(this.retryMs, left), stop);
      }
    }
  }

  private startLeading(): void {
    this.leading = true;
    const ctl = new AbortController();
    this.leaderAbort = ctl;
    this.log(`leader election: ${this.options.identity} acquired lease ${this.leaseName}`);
    let work: Promise<void>;
    try {
      work = Promise.resolve(this.options.onStartedLeading(ctl.signal));
    } catch (e) {
      work = Promise.reject(e);
    }
    this.work = work.catch((e: unknown) => this.log(`leader election: onStartedLeading failed: ${describeError(e)}`, "error"));
  }

  private stopLeading(reason: string): void {
    this.leading = false;
    this.leaderAbort?.abort(new Error(`leadership of ${this.leaseName} lost: ${reason}`));
    this.log(`leader election: ${this.options.identity} lost lease ${this.leaseName}: ${reason}`, "warn");
    this.callStopped();
  }

  private callStopped(): void {
    try {
      this.options.onStoppedLeading?.();
    } catch (e) {
      this.log(`leader election: onStoppedLeading failed: ${describeError(e)}`, "error");
    }
  }

  private async shutdown(): Promise<void> {
    this.stopper.abort();
    await this.loop;
    const wasLeading = this.leading;
    if (wasLeading) {
      this.leading = false;
      this.leaderAbort?.abort(new Error(`leader election for ${this.leaseName} stopped`));
      const wait = new AbortController();
      await Promise.race([this.work, sleep(this.renewMs, wait.signal)]);
      wait.abort();
    }
    // Also when stop() came between a successful acquire and onStartedLeading: the Lease names us.
    await this.release();
    if (wasLeading) {
      this.log(`leader election: ${this.options.identity} stopped leading ${this.leaseName}`);
      this.callStopped();
    }
  }

  /** client-go's ReleaseOnCancel: an empty holder, so the next candidate takes the Lease without waiting. */
  private async release(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.observed?.holderIdentity !== this.options.identity) return;
    const at = new V1MicroTime();
    const spec: LeaseRecord = { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: at.toISOString(), renewTime: at.toISOString(), leaseTransitions: this.observed.leaseTransitions ?? 0 };
    const { signal, timedOut, done } = deadline(this.renewMs);
    try {
      try {
        this.see(await this.replace(lease, spec, signal));
      } catch (e) {
        // A renewal aborted by stop() may still have reached the server: our resourceVersion is then stale.
        // Read the Lease again and release it if it still names us.
        if (statusCode(e) !== 409) throw e;
        const fresh = await this.get(signal);
        if (!fresh || leaseRecord(fresh).holderIdentity !== this.options.identity) return;
        this.see(await this.replace(fresh, { ...spec, leaseTransitions: leaseRecord(fresh).leaseTransitions ?? spec.leaseTransitions }, signal));
      }
      this.log(`leader election: ${this.options.identity} released lease ${this.leaseName}`);
    } catch (e) {
      const why = timedOut() ? `no answer within ${this.renewMs} ms` : describeError(e);
      this.log(`leader election: could not release lease ${this.leaseName}: ${why}`, "warn");
    } finally {
      done();
    }
  }

  /** One tryAcquireOrRenew, its requests cancelled after timeoutMs or on stop. Never rejects. */
  private async attempt(stop: AbortSignal, timeoutMs: number): Promise<Attempt> {
    const ms = Math.max(1, Math.ceil(timeoutMs));
    const { signal, timedOut, done } = deadline(ms, stop);
    try {
      return await this.tryAcquireOrRenew(signal);
    } catch (e) {
      if (!stop.aborted) {
        const why = timedOut() ? `no answer within ${ms} ms` : describeError(e);
        this.log(`leader election: ${this.leading ? "renewing" : "acquiring"} lease ${this.leaseName} failed: ${why}`, "warn");
      }
      return "failed";
    } finally {
      done();
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<Attempt> {
    const at = new V1MicroTime().toISOString();
    const mine = (old: LeaseRecord): LeaseRecord => ({
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.leaseMs / 1000)),
      acquireTime: old.holderIdentity === this.options.identity && old.acquireTime ? old.acquireTime : at,
      renewTime: at,
      leaseTransitions: old.holderIdentity === this.options.identity ? (old.leaseTransitions ?? 0) : (old.leaseTransitions ?? 0) + 1,
    });

    // Fast path (client-go's too): a leader renews with the object it last wrote, without reading first.
    if (this.leading && this.lease && this.observed?.holderIdentity === this.options.identity) {
      try {
        this.see(await this.replace(this.lease, mine(this.observed), signal));
        return "acquired";
      } catch (e) {
        if (signal.aborted) throw e;
        if (statusCode(e) !== 409) this.log(`leader election: renewing lease ${this.leaseName} failed: ${describeError(e)}; reading it again`, "warn");
      }
    }

    let lease = await this.get(signal);
    if (!lease) {
      try {
        const created = await this.create({ ...mine({}), leaseTransitions: 0 }, signal);
        this.see(created);
        return "acquired";
      } catch (e) {
        if (statusCode(e) !== 409) throw e;
        // Created by another candidate meanwhile: judge what it wrote.
        lease = await this.get(signal);
        if (!lease) return "failed";
      }
    }
    const record = this.see(lease);
    const holder = record.holderIdentity;
    if (holder && holder !== this.options.identity && !this.expired()) return "held";
    try {
      this.see(await this.replace(lease, mine(record), signal));
      return "acquired";
    } catch (e) {
      if (statusCode(e) === 409) return "failed"; // Someone else wrote first; look again after retryPeriod.
      throw e;
    }
  }

  /** Whether the observed record has not changed for its leaseDurationSeconds, on our clock. */
  private expired(): boolean {
    const seconds = this.observed?.leaseDurationSeconds;
    const durationMs = seconds && seconds > 0 ? seconds * 1000 : this.leaseMs;
    return now() - this.observedAt >= durationMs;
  }

  /** Records a Lease read or written; resets observedAt when its record changed. */
  private see(lease: V1Lease): LeaseRecord {
    const record = leaseRecord(lease);
    this.lease = lease;
    if (!this.observed || !sameRecord(record, this.observed)) {
      this.observed = record;
      this.observedAt = now();
    }
    const holder = record.holderIdentity || undefined;
    if (holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      if (!this.stopper.signal.aborted) {
        try {
          this.options.onNewLeader?.(holder);
        } catch (e) {
          this.log(`leader election: onNewLeader failed: ${describeError(e)}`, "error");
        }
      }
    }
    return record;
  }

  private async get(signal: AbortSignal): Promise<V1Lease | undefined> {
    this.options.onRequest?.();
    try {
      return await this.api.readNamespacedLease({ namespace: this.options.namespace, name: this.options.name }, withSignal(signal));
    } catch (e) {
      if (statusCode(e) === 404) return undefined;
      throw e;
    }
  }

  private create(spec: LeaseRecord, signal: AbortSignal): Promise<V1Lease> {
    this.options.onRequest?.();
    const body: V1Lease = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.options.name, namespace: this.options.namespace }, spec: leaseSpec(spec) };
    return this.api.createNamespacedLease({ namespace: this.options.namespace, body }, withSignal(signal));
  }

  /** A replace with the resourceVersion of `lease` (optimistic concurrency), keeping its metadata. */
  private replace(lease: V1Lease, spec: LeaseRecord, signal: AbortSignal): Promise<V1Lease> {
    this.options.onRequest?.();
    const body: V1Lease = { ...lease, apiVersion: "coordination.k8s.io/v1", kind: "Lease", spec: { ...lease.spec, ...leaseSpec(spec) } };
    return this.api.replaceNamespacedLease({ namespace: this.options.namespace, name: this.options.name, body }, withSignal(signal));
  }
}

/**
 * The spec fields as client-node serialises them. Times are given as strings in the API server's MicroTime
 * format (client-node passes V1MicroTime fields through as they are); an empty holderIdentity is sent as "".
 */
function leaseSpec(r: LeaseRecord): NonNullable<V1Lease["spec"]> {
  return {
    holderIdentity: r.holderIdentity ?? "",
    leaseDurationSeconds: r.leaseDurationSeconds,
    acquireTime: r.acquireTime as unknown as V1MicroTime,
    renewTime: r.renewTime as unknown as V1MicroTime,
    leaseTransitions: r.leaseTransitions,
  };
}

/** The election record of a Lease, its times as strings (client-node leaves MicroTimes as it read them). */
export function leaseRecord(lease: V1Lease | undefined): LeaseRecord {
  const s = lease?.spec ?? {};
  const time = (t: unknown): string | undefined => (t === undefined || t === null ? undefined : t instanceof Date ? t.toISOString() : String(t));
  return {
    holderIdentity: s.holderIdentity || undefined,
    leaseDurationSeconds: s.leaseDurationSeconds ?? undefined,
    acquireTime: time(s.acquireTime),
    renewTime: time(s.renewTime),
    leaseTransitions: s.leaseTransitions ?? undefined,
  };
}

export function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    (a.holderIdentity || undefined) === (b.holderIdentity || undefined) &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    (a.leaseTransitions ?? 0) === (b.leaseTransitions ?? 0)
  );
}

/** client-go's wait.Jitter: a duration in [base, base * (1 + factor)). */
export function jittered(baseMs: number, factor = JITTER_FACTOR, random: () => number = Math.random): number {
  return baseMs + random() * factor * baseMs;
}

/** The HTTP status of a client-node ApiException, if it is one. */
export function statusCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/** An error for a log line: the API server's Status message when there is one, not client-node's dump of headers. */
export function describeError(e: unknown): string {
  const code = statusCode(e);
  if (code !== undefined) {
    let body = (e as { body?: unknown }).body;
    if (typeof body === "string") {
      const text = body;
      try {
        body = JSON.parse(text);
      } catch {
        return `HTTP ${code}${text ? `: ${text.slice(0, 300)}` : ""}`;
      }
    }
    const status = (body ?? {}) as { message?: unknown; reason?: unknown };
    const msg = typeof status.message === "string" && status.message ? status.message : typeof status.reason === "string" ? status.reason : "";
    return `HTTP ${code}${msg ? `: ${msg}` : code === 401 ? ": Unauthorized" : ""}`;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

function now(): number {
  return performance.now();
}

/** Resolves after ms, or at once when signal aborts; its timer never outlives it. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** A signal that aborts after ms (or with `parent`); done() clears the timer and the listener. */
function deadline(ms: number, parent?: AbortSignal): { signal: AbortSignal; timedOut(): boolean; done(): void } {
  const ctl = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    ctl.abort(new Error(`timed out after ${ms} ms`));
  }, ms);
  const onAbort = () => ctl.abort(parent?.reason);
  if (parent?.aborted) onAbort();
  else parent?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: ctl.signal,
    timedOut: () => expired,
    done: () => {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onAbort);
    },
  };
}

/** Request options that make client-node's fetch honour `signal`. */
function withSignal(signal: AbortSignal): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: "append" };
}
