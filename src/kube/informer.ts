// An informer after client-go's shared informer: list, then watch from the list's resourceVersion with
// bookmarks, keep a cache, re-list on 410 Gone, back off on errors. One per kind per process (./cache.ts),
// with any number of event handlers and indexers; its cache is every consumer's only read path.
import type { KubeConfig } from "@kubernetes/client-node";
import { request as httpRequest, type Agent as HttpAgent } from "node:http";
import { request as httpsRequest } from "node:https";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import type { LogFn } from "../log/logger.js";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; generation?: number; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: Date | string; deletionTimestamp?: Date | string };
}

export type InformerEvent = "add" | "update" | "delete";

/** Called for every change the informer sees, after its cache holds it (`old` on updates). Must not throw. */
export type EventHandler<T> = (type: InformerEvent, obj: T, old?: T) => void;

export type Indexers<T> = Record<string, (obj: T) => string[]>;

export interface InformerOptions<T> {
  /** A full list, with the list's resourceVersion. */
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  /** The watch path, e.g. /apis/portcullis.dev/v1alpha1/imagescans or /api/v1/pods. */
  watchPath: string;
  /** A first event handler (more with addEventHandler). */
  onEvent?: EventHandler<T>;
  /** First retry delay after an error; doubles up to 30 s. */
  backoffMs?: number;
  /** Secondary indexes of the cache: name -> the index values of an object (client-go's Indexers). */
  indexers?: Indexers<T>;
  /** Log lines (failures, at warn). */
  log?: LogFn;
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
  private synced: Promise<void> | undefined;
  private readonly handlers = new Set<EventHandler<T>>();
  private readonly indexers: Indexers<T> = {};

  constructor(private readonly kc: KubeConfig, private readonly options: InformerOptions<T>) {
    if (options.onEvent) this.handlers.add(options.onEvent);
    if (options.indexers) this.addIndexers(options.indexers);
  }

  /** Whether start() was called. */
  get started(): boolean {
    return this.synced !== undefined;
  }

  /** The watch path: what logs and the shared cache name it by. */
  get path(): string {
    return this.options.watchPath;
  }

  /**
   * Starts the list-watch loop, once: later calls (another consumer of a shared informer) get the same
   * promise. Resolves when the first list is in the cache.
   */
  start(): Promise<void> {
    if (this.synced) return this.synced;
    if (this.stopped) return Promise.reject(new Error(`informer ${this.options.watchPath}: start() after stop()`));
    let resolveSynced!: () => void;
    this.synced = new Promise((r) => (resolveSynced = r));
    void this.loop(resolveSynced);
    return this.synced;
  }

  /**
   * Adds an event handler; returns what removes it. A handler added after the first list is told of every
   * object in the cache as an `add` first (as client-go's AddEventHandler does), so a controller that starts
   * late (a new leadership term) sees the same events as one that started with the informer.
   */
  addEventHandler(handler: EventHandler<T>): () => void {
    this.handlers.add(handler);
    if (this.hasSynced) for (const obj of this.cache.values()) handler("add", obj);
    return () => void this.handlers.delete(handler);
  }

  /**
   * Adds indexes; objects already cached are indexed at once. The same name with the same function is a no-op
   * (two consumers asking for the one index); another function under a taken name is an error.
   */
  addIndexers(indexers: Indexers<T>): void {
    for (const [name, fn] of Object.entries(indexers)) {
      const had = this.indexers[name];
      if (had === fn) continue;
      if (had) throw new Error(`informer ${this.options.watchPath}: index ${name} is already defined by another function`);
      this.indexers[name] = fn;
      for (const [key, obj] of this.cache) this.indexOne(name, fn, key, obj);
    }
  }

  private emit(type: InformerEvent, obj: T, old?: T): void {
    for (const h of [...this.handlers]) {
      try {
        h(type, obj, old);
      } catch (e) {
        // One consumer's bug must not starve the others, nor stop the watch.
        this.options.log?.(`informer ${this.options.watchPath}: an event handler failed: ${(e as Error).message}`, undefined, "error");
      }
    }
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
    for (const [name, fn] of Object.entries(this.indexers)) this.indexOne(name, fn, key, obj);
  }

