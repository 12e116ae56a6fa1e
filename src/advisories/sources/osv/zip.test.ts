import { strToU8, zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { AdvisoryInputError, MiB } from "../../input.js";
import { crc32, crc32Table, looksLikeZip, readZip, type ZipEntry, type ZipLimits } from "./zip.js";

const SMALL: ZipLimits = { maxEntryBytes: 1 * MiB, maxTotalBytes: 4 * MiB, maxEntries: 100 };

function all(archive: string, bytes: Uint8Array, limits: ZipLimits = SMALL): ZipEntry[] {
  return [...readZip(archive, bytes, limits)];
}

function catchError(fn: () => unknown): AdvisoryInputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AdvisoryInputError) return e;
    throw e;
  }
  throw new Error("expected an AdvisoryInputError");
}

/** Rewrites the uncompressed size an archive declares for every entry (local and central headers). */
function declareSize(zip: Uint8Array, size: number): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  for (let i = 0; i + 4 <= out.length; i++) {
    const sig = view.getUint32(i, true);
    if (sig === 0x04034b50) view.setUint32(i + 22, size, true);
    if (sig === 0x02014b50) view.setUint32(i + 24, size, true);
  }
  return out;
}

/** A stored-only archive written by hand, optionally with ZIP64 records (sizes and offsets in the extra field). */
function handZip(files: Array<[string, Uint8Array]>, zip64: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const le = (n: number, bytes: number) => {
    const b = new Uint8Array(bytes);
    const v = new DataView(b.buffer);
    if (bytes === 2) v.setUint16(0, n, true);
    else if (bytes === 4) v.setUint32(0, n, true);
    else v.setBigUint64(0, BigInt(n), true);
    return b;
  };
  const cat = (...xs: Uint8Array[]) => {
    const out = new Uint8Array(xs.reduce((n, x) => n + x.length, 0));
    let at = 0;
    for (const x of xs) {
      out.set(x, at);
      at += x.length;
    }
    return out;
  };
  for (const [name, data] of files) {
    const n = strToU8(name);
    const crc = crc32(data);
    const local = cat(le(0x04034b50, 4), le(20, 2), le(0x800, 2), le(0, 2), le(0, 4), le(crc, 4), le(data.length, 4), le(data.length, 4), le(n.length, 2), le(0, 2), n, data);
    const extra = zip64 ? cat(le(1, 2), le(24, 2), le(data.length, 8), le(data.length, 8), le(offset, 8)) : new Uint8Array(0);
    const big = zip64 ? 0xffffffff : undefined;
    central.push(
      cat(le(0x02014b50, 4), le(45, 2), le(45, 2), le(0x800, 2), le(0, 2), le(0, 4), le(crc, 4), le(big ?? data.length, 4), le(big ?? data.length, 4),
        le(n.length, 2), le(extra.length, 2), le(0, 2), le(0, 2), le(0, 2), le(0, 4), le(big ?? offset, 4), n, extra), // prettier-ignore
    );
    parts.push(local);
    offset += local.length;
  }
  const cd = cat(...central);
  const cdOffset = offset;
  const tail: Uint8Array[] = [];
  if (zip64) {
    const z64At = cdOffset + cd.length;
    tail.push(cat(le(0x06064b50, 4), le(44, 8), le(45, 2), le(45, 2), le(0, 4), le(0, 4), le(files.length, 8), le(files.length, 8), le(cd.length, 8), le(cdOffset, 8)));
    tail.push(cat(le(0x07064b50, 4), le(0, 4), le(z64At, 8), le(1, 4)));
    tail.push(cat(le(0x06054b50, 4), le(0, 2), le(0, 2), le(0xffff, 2), le(0xffff, 2), le(0xffffffff, 4), le(0xffffffff, 4), le(0, 2)));
  } else {
    tail.push(cat(le(0x06054b50, 4), le(0, 2), le(0, 2), le(files.length, 2), le(files.length, 2), le(cd.length, 4), le(cdOffset, 4), le(0, 2)));
  }
  return cat(...parts, cd, ...tail);
}

