// Licences and dependencies the scanners record for SBOMs, against each ecosystem's own tool or file:
// rpm's License tag as `rpm -qa` prints it from the peers' databases (../shared/fixtures/rpm), apk's L:
// lines read with grep from the peers' installed files, and npm's dependency resolution and licences as
// `npm ls --all --long --json` reports them for this repository's own node_modules (a real tree of a
// few hundred packages, nested where versions conflict), and Python's licences as Python's own email
// parser reads the headers of this machine's dist-packages.
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { findTool } from "../../src/cli/tools.js";
import { ApkScanner } from "../../src/scanners/apk/apk.js";
import { NpmScanner, PKG } from "../../src/scanners/npm/npm.js";
import { PythonScanner } from "../../src/scanners/python/python.js";
import { RpmScanner } from "../../src/scanners/rpm/rpm.js";
import { fixtureNames, fixturesDir, MapLayerFiles } from "../../src/scanners/testing.js";
import { components } from "../../src/sbom/components.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));

function need(name: string): string {
  const p = findTool(name);
  if (!p) throw new Error(`${name} not found: the licence oracle needs it (Debian package ${name}; test/env/setup.sh installs it)`);
  return p;
}

describe("licences and dependencies for SBOMs, against each ecosystem's own tools", () => {
  it("rpm: the License tag of every package, as rpm -qa prints it", async () => {
    const rpm = need("rpm");
    let checked = 0;
    for (const name of ["cbl-mariner-2.0", "amazonlinux-2023", "preflight-fedora36-tzdata"]) {
      const scratch = mkdtempSync(join(tmpdir(), "rpmdb-"));
      try {
        copyFileSync(fixturesDir("rpm", name, "rpmdb.sqlite"), join(scratch, "rpmdb.sqlite"));
        const { stdout } = await run(rpm, ["--dbpath", scratch, "-qa", "--qf", "%{NAME}\\t%{LICENSE}\\n"], { maxBuffer: 16 << 20 });
        const want = stdout.split("\n").filter(Boolean).sort();
        const out = await new RpmScanner().scan(MapLayerFiles.of({ "var/lib/rpm/rpmdb.sqlite": readFileSync(fixturesDir("rpm", name, "rpmdb.sqlite")) }));
        expect(out.packages!.map((p) => `${p.name}\t${p.licenses?.[0] ?? "(none)"}`).sort(), name).toEqual(want);
        checked += want.length;
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    }
    expect(checked).toBeGreaterThan(200);
  });

  it("apk: the L: line of every entry, by grep", async () => {
    let checked = 0;
    for (const name of fixtureNames("apk")) {
      const file = fixturesDir("apk", name, "installed");
      // Each entry's P: and L: lines, paired by awk over blank-line separated records.
      const { stdout } = await run("awk", ["BEGIN { RS = \"\"; FS = \"\\n\" } { p = \"\"; v = \"\"; l = \"\"; for (i = 1; i <= NF; i++) { if ($i ~ /^P:/ && p == \"\") p = substr($i, 3); if ($i ~ /^V:/ && v == \"\") v = substr($i, 3); if ($i ~ /^L:/ && l == \"\") l = substr($i, 3) } if (p != \"\" && v != \"\") print p \"\\t\" (l == \"\" ? \"(none)\" : l) }", file]);
      const want = stdout.split("\n").filter(Boolean).sort();
      const out = await new ApkScanner().scan(MapLayerFiles.of({ "lib/apk/db/installed": readFileSync(file) }));
      expect(out.packages!.map((p) => `${p.name}\t${p.licenses?.[0] ?? "(none)"}`).sort(), name).toEqual(want);
      checked += want.length;
    }
    expect(checked).toBeGreaterThan(50);
  });

  it("apk: dependencies resolve through p: provides (so: names) to the package that provides them", async () => {
    const text = readFileSync(fixturesDir("apk", "alpine-3.18", "installed"), "utf8");
    const out = await new ApkScanner().scan(MapLayerFiles.of({ "lib/apk/db/installed": text }));
    const comps = components({ packages: out.packages!.map((pkg) => ({ pkg, introducedIn: "sha256:0" })), distribution: { did: "alpine", name: "Alpine Linux", version: "3.18.0", version_id: "3.18.0", version_code_name: "", arch: "", cpe: "", pretty_name: "" } });
    const byRef = new Map(comps.map((c) => [c.ref, c]));
    // The fixture's own lines: who provides so:libc.musl-x86_64.so.1, and who depends on it.
    const entries = text.split("\n\n").map((e) => new Map(e.split("\n").filter((l) => l[1] === ":").map((l) => [l[0]!, l.slice(2)])));
    const provider = entries.find((e) => (e.get("p") ?? "").split(" ").some((p) => p.startsWith("so:libc.musl-x86_64.so.1")))!.get("P")!;
    const users = entries.filter((e) => (e.get("D") ?? "").split(" ").includes("so:libc.musl-x86_64.so.1")).map((e) => e.get("P")!);
    expect(users.length).toBeGreaterThan(3);
    for (const u of users) {
      const c = comps.find((x) => x.pkg.name === u)!;
      expect(c.dependsOn.map((r) => byRef.get(r)!.pkg.name), u).toContain(provider);
    }
  });

  it("python: License-Expression, else a one-line License, else the License classifiers, as Python's own metadata parser reads them", async () => {
    const site = "/usr/lib/python3/dist-packages";
    // Python's email parser (what importlib.metadata uses) reads the headers; the rule is applied to them.
    const script = `import email, glob, os, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.dist-info/METADATA") + glob.glob(sys.argv[1] + "/*.egg-info/PKG-INFO") + [g for g in glob.glob(sys.argv[1] + "/*.egg-info") if os.path.isfile(g)]):
    m = email.message_from_bytes(open(f, "rb").read())
    lic = m.get("License")
    if m.get("License-Expression"): out = [m.get("License-Expression").strip()]
    elif lic and "\\n" not in lic and len(lic.strip()) <= 200 and lic.strip() and lic.strip().upper() != "UNKNOWN": out = [lic.strip()]
    else: out = list(dict.fromkeys(c.split("::")[-1].strip() for c in (m.get_all("Classifier") or []) if c.startswith("License ::")))
    print(os.path.relpath(f, "/") + "\t" + " | ".join(out))
`;
    const { stdout } = await run(need("python3"), ["-c", script, site]);
    const want = stdout.split("\n").filter(Boolean).sort();
    const files: Record<string, Buffer> = {};
    for (const line of want) {
      const path = line.split("\t")[0]!;
      files[path] = readFileSync(`/${path}`);
    }
    const out = await new PythonScanner().scan(MapLayerFiles.of(files));
    expect(out.packages!.map((p) => `${p.filepath}\t${(p.licenses ?? []).join(" | ")}`).sort()).toEqual(want);
    expect(want.filter((l) => !l.endsWith("\t")).length).toBeGreaterThan(10);
  });

  it("npm: each dependency resolves to the folder npm installed it in, and licences are package.json's", async () => {
    const nm = realpathSync(join(root, "node_modules"));
    const files: Record<string, Buffer> = {};
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory() || (e.isSymbolicLink() && statSync(p).isDirectory())) {
          if (!e.isSymbolicLink()) walk(p);
        } else if (e.name === "package.json") {
          const rel = `node_modules/${relative(nm, p)}`;
          if (PKG.test(rel)) files[rel] = readFileSync(p);
        }
      }
    };
    walk(nm);
    const out = await new NpmScanner().scan(MapLayerFiles.of(files));
    const comps = components({ packages: out.packages!.map((pkg) => ({ pkg, introducedIn: "sha256:0" })) });
    const byRef = new Map(comps.map((c) => [c.ref, c]));
    const at = new Map(comps.map((c) => [c.pkg.filepath!.replace(/\/package\.json$/, ""), c]));

    interface Node { path?: string; license?: string; dependencies?: Record<string, Node>; _dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }
    const { stdout } = await run("npm", ["ls", "--all", "--long", "--json"], { cwd: root, maxBuffer: 256 << 20 }).catch((e: { stdout: string }) => e);
    const tree = JSON.parse(stdout) as Node;
    let edges = 0;
    let licences = 0;
    // npm prints paths through the node_modules link of this worktree or its target: compare from the
    // first node_modules on.
    const rel = (p: string) => p.slice(p.indexOf("/node_modules/") + 1);
    const visit = (node: Node, isRoot: boolean) => {
      const here = node.path && !isRoot ? rel(node.path) : undefined;
      const comp = here && !isRoot ? at.get(here) : undefined;
      if (comp) {
        if (typeof node.license === "string") {
          expect(comp.pkg.licenses, here).toEqual([node.license]);
          licences++;
        }
        const declared = new Set(Object.keys({ ...(node._dependencies ?? {}), ...(node.optionalDependencies ?? {}) }));
        const resolved = new Set(comp.dependsOn.map((r) => byRef.get(r)!.pkg.filepath!.replace(/\/package\.json$/, "")));
        for (const [name, child] of Object.entries(node.dependencies ?? {})) {
          if (!declared.has(name) || !child.path) continue; // a peer dependency, or one npm could not find
          expect(resolved, `${here} -> ${name}`).toContain(rel(child.path));
          edges++;
        }
      }
      for (const child of Object.values(node.dependencies ?? {})) visit(child, false);
    };
    visit(tree, true);
    expect(edges).toBeGreaterThan(200);
    expect(licences).toBeGreaterThan(200);
  });
});
