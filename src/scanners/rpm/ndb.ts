// rpm's ndb backend (`Packages.db`, SUSE, rpm >= 4.16): a header, a slot table of (package index, block
// offset, block count), and each package's header blob in 16-byte blocks behind its own small header.
import { PortcullisError } from "../../errors.js";

export class NdbError extends PortcullisError {
  readonly domain = "scanner";
  readonly code = "RPM_NDB_INVALID";
  override name = "NdbError";
}

const HEADER_MAGIC = 0x506d7052; // "RpmP"
const SLOT_MAGIC = 0x746f6c53; // "Slot"
const BLOB_MAGIC = 0x53626c42; // "BlbS"
const PAGE = 4096;
const SLOT_SIZE = 16;
const BLOCK = 16;
const BLOB_HEAD = 16;

export function readNdbBlobs(db: Buffer): Buffer[] {
  if (db.length < 32 || db.readUInt32LE(0) !== HEADER_MAGIC) throw new NdbError("not an rpm ndb database (bad magic)");
  const slotPages = db.readUInt32LE(12);
  if (slotPages === 0 || slotPages * PAGE > db.length) throw new NdbError(`slot table of ${slotPages} pages does not fit the file`);
  const slots = (slotPages * PAGE) / SLOT_SIZE - 2; // the file header takes the first two slots
  const out: Buffer[] = [];
  for (let i = 0; i < slots; i++) {
    const p = 32 + i * SLOT_SIZE;
    if (db.readUInt32LE(p) !== SLOT_MAGIC) continue;
    const pkgIndex = db.readUInt32LE(p + 4);
    const blkOffset = db.readUInt32LE(p + 8);
    const blkCount = db.readUInt32LE(p + 12);
    if (pkgIndex === 0) continue;
    const start = blkOffset * BLOCK;
    if (start + BLOB_HEAD > db.length || start + blkCount * BLOCK > db.length) throw new NdbError(`slot ${i} points past the end of the file`);
    if (db.readUInt32LE(start) !== BLOB_MAGIC) throw new NdbError(`slot ${i}: no blob at block ${blkOffset}`);
    if (db.readUInt32LE(start + 4) !== pkgIndex) throw new NdbError(`slot ${i}: blob belongs to package ${db.readUInt32LE(start + 4)}, not ${pkgIndex}`);
    const len = db.readUInt32LE(start + 12);
    if (start + BLOB_HEAD + len > db.length || len > blkCount * BLOCK) throw new NdbError(`slot ${i}: blob of ${len} bytes does not fit`);
    out.push(Buffer.from(db.subarray(start + BLOB_HEAD, start + BLOB_HEAD + len)));
  }
  return out;
}
