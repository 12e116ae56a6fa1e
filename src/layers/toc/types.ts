// Tables of contents of seekable layer formats (zstd:chunked, eStargz, and SOCI's zTOCs): every entry of the layer's tar, in archive order, with where its bytes are in the compressed blob.

/** One entry of a layer as its table of contents describes it. */
export interface TocEntry {
  /** The entry's name as written (normalised by the walk, like a tar name). */
  name: string;
  /** tar-stream's type names, as the tar walk sees them: file, link, symlink, directory, other. */
  type: "file" | "link" | "symlink" | "directory" | "other";
  /** Uncompressed bytes of content (regular files). */
  size: number;
  mode: number;
  /** The target of a symlink or hard link. */
  linkname: string | null;
  /** Regular files with content: where it is, and its digest. */
  content?: TocContent;
}

export interface TocContent {
  /**
   * `sha256:<hex>` of the whole uncompressed content. Absent only in a table whose `decode` checks the
   * compressed bytes instead (SOCI: each span against its digest).
   */
  digest?: string;
  /** The compressed bytes of the content, [offset, end) in the blob: complete compressed frames. */
  offset: number;
  end: number;
  /**
   * The content as independently compressed pieces, in order (one piece when the format does not split the
   * file): each [offset, end) in the blob decompresses to `size` bytes (eStargz: to `size` bytes and then the
   * following entries' tar headers), with its own digest when known.
   */
  chunks: TocChunk[];
  /**
   * Compressed bytes the range may hold beyond the content's own: an eStargz piece is a gzip member that
   * also carries the tar headers of the entries that follow it up to the next piece.
   */
  slack?: number;
}

export interface TocChunk {
  offset: number;
  end: number;
  /** Offset of the piece in the uncompressed file. */
  at: number;
  size: number;
  /** `sha256:<hex>` of the uncompressed piece; absent when the whole file is one piece (content.digest covers it). */
  digest?: string;
}

export type TocFormat = "zstd:chunked" | "estargz" | "soci";

export interface TableOfContents {
  format: TocFormat;
  entries: TocEntry[];
  /** Compressed bytes fetched to read the table itself. */
  fetchedBytes: number;
  /**
   * The format's own decoder of consecutive pieces (`compressed` holds the blob's bytes from `base`), when
   * the walk's zstd or gzip-member decoding does not apply (SOCI: spans inflated from checkpoints). Returns
   * the pieces' content back to back; throws when anything fails its check.
   */
  decode?: (compressed: Buffer, base: number, pieces: readonly TocChunk[], what: string) => Promise<Buffer>;
  /**
   * True when `decode` can give these pieces without their compressed bytes (it holds their content from an
   * earlier round: SOCI's spans, shared by files); unless `pin` is false it then keeps them until they are
   * decoded, and the walk does not fetch them.
   */
  holds?: (pieces: readonly TocChunk[], pin?: boolean) => boolean;
}

/** Byte ranges of one blob. */
export interface RangeReader {
  /** Exactly the bytes [start, end) of the blob; throws if the source cannot serve a range. */
  read(start: number, end: number, signal?: AbortSignal): Promise<Buffer>;
}
