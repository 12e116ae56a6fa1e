// The ImageRepository controller: watched repositories. Every interval (with jitter) it lists a repository's
// tags with the distribution API, keeps what it learned in the store (tag -> digest, creation time), picks the
// tags to scan (tags.ts), resolves only the new ones and, every tagRecheckInterval, the selected ones again (a
// moved tag), and ensures an ImageScan per selected digest exactly as pods' scans are ensured (kube/ensure-scan.ts: one per
// namespace and digest, same name), in the normal lane. Those scans carry the WATCHED_BY annotation (the webhook
// names the repository in a denial) and count as used for the Pod controller's garbage collection while
// selected (uses()). Runs on the leader, like the other controllers. A restart reads the store: within the
// interval it lists nothing and resolves nothing it knows.
import * as k8s from "@kubernetes/client-node";
import { isTransientCode } from "../errors.js";
import { apiErrorDetail } from "../kube/api-error.js";
import { z } from "zod";
import { parsePlatform, type Platform } from "../image/platform.js";
import { parseReference, type Reference } from "../image/reference.js";
import type { EventRecorder } from "../kube/events.js";
import { parseDuration } from "../kube/duration.js";
import { objectKey, type Informer, type InformerEvent, type KubeObject } from "../kube/informer.js";
import { SharedCache } from "../kube/cache.js";
import { customKind, type Kind } from "../kube/kind.js";
import { WorkQueue } from "../kube/workqueue.js";
import { runWorker, type Result } from "../kube/reconcile.js";
import type { LogFn } from "../log/logger.js";
import { tenantRedactor } from "../log/redact.js";
import type { RegistryConnections } from "../registry/connections.js";
import type { CredentialProvider } from "../registry/auth/types.js";
import { RegistryClient } from "../registry/client.js";
import type { RegistryOptionsInput } from "../registry/options.js";
import type { RegistryMetrics } from "../registry/transport.js";
import type { WatchedRepositoryStore, WatchedTag } from "../store/types.js";
import { reasonFor } from "./imagescan.js";
import { filterTags, newestTags, tagFilterError, tagOrder } from "./tags.js";
import { SecretCache, type OperatorSecrets, workloadKeyring } from "../registry/auth/workload.js";
import { ensureImageScan } from "../kube/ensure-scan.js";
import { digestLabel, GROUP, IMAGESCAN_INDEXERS, IMAGESCANS, REPOSITORY_PLURAL, VERSION, WATCHED_BY_ANNOTATION, type ImageScan } from "../kube/api/v1alpha1/index.js";

export interface ImageRepositoryControllerOptions {
  kc: k8s.KubeConfig;
  /** Every tag listing, digest resolution, config read and status write, as it is made. */
  onCall?(call: RepositoryCall): void;
  /** Where the ImageRepository and ImageScan informers come from (shared in the process); default its own. */
  cache?: SharedCache;
  /** Pull secrets, read through (default its own). */
  secrets?: SecretCache;
  store: WatchedRepositoryStore;
  registry?: RegistryOptionsInput;
  /** Registry connections shared with the process's other clients (serve's); by default each client opens its own. */
  registryConnections?: RegistryConnections;
  providers?: CredentialProvider[];
  operatorSecrets?: OperatorSecrets;
  registryMetrics?: RegistryMetrics;
  /** The platform whose image gives a multi-platform tag's creation time when spec.platform is absent. */
  defaultPlatform?: Platform;
  /** Only ImageRepositories in these namespaces; default all. */
  namespaces?: string[];
  events?: EventRecorder;
  log?: LogFn;
  /** After every listing attempt (metrics). */
  onListing?(e: ListingObservation): void;
  /** The interval is stretched or shrunk at random by up to this fraction (default 0.1). */
  jitter?: number;
  /** Shortest interval honoured (default 1 minute; tests use less). */
  minIntervalMs?: number;
  /** Tags resolved (digest, or creation time) per reconcile at most; the rest the next time (default 100). */
  maxResolvesPerRound?: number;
  /** Tags a listing reads at most (default 10,000; more is reported in the status and left out). */
  maxListedTags?: number;
  /** Tags asked for per page of the listing (`n`, default 1000). */
  pageSize?: number;
}

