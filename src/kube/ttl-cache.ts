// Answers of the API server kept a while (TokenReview, SubjectAccessReview): the report API and the webhook
// ask per request and must not ask again for every one.

/**
 * A TTL cache with a bound on its size, least recently used out first (a flood of new keys evicts the oldest,
 * never the answers in use).
 */
export class TtlCache<V> {
  private readonly m = new Map<string, { v: V; until: number }>();
  constructor(private readonly ttlMs: number, private readonly max = 10_000) {}
  get(k: string): V | undefined {
    const e = this.m.get(k);
    if (!e) return undefined;
    this.m.delete(k);
    if (e.until < Date.now()) return undefined;
    this.m.set(k, e);
    return e.v;
  }
  set(k: string, v: V): void {
    this.m.delete(k);
    while (this.m.size >= this.max) this.m.delete(this.m.keys().next().value!);
    this.m.set(k, { v, until: Date.now() + this.ttlMs });
  }
  get size(): number {
    return this.m.size;
  }
}
