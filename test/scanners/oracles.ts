// What each ecosystem's own tool says is installed in an unpacked image (a rootfs folder), as sorted
// `name\tversion` lines, and what Portcullis found in the same image grouped the same way: the
// "packages found vs the tools" figure of issue 18 (bench/scanners.ts prints it, the image test asserts it).
//   dpkg:  dpkg-query --admindir=ROOT/var/lib/dpkg, packages in state `ii`
//   go:    go version -m ROOT (walks the tree for Go executables), read as trivy, syft and osv-scalibr read it
//   python: Python's importlib.metadata over every site-/dist-packages folder of ROOT
//   maven: unzip of every jar's pom.properties files (any folder), else its manifest's main section
//   ruby:  RubyGems in the image itself (chroot ROOT ruby), when the image has Ruby
//   npm:   `npm ls --all --json` in every folder holding a node_modules, when the image has one
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { IndexReport } from "../../src/model/index-report.js";
import { findTool } from "../../src/cli/tools.js";

const run = promisify(execFile);
const big = { maxBuffer: 256 << 20 };

function tool(name: string): string {
  const p = findTool(name);
  if (!p) throw new Error(`${name} not found; run \`npm run env:setup\``);
  return p;
}

export type Ecosystem = "dpkg" | "go" | "python" | "maven" | "ruby" | "npm";
export const ECOSYSTEMS: Ecosystem[] = ["dpkg", "go", "python", "maven", "ruby", "npm"];

/** Portcullis's packages of an index report, by ecosystem (from each package's database). */
export function found(report: IndexReport): Record<Ecosystem, string[]> {
  const out: Record<Ecosystem, string[]> = { dpkg: [], go: [], python: [], maven: [], ruby: [], npm: [] };
  const prefix: Array<[string, Ecosystem]> = [["var/lib/dpkg/status", "dpkg"], ["go:", "go"], ["python:", "python"], ["maven:", "maven"], ["ruby:", "ruby"], ["nodejs:", "npm"]];
  for (const p of Object.values(report.packages ?? {})) {
    for (const env of report.environments?.[p.id] ?? []) {
      const e = prefix.find(([pre]) => env.package_db.startsWith(pre));
      if (e) out[e[1]].push(`${p.name}\t${p.version}`);
    }
  }
  for (const k of ECOSYSTEMS) out[k].sort();
  return out;
}

export async function dpkgQuery(root: string): Promise<string[]> {
  const { stdout } = await run("dpkg-query", [`--admindir=${join(root, "var/lib/dpkg")}`, "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n"], big);
  return stdout.split("\n").filter((l) => l.startsWith("ii ")).map((l) => l.split("\t").slice(1).join("\t")).sort();
}

/**
 * `go version -m` over the tree: per binary, stdlib at the Go version without what follows it, the main
 * module (or a GOPATH build's `path` at `(devel)`), each dependency under its replacement when `=>` says
 * so. `cmd/...` paths (the Go distribution's own commands) and command-line-arguments are not packages.
 */
export async function goVersionM(root: string): Promise<string[]> {
  const { stdout } = await run(tool("go"), ["version", "-m", root], big).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }));
  const out: string[] = [];
  let path: string | undefined;
  let main = false;
  const close = () => {
    if (!main && path && path !== "command-line-arguments" && !path.startsWith("cmd/")) out.push(`${path}\t(devel)`);
  };
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("\t")) {
      const m = /: (go\S+|devel)/.exec(line);
      if (!m) continue;
      close();
      path = undefined;
      main = false;
      out.push(`stdlib\t${m[1]!.replace(/^go/, "v")}`);
      continue;
    }
    const f = line.trim().split("\t");
    if (f[0] === "path") path = f[1];
    if (f[0] === "mod") main = true;
    if (f[0] === "mod" || f[0] === "dep") out.push(`${f[1]}\t${f[2]}`);
    if (f[0] === "=>") out[out.length - 1] = `${f[1]}\t${f[2] || "(devel)"}`;
  }
  close();
  return out.sort();
}

export async function pipMetadata(root: string): Promise<string[]> {
  const script = [
    "import glob, importlib.metadata as md, sys",
    "root = sys.argv[1]",
    "dirs = sorted(set(glob.glob(root + '/usr/lib/python3*/*-packages') + glob.glob(root + '/usr/local/lib/python3*/*-packages') + glob.glob(root + '/usr/lib/python3/dist-packages')))",
    "for d in md.distributions(path=dirs): print(d.metadata['Name'] + '\\t' + d.version)",
  ].join("\n");
  const { stdout } = await run("python3", ["-c", script, root], big);
  return stdout.split("\n").filter(Boolean).sort();
}