/** One listing attempt, for metrics. */
export interface ListingObservation {
  registry: string;
  /** Tags listed (0 on an error). */
  tags: number;
  /** Selected tags that got a digest not seen for them before (new tags, moved tags). */
  newDigests: number;
  /** The condition reason of a failed listing (AuthFailed, RateLimited, …). */
  error?: string;
}

/** What the controller asks of registries and the API server, one call at a time (metrics; tests count them). */
export type RepositoryCall = "listing" | "resolution" | "configRead" | "statusWrite";

export class ImageRepositoryController {
  readonly queue = new WorkQueue({ baseDelayMs: 5000, maxDelayMs: 10 * 60_000 });
  readonly informer: Informer<ImageRepository>;
  private readonly scans: Informer<ImageScan>;
  private readonly cache: SharedCache;
  private removeHandler: (() => void) | undefined;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly secrets: SecretCache;
  /** Per ImageRepository key: its namespace and the digest labels it selects (garbage collection reads them). */
  private readonly selected = new Map<string, { namespace: string; digests: Set<string> }>();
  private readonly redact: (s: string) => string;
  private workers: Promise<void>[] = [];

  constructor(private readonly options: ImageRepositoryControllerOptions) {
    this.custom = options.kc.makeApiClient(k8s.CustomObjectsApi);
    this.redact = tenantRedactor(options.operatorSecrets);
    this.secrets = options.secrets ?? new SecretCache(options.kc.makeApiClient(k8s.CoreV1Api));
    this.cache = options.cache ?? new SharedCache(options.kc, { log: (m, f, l) => options.log?.(m, f, l) });
    this.informer = this.cache.informer(IMAGE_REPOSITORIES);
    this.scans = this.cache.informer(IMAGESCANS, IMAGESCAN_INDEXERS);
  }

  private readonly onEvent = (type: InformerEvent, obj: ImageRepository, old?: ImageRepository): void => {
    if (!this.handles(obj.metadata?.namespace)) return;
    // Its own status writes do not change the generation; the schedule (addAfter) brings it back.
    if (type === "update" && old?.metadata?.generation === obj.metadata?.generation) return;
    this.queue.add(objectKey(obj));
  };

  private handles(ns: string | undefined): boolean {
    return !this.options.namespaces || this.options.namespaces.includes(ns ?? "");
  }

  async start(): Promise<void> {
    this.removeHandler = this.informer.addEventHandler(this.onEvent);
    await Promise.all([this.informer.start(), this.scans.start()]);
    // Repositories deleted while no controller ran: forget what the store kept of them.
    const live = new Set(this.informer.list().map(objectKey));
    for (const key of await this.options.store.keys()) {
      if (!live.has(key) && this.handles(key.slice(0, key.indexOf("/")))) await this.options.store.delete(key);
    }
    this.workers = Array.from({ length: 2 }, () => this.work());
  }

  async stop(): Promise<void> {
    this.removeHandler?.();
    if (!this.options.cache) this.cache.stop();
    this.queue.shutDown();
    await Promise.all(this.workers);
  }

  /**
   * What the watched repositories keep in use, for the Pod controller's garbage collection: `ns/d/<digest
   * label>` per selected digest, and the namespaces with a repository not reconciled yet (nothing there may be
   * collected). Undefined until the informer has synced.
   */
  uses(): { used: Set<string>; unsettled: Set<string> } | undefined {
    if (!this.informer.hasSynced) return undefined;
    const used = new Set<string>();
    const unsettled = new Set<string>();
    for (const repo of this.informer.list()) {
      const key = objectKey(repo);
      const ns = repo.metadata?.namespace ?? "";
      if (!this.handles(ns)) continue;
      const s = this.selected.get(key);
      if (!s) unsettled.add(ns);
      else for (const d of s.digests) used.add(`${ns}/d/${d}`);
    }
    return { used, unsettled };
  }

