import { setTimeout as sleep } from "node:timers/promises";

/** A counting semaphore: at most `max` holders; waiters are served in order. */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly max: number) {}

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active >= this.max) {
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = () => {
          const i = this.waiters.indexOf(wake);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal!.reason);
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiters.push(wake);
      });
    } else {
      this.active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    };
  }
}

/**
 * A token bucket per key (a client address, a namespace): `burst` refilled at `perSecond`; at most `max` keys,
 * the least recently used forgotten first (a forgotten key starts full). The report API limits token checks per
 * client with it, the webhook the scans reviews ask for per namespace.
 */
export class ClientLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly perSecond = 5, private readonly burst = 20, private readonly max = 10_000) {}
  take(client: string, now = Date.now()): boolean {
    let b = this.buckets.get(client);
    if (b) this.buckets.delete(client);
    else b = { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    while (this.buckets.size >= this.max) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(client, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** A token bucket: `rate` requests per second with a burst of max(1, rate). rate 0 = unlimited. */
export class RateLimiter {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly rate: number) {
    this.tokens = Math.max(1, rate);
  }

  async take(signal?: AbortSignal): Promise<void> {
    if (this.rate <= 0) return;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(Math.max(1, this.rate), this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / this.rate) * 1000), undefined, { signal });
    }
  }
}

/** Exponential backoff with full jitter: a random delay in [0, base * 2^attempt], capped at 30 s. */
export function backoffDelay(attempt: number, baseMs: number): number {
  return Math.random() * Math.min(30_000, baseMs * 2 ** attempt);
}

/** Retry-After as milliseconds (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}
