// Kubernetes Events (core/v1), so that `kubectl describe scan NAME` tells what happened. Like client-go's
// recorder, an Event repeated on the same object (same reason and message) within the window is counted
// in place (a patch of count and lastTimestamp) instead of creating a new object; recording never throws
// and never blocks the caller on the API server.
import { randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import type { LogFn } from "../log/logger.js";
import { scrubString } from "../log/redact.js";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

interface Recent {
  name: string;
  count: number;
  at: number;
}

export class EventRecorder {
  private readonly core: k8s.CoreV1Api;
  private readonly recent = new Map<string, Recent>();
  private pending = Promise.resolve();

  /**
   * `redact`: applied to every message before it is written (Events are read by whoever may read the
   * namespace); default scrubString, serve passes tenantRedactor (which also hides operator secret names).
   */
  constructor(kc: k8s.KubeConfig, private readonly options: { component?: string; host?: string; windowMs?: number; log?: LogFn; redact?: (s: string) => string } = {}) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  /** Records an Event; returns at once (the write happens in the background, in order). */
  record(target: EventTarget, type: "Normal" | "Warning", reason: string, raw: string): void {
    const message = (this.options.redact ?? scrubString)(raw);
    this.pending = this.pending.then(() => this.write(target, type, reason, message)).catch((e: unknown) => {
      this.options.log?.(`event ${reason} on ${target.kind} ${target.metadata?.namespace}/${target.metadata?.name} not recorded: ${(e as Error).message}`, { object: `${target.kind} ${target.metadata?.namespace}/${target.metadata?.name}`, reason }, "warn");
    });
  }

  /** Resolves once every Event recorded so far is written (or failed). */
  flush(): Promise<void> {
    return this.pending;
  }

  private async write(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const namespace = target.metadata?.namespace ?? "default";
    const msg = message.slice(0, 1024);
    const key = `${target.metadata?.uid}|${type}|${reason}|${msg}`;
    const now = new Date();
    const window = this.options.windowMs ?? 10 * 60_000;
    const seen = this.recent.get(key);
    if (seen && now.getTime() - seen.at < window) {
      seen.count++;
      seen.at = now.getTime();
      try {
        await this.core.patchNamespacedEvent(
          { name: seen.name, namespace, body: { count: seen.count, lastTimestamp: now.toISOString() } },
          k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
        );
        return;
      } catch (e) {
        if ((e as { code?: number }).code !== 404) throw e;
        // The Event expired (the API server's TTL): write a new one below.
      }
    }
    this.prune(now.getTime(), window);
    const name = `${target.metadata?.name ?? "unknown"}.${randomBytes(8).toString("hex")}`;
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: target.apiVersion, kind: target.kind, name: target.metadata?.name, namespace,
          uid: target.metadata?.uid, resourceVersion: target.metadata?.resourceVersion,
        },
        reason, message: msg, type, count: 1, firstTimestamp: now, lastTimestamp: now,
        source: { component: this.options.component ?? "portcullis", ...(this.options.host ? { host: this.options.host } : {}) },
      },
    });
    this.recent.set(key, { name, count: 1, at: now.getTime() });
  }

  private prune(now: number, window: number): void {
    if (this.recent.size < 4096) return;
    for (const [k, v] of this.recent) if (now - v.at >= window) this.recent.delete(k);
  }
}
