// Berkeley DB hash databases (rpm's `Packages` before 4.16): walk the hash pages, follow each value's
// overflow chain, return the values (rpm header blobs). Read-only, both byte orders, loops refused.
import { PortcullisError } from "../../errors.js";

export class BdbError extends PortcullisError {
  readonly domain = "scanner";
  readonly code = "RPM_BDB_INVALID";
  override name = "BdbError";
}

const HASH_MAGIC = 0x061561;
const P_HASH_UNSORTED = 2;
const P_HASH = 13;
const P_OVERFLOW = 7;
const H_KEYDATA = 1;
const H_OFFPAGE = 3;
const PAGE_HEADER = 26;

export function readBdbHashValues(db: Buffer): Buffer[] {
  if (db.length < 512) throw new BdbError("too short for a Berkeley DB file");
  let le: boolean;
  if (db.readUInt32LE(12) === HASH_MAGIC) le = true;
  else if (db.readUInt32BE(12) === HASH_MAGIC) le = false;
  else throw new BdbError("not a Berkeley DB hash database (bad magic)");
  const u32 = (o: number) => (le ? db.readUInt32LE(o) : db.readUInt32BE(o));
  const u16 = (o: number) => (le ? db.readUInt16LE(o) : db.readUInt16BE(o));
  const pageSize = u32(20);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw new BdbError(`page size ${pageSize} is not valid`);
  const lastPage = u32(32);
  const pages = Math.min(lastPage + 1, Math.floor(db.length / pageSize));
  const values: Buffer[] = [];
  for (let pg = 1; pg < pages; pg++) {
    const base = pg * pageSize;
    const type = db[base + 25]!;
    if (type !== P_HASH && type !== P_HASH_UNSORTED) continue;
    const entries = u16(base + 20);
    if (PAGE_HEADER + entries * 2 > pageSize) throw new BdbError(`page ${pg} claims ${entries} entries`);
    // Items alternate key, value; each item's index slot holds its offset in the page.
    for (let i = 1; i < entries; i += 2) {
      const off = u16(base + PAGE_HEADER + i * 2);
      if (off >= pageSize) throw new BdbError(`page ${pg} item ${i} is outside the page`);
      const itemType = db[base + off]!;
      if (itemType === H_OFFPAGE) {
        values.push(readOverflow(db, u32(base + off + 4), u32(base + off + 8), pageSize, pages, u16, u32));
      } else if (itemType === H_KEYDATA) {
        const end = i === 0 ? pageSize : u16(base + PAGE_HEADER + (i - 1) * 2);
        if (end > off + 1 && end <= pageSize) values.push(Buffer.from(db.subarray(base + off + 1, base + end)));
      }
    }
  }
  return values;
}

function readOverflow(db: Buffer, first: number, total: number, pageSize: number, pages: number, u16: (o: number) => number, u32: (o: number) => number): Buffer {
  const out = Buffer.alloc(total);
  let filled = 0;
  let pg = first;
  const seen = new Set<number>();
  while (pg !== 0 && filled < total) {
    if (pg >= pages || seen.has(pg)) throw new BdbError(`overflow chain from page ${first} ${pg >= pages ? "leaves the file" : "loops"}`);
    seen.add(pg);
    const base = pg * pageSize;
    if (db[base + 25] !== P_OVERFLOW) throw new BdbError(`page ${pg} in an overflow chain is not an overflow page`);
    const len = u16(base + 22);
    if (PAGE_HEADER + len > pageSize) throw new BdbError(`overflow page ${pg} claims ${len} bytes`);
    const n = Math.min(len, total - filled);
    db.copy(out, filled, base + PAGE_HEADER, base + PAGE_HEADER + n);
    filled += n;
    pg = u32(base + 16);
  }
  if (filled < total) throw new BdbError(`overflow chain from page ${first} ends after ${filled} of ${total} bytes`);
  return out;
}
