// Test helpers for the version schemes: the comparison vectors of ../shared/fixtures/advisories/versions/
// (format in that folder's README: `A OP B` per line, OP one of < > = ==, `#` and `//` comments).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Vector {
  file: string;
  /** 1-based line number in the file. */
  line: number;
  a: string;
  b: string;
  /** -1, 0 or 1: the sign of compare(a, b) the file expects. */
  want: number;
}

export function vectorsDir(): string {
  const dir = fileURLToPath(new URL("../../../shared/fixtures/advisories/versions/", import.meta.url));
  if (!existsSync(dir)) throw new Error(`the shared fixtures are not at ${dir}: the shared/ folder must sit beside the repository`);
  return dir;
}

const OPS: Record<string, number> = { "<": -1, ">": 1, "=": 0, "==": 0 };

export function readVectors(file: string): Vector[] {
  const text = readFileSync(join(vectorsDir(), file), "utf8");
  const out: Vector[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("//")) return;
    const parts = line.split(/\s+/);
    const want = OPS[parts[1] ?? ""];
    if (parts.length !== 3 || want === undefined) throw new Error(`${file}:${i + 1}: not "A OP B": ${raw}`);
    out.push({ file, line: i + 1, a: parts[0]!, b: parts[2]!, want });
  });
  return out;
}

/** A deterministic sample of up to n items, spread evenly over the list (first and last included). */
export function sample<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items.slice();
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(items[Math.floor((i * (items.length - 1)) / (n - 1))]!);
  return out;
}

/** A small seeded PRNG (mulberry32), so generated test strings are the same on every run. */
export function prng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` random strings of 1..maxLen tokens drawn from `tokens`, reproducible from `seed`. */
export function randomVersions(seed: number, tokens: readonly string[], count: number, maxLen = 6): string[] {
  const rnd = prng(seed);
  const out = new Set<string>();
  while (out.size < count) {
    const n = 1 + Math.floor(rnd() * maxLen);
    let s = "";
    for (let i = 0; i < n; i++) s += tokens[Math.floor(rnd() * tokens.length)];
    out.add(s);
  }
  return [...out];
}