  private work(): Promise<void> {
    return runWorker(this.queue, (key) => this.reconcile(key), {
      onError: (key, e, delay) => {
        const code = (e as { code?: unknown }).code;
        this.options.log?.(`ImageRepository ${key}: ${(e as Error).message}${apiErrorDetail(e)}; retrying in ${delay} ms`, { repository: key, ...(typeof code === "string" ? { reason: reasonFor(code) } : {}) }, "warn");
      },
    });
  }

  /**
   * Lists the repository when its interval is due, resolves the selected tags and ensures their scans; comes
   * back at the next interval (sooner when the per-round budget left tags unresolved). A registry failure is
   * written into the status; a transient one is thrown (the key backs off) unless the registry said when to
   * come back (Retry-After).
   */
  async reconcile(key: string): Promise<Result> {
    const repo = this.informer.get(key);
    if (!repo || repo.metadata?.deletionTimestamp) {
      this.selected.delete(key);
      await this.options.store.delete(key);
      return;
    }
    const ns = repo.metadata!.namespace!;
    const name = repo.metadata!.name!;
    const generation = repo.metadata!.generation;
    const parsed = parseSpec(repo.spec);
    if (typeof parsed === "string") {
      this.selected.set(key, { namespace: ns, digests: new Set() });
      await this.patchStatus(ns, name, { observedGeneration: generation, message: parsed, conditions: [cond("Ready", "False", "InvalidSpec", parsed, generation)] });
      return;
    }
    const { spec, ref, intervalMs: asked, recheckMs, platform } = parsed;
    const intervalMs = Math.max(asked, this.options.minIntervalMs ?? 60_000);
    const image = `${ref.registry}/${ref.repository}`;
    const jitter = this.options.jitter ?? 0.1;
    let state = await this.options.store.get(key);
    if (state && state.image !== image) state = undefined;
    const known = new Map((state?.tags ?? []).map((t) => [t.tag, t]));
    const lastListed = state?.listedAt ? Date.parse(state.listedAt) : NaN;
    const now = Date.now();
    // Early by at most the jitter: a wake-up the schedule chose always lists; a restart within the interval does not.
    const due = Number.isNaN(lastListed) || now - lastListed >= intervalMs * (1 - jitter);
    // Until this pass knows better, the digests the store says are selected stay in use.
    if (!this.selected.has(key)) this.selected.set(key, { namespace: ns, digests: new Set([...known.values()].filter((t) => t.digest).map((t) => digestLabel(t.digest!))) });

    const secretNames = (spec.imagePullSecrets ?? []).map((s) => s.name);
    let client: RegistryClient | undefined;
    const registry = async () => {
      if (!client) {
        const creds = await workloadKeyring(this.secrets, ns, secretNames, { operator: this.options.operatorSecrets, providers: this.options.providers });
        client = new RegistryClient({ connections: this.options.registryConnections, options: this.options.registry, keyring: creds.keyring, metrics: this.options.registryMetrics, defaultPlatform: platform ?? this.options.defaultPlatform });
        missing = creds.missing;
      }
      return client;
    };
    let missing: string[] = [];
    let newDigests = 0;
    let listedTags = known.size;
    const listedAt = due ? new Date(now).toISOString() : state?.listedAt;
    let truncated = false;
    try {
      let tags = [...known.keys()];
      if (due) {
        this.options.onCall?.("listing");
        const listing = await (await registry()).listTags(ref, { maxTags: this.options.maxListedTags ?? 10_000, pageSize: this.options.pageSize ?? 1000 });
        tags = listing.tags;
        truncated = listing.truncated;
        listedTags = tags.length;
        const listed = new Set(tags);
        const gone = [...known.keys()].filter((t) => !listed.has(t));
        const added = tags.filter((t) => !known.has(t)).map((t): WatchedTag => ({ tag: t }));
        for (const t of gone) known.delete(t);
        for (const t of added) known.set(t.tag, t);
        // Recorded before resolving anything: a restart after this point does not list again.
        await this.options.store.record(key, image, { listedAt, upsert: added, remove: gone });
      }
      const candidates = filterTags(tags, spec.tagFilter ?? {});
      const order = tagOrder(candidates);
      const budget = { left: this.options.maxResolvesPerRound ?? 100 };
      const changed: WatchedTag[] = [];
      if (order === "created") {
        // Creation times of candidates not read yet, newest names first (a guess; the next rounds read the rest).
        for (const tag of candidates.filter((t) => !known.get(t)?.checkedAt).reverse()) {
          if (budget.left-- <= 0) break;
          const t = await this.readCreated(await registry(), ref, tag, platform);
          if (!t) {
            known.delete(tag);
            continue;
          }
          const before = known.get(tag);
          if (before?.digest && before.digest !== t.digest) newDigests++;
          known.set(tag, t);
          changed.push(t);
        }
      }
      const selectedTags = newestTags(candidates.filter((t) => known.has(t)), order, spec.maxTags, (t) => known.get(t)?.created);
      for (const tag of selectedTags) {
        const k = known.get(tag)!;
        const stale = !k.checkedAt || now - Date.parse(k.checkedAt) >= recheckMs;
        if (k.digest && !stale) continue;
        if (budget.left-- <= 0) break;
        this.options.onCall?.("resolution");
        let digest: string;
        try {
          digest = await (await registry()).resolveDigest({ ...ref, tag });
        } catch (e) {
          // Deleted since the listing: the next listing drops it.
          if ((e as { code?: string }).code === "MANIFEST_UNKNOWN") continue;
          throw e;
        }
        const moved = k.digest !== undefined && k.digest !== digest;
        // A moved tag ordered by creation time: its new image's time (it may no longer be among the newest).
        const reread = moved && order === "created" ? await this.readCreated(await registry(), ref, tag, platform) : undefined;
        if (moved && order === "created" && !reread) continue;
        const t: WatchedTag = reread ?? { tag, digest, checkedAt: new Date(now).toISOString(), ...(k.created ? { created: k.created } : {}) };
        if (k.digest !== digest) newDigests++;
        if (moved) this.options.log?.(`ImageRepository ${key}: tag ${tag} moved from ${k.digest} to ${digest}`, { repository: key });
        known.set(tag, t);
        changed.push(t);
      }
      if (changed.length) await this.options.store.record(key, image, { upsert: changed });

      // The scans: one per selected digest, made or found exactly as pods' scans are. No memo of recent creations
      // (one reconcile per repository at a time; a race with another creator ends in createScan's 409 check), so
      // a scan the collector deleted is made again as soon as its tag is selected again.
      const selected: SelectedTag[] = [];
      const digests = new Set<string>();
      for (const tag of selectedTags) {
        const t = known.get(tag);
        if (!t?.digest) continue;
        const r = await ensureImageScan(this.custom, this.scans, {
          requester: `ImageRepository ${ns}/${name}`, namespace: ns, ref: { ...ref, tag }, digest: t.digest, secretNames,
          annotations: { [WATCHED_BY_ANNOTATION]: `${ns}/${name}` },
        }, { events: this.options.events, log: this.options.log });
        if (r.created) this.options.events?.record(withKind(repo), "Normal", "NewDigest", `${tag} is ${t.digest}: ImageScan ${r.name}`);
        digests.add(digestLabel(t.digest));
        selected.push({ tag, digest: t.digest, scan: r.name, ...(t.created ? { created: t.created } : {}) });
      }
      this.selected.set(key, { namespace: ns, digests });
      const unresolved = selectedTags.length - selected.length + (order === "created" ? candidates.filter((t) => known.has(t) && !known.get(t)!.checkedAt).length : 0);
      const message = `${listedTags} tags${truncated ? ` (the listing stopped at ${listedTags}; more are left out)` : ""}, ${candidates.length} match the filter; scanning ${selected.length} by ${order === "semver" ? "version" : "creation time"}${unresolved > 0 ? `; ${unresolved} not resolved yet` : ""}`;
      await this.patchStatus(ns, name, {
        image, tags: listedTags, selected, selectedTags: selected.map((s) => s.tag).join(", ").slice(0, 4096),
        ...(listedAt ? { lastListTime: listedAt } : {}),
        ...(newDigests > 0 ? { lastScanTime: new Date(now).toISOString() } : {}),
        observedGeneration: generation, message,
        conditions: [cond("Ready", unresolved > 0 ? "False" : "True", unresolved > 0 ? "Resolving" : "Listed", message, generation, repo.status?.conditions)],
      });
      if (due) this.options.onListing?.({ registry: ref.registry, tags: listedTags, newDigests });
      // Tags left unresolved by the per-round budget: the next round soon, not an interval later.
      return { requeueAfterMs: unresolved > 0 ? 1000 : Math.max(1000, Date.parse(listedAt!) + intervalMs * (1 + (Math.random() * 2 - 1) * jitter) - Date.now()) };
    } catch (e) {
      let code = (e as { code?: string }).code;
      let message = (e as Error).message;
      if (missing.length && (code === "AUTH_FAILED" || code === "DENIED" || code === "TOKEN_FAILED" || code === "NAME_UNKNOWN")) {
        code = "SECRET_NOT_FOUND";
        message = `pull secret ${missing.join(", ")} does not exist; without it: ${message}`;
      }
      if (!code) throw e;
      const reason = reasonFor(code);
      this.options.onListing?.({ registry: ref.registry, tags: 0, newDigests: 0, error: reason });
      await this.patchStatus(ns, name, { observedGeneration: generation, message, conditions: [cond("Ready", "False", reason, message, generation, repo.status?.conditions)] });
      this.options.events?.record(withKind(repo), "Warning", reason, message);
      // Transient: back off (a Retry-After longer than the client waits is honoured); else the next interval.
      const retryAfter = (e as { details?: { retryAfterMs?: number } }).details?.retryAfterMs ?? 0;
      if (isTransientCode(code) && retryAfter <= 0) throw Object.assign(new Error(message, { cause: e }), { code });
      const delay = isTransientCode(code) ? retryAfter : intervalMs;
      this.options.log?.(`ImageRepository ${key}: ${message}; next attempt in ${Math.round(delay)} ms`, { repository: key, reason }, "warn");
      return { requeueAfterMs: delay };
    } finally {
      await client?.close();
    }
  }