/** Every regular *.jar file's pom.properties (any folder); jars without one are not counted (no oracle). */
export async function unzipJars(root: string): Promise<string[]> {
  const { stdout } = await run("find", [root, "-type", "f", "-name", "*.jar"], big);
  const out: string[] = [];
  for (const jar of stdout.split("\n").filter(Boolean)) {
    const names = (await run("unzip", ["-Z1", jar], big)).stdout.split("\n").filter((n) => n === "pom.properties" || n.endsWith("/pom.properties"));
    const mine = new Set<string>();
    for (const n of names) {
      const text = (await run("unzip", ["-p", jar, n], big)).stdout;
      const get = (k: string) => new RegExp(`^${k}=(.*)$`, "m").exec(text)?.[1]?.trim();
      if (get("groupId") && get("artifactId") && get("version")) mine.add(`${get("groupId")}:${get("artifactId")}\t${get("version")}`);
    }
    out.push(...mine);
  }
  return out.sort();
}

export async function gemList(root: string): Promise<string[]> {
  if (!existsSync(join(root, "usr/bin/ruby"))) return [];
  const { stdout } = await run("chroot", [root, "/usr/bin/ruby", "-e", 'Gem::Specification.each { |s| puts "#{s.name}\\t#{s.version}" }'], big);
  return stdout.split("\n").filter(Boolean).sort();
}

export async function npmLs(root: string): Promise<string[]> {
  const { stdout } = await run("find", [root, "-type", "d", "-name", "node_modules", "-prune"], big);
  const out: string[] = [];
  for (const dir of stdout.split("\n").filter(Boolean)) {
    const ls = await run("npm", ["ls", "--all", "--json"], { ...big, cwd: join(dir, "..") }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "{}" }));
    const walk = (deps: Record<string, { version?: string; dependencies?: Record<string, unknown> }> | undefined) => {
      for (const [name, d] of Object.entries(deps ?? {})) {
        if (d.version) out.push(`${name}\t${d.version}`);
        walk(d.dependencies as typeof deps);
      }
    };
    walk((JSON.parse(ls.stdout) as { dependencies?: Record<string, { version?: string }> }).dependencies);
  }
  return out.sort();
}

export async function oracles(root: string): Promise<Record<Ecosystem, string[]>> {
  return { dpkg: await dpkgQuery(root), go: await goVersionM(root), python: await pipMetadata(root), maven: await unzipJars(root), ruby: await gemList(root), npm: await npmLs(root) };
}

/** Multiset comparison: how many of `want` are in `got`, and what is missing or extra. */
export function compare(want: string[], got: string[]): { matched: number; missing: string[]; extra: string[] } {
  const left = new Map<string, number>();
  for (const g of got) left.set(g, (left.get(g) ?? 0) + 1);
  const missing: string[] = [];
  let matched = 0;
  for (const w of want) {
    const n = left.get(w) ?? 0;
    if (n > 0) {
      left.set(w, n - 1);
      matched++;
    } else missing.push(w);
  }
  const extra = [...left].flatMap(([k, n]) => Array<string>(n).fill(k));
  return { matched, missing, extra };
}

export interface Coverage {
  ecosystem: Ecosystem;
  /** What the ecosystem's tool lists. */
  listed: string[];
  want: number;
  matched: number;
  missing: string[];
  extra: string[];
}

/** Indexes the layout's image `tag` with the default scanners and compares it with the tools on `root`. */
export async function coverage(layout: string, tag: string, root: string): Promise<Coverage[]> {
  const { Indexer } = await import("../../src/indexer/indexer.js");
  const { openLocalImage } = await import("../../src/indexer/sources/local.js");
  const { defaultScanners } = await import("../../src/scanners/index.js");
  const { openStore } = await import("../../src/store/open.js");
  const img = await openLocalImage(`oci:${layout}:${tag}`, { os: "linux", architecture: "amd64" });
  if (!img) throw new Error(`no image ${tag} in ${layout}`);
  const store = await openStore("memory:");
  try {
    const { report } = await new Indexer({ store, scanners: defaultScanners() }).index(img.manifest, img.source);
    if (report.state !== "IndexFinished") throw new Error(`indexing ${tag} ended in ${report.state}: ${report.err}`);
    const got = found(report);
    const want = await oracles(root);
    return ECOSYSTEMS.map((ecosystem) => ({ ecosystem, listed: want[ecosystem], want: want[ecosystem].length, ...compare(want[ecosystem], got[ecosystem]) }));
  } finally {
    await store.close?.();
  }
}

/** One line per ecosystem: `dpkg: 134 of 134 (100.0%), 0 extra`. */
export function coverageLines(c: Coverage[]): string[] {
  return c.map((x) => `${x.ecosystem.padEnd(6)} ${String(x.matched).padStart(4)} of ${String(x.want).padEnd(4)} ${x.want ? `(${((100 * x.matched) / x.want).toFixed(1)}%)` : "(none in the image)"}, ${x.extra.length} extra${x.missing.length ? `; missing: ${x.missing.slice(0, 5).join(", ")}` : ""}${x.extra.length ? `; extra: ${x.extra.slice(0, 5).join(", ")}` : ""}`);
}
