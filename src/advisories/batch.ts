// Documents of a streamed operation waiting to be written: each parsed as it arrives (so only its records
// wait), queued with its raw bytes, flushed to the operation's writer by size or count. Shared by the Red Hat
// updater (documents from the archive and the delta) and the bundle importer (a streamed source's files).
import type { OperationFile, OperationWriter } from "../store/advisory-types.js";
import type { Advisory, ParseResult, RawFile, SkippedRecord } from "../model/advisory.js";

export interface BatchLimits {
  /** Flush when this many bytes of documents are queued... */
  batchBytes: number;
  /** ...or this many documents. */
  batchFiles: number;
}

/** The sizes both callers use: a few MiB of JSON per statement batch, a bounded number of records held. */
export const DEFAULT_BATCH_LIMITS: BatchLimits = { batchBytes: 8 << 20, batchFiles: 250 };

export class DocumentBatch {
  private files: Array<OperationFile & { bytes: Buffer }> = [];
  private advisories: Advisory[] = [];
  private skipped: SkippedRecord[] = [];
  private bytes = 0;

  constructor(
    private readonly w: OperationWriter,
    private readonly parse: (files: RawFile[]) => Pick<ParseResult, "advisories" | "skipped">,
    private readonly limits: BatchLimits = DEFAULT_BATCH_LIMITS,
    private readonly signal?: AbortSignal,
  ) {}

  /** Parses one document now and queues it; one that cannot be parsed is a skipped record, not a failure. */
  async add(file: OperationFile, bytes: Buffer): Promise<void> {
    // Stopping (serve shutting down) rolls the operation back between documents.
    this.signal?.throwIfAborted();
    try {
      const r = this.parse([{ path: file.path, bytes }]);
      this.advisories.push(...r.advisories);
      this.skipped.push(...r.skipped);
    } catch (e) {
      this.skipped.push({ file: file.path, record: file.path, reason: (e as Error).message });
    }
    this.files.push({ ...file, bytes });
    this.bytes += bytes.length;
    if (this.bytes >= this.limits.batchBytes || this.files.length >= this.limits.batchFiles) await this.flush();
  }

  skip(record: SkippedRecord): void {
    this.skipped.push(record);
  }

  async flush(): Promise<void> {
    if (!this.files.length && !this.skipped.length) return;
    const [files, advisories, skipped] = [this.files, this.advisories, this.skipped];
    this.files = [];
    this.advisories = [];
    this.skipped = [];
    this.bytes = 0;
    await this.w.add(files, advisories, skipped);
  }
}
