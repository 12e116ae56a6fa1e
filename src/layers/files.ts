import type { LayerFiles } from "../model/scanner.js";
import { resolveLinkTarget } from "./paths.js";

const MAX_LINK_HOPS = 40;

/** The files captured from one layer, with its symlinks and hard links, resolved on lookup. */
export class CapturedLayerFiles implements LayerFiles {
  private readonly contents = new Map<string, Buffer>();
  /** path -> image-root path of the target (symlinks, resolved relative to the link). */
  private readonly symlinks = new Map<string, string>();
  /** path -> image-root path of the earlier entry it shares content with. */
  private readonly hardlinks = new Map<string, string>();

  private readonly results = new Map<string, Map<string, unknown>>();

  constructor(readonly digest: string) {}

  addConsumed(scanner: string, path: string, value: unknown): void {
    let m = this.results.get(scanner);
    if (!m) this.results.set(scanner, (m = new Map()));
    m.set(path, value);
  }

  consumed(scanner: string): ReadonlyMap<string, unknown> {
    return this.results.get(scanner) ?? new Map();
  }

  addFile(path: string, data: Buffer): void {
    this.contents.set(path, data);
    this.symlinks.delete(path);
    this.hardlinks.delete(path);
  }

  addSymlink(path: string, target: string): void {
    const resolved = resolveLinkTarget(path, target);
    if (resolved === undefined) return;
    this.symlinks.set(path, resolved);
    this.contents.delete(path);
  }

  addHardlink(path: string, target: string): void {
    const data = this.contents.get(target);
    // Content already captured: share it. Otherwise remember the link; a lookup resolves it if the target
    // turns up (it cannot in a well-formed tar, but a later layer's merge may use the record).
    if (data) this.contents.set(path, data);
    else this.hardlinks.set(path, target);
  }

  /** Whether `path` is a link this layer recorded (used to decide whether a link's target is wanted). */
  linkTarget(path: string): string | undefined {
    return this.symlinks.get(path) ?? this.hardlinks.get(path);
  }

  get(path: string): Buffer | undefined {
    const resolved = this.resolve(path);
    return resolved === undefined ? undefined : this.contents.get(resolved);
  }

  paths(): string[] {
    return [...this.contents.keys()];
  }

  get size(): number {
    return this.contents.size;
  }

  /** Follows links on every component of `path`, as the kernel does for a path inside the image root. */
  private resolve(path: string): string | undefined {
    let current = path;
    for (let hops = 0; hops < MAX_LINK_HOPS; hops++) {
      if (this.contents.has(current)) return current;
      const next = this.step(current);
      if (next === undefined || next === current) return undefined;
      current = next;
    }
    return undefined;
  }

  /** Rewrites the longest prefix of `path` that is a link; undefined when no prefix is one. */
  private step(path: string): string | undefined {
    let end = path.length;
    while (end > 0) {
      const prefix = path.slice(0, end);
      const target = this.symlinks.get(prefix) ?? this.hardlinks.get(prefix);
      if (target !== undefined) return target + path.slice(end);
      end = path.lastIndexOf("/", end - 1);
    }
    return undefined;
  }
}
