// One round of serve's advisory updates: from the upstreams (or mirrors), or, for air-gapped clusters,
// by pulling the bundle an operator pushed to an in-cluster registry (--advisory-bundle REF).
import { BUNDLE_ARTIFACT_TYPE, BUNDLE_MEDIA_TYPE } from "../advisories/bundle.js";
import { importBundle, type SourceCatalogue } from "../advisories/import.js";
import type { SchedulerResult } from "../advisories/scheduler.js";
import { updateSources } from "../advisories/update.js";
import { parseReference } from "../image/reference.js";
import type { Keyring } from "../registry/auth/types.js";
import { RegistryClient } from "../registry/client.js";
import type { Store } from "../store/types.js";
import { version } from "./version.js";
import { describeError } from "../errors.js";

export interface AdvisoryRoundOptions {
  store: Store;
  catalogue: SourceCatalogue;
  /** Source names; empty: every source updated by default. */
  sources: readonly string[];
  mirrors: Record<string, string>;
  /** An OCI reference of a bundle: pulled instead of the upstreams. */
  bundle?: string;
  keyring: () => Promise<Keyring>;
}

/** Checks the options now (unknown sources are a configuration error at start) and returns the round. */
export function advisoryRound(o: AdvisoryRoundOptions): (signal: AbortSignal) => Promise<SchedulerResult[]> {
  const unknown = [...o.sources, ...Object.keys(o.mirrors)].filter((s) => !o.catalogue.get(s));
  if (unknown.length) throw new Error(`advisory sources ${unknown.join(", ")} are not known; known: ${o.catalogue.all().map((s) => s.name).join(", ")}`);
  const sources = o.sources.length ? o.sources.map((s) => o.catalogue.get(s)!) : o.catalogue.all().filter((s) => s.updateByDefault);
  const bundleRef = o.bundle ? parseReference(o.bundle) : undefined;
  // The bundle's digest at the last pull: an unchanged tag costs one HEAD, not a download.
  let lastDigest: string | undefined;
  return async (signal) => {
    if (!bundleRef) {
      const results = await updateSources(o.store.advisories, sources, { mirrors: o.mirrors, signal, userAgent: `portcullis/${version()}` });
      return results.map((r) => ({ source: r.source, status: r.status, error: r.error }));
    }
    const client = new RegistryClient({ keyring: await o.keyring() });
    try {
      const digest = await client.resolveDigest(bundleRef, signal);
      if (digest === lastDigest) return [{ source: o.bundle!, status: "unchanged" }];
      const pulled = await client.pullArtifact(bundleRef, { artifactType: BUNDLE_ARTIFACT_TYPE, maxLayerBytes: 4 * 1024 ** 3, signal });
      const layer = pulled.layers.find((l) => l.mediaType === BUNDLE_MEDIA_TYPE);
      if (!layer) return [{ source: o.bundle!, status: "failed", error: `no layer of type ${BUNDLE_MEDIA_TYPE}` }];
      const results = await importBundle(o.store.advisories, o.catalogue, layer.bytes, `pull ${o.bundle}@${pulled.digest}`);
      if (!results.some((r) => r.status === "failed")) lastDigest = pulled.digest;
      return results.map((r) => ({ source: r.source, status: r.status, error: r.error }));
    } catch (e) {
      return [{ source: o.bundle!, status: "failed", error: describeError(e) }];
    } finally {
      await client.close();
    }
  };
}