  /** A tag's digest and its image's creation time (manifest, then config); undefined when the tag is gone. */
  private async readCreated(client: RegistryClient, ref: Reference, tag: string, platform: Platform | undefined): Promise<WatchedTag | undefined> {
    this.options.onCall?.("resolution");
    try {
      const img = await client.resolve({ ...ref, tag }, { platform });
      this.options.onCall?.("configRead");
      const config = await client.getConfig(ref, img.manifest.config);
      const created = config.created && !Number.isNaN(Date.parse(config.created)) ? new Date(config.created).toISOString() : undefined;
      return { tag, digest: img.resolvedDigest, checkedAt: new Date().toISOString(), ...(created ? { created } : {}) };
    } catch (e) {
      if ((e as { code?: string }).code === "MANIFEST_UNKNOWN") return undefined;
      throw e;
    }
  }

  private async patchStatus(ns: string, name: string, status: Partial<ImageRepositoryStatus>): Promise<void> {
    this.options.onCall?.("statusWrite");
    const body = {
      status: {
        ...status,
        ...(status.message !== undefined ? { message: this.redact(status.message).slice(0, 4096) } : {}),
        ...(status.conditions ? { conditions: status.conditions.map((c) => ({ ...c, message: this.redact(c.message) })) } : {}),
      },
    };
    try {
      await this.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace: ns, plural: REPOSITORY_PLURAL, name, body },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
  }
}

