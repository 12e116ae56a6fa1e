// Language scanners on real artefacts: Debian's python3-six, libcommons-lang3-java and direnv (a Go
// program) in an image layer; Go programs built here (modules with a directory replacement, GOPATH mode,
// a GOEXPERIMENT); a node_modules tree from a real `npm install`; the default gems of Debian's Ruby.
// Oracles: `go version -m`, the jar's own pom.properties (unzip), npm's package-lock, RubyGems itself.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Indexer } from "../../src/indexer/indexer.js";
import { openLocalImage } from "../../src/indexer/sources/local.js";
import { digestOf } from "../../src/layers/testing.js";
import { walkLayer } from "../../src/layers/walk.js";
import { GoBinaryScanner } from "../../src/scanners/gobin/gobin.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { NpmScanner } from "../../src/scanners/npm/npm.js";
import { RubyGemScanner } from "../../src/scanners/ruby/ruby.js";
import { findTool } from "../../src/cli/tools.js";
import { openStore } from "../../src/store/open.js";
import { describeWith } from "../env/index.js";
import { coverage, goVersionM } from "./oracles.js";
import { ociBookworm, rootfsBookworm } from "../env/images.js";

const run = promisify(execFile);

function tool(name: string): string {
  const p = findTool(name);
  if (!p) throw new Error(`${name} not found; run \`npm run env:setup\``);
  return p;
}

async function tarDir(dir: string): Promise<Buffer> {
  const { stdout } = await run("tar", ["-C", dir, "-cf", "-", "."], { encoding: "buffer", maxBuffer: 512 << 20 });
  return stdout as unknown as Buffer;
}

/** Builds a Go program offline into `layerDir`/usr/local/bin/NAME. */
async function goBuild(work: string, cwd: string, out: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  await run(tool("go"), ["build", "-o", out, ...args], {
    cwd, env: { ...process.env, GOPROXY: "off", GOFLAGS: "-mod=mod", GOCACHE: join(work, "gocache"), GOPATH: join(work, "gopath"), HOME: work, CGO_ENABLED: "0", ...env },
  });
}

async function scanGo(layerDir: string): Promise<{ got: string[]; buffered: string[] }> {
  const tar = await tarDir(layerDir);
  const walk = await walkLayer(Readable.from([tar]), { digest: digestOf(tar), scanners: [new GoBinaryScanner()] });
  const out = await new GoBinaryScanner().scan(walk.files);
  return { got: out.packages!.map((p) => `${p.name}\t${p.version}`).sort(), buffered: walk.files.paths() };
}

