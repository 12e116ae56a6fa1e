// What a layer walk does with each entry, from its header alone: record a whiteout, an opaque directory or a
// link, keep a wanted file's bytes, push an executable through a scanner's sink, or drop it. The full walk
// (walk.ts: a tar stream) and the partial walk (toc/walk.ts: a table of contents and byte ranges) both
// decide here, so a layer read either way gives the scanners the same files.
import type { EntryInfo, FileSink, Scanner } from "../model/scanner.js";
import { LayerError } from "./errors.js";
import type { CapturedLayerFiles } from "./files.js";
import { normalizeEntryPath, OPAQUE_WHITEOUT, resolveLinkTarget, WHITEOUT_PREFIX } from "./paths.js";

/** The caps of walk.ts's WalkLimits this module applies. */
export interface EntryLimits {
  maxFileSize: number;
  maxCapturedBytes: number;
  scanCapture?: CaptureBudget;
}

/**
 * The bytes of wanted files one scan may hold, over all the layers of its manifest: one budget shared by the
 * layer walks of one index (WalkLimits.scanCapture). A layer's bytes count from the header that announces
 * them; a walk that fails gives its layer's bytes back (a partial read that falls back to a full one counts once).
 */
export class CaptureBudget {
  private taken = 0;
  constructor(readonly max: number) {}

  get used(): number {
    return this.taken;
  }

  /** Counts `n` bytes of `path` in `layer`; throws CAPTURED_TOO_LARGE past `max`. */
  take(n: number, layer: string, path: string): void {
    this.taken += n;
    if (this.taken > this.max) throw new LayerError("CAPTURED_TOO_LARGE", layer, `the files the scanners read from this image's layers exceed ${this.max} bytes in all (at ${path})`);
  }

  give(n: number): void {
    this.taken = Math.max(0, this.taken - n);
  }
}

/** A header as the selector needs it (tar.ts's TarHeader, or a table of contents entry made to look like one). */
export interface EntryHeader {
  name: string;
  /** tar-stream's names: file, contiguous-file, link, symlink, directory, ... */
  type: string;
  size: number;
  mode: number;
  linkname: string | null;
}

/** What to do with an entry, in archive order. Applied to a CapturedLayerFiles by applyAction(). */
export type EntryAction =
  | { kind: "symlink"; path: string; target: string }
  | { kind: "hardlink"; path: string; target: string }
  /** Keep the file's bytes (all of them: `size`). */
  | { kind: "capture"; path: string; size: number }
  /** Push the file's bytes through each of `scanners`' sinks until every one has enough (an executable: the Go and the Rust scanner both). */
  | { kind: "consume"; path: string; scanners: Scanner[]; info: EntryInfo };

const FILE_TYPES = new Set(["file", "contiguous-file"]);

export class EntrySelector {
  readonly whiteouts: string[] = [];
  readonly opaqueDirs: string[] = [];
  entries = 0;
  /** Bytes of wanted files held so far (limits.maxCapturedBytes), and of those counted in limits.scanCapture. */
  private captured = 0;
  private charged = 0;
  /** Targets of wanted symlinks seen earlier in the archive: their content is wanted too. */
  private readonly wantedTargets = new Set<string>();
  private readonly info: EntryInfo = { path: "", size: 0, mode: 0, type: "file" };
  private skipOversize = false;
  /** The streaming scanners that want the current entry. */
  private consumers: Scanner[] = [];

  constructor(
    private readonly layer: string,
    private readonly scanners: readonly Scanner[],
    private readonly limits: EntryLimits,
  ) {}

  /** Bytes of wanted files this layer holds, as counted against its cap (from the headers). */
  get capturedBytes(): number {
    return this.captured;
  }

  /** Gives back what this layer counted in the scan's budget (its walk failed: nothing of it is kept). */
  refund(): void {
    this.limits.scanCapture?.give(this.charged);
    this.charged = 0;
  }

  /** The cap for `entry` if some scanner wants it, else -1; sets whether an oversize file is skipped and the consumers. */
  private wantedLimit(entry: EntryInfo): number {
    let limit = -1;
    this.skipOversize = true;
    this.consumers = [];
    for (const s of this.scanners) {
      if (!s.wants(entry)) continue;
      if (s.consume && entry.type === "file") {
        this.consumers.push(s);
        continue;
      }
      limit = Math.max(limit, s.maxFileSize ?? this.limits.maxFileSize);
      if (s.oversize !== "skip") this.skipOversize = false;
    }
    if (limit < 0 && this.wantedTargets.has(entry.path)) {
      limit = this.limits.maxFileSize;
      this.skipOversize = false;
    }
    return limit;
  }

