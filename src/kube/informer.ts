// An informer after client-go's: list, then watch from the list's resourceVersion with bookmarks, keep a
// cache, re-list on 410 Gone, back off on errors. The cache is the controllers' only read path.
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; generation?: number; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: Date | string };
}

export type InformerEvent = "add" | "update" | "delete";

export interface InformerOptions<T> {
  /** A full list, with the list's resourceVersion. */
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  /** The watch path, e.g. /apis/portcullis.dev/v1alpha1/imagescans or /api/v1/pods. */
  watchPath: string;
  onEvent?(type: InformerEvent, obj: T, old?: T): void;
  /** First retry delay after an error; doubles up to 30 s. */
  backoffMs?: number;
  /** Secondary indexes of the cache: name -> the index values of an object (client-go's Indexers). */
  indexers?: Record<string, (obj: T) => string[]>;
  log?(msg: string): void;
}

export function objectKey(o: KubeObject): string {
  return o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : `${o.metadata?.name}`;
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private resourceVersion = "";
  private abort: AbortController | undefined;
  private stopped = false;
  private synced!: Promise<void>;
  /** Watch requests made (for the "API requests per pod" figure). */
  requests = 0;

  constructor(private readonly kc: KubeConfig, private readonly o: InformerOptions<T>) {}

  /** Starts the list-watch loop; resolves when the first list is in the cache. */
  start(): Promise<void> {
    let resolveSynced!: () => void;
    this.synced = new Promise((r) => (resolveSynced = r));
    void this.loop(resolveSynced);
    return this.synced;
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** True once the first list is in the cache. */
  hasSynced = false;

  get size(): number {
    return this.cache.size;
  }

  /** Objects whose `index` values include `value`. */
  byIndex(index: string, value: string): T[] {
    const keys = this.indexes.get(index)?.get(value);
    if (!keys) return [];
    return [...keys].map((k) => this.cache.get(k)).filter((o): o is T => o !== undefined);
  }

  private put(key: string, obj: T): void {
    const old = this.cache.get(key);
    if (old) this.unindex(key, old);
    this.cache.set(key, obj);
    for (const [name, fn] of Object.entries(this.o.indexers ?? {})) {
      let idx = this.indexes.get(name);
      if (!idx) this.indexes.set(name, (idx = new Map()));
      for (const v of fn(obj)) {
        let set = idx.get(v);
        if (!set) idx.set(v, (set = new Set()));
        set.add(key);
      }
    }
  }

  private remove(key: string): void {
    const old = this.cache.get(key);
    if (!old) return;
    this.unindex(key, old);
    this.cache.delete(key);
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.o.indexers ?? {})) {
      const idx = this.indexes.get(name);
      for (const v of fn(obj)) {
        const set = idx?.get(v);
        set?.delete(key);
        if (set?.size === 0) idx!.delete(v);
      }
    }
  }

  private async relist(): Promise<void> {
    this.requests++;
    const { items, resourceVersion } = await this.o.list();
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      const old = this.cache.get(key);
      this.put(key, item);
      if (!old) this.o.onEvent?.("add", item);
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.o.onEvent?.("update", item, old);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.remove(key);
        this.o.onEvent?.("delete", old);
      }
    }
    this.resourceVersion = resourceVersion;
  }

  private async loop(onSynced: () => void): Promise<void> {
    let delay = this.o.backoffMs ?? 500;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          this.hasSynced = true;
          onSynced();
          needList = false;
        }
        const gone = await this.watchOnce();
        if (gone) needList = true;
        delay = this.o.backoffMs ?? 500;
      } catch (e) {
        if (this.stopped) return;
        this.o.log?.(`informer ${this.o.watchPath}: ${(e as Error).message}; retrying in ${delay} ms`);
        await sleep(delay);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  /** One watch request; resolves true when the server says the resourceVersion is too old (410). */
  private watchOnce(): Promise<boolean> {
    return new Promise((resolve, reject) => {
      let gone = false;
      this.requests++;
      const w = new Watch(this.kc);
      w.watch(
        this.o.watchPath,
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 },
        (phase, obj: T & { code?: number }) => {
          if (phase === "ERROR") {
            if (obj.code === 410) gone = true;
            return;
          }
          const rv = obj.metadata?.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (phase === "BOOKMARK") return;
          const key = objectKey(obj);
          const old = this.cache.get(key);
          if (phase === "DELETED") {
            this.remove(key);
            this.o.onEvent?.("delete", obj);
          } else {
            this.put(key, obj);
            this.o.onEvent?.(old ? "update" : "add", obj, old);
          }
        },
        (err: unknown) => {
          if (err && !this.stopped && !(err as { name?: string }).name?.includes("Abort")) {
            const status = (err as { statusCode?: number }).statusCode;
            if (status === 410) resolve(true);
            else reject(err instanceof Error ? err : new Error(String(err)));
          } else resolve(gone);
        },
      ).then((ac) => {
        this.abort = ac;
        if (this.stopped) ac.abort();
      }, reject);
    });
  }
}