/** The spec, checked: the parts the controller uses, or why it cannot be used. */
function parseSpec(raw: unknown): { spec: ImageRepositorySpec; ref: Reference; intervalMs: number; recheckMs: number; platform?: Platform } | string {
  const r = ImageRepositorySpecSchema.safeParse(raw);
  if (!r.success) return `invalid spec: ${r.error.issues.map((i) => `${i.path.join(".") || "spec"}: ${i.message}`).join("; ")}`;
  const spec = r.data;
  const filterError = tagFilterError(spec.tagFilter ?? {});
  if (filterError) return filterError;
  let ref: Reference;
  try {
    ref = parseReference(spec.image);
  } catch (e) {
    return `spec.image: ${(e as Error).message}`;
  }
  const last = spec.image.slice(spec.image.lastIndexOf("/") + 1);
  if (ref.digest || last.includes(":")) return `spec.image ${JSON.stringify(spec.image)} names a tag or digest: give the repository only (${ref.registry}/${ref.repository})`;
  const intervalMs = parseDuration(spec.interval);
  const recheckMs = parseDuration(spec.tagRecheckInterval);
  if (intervalMs === undefined || intervalMs <= 0) return `spec.interval ${JSON.stringify(spec.interval)} is not a positive duration`;
  if (recheckMs === undefined) return `spec.tagRecheckInterval ${JSON.stringify(spec.tagRecheckInterval)} is not a duration`;
  let platform: Platform | undefined;
  try {
    platform = spec.platform ? parsePlatform(spec.platform) : undefined;
  } catch (e) {
    return `spec.platform: ${(e as Error).message}`;
  }
  return { spec, ref, intervalMs, recheckMs, platform };
}

