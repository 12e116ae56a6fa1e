// .NET applications: the `<app>.deps.json` the SDK writes beside every published application. Its
// `libraries` map (`"Newtonsoft.Json/13.0.1": {"type": "package"}`) names what was resolved; `targets`
// [runtimeTarget.name] says, per library, which assemblies it puts on the runtime path. Reported: libraries
// of type package, project or runtimepack (a self-contained app's bundled runtime, its synthetic
// `runtimepack.` prefix removed) that have runtime, runtimeTargets or native assets in the runtime target, or
// are not in it at all; when the file has no such target, every library. This is trivy's reading
// (pkg/dependency/parser/dotnet/core_deps), whose test expectations the tests use.
import type { Package } from "../../model/packages.js";
import { purl } from "../purl.js";
import { parseJsonFile, ScannerError } from "../errors.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

export const MAX_LIBRARIES = 100_000;
const MAX_FIELD = 1024;
const TYPES = new Set(["package", "project", "runtimepack"]);
const RUNTIME_PACK = "runtimepack.";

interface TargetLib {
  runtime?: unknown;
  runtimeTargets?: unknown;
  native?: unknown;
}

const nonEmpty = (v: unknown) => typeof v === "object" && v !== null && Object.keys(v).length > 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export class DotnetDepsScanner implements Scanner {
  readonly name = "dotnet-deps";
  readonly version = "1";
  readonly kind = "package" as const;
  /** Hundreds of KB for big applications. */
  readonly maxFileSize = 16 * 1024 * 1024;

  wants(e: EntryInfo): boolean {
    return e.path.endsWith(".deps.json");
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const packages: Package[] = [];
    for (const path of files.paths()) {
      if (!path.endsWith(".deps.json")) continue;
      for (const [name, version] of parseDepsJson(this.name, path, files.get(path)!)) {
        packages.push({ name, version, kind: "binary", package_db: `nuget:${path}`, filepath: path, purl: purl("nuget", name, version) });
      }
    }
    return { packages };
  }
}

/** The (name, version) pairs a deps.json puts on the runtime path, sorted by name then version. */
export function parseDepsJson(scanner: string, path: string, data: Buffer): Array<[string, string]> {
  const doc = parseJsonFile(scanner, path, data);
  if (!isObject(doc)) throw new ScannerError(scanner, path, "not a JSON object");
  const libraries = doc.libraries ?? {};
  if (!isObject(libraries)) throw new ScannerError(scanner, path, "libraries is not an object");
  const names = Object.keys(libraries);
  if (names.length > MAX_LIBRARIES) throw new ScannerError(scanner, path, `${names.length} libraries, more than the ${MAX_LIBRARIES} accepted`);
  const runtimeTarget = isObject(doc.runtimeTarget) && typeof doc.runtimeTarget.name === "string" ? doc.runtimeTarget.name : undefined;
  const targets = isObject(doc.targets) ? doc.targets : {};
  const target = runtimeTarget !== undefined && isObject(targets[runtimeTarget]) ? (targets[runtimeTarget] as Record<string, unknown>) : undefined;
  // The target's keys with the runtimepack. prefix removed, as the libraries' are.
  const targetLibs = new Map<string, TargetLib>();
  if (target) for (const [k, v] of Object.entries(target)) targetLibs.set(k.startsWith(RUNTIME_PACK) ? k.slice(RUNTIME_PACK.length) : k, isObject(v) ? v : {});
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  for (const key of names) {
    const lib = libraries[key];
    const type = isObject(lib) && typeof lib.type === "string" ? lib.type.toLowerCase() : "";
    if (!TYPES.has(type)) continue;
    const slash = key.indexOf("/");
    if (slash <= 0 || slash === key.length - 1 || key.length > MAX_FIELD) continue; // not name/version
    let name = key.slice(0, slash);
    const version = key.slice(slash + 1);
    if (name.startsWith(RUNTIME_PACK)) name = name.slice(RUNTIME_PACK.length);
    const id = `${name}/${version}`;
    if (target) {
      const t = targetLibs.get(id);
      if (t && !nonEmpty(t.runtime) && !nonEmpty(t.runtimeTargets) && !nonEmpty(t.native)) continue; // compile-time only
    }
    if (seen.has(id)) continue;
    seen.add(id);
    out.push([name, version]);
  }
  return out.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
}
