// The process's one cache of API objects: an informer per kind, made the first time a consumer asks for the
// kind and shared by every later one (the controllers, the webhook, the report API), each with its own event
// handlers and the indexes it needs. As controller-runtime's cache: a role that never asks for a kind opens no
// watch of it. An informer is started by the first consumer that needs its contents (Informer.start() is
// idempotent) and stopped with the cache, when the process stops: a controller that ends with a leadership
// term removes its handler, and the cache stays warm for the next term.
import type { KubeConfig } from "@kubernetes/client-node";
import type { LogFn } from "../log/logger.js";
import { Informer, type Indexers, type KubeObject } from "./informer.js";
import type { Kind } from "./kind.js";

export interface SharedCacheOptions {
  /** Informer failures (at warn). */
  log?: LogFn;
  /** First retry delay of the informers after an error (default theirs). */
  backoffMs?: number;
}

export class SharedCache {
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private stopped = false;

  constructor(private readonly kc: KubeConfig, private readonly options: SharedCacheOptions = {}) {}

  /** The kind's informer (made now if no one asked for it before), with `indexers` added. Not started. */
  informer<T extends KubeObject>(kind: Kind<T>, indexers?: Indexers<T>): Informer<T> {
    if (this.stopped) throw new Error(`cache: ${kind.id} asked for after the cache stopped`);
    let inf = this.informers.get(kind.id) as Informer<T> | undefined;
    if (!inf) {
      const kc = this.kc;
      inf = new Informer<T>(kc, {
        watchPath: kind.watchPath, list: () => kind.list(kc), log: this.options.log,
        ...(this.options.backoffMs !== undefined ? { backoffMs: this.options.backoffMs } : {}),
      });
      this.informers.set(kind.id, inf as unknown as Informer<KubeObject>);
    }
    if (indexers) inf.addIndexers(indexers);
    return inf;
  }

  /** The kinds held, by id (what this process watches). */
  kinds(): string[] {
    return [...this.informers.keys()];
  }

  /** Whether every informer that was started has listed once. */
  get synced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced || !i.started);
  }

  /** Stops every informer (their watches end at once). */
  stop(): void {
    this.stopped = true;
    for (const inf of this.informers.values()) inf.stop();
  }
}
