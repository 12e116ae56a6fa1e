// The real comparators, run in batches: one process per batch (dpkg: one bash loop), pairs passed as
// `a \x1f b` lines through a file or stdin. Each answer is -1, 0, 1, or "invalid" when the tool refuses
// either string. Used by oracles.test.ts; every tool is a Debian 12 package (test/env/setup.sh).
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findTool } from "../../src/cli/tools.js";

export type Answer = -1 | 0 | 1 | "invalid";
export type Pair = readonly [string, string];

export interface Oracle {
  /** The tool, as the report names it (`dpkg 1.21`, `rpm.vercmp`...). */
  label: string;
  /** Why the oracle cannot run on this machine (and the package that provides it), or undefined. */
  missing(): string | undefined;
  compare(pairs: readonly Pair[]): Promise<Answer[]>;
}

const SEP = "\x1f";
const GOPATH = "/usr/share/gocode";

function exec(file: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 64 << 20, env: opts.env ?? process.env, cwd: opts.cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.slice(0, 3).join(" ")}...: ${err.message}\n${stderr.slice(0, 2000)}`));
      else resolve(stdout);
    });
    child.stdin?.end(opts.input ?? "");
  });
}

function encode(pairs: readonly Pair[]): string {
  for (const [a, b] of pairs) {
    if ((a + b).includes("\n") || (a + b).includes(SEP)) throw new Error(`cannot pass ${JSON.stringify([a, b])} to an oracle (newline or \\x1f)`);
  }
  return pairs.map(([a, b]) => `${a}${SEP}${b}\n`).join("");
}

function decode(out: string, n: number, label: string): Answer[] {
  const lines = out.split("\n");
  while (lines.length > n && lines.at(-1) === "") lines.pop(); // rpm --eval adds a newline of its own
  if (lines.length !== n) throw new Error(`${label}: ${lines.length} answers for ${n} pairs:\n${out.slice(0, 2000)}`);
  return lines.map((l) => {
    const t = l.trim();
    if (t === "E") return "invalid";
    const n = Number(t);
    if (!Number.isInteger(n)) throw new Error(`${label}: unexpected answer ${JSON.stringify(l)}`);
    return Math.sign(n) as -1 | 0 | 1;
  });
}

function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-oracle-"));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/**
 * dpkg --compare-versions in a bash loop: `lt` (exit 0/1, 2 = bad syntax), then `eq` when not lt. A dpkg
 * process per comparison is the slow part, so the pairs go to two loops at once.
 */
export const dpkgOracle: Oracle = {
  label: "dpkg --compare-versions",
  missing: () => (findTool("dpkg") && findTool("bash") ? undefined : "dpkg or bash not found (Debian package dpkg)"),
  compare: async (pairs) => {
    const half = Math.ceil(pairs.length / 2);
    const parts = await Promise.all([dpkgLoop(pairs.slice(0, half)), dpkgLoop(pairs.slice(half))]);
    return parts.flat();
  },
};

function dpkgLoop(pairs: readonly Pair[]): Promise<Answer[]> {
  return withTemp(async (dir) => {
    const file = join(dir, "pairs");
    writeFileSync(file, encode(pairs));
    const script = `dpkg=$1
while IFS=$'\\x1f' read -r a b; do
  "$dpkg" --compare-versions -- "$a" lt "$b" 2>/dev/null; rc=$?
  if [ $rc = 0 ]; then echo -1
  elif [ $rc = 1 ]; then if "$dpkg" --compare-versions -- "$a" eq "$b" 2>/dev/null; then echo 0; else echo 1; fi
  else echo E; fi
done < "$2"`;
    return decode(await exec(findTool("bash")!, ["-c", script, "bash", findTool("dpkg")!, file]), pairs.length, "dpkg");
  });
}

/** rpm's own Lua, one `rpm --eval` for the whole batch; rpm.vercmp raises on a version it refuses. */
export const rpmOracle: Oracle = {
  label: "rpm --eval %{lua: rpm.vercmp(a, b)}",
  missing: () => (findTool("rpm") ? undefined : "rpm not found (Debian package rpm)"),
  compare: (pairs) =>
    withTemp(async (dir) => {
      const file = join(dir, "pairs");
      writeFileSync(file, encode(pairs));
      const lua = join(dir, "vercmp.lua");
      writeFileSync(
        lua,
        `for line in io.lines(${JSON.stringify(file)}) do
  local a, b = line:match("^(.-)\\31(.*)$")
  local ok, r = pcall(rpm.vercmp, a, b)
  io.write((ok and tostring(r) or "E") .. "\\n")
