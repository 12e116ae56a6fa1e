// The identifiers inside Red Hat's CSAF documents: platform CPEs (2.2 URI or 2.3 formatted string),
// component purls (`pkg:rpm/redhat/util-linux@2.32.1-46.el8?arch=src`, `?rpmmod=nodejs:18:…`,
// `pkg:rpmmod/redhat/ruby:2.6/ruby`) and NEVRA product ids (`kernel-0:3.10.0-693.112.1.el7.src`).

import { LIMITS } from "../../input.js";

export interface Cpe {
  part: string;
  vendor: string;
  product: string;
  version: string;
  update: string;
  edition: string;
}

const CPE_FIELD = /^[A-Za-z0-9._~%*+!-]*$/;

/** `cpe:/o:redhat:enterprise_linux:8::baseos` or `cpe:2.3:o:redhat:enterprise_linux:8:*:…`; undefined if neither. */
export function parseCpe(cpe: string): Cpe | undefined {
  if (cpe.length > 1024) return undefined;
  let fields: string[];
  if (cpe.startsWith("cpe:/")) fields = cpe.slice(5).split(":");
  else if (cpe.startsWith("cpe:2.3:")) fields = cpe.slice(8).split(":");
  else return undefined;
  if (fields.length < 3 || !fields.every((f) => CPE_FIELD.test(f))) return undefined;
  const any = (f: string | undefined) => (f === undefined || f === "*" || f === "-" ? "" : f);
  return {
    part: fields[0] ?? "",
    vendor: fields[1] ?? "",
    product: fields[2] ?? "",
    version: any(fields[3]),
    update: any(fields[4]),
    edition: any(fields[5]),
  };
}

/**
 * The ecosystem of a platform CPE. Red Hat Enterprise Linux (`enterprise_linux`, any variant: BaseOS,
 * AppStream, CRB…) → `RHEL:<major>`. Other Red Hat products stay keyed by the CPE's product and version,
 * verbatim: `Red Hat:rhel_eus:8.6`, `Red Hat:openshift:4.12`, `Red Hat:openshift` (no version); nothing
 * matches them until the indexer can tell such products apart, but they are kept, not dropped.
 */
export function ecosystemFromCpe(cpe: Cpe): { ecosystem: string } | { skip: string } {
  if (cpe.vendor !== "redhat") return { skip: `platform CPE vendor ${JSON.stringify(cpe.vendor)} is not redhat` };
  if (cpe.product === "enterprise_linux") {
    const major = /^(\d{1,3})(?:\.|$)/.exec(cpe.version)?.[1];
    if (major === undefined) return { skip: `RHEL platform CPE without a major version (${JSON.stringify(cpe.version)})` };
    return { ecosystem: `RHEL:${major}` };
  }
  if (!/^[a-z0-9_.+-]{1,64}$/.test(cpe.product)) return { skip: `unusable CPE product ${JSON.stringify(cpe.product)}` };
  const version = /^[A-Za-z0-9._+-]{1,64}$/.test(cpe.version) ? `:${cpe.version}` : "";
  return { ecosystem: `Red Hat:${cpe.product}${version}` };
}

export interface Purl {
  type: string;
  namespace: string[];
  name: string;
  version?: string;
  qualifiers: Map<string, string>;
}

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** A package URL, percent-decoded; undefined when it is not one. Qualifier keys are lower-cased (purl spec). */
export function parsePurl(purl: string): Purl | undefined {
  if (purl.length > 4096 || !purl.startsWith("pkg:")) return undefined;
  let rest = purl.slice(4).replace(/^\/+/, "");
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.slice(0, hash);
  const qualifiers = new Map<string, string>();
  const q = rest.indexOf("?");
  if (q >= 0) {
    for (const pair of rest.slice(q + 1).split("&")) {
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const value = decode(pair.slice(eq + 1));
      if (value !== undefined) qualifiers.set(pair.slice(0, eq).toLowerCase(), value);
    }
    rest = rest.slice(0, q);
  }
  let version: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    version = decode(rest.slice(at + 1));
    if (version === undefined) return undefined;
    rest = rest.slice(0, at);
  }
  const segments = rest.split("/").filter((s) => s !== "");
  const type = segments.shift()?.toLowerCase();
  const rawName = segments.pop();
  if (type === undefined || rawName === undefined) return undefined;
  const name = decode(rawName);
  const namespace = segments.map(decode);
  if (name === undefined || name === "" || namespace.some((s) => s === undefined)) return undefined;
  const out: Purl = { type, namespace: namespace as string[], name, qualifiers };
  if (version !== undefined && version !== "") out.version = version;
  return out;
}

export interface Nevra {
  name: string;
  epoch?: string;
  version: string;
  release: string;
  arch: string;
}

/** `kernel-0:3.10.0-693.112.1.el7.src` → name kernel, epoch 0, version 3.10.0, release 693.112.1.el7, arch src. */
export function parseNevra(s: string): Nevra | undefined {
  if (s.length > 512) return undefined;
  const m = /^(.+)-(?:(\d+):)?([^-:\s]+)-([^-:\s]+)\.([A-Za-z0-9_]+)$/.exec(s);
  if (!m) return undefined;
  const [, name = "", epoch, version = "", release = "", arch = ""] = m;
  const out: Nevra = { name, version, release, arch };
  if (epoch !== undefined) out.epoch = epoch;
  return out;
}

/** `[epoch:]version-release`, the epoch written only when it is not 0 (rpm reads a missing epoch as 0). */
export function evr(epoch: string | undefined, versionRelease: string): string {
  return epoch !== undefined && epoch !== "" && epoch !== "0" ? `${epoch}:${versionRelease}` : versionRelease;
}

/** RPM package names as rpm allows them, bounded. */
export function validRpmName(name: string): boolean {
  return name.length <= LIMITS.name && /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/.test(name);
}

/** `nodejs:18` from an rpmmod value `nodejs:18:8090020240306180325:a75119d5` (name:stream:version:context). */
export function moduleStream(rpmmod: string): string | undefined {
  const [name, stream] = rpmmod.split(":");
  if (name === undefined || stream === undefined || name === "" || stream === "") return undefined;
  const out = `${name}:${stream}`;
  return out.length <= LIMITS.name && /^[A-Za-z0-9._+-]+:[A-Za-z0-9._+-]+$/.test(out) ? out : undefined;
}
