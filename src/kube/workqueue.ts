// A work queue after controller-runtime's: keys, not events; a key waiting is not added twice; a key being
// processed that is added again is processed once more after it is done (never concurrently); failures
// come back with per-key exponential backoff; a priority lane goes first (scans an admission review waits on).

export interface WorkQueueOptions {
  /** First retry delay after a failure (ms); doubles per consecutive failure of the key. */
  baseDelayMs?: number;
  /** Longest retry delay (ms). */
  maxDelayMs?: number;
}

export class WorkQueue<K extends string = string> {
  private readonly high: K[] = [];
  private readonly normal: K[] = [];
  private readonly queued = new Set<K>();
  private readonly processing = new Set<K>();
  /** Keys added while being processed: re-queued when done. */
  private readonly dirty = new Map<K, boolean>();
  private readonly failures = new Map<K, number>();
  private readonly timers = new Map<K, NodeJS.Timeout>();
  private readonly waiters: Array<(k: K | undefined) => void> = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  /** When each queued key was first added, for the queue-age metric. */
  private readonly addedAt = new Map<K, number>();

  constructor(o: WorkQueueOptions = {}) {
    this.baseDelayMs = o.baseDelayMs ?? 5;
    this.maxDelayMs = o.maxDelayMs ?? 1000 * 60 * 5;
  }

  get length(): number {
    return this.queued.size;
  }

  /** Age (ms) of the oldest queued key, 0 when empty. */
  oldestAgeMs(now = Date.now()): number {
    let oldest = now;
    for (const t of this.addedAt.values()) oldest = Math.min(oldest, t);
    return now - oldest;
  }

  add(key: K, opts: { priority?: boolean } = {}): void {
    if (this.shuttingDown) return;
    const priority = opts.priority ?? false;
    if (this.processing.has(key)) {
      this.dirty.set(key, (this.dirty.get(key) ?? false) || priority);
      return;
    }
    if (this.queued.has(key)) {
      // Promote a waiting key to the priority lane.
      if (priority && !this.high.includes(key)) {
        const i = this.normal.indexOf(key);
        if (i >= 0) this.normal.splice(i, 1);
        this.high.push(key);
      }
      return;
    }
    const timer = this.timers.get(key);
    if (timer) {
      clearTimeout(timer);
      this.timers.delete(key);
    }
    this.queued.add(key);
    this.addedAt.set(key, Date.now());
    (priority ? this.high : this.normal).push(key);
    this.wake();
  }

  /** Adds the key after `ms` (a timer per key; a sooner add wins). */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    if (this.queued.has(key) || this.timers.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  /** Adds the key after its backoff: base * 2^(failures), capped. Returns the delay. */
  addRateLimited(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the key's failure count (after a success). */
  forget(key: K): void {
    this.failures.delete(key);
  }

  failuresOf(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key, or undefined once shut down and drained. The caller must call done(key). */
  async get(): Promise<K | undefined> {
    const k = this.take();
    if (k !== undefined || this.shuttingDown) return k;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: K): void {
    this.processing.delete(key);
    const again = this.dirty.get(key);
    if (again !== undefined) {
      this.dirty.delete(key);
      this.add(key, { priority: again });
    }
  }

  /** Stops handing out keys; waiting getters receive undefined. Pending timers are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private take(): K | undefined {
    const k = this.high.shift() ?? this.normal.shift();
    if (k === undefined) return undefined;
    this.queued.delete(k);
    this.addedAt.delete(k);
    this.processing.add(k);
    return k;
  }

  private wake(): void {
    while (this.waiters.length) {
      const k = this.take();
      if (k === undefined) return;
      this.waiters.shift()!(k);
    }
  }
}
