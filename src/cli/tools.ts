import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Where test/env/setup.sh puts the tools it builds or unpacks (kube-apiserver, kubectl, helm). */
export function toolDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const cache = env.PORTCULLIS_CACHE ?? "/var/cache/portcullis";
  const tools = env.PORTCULLIS_TOOLS ?? join(cache, "tools");
  const pgBins = ["17", "16", "15", "14", "13"].map((v) => `/usr/lib/postgresql/${v}/bin`);
  return [join(tools, "bin"), ...(env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/sbin", "/sbin", ...pgBins];
}

/** The absolute path of an executable named `name`, looked up in toolDirs(), or undefined. */
export function findTool(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of toolDirs(env)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface ToolSpec {
  /** What the user knows it as. */
  label: string;
  /** Executable names, first found wins. */
  names: string[];
  args: string[];
  /** Picks the version out of the command's output. */
  version: RegExp;
}

export const TOOLS: ToolSpec[] = [
  { label: "etcd", names: ["etcd"], args: ["--version"], version: /etcd Version:\s*(\S+)/ },
  { label: "kube-apiserver", names: ["kube-apiserver"], args: ["--version"], version: /Kubernetes\s+(v\S+)/ },
  { label: "kubectl", names: ["kubectl"], args: ["version", "--client"], version: /Client Version:\s*(v\S+)/ },
  { label: "helm", names: ["helm"], args: ["version", "--short"], version: /(v\d+\.\d+\.\d+\S*)/ },
  { label: "registry", names: ["docker-registry", "registry"], args: ["--version"], version: /(v?\d+\.\d+\.\d+\S*)/ },
  { label: "skopeo", names: ["skopeo"], args: ["--version"], version: /version\s+(\S+)/ },
  { label: "umoci", names: ["umoci"], args: ["--version"], version: /version\s+(\S+)/ },
  { label: "htpasswd", names: ["htpasswd"], args: ["-h"], version: /(htpasswd)/ },
  { label: "openssl", names: ["openssl"], args: ["version"], version: /OpenSSL\s+(\S+)/ },
  { label: "postgres", names: ["postgres"], args: ["--version"], version: /\(PostgreSQL\)\s+(\S+)/ },
];

export interface ToolReport {
  label: string;
  path?: string;
  version?: string;
  error?: string;
}

export async function probeTool(spec: ToolSpec, env: NodeJS.ProcessEnv = process.env): Promise<ToolReport> {
  let path: string | undefined;
  for (const name of spec.names) {
    path = findTool(name, env);
    if (path) break;
  }
  if (!path) return { label: spec.label, error: `not found (looked for ${spec.names.join(", ")})` };
  try {
    const { stdout, stderr } = await run(path, spec.args, { timeout: 15_000 }).catch((e: unknown) => {
      // htpasswd -h exits non-zero but prints its usage; keep whatever it printed.
      const err = e as { stdout?: string; stderr?: string };
      if (err.stdout !== undefined || err.stderr !== undefined) return { stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
      throw e;
    });
    const match = spec.version.exec(`${stdout}\n${stderr}`);
    return match ? { label: spec.label, path, version: match[1] } : { label: spec.label, path, error: "version not recognised" };
  } catch (e) {
    return { label: spec.label, path, error: `did not run: ${(e as Error).message}` };
  }
}
