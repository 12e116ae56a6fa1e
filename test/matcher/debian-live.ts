// What the live Debian matcher tests (fixture README, C4) share: Debian's own .debs from the archive
// (apt-get download, cached beside the test images), the version a package's own changelog fixes a CVE in,
// a root holding installed packages as dpkg would leave them, images of such roots as OCI layouts, and
// `portcullis` run as users run it.
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

export function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tsx, [bin, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Whether `a op b` holds for dpkg itself (`dpkg --compare-versions`). */
export function dpkgHolds(a: string, op: "lt" | "le" | "eq" | "ge" | "gt", b: string): boolean {
  try {
    execFileSync("dpkg", ["--compare-versions", a, op, b], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The candidate .deb of binary package `name` from Debian's archive (apt-get download), cached beside the test images. */
export function downloadDeb(name: string): string {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new Error(`not a Debian package name: ${JSON.stringify(name)}`);
  const dir = join(process.env.PORTCULLIS_CACHE ?? "/var/cache/portcullis", "debs");
  mkdirSync(dir, { recursive: true });
  const prefix = `${name}_`;
  const have = () => readdirSync(dir).find((f) => f.startsWith(prefix) && /^[^_]+_[^_]+_[a-z0-9-]+\.deb$/.test(f));
  if (!have()) execFileSync("apt-get", ["download", "-q", name], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const deb = have();
  if (!deb) throw new Error(`apt-get download ${name} left nothing in ${dir}`);
  return join(dir, deb);
}

/** A package's `usr/share/doc/<pkg>/changelog.Debian.gz`, read from its .deb. */
export function debChangelog(deb: string, name: string): string {
  const path = `./usr/share/doc/${name}/changelog.Debian.gz`;
  const tar = execFileSync("dpkg-deb", ["--fsys-tarfile", deb], { maxBuffer: 256 << 20 });
  const file = execFileSync("tar", ["-xOf", "-", path], { input: tar, maxBuffer: 16 << 20 });
  return gunzipSync(file).toString("utf8");
}

/** The changelog's entries, newest first: `{source, version}` of each `source (version) suites; urgency=…` line. */
export function changelogEntries(changelog: string): Array<{ source: string; version: string }> {
  const out: Array<{ source: string; version: string }> = [];
  for (const line of changelog.split("\n")) {
    const head = /^(\S+) \(([^)]+)\) /.exec(line);
    if (head) out.push({ source: head[1]!, version: head[2]! });
  }
  return out;
}

/**
 * The version of the oldest changelog entry that names `cve` (later entries may name it again: glibc's
 * 2.36-9+deb12u5 "local-CVE-2023-4911.patch: upstreamed"). `CVE-2023-4911` does not match `CVE-2023-49110`.
 */
export function fixedIn(changelog: string, cve: string): string | undefined {
  const names = new RegExp(`${cve.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?!\\d)`);
  let found: string | undefined;
  let version: string | undefined;
  for (const line of changelog.split("\n")) {
    const head = /^\S+ \(([^)]+)\) /.exec(line);
    if (head) version = head[1];
    else if (names.test(line)) found = version;
  }
  return found;
}

/** The fields of one deb822 paragraph (`dpkg-deb -f`, a status entry), continuation lines kept. */
export function controlFields(paragraph: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last: string | undefined;
  for (const line of paragraph.split("\n")) {
    if (line === "") continue;
    if (/^[ \t]/.test(line) && last !== undefined) {
      fields.set(last, `${fields.get(last)!}\n${line}`);
      continue;
    }
    const m = /^([^:\s]+):[ \t]*(.*)$/.exec(line);
    if (!m) throw new Error(`not a control field line: ${JSON.stringify(line)}`);
    last = m[1]!;
    fields.set(last, m[2]!);
  }
  return fields;
}

/**
 * dpkg's `info/<pkg>.list` from `dpkg-deb -c`: each member as an absolute path without a trailing slash,
 * `./` as `/.`, symlink targets and hard-link notes left out, in the archive's order (as dpkg writes it).
 */
export function listFromContents(contents: string): string {
  const paths: string[] = [];
  for (const line of contents.split("\n")) {
    if (line === "") continue;
    const m = /^(\S)\S*\s+\S+\s+\d+\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}\s+\.(\/.*)$/.exec(line);
    if (!m) throw new Error(`dpkg-deb -c printed a line this does not read: ${JSON.stringify(line)}`);
    let path = m[2]!;
    if (m[1] === "l") path = path.replace(/ -> .*$/, "");
    else if (m[1] === "h") path = path.replace(/ link to .*$/, "");
    paths.push(path === "/" ? "/." : path.replace(/\/$/, ""));
  }
  return `${paths.join("\n")}\n`;
}

/**
 * Installs `debs` into `root` the way the fixture README's C4 says, without running any maintainer script
 * (libc6's would need a shell inside the root): the files by `dpkg-deb -x`, a `var/lib/dpkg/status` entry
 * per package from `dpkg-deb -f` with `Status: install ok installed`, and `info/<pkg>.list` from
 * `dpkg-deb -c`. Returns each package's control fields, in the order given.
 */
export function installDebs(root: string, debs: string[], opts: { files?: boolean } = {}): Array<Map<string, string>> {
  const info = join(root, "var/lib/dpkg/info");
  mkdirSync(info, { recursive: true });
  const entries: string[] = [];
  const out: Array<Map<string, string>> = [];
  for (const deb of debs) {
    if (opts.files !== false) execFileSync("dpkg-deb", ["-x", deb, root], { stdio: ["ignore", "ignore", "pipe"] });
    const control = execFileSync("dpkg-deb", ["-f", deb], { encoding: "utf8" });
    const fields = controlFields(control);
    const name = fields.get("Package");
    if (!name) throw new Error(`${deb}: no Package field`);
    const arch = fields.get("Architecture");
    const lines = control.replace(/\n+$/, "").split("\n");
    entries.push([lines[0], "Status: install ok installed", ...lines.slice(1)].join("\n"));
    const listName = fields.get("Multi-Arch") === "same" ? `${name}:${arch}` : name;
    writeFileSync(join(info, `${listName}.list`), listFromContents(execFileSync("dpkg-deb", ["-c", deb], { encoding: "utf8", maxBuffer: 64 << 20 })));
    out.push(fields);
  }
  writeFileSync(join(root, "var/lib/dpkg/status"), `${entries.join("\n\n")}\n`);
  return out;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * An OCI layout holding one image per name, each of uncompressed tar layers (bottom first) made of these
 * directories; a directory used by several images is one layer blob.
 */
export function ociLayout(layout: string, images: Record<string, string[]>): void {
  const blobs = join(layout, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const layers = new Map<string, Buffer>();
  const layer = (dir: string) => {
    let l = layers.get(dir);
    if (!l) {
      l = execFileSync("tar", ["-C", dir, "--sort=name", "-cf", "-", "."], { maxBuffer: 256 << 20 });
      writeFileSync(join(blobs, sha(l)), l);
      layers.set(dir, l);
    }
    return l;
  };
  const manifests = Object.entries(images).map(([name, dirs]) => {
    const ls = dirs.map(layer);
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: ls.map((l) => `sha256:${sha(l)}`) } }));
    writeFileSync(join(blobs, sha(config)), config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${sha(config)}`, size: config.length },
      layers: ls.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${sha(l)}`, size: l.length })),
    }));
    writeFileSync(join(blobs, sha(manifest)), manifest);
    return { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${sha(manifest)}`, size: manifest.length, annotations: { "org.opencontainers.image.ref.name": name } };
  });
  writeFileSync(join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
}

