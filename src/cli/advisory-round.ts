// One round of serve's advisory updates: from the upstreams (or mirrors), or, for air-gapped clusters,
// by pulling the bundle an operator pushed to an in-cluster registry (--advisory-bundle REF).
import { BUNDLE_ARTIFACT_TYPE, BUNDLE_MEDIA_TYPE } from "../advisories/bundle.js";
import { importBundle, type ImportResult, type SourceCatalogue } from "../advisories/import.js";
import type { SchedulerResult } from "../advisories/scheduler.js";
import { updateSources } from "../advisories/update.js";
import { parseReference } from "../image/reference.js";
import type { Keyring } from "../registry/auth/types.js";
import { RegistryClient } from "../registry/client.js";
import type { Reference } from "../image/reference.js";
import type { AdvisoryStore } from "../store/advisory-types.js";
import type { Store } from "../store/types.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

/** Throws for sources (or mirrors' sources) the catalogue does not know: a configuration error at start. */
export function checkAdvisorySources(o: Pick<AdvisoryRoundOptions, "catalogue" | "sources" | "mirrors">): void {
  const unknown = [...o.sources, ...Object.keys(o.mirrors)].filter((s) => !o.catalogue.get(s));
  if (unknown.length) throw new Error(`advisory sources ${unknown.join(", ")} are not known; known: ${o.catalogue.all().map((s) => s.name).join(", ")}`);
}

/** Checks the options now (unknown sources are a configuration error at start) and returns the round. */
export function advisoryRound(o: AdvisoryRoundOptions): (signal: AbortSignal) => Promise<SchedulerResult[]> {
  checkAdvisorySources(o);
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
      const pulled = await pullBundle(client, bundleRef, o.store.advisories, o.catalogue, o.bundle!, signal);
      if (!pulled.results.some((r) => r.status === "failed")) lastDigest = pulled.digest;
      const results = pulled.results;
      return results.map((r) => ({ source: r.source, status: r.status, error: r.error }));
    } catch (e) {
      return [{ source: o.bundle!, status: "failed", error: describeError(e) }];
    } finally {
      await client.close();
    }
  };
}

/** Most bytes of a pulled bundle (compressed): Red Hat's own archive is capped the same. */
export const MAX_PULLED_BUNDLE_BYTES = 4 * 1024 ** 3;

/**
 * Pulls the bundle artifact at `ref` into a temporary file (the blob verified as it streams, network
 * first: no store transaction is open across the download) and imports it from there as a stream.
 */
export async function pullBundle(client: RegistryClient, ref: Reference, store: AdvisoryStore, catalogue: SourceCatalogue, name: string, signal?: AbortSignal): Promise<{ digest: string; results: ImportResult[] }> {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-bundle-"));
  try {
    const pulled = await client.pullArtifactToFiles(ref, { artifactType: BUNDLE_ARTIFACT_TYPE, mediaType: BUNDLE_MEDIA_TYPE, maxLayerBytes: MAX_PULLED_BUNDLE_BYTES, dir, signal });
    const layer = pulled.layers[0];
    if (!layer) throw Object.assign(new Error(`${name} holds no layer of type ${BUNDLE_MEDIA_TYPE}`), { code: "UNSUPPORTED" });
    return { digest: pulled.digest, results: await importBundle(store, catalogue, layer.file, `pull ${name}@${pulled.digest}`) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