  /**
   * Decides for the next entry of the archive. Throws FILE_TOO_LARGE / CAPTURED_TOO_LARGE as soon as the
   * headers show the layer is over its limits.
   */
  select(header: EntryHeader): EntryAction | undefined {
    this.entries++;
    const path = normalizeEntryPath(header.name);
    if (path === undefined) return undefined;
    const slash = path.lastIndexOf("/");
    const base = slash < 0 ? path : path.slice(slash + 1);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const dir = slash < 0 ? "" : path.slice(0, slash);
      if (base === OPAQUE_WHITEOUT) this.opaqueDirs.push(dir);
      else {
        const name = base.slice(WHITEOUT_PREFIX.length);
        if (name && name !== "." && name !== "..") this.whiteouts.push(dir ? `${dir}/${name}` : name);
      }
      return undefined;
    }
    const type = header.type;
    const info = this.info;
    info.path = path;
    info.size = header.size;
    info.mode = header.mode;
    if (FILE_TYPES.has(type)) {
      info.type = "file";
      const limit = this.wantedLimit(info);
      if (this.consumers.length && limit < 0) return { kind: "consume", path, scanners: this.consumers, info: { ...info } };
      if (limit < 0) return undefined;
      if (info.size > limit) {
        if (this.skipOversize) return undefined;
        throw new LayerError("FILE_TOO_LARGE", this.layer, `${path} is ${info.size} bytes, over the ${limit}-byte limit for the scanners that read it`);
      }
      this.captured += info.size;
      if (this.captured > this.limits.maxCapturedBytes) {
        throw new LayerError("CAPTURED_TOO_LARGE", this.layer, `the files the scanners read from it exceed ${this.limits.maxCapturedBytes} bytes in all (at ${path})`);
      }
      if (this.limits.scanCapture) {
        this.charged += info.size;
        this.limits.scanCapture.take(info.size, this.layer, path);
      }
      return { kind: "capture", path, size: info.size };
    }
    if (type === "symlink" && header.linkname) {
      info.type = "symlink";
      info.size = 0;
      // Every symlink is recorded (a path and a target: cheap), so lookups through a linked directory
      // (var/lib/rpm -> ../../usr/lib/sysimage/rpm) resolve; a wanted link also makes its target wanted.
      if (this.wantedLimit(info) >= 0) {
        const target = resolveLinkTarget(path, header.linkname);
        if (target !== undefined) this.wantedTargets.add(target);
      }
      return { kind: "symlink", path, target: header.linkname };
    }
    if (type === "link" && header.linkname) {
      info.type = "hardlink";
      info.size = 0;
      const target = normalizeEntryPath(header.linkname);
      if (target !== undefined && this.wantedLimit(info) >= 0) return { kind: "hardlink", path, target };
    }
    return undefined;
  }
}

/** Records a link action (symlink or hard link) in `files`. */
export function applyLink(files: CapturedLayerFiles, a: Extract<EntryAction, { kind: "symlink" | "hardlink" }>): void {
  if (a.kind === "symlink") files.addSymlink(a.path, a.target);
  else files.addHardlink(a.path, a.target);
}

/** A consume action's sink, and how its result lands in `files`; undefined when the scanner declines the file. */
export interface OpenConsumer {
  /**
   * Takes the file's bytes from offset `at` (default: where the last write ended; a gap is bytes withheld,
   * never past next()). Each scanner's sink gets only the bytes from its own next() on. False once every
   * scanner has seen enough.
   */
  write(chunk: Buffer, at?: number): boolean;
  /** The lowest file offset any open scanner still needs (Infinity: none); a partial read fetches from there. */
  next(): number;
  /** Ends the file and records the scanner's result. */
  finish(files: CapturedLayerFiles): void;
}

export function openConsumer(layer: string, a: Extract<EntryAction, { kind: "consume" }>): OpenConsumer | undefined {
  const sinks: Array<{ scanner: Scanner; sink: FileSink; open: boolean; pos: number }> = [];
  for (const scanner of a.scanners) {
    const sink = scanner.consume!({ ...a.info });
    if (sink) sinks.push({ scanner, sink, open: true, pos: 0 });
  }
  if (!sinks.length) return undefined;
  let open = sinks.length;
  let pos = 0;
  const wants = (s: (typeof sinks)[number]) => (s.sink.next ? Math.max(s.pos, s.sink.next()) : s.pos);
  return {
    write: (chunk, at = pos) => {
      if (at < pos) throw new LayerError("BAD_TAR", layer, `${a.path}: bytes from ${at} given again after ${pos}`);
      const end = at + chunk.length;
      for (const s of sinks) {
        if (!s.open) continue;
        const from = wants(s);
        if (from >= end) continue;
        if (from > s.pos) {
          // The sink said it does not need these bytes (or the walk withheld them, which must agree).
          if (!s.sink.skip) throw new LayerError("BAD_TAR", layer, `${s.scanner.name}: bytes of ${a.path} from ${s.pos} withheld from a sink that reads them all`);
          s.sink.skip(from);
        }
        if (from < at) throw new LayerError("BAD_TAR", layer, `${s.scanner.name}: bytes ${from}-${at} of ${a.path} were withheld but it needs them`);
        s.pos = end;
        if (!s.sink.write(from === at ? chunk : chunk.subarray(from - at))) {
          s.open = false;
          open--;
        }
      }
      pos = end;
      return open > 0;
    },
    next: () => {
      let n = Infinity;
      for (const s of sinks) if (s.open) n = Math.min(n, wants(s));
      return n;
    },
    finish: (files) => {
      for (const { scanner, sink } of sinks) {
        let value: unknown;
        try {
          value = sink.end();
        } catch (err) {
          throw new LayerError("BAD_TAR", layer, `${scanner.name} could not read ${a.path}: ${(err as Error).message}`);
        }
        if (value !== undefined) files.addConsumed(scanner.name, a.path, value);
      }
    },
  };
}
