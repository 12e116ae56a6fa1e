// A bounded reader of FlatBuffers tables (the binary format of SOCI's zTOCs), written here rather than taken
// from the `flatbuffers` npm package: that runtime reads through generated accessors that trust every offset
// they follow (an offset out of range gives a RangeError from deep inside, or wraps into other data), while a
// zTOC comes from a registry. Every offset read here is checked against the buffer before it is followed,
// every vector's length against the bytes it would span; anything out of place is a FlatBufferError naming
// what. Only what a reader of one schema needs: tables, their scalar, string, table and vector fields.
//
// The layout (flatbuffers.dev, "internals"): a buffer starts with the root table's offset (u32). A table
// starts with a signed offset (i32) back to its vtable; a vtable is u16 vtable size, u16 table size, then
// one u16 per field: the field's offset inside the table, 0 when absent (the schema's default). A string or
// vector field holds a u32 offset from the field to a u32 length, then the elements (strings: bytes and a
// NUL); a table field, or a vector of tables' element, holds a u32 offset from itself to the table. All
// little-endian.

export class FlatBufferError extends Error {
  override name = "FlatBufferError";
}

export class FlatTable {
  private constructor(
    private readonly buf: Buffer,
    private readonly pos: number,
    private readonly vtable: number,
    private readonly vtableSize: number,
    private readonly what: string,
  ) {}

  /** The root table of `buf`. */
  static root(buf: Buffer, what: string): FlatTable {
    if (buf.length < 8) throw new FlatBufferError(`${what}: ${buf.length} bytes cannot hold a flatbuffer`);
    return FlatTable.at(buf, buf.readUInt32LE(0), what);
  }

  private static at(buf: Buffer, pos: number, what: string): FlatTable {
    if (pos < 4 || pos + 4 > buf.length) throw new FlatBufferError(`${what}: table at ${pos} lies outside the ${buf.length}-byte buffer`);
    const vtable = pos - buf.readInt32LE(pos);
    if (vtable < 0 || vtable + 4 > buf.length) throw new FlatBufferError(`${what}: vtable at ${vtable} lies outside the buffer`);
    const vtableSize = buf.readUInt16LE(vtable);
    const tableSize = buf.readUInt16LE(vtable + 2);
    if (vtableSize < 4 || vtableSize % 2 || vtable + vtableSize > buf.length) throw new FlatBufferError(`${what}: vtable at ${vtable} of ${vtableSize} bytes is malformed`);
    if (tableSize < 4 || pos + tableSize > buf.length) throw new FlatBufferError(`${what}: table at ${pos} of ${tableSize} bytes lies outside the buffer`);
    return new FlatTable(buf, pos, vtable, vtableSize, what);
  }

  /** Where field `i` is in the buffer, or undefined when absent; `size` bytes of it must lie inside the table's buffer. */
  private field(i: number, size: number): number | undefined {
    const slot = 4 + 2 * i;
    if (slot + 2 > this.vtableSize) return undefined;
    const off = this.buf.readUInt16LE(this.vtable + slot);
    if (off === 0) return undefined;
    const at = this.pos + off;
    if (at + size > this.buf.length) throw new FlatBufferError(`${this.what}: field ${i} at ${at} lies outside the buffer`);
    return at;
  }

  /** The u32 offset at `at`, followed: where it points, checked to leave room for `min` bytes. */
  private follow(at: number, min: number, i: number): number {
    const to = at + this.buf.readUInt32LE(at);
    if (to + min > this.buf.length) throw new FlatBufferError(`${this.what}: field ${i} points outside the buffer (${to})`);
    return to;
  }

  int8(i: number, dflt: number): number {
    const at = this.field(i, 1);
    return at === undefined ? dflt : this.buf.readInt8(at);
  }

  int32(i: number, dflt: number): number {
    const at = this.field(i, 4);
    return at === undefined ? dflt : this.buf.readInt32LE(at);
  }

  uint32(i: number, dflt: number): number {
    const at = this.field(i, 4);
    return at === undefined ? dflt : this.buf.readUInt32LE(at);
  }

  /** A 64-bit integer field that must be a safe integer (offsets, sizes, modes); `dflt` when absent. */
  int64(i: number, dflt: number): number {
    const at = this.field(i, 8);
    if (at === undefined) return dflt;
    const v = this.buf.readBigInt64LE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new FlatBufferError(`${this.what}: field ${i} holds ${v}, past what is read here`);
    return Number(v);
  }

  /** A string field as UTF-8 (at most `max` bytes), or undefined when absent. */
  string(i: number, max: number): string | undefined {
    const bytes = this.vectorBytes(i, max, "string");
    return bytes === undefined ? undefined : bytes.toString("utf8");
  }

  /** A [ubyte] field's bytes (a view of the buffer), at most `max`; undefined when absent. */
  bytes(i: number, max: number): Buffer | undefined {
    return this.vectorBytes(i, max, "vector");
  }

  private vectorBytes(i: number, max: number, kind: string): Buffer | undefined {
    const at = this.field(i, 4);
    if (at === undefined) return undefined;
    const v = this.follow(at, 4, i);
    const n = this.buf.readUInt32LE(v);
    if (n > max) throw new FlatBufferError(`${this.what}: ${kind} field ${i} of ${n} bytes is over the ${max}-byte limit`);
    if (v + 4 + n > this.buf.length) throw new FlatBufferError(`${this.what}: ${kind} field ${i} of ${n} bytes runs past the buffer`);
    return this.buf.subarray(v + 4, v + 4 + n);
  }

  /** A table field, or undefined when absent. */
  table(i: number, what: string): FlatTable | undefined {
    const at = this.field(i, 4);
    if (at === undefined) return undefined;
    return FlatTable.at(this.buf, this.follow(at, 4, i), what);
  }

  /** The length of a vector field of offsets (tables or strings), at most `max`; 0 when absent. */
  vectorLength(i: number, max: number): number {
    const at = this.field(i, 4);
    if (at === undefined) return 0;
    const v = this.follow(at, 4, i);
    const n = this.buf.readUInt32LE(v);
    if (n > max) throw new FlatBufferError(`${this.what}: vector field ${i} has ${n} elements, over the ${max} accepted`);
    if (v + 4 + 4 * n > this.buf.length) throw new FlatBufferError(`${this.what}: vector field ${i} of ${n} elements runs past the buffer`);
    return n;
  }

  /** Element `j` of a vector-of-tables field (after vectorLength checked the vector). */
  tableAt(i: number, j: number, what: string): FlatTable {
    const el = this.element(i, j);
    return FlatTable.at(this.buf, el + this.buf.readUInt32LE(el), what);
  }

  /** Element `j` of a vector-of-strings field, at most `max` bytes. */
  stringAt(i: number, j: number, max: number): string {
    const el = this.element(i, j);
    const s = el + this.buf.readUInt32LE(el);
    if (s + 4 > this.buf.length) throw new FlatBufferError(`${this.what}: string ${j} of field ${i} points outside the buffer`);
    const n = this.buf.readUInt32LE(s);
    if (n > max || s + 4 + n > this.buf.length) throw new FlatBufferError(`${this.what}: string ${j} of field ${i} (${n} bytes) is too long or runs past the buffer`);
    return this.buf.toString("utf8", s + 4, s + 4 + n);
  }

  private element(i: number, j: number): number {
    const at = this.field(i, 4)!;
    const v = at + this.buf.readUInt32LE(at);
    return v + 4 + 4 * j;
  }
}
