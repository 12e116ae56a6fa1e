// The scanner plugin interface. A scanner has a name, a version and a kind; it says from a tar header
// alone whether it wants a file (so the layer walk can drain everything else without buffering it), and
// parses the files it asked for. A layer is scanned once per (scanner name, version), ever: bump the
// version whenever the output for the same input can change.
import type { Distribution, LicenseFile, OwnedFiles, Package, Repository } from "./packages.js";

export type ScannerKind = "package" | "distribution" | "repository";

/** A scanner as the store records it: what a layer result is keyed by (with the layer's digest). */
export interface ScannerInfo {
  name: string;
  version: string;
  kind: ScannerKind;
}

/** What the layer walk knows about a tar entry when it decides whether to keep it. */
export interface EntryInfo {
  /** Normalised path relative to the image root: no leading `/` or `./`, no `..`, `/`-separated. */
  path: string;
  /** Bytes of content (0 for links and directories). */
  size: number;
  /** Permission bits and the like, from the header. */
  mode: number;
  type: "file" | "symlink" | "hardlink" | "directory" | "other";
}

/** The files of one layer that some scanner asked for, with the layer's links resolved. */
export interface LayerFiles {
  /** The layer's digest (compressed blob digest, as in the manifest). */
  readonly digest: string;
  /**
   * Contents of the file at `path`, following symlinks and hard links recorded in this layer (relative or
   * absolute targets, resolved from the image root), or undefined when the layer has no such file or
   * nobody asked for it.
   */
  get(path: string): Buffer | undefined;
  /** Every path that holds captured content (regular files, after link resolution), in archive order. */
  paths(): string[];
  /** Results of this scanner's consume() for this layer, by path. */
  consumed?(scanner: string): ReadonlyMap<string, unknown>;
}

export interface FileSink {
  /** Takes the next bytes; false when it needs no more. */
  write(chunk: Buffer): boolean;
  /** Called at the end of the file (or after write returned false and the rest was drained). */
  end(): unknown;
  /**
   * The lowest file offset, from the sink's position on, whose bytes can still change its answer (Infinity:
   * none before the end). The walk may withhold the bytes before it and then calls skip(); a partial read
   * fetches only what sinks still need. A sink without it is fed every byte in order. Must be exact in one
   * direction: a withheld byte must not be one a full read would have used.
   */
  next?(): number;
  /** The walk withheld the bytes up to `to` (never past next()): the next write() starts there. */
  skip?(to: number): void;
}

export interface ScanOutput {
  packages?: Package[];
  distributions?: Distribution[];
  repositories?: Repository[];
  /** OS scanners: the files each OS package installed where language packages may live (file ownership). */
  owners?: OwnedFiles[];
  /** OS scanners: licences packages state in files of their own (dpkg copyright files). */
  licenseFiles?: LicenseFile[];
}

export interface Scanner {
  readonly name: string;
  readonly version: string;
  readonly kind: ScannerKind;
  /**
   * True when the scanner needs this entry's bytes (or, for a link, its target's). Called for every
   * entry of every layer: keep it cheap (string tests, no allocation on the common "no" path).
   */
  wants(entry: EntryInfo): boolean;
  /** The most bytes one wanted file may have; bigger files are an error in the report. Default 32 MiB. */
  readonly maxFileSize?: number;
  /**
   * What to do with a wanted file over maxFileSize: "error" (default) fails the layer's index with a clear
   * error; "skip" leaves that file out (for language scanners, where one huge archive should not cost the
   * whole image its report).
   */
  readonly oversize?: "error" | "skip";
  /**
   * For files too big to buffer (executables): when present, a wanted regular file's bytes are pushed to
   * the sink it returns instead of being buffered. The sink says when it has seen enough (write returns
   * false; the walk drains the rest), and end() returns a small JSON-able result, or undefined; scan()
   * finds the results in LayerFiles.consumed(). Memory stays bounded whatever the file's size.
   */
  consume?(entry: EntryInfo): FileSink | undefined;
  /**
   * Parses the captured files of one layer. Malformed input in a file the scanner asked for is reported by
   * throwing a ScannerError naming the file and what was wrong; a file that is simply not this scanner's
   * format (e.g. a vcpkg `status` file) yields nothing.
   */
  scan(files: LayerFiles): Promise<ScanOutput>;
}