  private indexOne(name: string, fn: (obj: T) => string[], key: string, obj: T): void {
    let idx = this.indexes.get(name);
    if (!idx) this.indexes.set(name, (idx = new Map()));
    for (const v of fn(obj)) {
      let set = idx.get(v);
      if (!set) idx.set(v, (set = new Set()));
      set.add(key);
    }
  }

  private remove(key: string): void {
    const old = this.cache.get(key);
    if (!old) return;
    this.unindex(key, old);
    this.cache.delete(key);
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.indexers)) {
      const idx = this.indexes.get(name);
      for (const v of fn(obj)) {
        const set = idx?.get(v);
        set?.delete(key);
        if (set?.size === 0) idx!.delete(v);
      }
    }
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.options.list();
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      const old = this.cache.get(key);
      this.put(key, item);
      if (!old) this.emit("add", item);
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.emit("update", item, old);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.remove(key);
        this.emit("delete", old);
      }
    }
    this.resourceVersion = resourceVersion;
  }

  private async loop(onSynced: () => void): Promise<void> {
    let delay = this.options.backoffMs ?? 500;
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
        delay = this.options.backoffMs ?? 500;
      } catch (e) {
        if (this.stopped) return;
        this.options.log?.(`informer ${this.options.watchPath}: ${(e as Error).message}; retrying in ${delay} ms`, undefined, "warn");
        await sleep(delay);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  /**
   * One watch request; resolves true when the server says the resourceVersion is too old (410). Made with
   * node's http(s) and our own AbortController (client-node's Watch can only be aborted once the response
   * headers arrived, so a stop during a quiet watch could leave the request, and the process, hanging).
   */
  private async watchOnce(): Promise<boolean> {
    const ac = new AbortController();
    this.abort = ac;
    if (this.stopped) return false;
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error("no current cluster in the kubeconfig");
    const url = new URL(cluster.server.replace(/\/+$/, "") + this.options.watchPath);
    for (const [k, v] of Object.entries({ watch: "true", resourceVersion: this.resourceVersion, allowWatchBookmarks: "true", timeoutSeconds: "300" })) url.searchParams.set(k, v);
    const fetchOpts = (await this.kc.applyToFetchOptions({})) as { agent?: HttpAgent; headers?: { forEach(cb: (v: string, k: string) => void): void } };
    const headers: Record<string, string> = { accept: "application/json" };
    fetchOpts.headers?.forEach((v, k) => (headers[k] = v));
    return new Promise<boolean>((resolve, reject) => {
      let gone = false;
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        if (err && !this.stopped && !ac.signal.aborted) reject(err);
        else resolve(gone);
      };
      const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, { method: "GET", agent: fetchOpts.agent, headers, signal: ac.signal });
      // A watch that goes silent past the server's own timeout (and its bookmarks) is dead: start over.
      req.setTimeout(330_000, () => req.destroy(new Error(`watch ${this.options.watchPath}: no data for 330 s`)));
      req.on("error", (e) => finish(e));
      req.on("response", (res) => {
        if (res.statusCode === 410) {
          gone = true;
          res.resume();
          res.on("end", () => finish());
          return;
        }
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => finish(Object.assign(new Error(`watch ${this.options.watchPath}: HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`), { statusCode: res.statusCode })));
          return;
        }
        const lines = createInterface({ input: res });
        // (readline re-emits the response's errors, an abort on stop included.)
        lines.on("error", (e) => finish(e));
        lines.on("line", (line) => {
          if (!line.trim()) return;
          let ev: { type: string; object: T & { code?: number } };
          try {
            ev = JSON.parse(line) as typeof ev;
          } catch {
            return;
          }
          this.handle(ev.type, ev.object, () => (gone = true));
        });
        res.on("end", () => finish());
        res.on("error", (e) => finish(e));
        res.on("close", () => finish());
      });
      req.end();
    });
  }

  private handle(phase: string, obj: T & { code?: number }, onGone: () => void): void {
    if (phase === "ERROR") {
      if (obj.code === 410) onGone();
      return;
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (phase === "BOOKMARK") return;
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (phase === "DELETED") {
      this.remove(key);
      this.emit("delete", obj);
    } else {
      this.put(key, obj);
      this.emit(old ? "update" : "add", obj, old);
    }
  }
}
