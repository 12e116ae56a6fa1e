// An advisory source: where its upstream files are, how to recognise them in an import, and how to parse
// them into the advisory model. The updater downloads, the importer detects, the store keeps operations;
// a source itself does no I/O.
import type { AdvisoryStore, Operation, SourceKind } from "../store/advisory-types.js";
import type { Enrichment, ParseResult, RawFile } from "../model/advisory.js";

export interface UpstreamFile {
  /** The file's path within the source, kept in the store and in bundles (`debian.json`, `v3.18/main.json`). */
  path: string;
  /** Its default URL; a mirror base replaces everything but `path`. */
  url: string;
  /** Most bytes accepted for it. */
  maxBytes: number;
  /** A missing optional file (404) does not fail the update. */
  optional?: boolean;
}

export interface UpstreamContext {
  /** A mirror's base URL for this source: each file is then `<mirror>/<path>`. */
  mirror?: string;
  /** GETs a small text document (an index page, a "latest" pointer), for sources whose file list changes. */
  list(url: string): Promise<string>;
}

/** The URL of `path` under a mirror, or the default. */
export function upstreamUrl(ctx: UpstreamContext, path: string, defaultUrl: string): string {
  return ctx.mirror ? `${ctx.mirror.replace(/\/+$/, "")}/${path}` : defaultUrl;
}

export type SourceParse = ParseResult & { enrichment?: Enrichment };

/** What a source that updates itself is given: its mirror and the updater's options. */
export interface SelfUpdateContext {
  mirror?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  userAgent?: string;
  log?: (msg: string) => void;
}

export interface SelfUpdateResult {
  status: "updated" | "unchanged";
  operation?: Operation;
  /** Bytes downloaded (304s count 0). */
  downloaded: number;
  files: number;
}

export interface AdvisorySource {
  /** Unique, stable: the key of its operations (`debian`, `alpine`, `osv-npm`, `epss`). */
  readonly name: string;
  readonly kind: SourceKind;
  /** Bump whenever the parser's output for the same files can change: the next update re-parses. */
  readonly parserVersion: string;
  readonly licence: string;
  readonly attribution: string;
  /** Whether `portcullis db update` fetches it when no --source is given. */
  readonly updateByDefault: boolean;
  /** Where an update fetches from, for people (`portcullis db sources`); "import only" when it has no update. */
  readonly from: string;
  /** The files an update downloads, from the upstream or under a mirror's base URL. */
  upstream(ctx: UpstreamContext): Promise<UpstreamFile[]>;
  /** True when this raw file (from an import) is one of this source's. */
  detect(file: RawFile): boolean;
  /** The source's name for an imported set of its files (OSV: by the records' ecosystem). */
  nameFor?(files: RawFile[]): string;
  parse(files: RawFile[]): SourceParse;
  /**
   * For a source too large for the generic updater (which holds each upstream file in memory): downloads
   * and records its own operation (Red Hat: an archive of every document, then what changed since).
   * `upstream` is then not used by `db update`.
   */
  update?(store: AdvisoryStore, ctx: SelfUpdateContext): Promise<SelfUpdateResult>;
}