describe("readZip", () => {
  it("reads every entry of an fflate archive, deflated and stored, and leaves directories out", () => {
    const zip = zipSync({
      "npm/GHSA-aaaa-bbbb-cccc.json": strToU8('{"id":"GHSA-aaaa-bbbb-cccc"}'),
      "npm/sub/": new Uint8Array(0),
      "stored.json": [strToU8("x".repeat(1000)), { level: 0 }],
    });
    expect(looksLikeZip(zip)).toBe(true);
    const entries = all("npm/all.zip", zip);
    expect(entries.map((e) => e.name)).toEqual(["npm/GHSA-aaaa-bbbb-cccc.json", "stored.json"]);
    const first = entries[0];
    expect(first && "data" in first && new TextDecoder().decode(first.data)).toBe('{"id":"GHSA-aaaa-bbbb-cccc"}');
  });

  it("reads ZIP64 end records and extra fields", () => {
    const zip = handZip(
      [
        ["a.json", strToU8("[1]")],
        ["b.json", strToU8("[2]")],
      ],
      true,
    );
    const entries = all("z64.zip", zip);
    expect(entries.map((e) => ("data" in e ? new TextDecoder().decode(e.data) : e.skipped))).toEqual(["[1]", "[2]"]);
    expect(all("plain.zip", handZip([["a.json", strToU8("[1]")]], false))).toHaveLength(1);
  });

  it("refuses an entry that declares a small size and inflates past it (a zip bomb), naming archive and entry", () => {
    const bomb = declareSize(zipSync({ "bomb.json": new Uint8Array(64 * MiB) }), 100);
    expect(bomb.length).toBeLessThan(200_000);
    const started = Date.now();
    const e = catchError(() => all("npm/all.zip", bomb));
    expect(e.code).toBe("ZIP_LIMIT");
    expect(e.file).toBe("npm/all.zip");
    expect(e.entry).toBe("bomb.json");
    expect(e.message).toMatch(/^archive npm\/all\.zip, entry bomb\.json: inflates past the 100 bytes it declares/);
    // Stopped after a few steps, not after inflating 64 MiB.
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("skips an entry that honestly declares more than the per-entry limit, without inflating it", () => {
    const zip = zipSync({ "big.json": new Uint8Array(2 * MiB), "ok.json": strToU8("{}") });
    const entries = all("a.zip", zip);
    expect(entries[0]).toEqual({ name: "big.json", skipped: `declares ${2 * MiB} bytes, over the per-entry limit of ${1 * MiB}` });
    expect(entries[1]?.name).toBe("ok.json");
  });

  it("refuses entries whose name climbs out or is absolute", () => {
    for (const name of ["../evil.json", "osv/../../evil.json", "/etc/passwd", "C:/x.json", "a\\..\\b.json"]) {
      const e = catchError(() => all("evil.zip", zipSync({ "fine.json": strToU8("{}"), [name]: strToU8("{}") })));
      expect(e.code, name).toBe("ZIP_PATH");
      expect(e.entry).toBe(name);
      expect(e.message).toContain(`archive evil.zip, entry ${name}`);
    }
  });

  it("refuses archives over the total and entry-count limits", () => {
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 5; i++) files[`f${i}.json`] = new Uint8Array(1 * MiB);
    expect(catchError(() => all("t.zip", zipSync(files))).code).toBe("ZIP_LIMIT");
    const many: Record<string, Uint8Array> = {};
    for (let i = 0; i < 101; i++) many[`f${i}.json`] = strToU8("{}");
    const e = catchError(() => all("n.zip", zipSync(many)));
    expect(e.code).toBe("ZIP_LIMIT");
    expect(e.message).toContain("101 entries, over the limit of 100");
  });

  it("refuses corrupt archives: CRC mismatch, truncation, not a zip", () => {
    const zip = zipSync({ "a.json": [strToU8('{"id":"x"}'), { level: 0 }] });
    const flipped = zip.slice();
    const at = Buffer.from(flipped).indexOf('{"id"');
    flipped[at + 2] = 0x58;
    expect(catchError(() => all("c.zip", flipped)).message).toContain("CRC-32 mismatch");
    expect(catchError(() => all("t.zip", zip.subarray(0, zip.length - 30))).code).toBe("BAD_ZIP");
    expect(catchError(() => all("x.zip", strToU8("not a zip at all, just text"))).code).toBe("BAD_ZIP");
  });

  it("computes the ZIP CRC-32", () => {
    expect(crc32(strToU8("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const sample = strToU8("The quick brown fox jumps over the lazy dog".repeat(100));
    expect(crc32Table(sample)).toBe(crc32(sample));
    expect(crc32Table(strToU8("123456789"))).toBe(0xcbf43926);
  });
});
