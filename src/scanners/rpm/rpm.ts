// rpm: the package database in all three backends and both locations: rpmdb.sqlite (SQLite, read with
// sql.js: WASM, no native build), Packages (Berkeley DB hash) and Packages.db (ndb), under var/lib/rpm/
// or usr/lib/sysimage/rpm/. Each header's file list (BASENAMES, DIRNAMES, DIRINDEXES) gives the
// paths a language package may be reported by (owners/paths.ts): file ownership.
import initSqlJs from "sql.js";
import type { OwnedFiles, Package } from "../../model/packages.js";
import { mayHoldLanguagePackage } from "../owners/paths.js";
import { ScannerError } from "../errors.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";
import { readBdbHashValues } from "./bdb.js";
import { parseRpmHeader, parseSourceRpm, type RpmHeader } from "./header.js";
import { readNdbBlobs } from "./ndb.js";

const DIRS = ["var/lib/rpm/", "usr/lib/sysimage/rpm/"];
const FILES = { "rpmdb.sqlite": "sqlite", Packages: "bdb", "Packages.db": "ndb" } as const;
type Backend = (typeof FILES)[keyof typeof FILES];

function backendOf(path: string): Backend | undefined {
  for (const d of DIRS) {
    if (path.startsWith(d)) return FILES[path.slice(d.length) as keyof typeof FILES];
  }
  return undefined;
}

let sqlJs: ReturnType<typeof initSqlJs> | undefined;

async function sqliteBlobs(data: Buffer): Promise<Uint8Array[]> {
  sqlJs ??= initSqlJs();
  const SQL = await sqlJs;
  const db = new SQL.Database(data);
  try {
    const res = db.exec("SELECT blob FROM Packages");
    return (res[0]?.values ?? []).map((row) => row[0] as Uint8Array);
  } finally {
    db.close();
  }
}

export function rpmPackage(h: RpmHeader, packageDb: string): Package {
  const version = `${h.epoch ? `${h.epoch}:` : ""}${h.version}-${h.release}`;
  const p: Package = { name: h.name, version, kind: "binary", package_db: packageDb };
  if (h.arch) p.arch = h.arch;
  // Modularity labels are name:stream:version:context; claircore keeps name:stream.
  if (h.license) p.licenses = [h.license];
  if (h.module) p.module = h.module.split(":").slice(0, 2).join(":");
  const src = h.sourceRpm ? parseSourceRpm(h.sourceRpm) : undefined;
  if (src) p.source = { name: src.name, version: `${h.epoch ? `${h.epoch}:` : ""}${src.version}-${src.release}`, kind: "source" };
  return p;
}

export class RpmScanner implements Scanner {
  readonly name = "rpm";
  /** 2: owners (file ownership); 3: licences (for SBOMs). */
  readonly version = "3";
  readonly kind = "package" as const;
  /** rpm databases of big images run to a few hundred MB. */
  readonly maxFileSize = 512 * 1024 * 1024;

  wants(e: EntryInfo): boolean {
    return backendOf(e.path) !== undefined;
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    const owners: OwnedFiles[] = [];
    const seen = new Set<string>();
    for (const dir of DIRS) {
      for (const file of Object.keys(FILES)) {
        const path = dir + file;
        const data = files.get(path);
        if (!data) continue;
        // var/lib/rpm is often a link to usr/lib/sysimage/rpm: read the database once.
        const identity = `${data.length}:${data.subarray(0, 64).toString("hex")}`;
        if (seen.has(identity)) continue;
        seen.add(identity);
        const backend = backendOf(path)!;
        let blobs: Uint8Array[];
        try {
          blobs = backend === "sqlite" ? await sqliteBlobs(data) : backend === "bdb" ? readBdbHashValues(data) : readNdbBlobs(data);
        } catch (e) {
          throw new ScannerError(this.name, path, `not a readable ${backend} rpm database: ${(e as Error).message}`);
        }
        for (const [i, blob] of blobs.entries()) {
          // Berkeley DB also stores a small counter record; it is no header.
          if (backend === "bdb" && blob.length <= 8) continue;
          try {
            const h = parseRpmHeader(blob, { files: mayHoldLanguagePackage });
            packages.push(rpmPackage(h, path));
            if (h.files?.length) owners.push({ db: path, packageDb: path, package: h.name, paths: h.files });
          } catch (e) {
            throw new ScannerError(this.name, path, `package header ${i}: ${(e as Error).message}`);
          }
        }
      }
    }
    return { packages, owners };
  }
}
