// One file of the CLI's file store: a header line naming what the file holds (its key), the payload's length
// and SHA-256, then the payload as JSON. Written atomically (temporary file, fsync, rename, fsync of the
// folder); read with a size bound and checked, so a truncated, damaged or misplaced file is never trusted.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { PortcullisError } from "../errors.js";

const FORMAT = "portcullis-record/1";

/** A record that is damaged, too large or not what its path promises. */
export class RecordError extends PortcullisError {
  readonly domain = "store";
  readonly code = "STORE_DAMAGED";
  constructor(readonly path: string, why: string) {
    super(`store file ${path} ${why}`);
  }
}

export async function writeRecord(path: string, key: string, value: unknown): Promise<void> {
  const payload = Buffer.from(JSON.stringify(value), "utf8");
  const header = JSON.stringify({ format: FORMAT, key, bytes: payload.length, sha256: createHash("sha256").update(payload).digest("hex") });
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  const fh = await open(tmp, "wx", 0o644);
  try {
    await fh.writeFile(Buffer.concat([Buffer.from(`${header}\n`, "utf8"), payload]));
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  // The rename itself survives a crash only once the folder is synced.
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** The record's payload; undefined when there is no file; a RecordError when it is damaged or too large. */
export async function readRecord<T>(path: string, key: string, maxBytes: number): Promise<T | undefined> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  let buf: Buffer;
  try {
    const { size } = await fh.stat();
    if (size > maxBytes + 1024) throw new RecordError(path, `is ${size} bytes, more than the ${maxBytes} a record may have`);
    buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    if (off !== size) throw new RecordError(path, "changed size while it was read");
  } finally {
    await fh.close();
  }
  const nl = buf.indexOf(0x0a);
  if (nl < 0 || nl > 1024) throw new RecordError(path, "has no record header (damaged)");
  let h: { format?: unknown; key?: unknown; bytes?: unknown; sha256?: unknown };
  try {
    h = JSON.parse(buf.subarray(0, nl).toString("utf8")) as typeof h;
  } catch {
    throw new RecordError(path, "has an unreadable record header (damaged)");
  }
  if (h.format !== FORMAT) throw new RecordError(path, `is not a ${FORMAT} file`);
  if (h.key !== key) throw new RecordError(path, `holds ${JSON.stringify(h.key)}, not ${JSON.stringify(key)}`);
  const payload = buf.subarray(nl + 1);
  if (payload.length !== h.bytes) throw new RecordError(path, `has ${payload.length} bytes of payload where its header says ${String(h.bytes)} (truncated or damaged)`);
  if (createHash("sha256").update(payload).digest("hex") !== h.sha256) throw new RecordError(path, "does not match its checksum (damaged)");
  try {
    return JSON.parse(payload.toString("utf8")) as T;
  } catch {
    throw new RecordError(path, "holds JSON that does not parse (damaged)");
  }
}
