// The distribution of a layer: os-release (etc/ over usr/lib/), else lsb-release, else the distribution's
// own release file (alpine-release, debian_version, redhat-release and its kin). One Distribution per
// layer that carries any of them; coalescing keeps the top-most.
import type { Distribution } from "../../model/packages.js";
import type { EntryInfo, LayerFiles, Scanner, ScanOutput } from "../../model/scanner.js";

const OS_RELEASE = ["etc/os-release", "usr/lib/os-release"];
const LSB = "etc/lsb-release";
/** Amazon Linux 2022 and later keep system-release in usr/lib (etc/system-release links to it). */
const SYSTEM_RELEASE_USR = "usr/lib/system-release";
const RELEASE_FILES = [
  SYSTEM_RELEASE_USR,
  "etc/alpine-release",
  "etc/debian_version",
  "etc/redhat-release",
  "etc/centos-release",
  "etc/fedora-release",
  "etc/almalinux-release",
  "etc/rocky-release",
  "etc/oracle-release",
  "etc/enterprise-release",
  "etc/system-release",
];
const WANTED = new Set([...OS_RELEASE, LSB, ...RELEASE_FILES]);

/**
 * Which release line wins when a layer has several: derivatives ship their own file beside a
 * redhat-release copied from RHEL (Oracle Linux has oracle-release, enterprise-release and redhat-release).
 */
export const RELEASE_PRECEDENCE = [
  "etc/oracle-release",
  "etc/enterprise-release",
  "etc/almalinux-release",
  "etc/rocky-release",
  "etc/centos-release",
  "etc/fedora-release",
  "etc/redhat-release",
  "etc/system-release",
  SYSTEM_RELEASE_USR,
];

const DEBIAN_CODENAMES: Record<string, string> = {
  buzz: "1.1", rex: "1.2", bo: "1.3", hamm: "2.0", slink: "2.1", potato: "2.2", woody: "3.0", sarge: "3.1", etch: "4", lenny: "5",
  squeeze: "6", wheezy: "7", jessie: "8", stretch: "9", buster: "10", bullseye: "11", bookworm: "12", trixie: "13", forky: "14",
};

/** KEY=value lines with shell quoting (single, double, backslash escapes) removed; comments ignored. */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    out.set(key, unquote(line.slice(eq + 1).trim()));
  }
  return out;
}

function unquote(v: string): string {
  let out = "";
  let quote: string | undefined;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else out += c;
    } else if (c === "\\" && i + 1 < v.length && (quote === undefined || '"\\$`'.includes(v[i + 1]!))) {
      out += v[++i];
    } else if (c === '"' || (c === "'" && quote === undefined)) {
      quote = quote === c ? undefined : quote ?? c;
    } else if (c === "#" && quote === undefined && (i === 0 || v[i - 1] === " ")) {
      break;
    } else {
      out += c;
    }
  }
  return out.trim();
}

function empty(): Distribution {
  return { did: "", name: "", version: "", version_code_name: "", version_id: "", arch: "", cpe: "", pretty_name: "" };
}

export function fromOsRelease(kv: Map<string, string>): Distribution {
  const d = empty();
  d.did = kv.get("ID") ?? "";
  d.name = kv.get("NAME") ?? "";
  d.version = kv.get("VERSION") ?? "";
  d.version_code_name = kv.get("VERSION_CODENAME") ?? "";
  d.version_id = kv.get("VERSION_ID") ?? "";
  d.cpe = kv.get("CPE_NAME") ?? "";
  d.pretty_name = kv.get("PRETTY_NAME") ?? "";
  return d;
}

export function fromLsbRelease(kv: Map<string, string>): Distribution {
  const d = empty();
  const id = kv.get("DISTRIB_ID") ?? "";
  d.did = id.toLowerCase();
  d.name = id;
  d.version_id = kv.get("DISTRIB_RELEASE") ?? "";
  d.version = d.version_id;
  d.version_code_name = kv.get("DISTRIB_CODENAME") ?? "";
  d.pretty_name = kv.get("DISTRIB_DESCRIPTION") ?? "";
  return d;
}