end
`,
      );
      // The macro argument is expanded by rpm: keep the path free of '%' and '}' (mkdtemp's is).
      return decode(await exec(findTool("rpm")!, ["--eval", `%{lua: dofile(${JSON.stringify(lua)})}`]), pairs.length, "rpm");
    }),
};

/** Runs a Go program with Debian's packaged libraries (GOPATH mode, no network). */
async function goRun(dir: string, source: string, input: string): Promise<string> {
  const main = join(dir, "main.go");
  writeFileSync(main, source);
  const env = { ...process.env, GO111MODULE: "off", GOPATH, GOFLAGS: "", GOCACHE: process.env.GOCACHE ?? join(tmpdir(), "portcullis-go-cache") };
  return exec(findTool("go")!, ["run", main], { input, env, cwd: dir });
}

function goMissing(pkgPath: string, debPackage: string): string | undefined {
  if (!findTool("go")) return "go not found (Debian package golang-go)";
  if (!existsSync(join(GOPATH, "src", pkgPath))) return `${pkgPath} not in ${GOPATH} (Debian package ${debPackage})`;
  return undefined;
}

const goMain = (imp: string, body: string) => `package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	${imp}
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		p := strings.SplitN(in.Text(), "\\x1f", 2)
		a, b := p[0], p[1]
		${body}
	}
}
`;

/** knqyf263/go-apk-version (trivy's Alpine comparator): agrees with real `apk version -t` on the 13,979 vector pairs. */
export const apkOracle: Oracle = {
  label: "github.com/knqyf263/go-apk-version",
  missing: () => goMissing("github.com/knqyf263/go-apk-version", "golang-github-knqyf263-go-apk-version-dev"),
  compare: (pairs) =>
    withTemp(async (dir) => {
      const src = goMain(
        `version "github.com/knqyf263/go-apk-version"`,
        `va, ea := version.NewVersion(a)
		vb, eb := version.NewVersion(b)
		if ea != nil || eb != nil || !version.Valid(a) || !version.Valid(b) {
			fmt.Fprintln(out, "E")
			continue
		}
		fmt.Fprintln(out, va.Compare(vb))`,
      );
      return decode(await goRun(dir, src, encode(pairs)), pairs.length, "go-apk-version");
    }),
};

/** golang.org/x/mod/semver, the Go command's own module-version ordering. Versions must carry their `v`. */
export const goOracle: Oracle = {
  label: "golang.org/x/mod/semver",
  missing: () => goMissing("golang.org/x/mod/semver", "golang-golang-x-mod-dev"),
  compare: (pairs) =>
    withTemp(async (dir) => {
      const src = goMain(
        `"golang.org/x/mod/semver"`,
        `if !semver.IsValid(a) || !semver.IsValid(b) {
			fmt.Fprintln(out, "E")
			continue
		}
		fmt.Fprintln(out, semver.Compare(a, b))`,
      );
      return decode(await goRun(dir, src, encode(pairs)), pairs.length, "x/mod/semver");
    }),
};

/** Debian's python3-packaging, with Debian's own interpreter (not a pyenv one that may lack it). */
export const pep440Oracle: Oracle = {
  label: "python3 packaging.version.Version",
  missing: () => {
    if (!existsSync("/usr/bin/python3")) return "/usr/bin/python3 not found (Debian package python3)";
    const dirs = ["/usr/lib/python3/dist-packages/packaging"];
    return dirs.some((d) => existsSync(d)) ? undefined : "packaging not installed for /usr/bin/python3 (Debian package python3-packaging)";
  },
  compare: async (pairs) => {
    const py = `import sys
from packaging.version import Version, InvalidVersion
out = []
for line in sys.stdin.read().split("\\n")[:-1]:
    a, b = line.split("\\x1f", 1)
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion:
        out.append("E")
        continue
    out.append(str((va > vb) - (va < vb)))
sys.stdout.write("".join(s + "\\n" for s in out))
`;
    return decode(await exec("/usr/bin/python3", ["-I", "-c", py], { input: encode(pairs) }), pairs.length, "packaging");
  },
};

/** Ruby's Gem::Version (RubyGems 3.3 in Debian 12); "Malformed version number string" is an ArgumentError. */
export const rubygemsOracle: Oracle = {
  label: "ruby Gem::Version#<=>",
  missing: () => (findTool("ruby") ? undefined : "ruby not found (Debian package ruby)"),
  compare: async (pairs) => {
    const rb = `$stdout.sync = false
$stdin.read.split("\\n", -1)[0...-1].each do |l|
  a, b = l.split("\\x1f", -1)
  begin
    puts(Gem::Version.new(a) <=> Gem::Version.new(b))
  rescue ArgumentError
    puts "E"
  end
end
`;
    return decode(await exec(findTool("ruby")!, ["-e", rb], { input: encode(pairs) }), pairs.length, "Gem::Version");
  },
};

function mavenJar(): string | undefined {
  const dir = "/usr/share/maven/lib";
  if (!existsSync(dir)) return undefined;
  const jar = readdirSync(dir).find((n) => /^maven-artifact.*\.jar$/.test(n));
  return jar && join(dir, jar);
}

/**
 * Maven's ComparableVersion main: given versions v1..vn it prints, between the description lines,
 * "   v(i) OP v(i+1)" for each neighbour pair (OP is <, == or >). One JVM for the batch: the pairs are
 * passed as a1 b1 a2 b2..., and the lines for a(k) vs b(k) are read back (b(k) vs a(k+1) ignored).
 */
export const mavenOracle: Oracle = {
  label: "Maven ComparableVersion",
  missing: () => {
    if (!findTool("java")) return "java not found (Debian package openjdk-17-jre-headless)";
    return mavenJar() ? undefined : "/usr/share/maven/lib/maven-artifact*.jar not found (Debian package maven)";
  },
  compare: async (pairs) => {
    encode(pairs);
    const out = await exec(findTool("java")!, ["-cp", mavenJar()!, "org.apache.maven.artifact.versioning.ComparableVersion", ...pairs.flat()]);
    const cmp = out.split("\n").filter((l) => l.startsWith("   "));
    if (cmp.length !== pairs.length * 2 - 1) throw new Error(`ComparableVersion: ${cmp.length} comparison lines for ${pairs.length} pairs`);
    return pairs.map(([a, b], k) => {
      const line = cmp[2 * k]!;
      const prefix = `   ${a} `;
      const suffix = ` ${b}`;
      if (!line.startsWith(prefix) || !line.endsWith(suffix)) throw new Error(`ComparableVersion: cannot read ${JSON.stringify(line)} for ${a} vs ${b}`);
      const op = line.slice(prefix.length, line.length - suffix.length);
      const r = { "<": -1, "==": 0, ">": 1 }[op];
      if (r === undefined) throw new Error(`ComparableVersion: operator ${JSON.stringify(op)} in ${JSON.stringify(line)}`);
      return r as -1 | 0 | 1;
    });
  },
};
