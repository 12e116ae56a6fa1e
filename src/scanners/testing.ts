// Test helpers for scanners: the shared fixtures of peer projects (../shared/fixtures beside the repo)
// and a Map-backed LayerFiles.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LayerFiles } from "../model/scanner.js";

export function fixturesDir(...parts: string[]): string {
  const dir = fileURLToPath(new URL("../../../shared/fixtures", import.meta.url));
  if (!existsSync(dir)) throw new Error(`the shared fixtures are not at ${dir}: the shared/ folder must sit beside the repository`);
  return join(dir, ...parts);
}

export function fixtureNames(family: string): string[] {
  return readdirSync(fixturesDir(family)).filter((n) => statSync(fixturesDir(family, n)).isDirectory()).sort();
}

/** expected.tsv as sorted `name\tversion` lines (a multiset). */
export function expectedTsv(family: string, name: string): string[] {
  return readFileSync(fixturesDir(family, name, "expected.tsv"), "utf8").split("\n").filter(Boolean).sort();
}

export class MapLayerFiles implements LayerFiles {
  constructor(private readonly files: Map<string, Buffer>, readonly digest = `sha256:${"0".repeat(64)}`) {}
  static of(entries: Record<string, string | Buffer>): MapLayerFiles {
    return new MapLayerFiles(new Map(Object.entries(entries).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)])));
  }
  get(path: string): Buffer | undefined {
    return this.files.get(path);
  }
  paths(): string[] {
    return [...this.files.keys()];
  }
}