describeWith([], "language packages in real artefacts", () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "lang-"));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("finds Debian's Python, Java and Go packages in an image layer", async () => {
    const img = (await openLocalImage(`oci:${ociBookworm()}:lang`, { os: "linux", architecture: "amd64" }))!;
    const { report } = await new Indexer({ store: await openStore("memory:"), scanners: defaultScanners() }).index(img.manifest, img.source);
    expect(report.state).toBe("IndexFinished");
    const byDb = (prefix: string) => Object.values(report.packages!).filter((p) => report.environments![p.id]![0]!.package_db.startsWith(prefix)).map((p) => `${p.name}\t${p.version}`).sort();
    expect(byDb("python:")).toContain("six\t1.16.0");
    const rootfs = `${rootfsBookworm()}-lang`;
    const pom = (await run("unzip", ["-p", join(rootfs, "usr/share/java/commons-lang3-3.12.0.jar"), "META-INF/maven/org.apache.commons/commons-lang3/pom.properties"])).stdout;
    const version = /^version=(.*)$/m.exec(pom)![1]!.trim();
    expect(byDb("maven:")).toEqual([`org.apache.commons:commons-lang3\t${version}`]);
    expect(byDb("go:")).toEqual(await goVersionM(join(rootfs, "usr/bin/direnv")));
    // The OS packages are all still there.
    expect(byDb("var/lib/dpkg/status").length).toBeGreaterThan(90);
  });

  it("finds every package the ecosystems' own tools list in the Debian images (dpkg-query, go version -m, pip, unzip, RubyGems)", async () => {
    for (const tag of ["lang", "inventory"]) {
      const root = `${rootfsBookworm()}-${tag}`;
      if (!existsSync(join(ociBookworm(), `.complete-${tag}`))) throw new Error(`test image ${tag} missing: run test/env/images.sh`);
      const c = await coverage(ociBookworm(), tag, root);
      for (const x of c) {
        expect(x.missing, `${tag} ${x.ecosystem}`).toEqual([]);
        // RubyGems lists a name and version once; the image holds rake 13.0.6 twice (libruby3.1's bundled
        // copy and Debian's rake package, two files): Portcullis reports each file, so a Ruby extra may
        // only be a second copy of a listed gem.
        if (x.ecosystem === "ruby") expect(x.extra.filter((e) => !x.listed.includes(e)), `${tag} ruby`).toEqual([]);
        else expect(x.extra, `${tag} ${x.ecosystem}`).toEqual([]);
      }
      expect(c.find((x) => x.ecosystem === "dpkg")!.want).toBeGreaterThan(90);
      if (tag === "inventory") {
        // What issue 18 found missing: Ruby's default gems, fzf's main package (a GOPATH build).
        expect(c.find((x) => x.ecosystem === "ruby")!.want).toBeGreaterThan(30);
        expect(await goVersionM(join(root, "usr/bin/fzf"))).toContain("github.com/junegunn/fzf\t(devel)");
      }
    }
  });

  it("reads every module of a Go program built here, as go version -m does", async () => {
    const src = join(work, "goapp");
    mkdirSync(join(src, "lib"), { recursive: true });
    writeFileSync(join(src, "go.mod"), "module example.com/app\n\ngo 1.19\n\nrequire example.com/lib v1.2.3\n\nreplace example.com/lib => ./lib\n");
    writeFileSync(join(src, "main.go"), 'package main\n\nimport "example.com/lib"\n\nfunc main() { println(lib.Hello()) }\n');
    writeFileSync(join(src, "lib", "go.mod"), "module example.com/lib\n\ngo 1.19\n");
    writeFileSync(join(src, "lib", "lib.go"), 'package lib\n\nfunc Hello() string { return "hi" }\n');
    const layerDir = join(work, "golayer");
    mkdirSync(join(layerDir, "usr/local/bin"), { recursive: true });
    await goBuild(work, src, join(layerDir, "usr/local/bin/app"), ["."]);
    const { got, buffered } = await scanGo(layerDir);
    const want = await goVersionM(join(layerDir, "usr/local/bin/app"));
    expect(got).toEqual(want);
    // go version -m prints "dep example.com/lib v1.2.3" then "=> ./lib": the code is the directory's, not v1.2.3's.
    expect(got).toContain("./lib\t(devel)");
    expect(got).not.toContain("example.com/lib\tv1.2.3");
    // Nothing of the binary was buffered.
    expect(buffered).toEqual([]);
  });

  it("reads a GOPATH-mode build (no module line: the main package's path) and a GOEXPERIMENT build, as go version -m does", async () => {
    const gopath = join(work, "gopath-src");
    const pkgDir = join(gopath, "src", "github.com", "example", "tool");
    mkdirSync(pkgDir, { recursive: true });
    writeFileSync(join(pkgDir, "main.go"), "package main\n\nfunc main() { println(\"tool\") }\n");
    const layerDir = join(work, "golayer2");
    mkdirSync(join(layerDir, "usr/bin"), { recursive: true });
    await goBuild(work, pkgDir, join(layerDir, "usr/bin/tool"), ["github.com/example/tool"], { GO111MODULE: "off", GOPATH: gopath, GOFLAGS: "" });
    await goBuild(work, pkgDir, join(layerDir, "usr/bin/fieldtrack"), ["github.com/example/tool"], { GO111MODULE: "off", GOPATH: gopath, GOFLAGS: "", GOEXPERIMENT: "fieldtrack" });
    const toolPkgs = await goVersionM(join(layerDir, "usr/bin/tool"));
    expect(toolPkgs).toContain("github.com/example/tool\t(devel)");
    const exp = (await run(tool("go"), ["version", join(layerDir, "usr/bin/fieldtrack")])).stdout;
    expect(exp).toMatch(/ X:fieldtrack/);
    const { got } = await scanGo(layerDir);
    expect(got).toEqual([...toolPkgs, ...(await goVersionM(join(layerDir, "usr/bin/fieldtrack")))].sort());
    expect(got.filter((l) => l.startsWith("stdlib\t")).every((l) => /^stdlib\tv\d+\.\d+(\.\d+)?$/.test(l))).toBe(true);
  });

  it("reads the default gems of Debian's Ruby, as RubyGems lists them", async () => {
    const ruby = tool("ruby");
    const { stdout } = await run(ruby, ["-e", 'Gem::Specification.each { |s| puts "#{s.name}\t#{s.version}\t#{s.default_gem? ? 1 : 0}\t#{s.loaded_from}" }']);
    const specs = stdout.split("\n").filter(Boolean).map((l) => l.split("\t"));
    const root = "/usr/lib/ruby/gems";
    const under = specs.filter((f) => f[3]!.startsWith(`${root}/`));
    expect(under.filter((f) => f[2] === "1").length).toBeGreaterThan(30); // bundler, json, psych...
    const tar = (await run("tar", ["-C", "/", "-cf", "-", root.slice(1)], { encoding: "buffer", maxBuffer: 512 << 20 })).stdout as unknown as Buffer;
    const s = new RubyGemScanner();
    const walk = await walkLayer(Readable.from([tar]), { digest: digestOf(tar), scanners: [s] });
    const out = await s.scan(walk.files);
    expect(out.packages!.map((p) => `${p.name}\t${p.version}`).sort()).toEqual(under.map((f) => `${f[0]}\t${f[1]}`).sort());
    expect(out.packages!.find((p) => p.name === "bundler")!.package_db).toMatch(/^ruby:usr\/lib\/ruby\/gems\/[^/]+\/specifications\/default\/bundler-/);
  });

  it("reads a node_modules tree from a real npm install, nested versions included", async () => {
    const app = join(work, "nodeapp");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    await run("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", "is-odd@3.0.1", "is-number@7.0.0"], { cwd: app, env: { ...process.env, npm_config_loglevel: "error" } });
    const lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string }> };
    const want = Object.entries(lock.packages).filter(([k]) => k.startsWith("node_modules/")).map(([k, v]) => `${k.split("node_modules/").pop()}\t${v.version}`).sort();
    expect(want).toContain("is-number\t6.0.0"); // is-odd's own copy, nested
    const tar = await tarDir(join(work, "nodeapp"));
    const walk = await walkLayer(Readable.from([tar]), { digest: digestOf(tar), scanners: [new NpmScanner()] });
    const out = await new NpmScanner().scan(walk.files);
    expect(out.packages!.map((p) => `${p.name}\t${p.version}`).sort()).toEqual(want);
    expect(out.packages!.every((p) => p.purl?.startsWith("pkg:npm/"))).toBe(true);
  });
});