function cond(type: string, status: "True" | "False", reason: string, message: string, observedGeneration: number | undefined, previous?: RepositoryCondition[]): RepositoryCondition {
  const before = previous?.find((c) => c.type === type);
  const lastTransitionTime = before && before.status === status ? before.lastTransitionTime : new Date().toISOString();
  return { type, status, reason, message: message.slice(0, 4000), lastTransitionTime, ...(observedGeneration !== undefined ? { observedGeneration } : {}) };
}

function withKind(repo: ImageRepository): ImageRepository & { apiVersion: string; kind: string } {
  return { ...repo, apiVersion: `${GROUP}/${VERSION}`, kind: "ImageRepository" };
}

// ------------------------------------------------------------------------------------------------ types

const DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;

/** The spec as crds/imagerepositories.portcullis.dev.yaml defines it (the API server fills the defaults). */
export const ImageRepositorySpecSchema = z.object({
  image: z.string().min(1).max(1024),
  interval: z.string().regex(DURATION).default("10m"),
  tagRecheckInterval: z.string().regex(DURATION).default("1h"),
  imagePullSecrets: z.array(z.object({ name: z.string().min(1) })).max(16).optional(),
  tagFilter: z.object({ pattern: z.string().max(256).optional(), semverRange: z.string().max(256).optional() }).optional(),
  maxTags: z.number().int().min(1).max(100).default(5),
  platform: z.string().optional(),
});

export type ImageRepositorySpec = z.output<typeof ImageRepositorySpecSchema>;
export type ImageRepositorySpecInput = z.input<typeof ImageRepositorySpecSchema>;

export interface RepositoryCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface SelectedTag {
  tag: string;
  digest: string;
  scan: string;
  created?: string;
}

export interface ImageRepositoryStatus {
  image?: string;
  tags?: number;
  selected?: SelectedTag[];
  selectedTags?: string;
  lastListTime?: string;
  lastScanTime?: string;
  message?: string;
  observedGeneration?: number;
  conditions?: RepositoryCondition[];
}

export const IMAGE_REPOSITORIES: Kind<ImageRepository> = customKind<ImageRepository>(GROUP, VERSION, REPOSITORY_PLURAL);

export interface ImageRepository extends KubeObject {
  spec: ImageRepositorySpecInput;
  status?: ImageRepositoryStatus;
}