const RELEASE_LINE = /^(.*?)\s+(?:Linux\s+)?(?:Server\s+)?release\s+([0-9][0-9A-Za-z.]*)\s*(?:\(([^)]*)\))?/;

/** `Red Hat Enterprise Linux release 8.4 (Ootpa)`, `CentOS Linux release 7.9.2009 (Core)`, ... */
export function fromReleaseLine(text: string): Distribution | undefined {
  const line = text.split("\n")[0]!.trim();
  const m = RELEASE_LINE.exec(line);
  if (!m) return undefined;
  const name = m[1]!.trim();
  const lower = name.toLowerCase();
  const did = lower.startsWith("red hat") ? "rhel" : lower.startsWith("centos") ? "centos" : lower.startsWith("almalinux") ? "almalinux" : lower.startsWith("rocky") ? "rocky" : lower.startsWith("fedora") ? "fedora" : lower.startsWith("oracle") || lower.startsWith("enterprise linux") ? "ol" : lower.startsWith("amazon") ? "amzn" : lower.split(/\s+/)[0]!;
  const d = empty();
  d.did = did;
  d.name = name;
  d.version_id = did === "rhel" || did === "centos" || did === "almalinux" || did === "rocky" || did === "ol" ? m[2]!.split(".")[0]! : m[2]!;
  d.version = m[2]!;
  d.version_code_name = m[3] ?? "";
  d.pretty_name = line;
  return d;
}

/**
 * Older distroless images ship an os-release without VERSION_ID ("PRETTY_NAME=Distroless") beside Debian's
 * own etc/debian_version: the release comes from there when it is a number (`10.8` → VERSION_ID 10, as
 * a debian_version-only image gets). Testing and unstable (`bookworm/sid`) stay without one.
 */
function fillFromDebianVersion(d: Distribution, debianVersion: string | undefined): void {
  const v = debianVersion?.trim().split("\n")[0]?.trim() ?? "";
  const m = /^(\d+)(\.\d+)*$/.exec(v);
  if (!m) return;
  d.version_id = m[1]!;
  if (!d.version) d.version = v;
}

export class OsReleaseScanner implements Scanner {
  readonly name = "os-release";
  readonly version = "2";
  readonly kind = "distribution" as const;

  wants(e: EntryInfo): boolean {
    return WANTED.has(e.path);
  }

  async scan(files: LayerFiles): Promise<ScanOutput> {
    const text = (p: string) => files.get(p)?.toString("utf8");
    for (const p of OS_RELEASE) {
      const t = text(p);
      if (t !== undefined) {
        const d = fromOsRelease(parseKeyValues(t));
        if (d.did === "debian" && !d.version_id) fillFromDebianVersion(d, text("etc/debian_version"));
        if (d.did || d.name) return { distributions: [d] };
      }
    }
    const lsb = text(LSB);
    if (lsb !== undefined) {
      const d = fromLsbRelease(parseKeyValues(lsb));
      if (d.did) return { distributions: [d] };
    }
    const alpine = text("etc/alpine-release");
    if (alpine !== undefined && alpine.trim()) {
      const v = alpine.trim();
      return { distributions: [{ ...empty(), did: "alpine", name: "Alpine Linux", version_id: v, version: v, pretty_name: `Alpine Linux v${v.split(".").slice(0, 2).join(".")}` }] };
    }
    for (const p of RELEASE_PRECEDENCE) {
      const t = text(p);
      const d = t === undefined ? undefined : fromReleaseLine(t);
      if (d) return { distributions: [d] };
    }
    const debian = text("etc/debian_version")?.trim();
    if (debian) {
      // "12.5" on a release; "bookworm/sid" on testing and unstable.
      const numeric = /^\d+/.test(debian);
      const codename = numeric ? "" : debian.split("/")[0]!.toLowerCase();
      const major = numeric ? debian.split(".")[0]! : (DEBIAN_CODENAMES[codename] ?? "");
      return { distributions: [{ ...empty(), did: "debian", name: "Debian GNU/Linux", version: major, version_id: major, version_code_name: codename, pretty_name: `Debian GNU/Linux ${major || debian}` }] };
    }
    return {};
  }
}
