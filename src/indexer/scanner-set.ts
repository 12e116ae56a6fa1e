// The scanner set's identity, apart from the indexer so a scan answered from the store need not load it.
import { createHash } from "node:crypto";
import type { ScannerInfo } from "../model/scanner.js";

/** Like Clair's index state: a hash of the scanner names, versions and kinds. */
export function scannerSetHash(infos: readonly Pick<ScannerInfo, "name" | "version" | "kind">[]): string {
  const h = createHash("sha256");
  for (const s of [...infos].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) h.update(`${s.name}\0${s.version}\0${s.kind}\n`);
  return h.digest("hex").slice(0, 32);
}
