// Package URLs (https://github.com/package-url/purl-spec): pkg:type/namespace/name@version.

function enc(s: string): string {
  return encodeURIComponent(s).replace(/%3A/g, ":");
}

export function purl(type: string, name: string, version: string, namespace?: string, qualifiers?: Record<string, string>): string {
  const ns = namespace ? `${namespace.split("/").map(enc).join("/")}/` : "";
  const q = qualifiers && Object.keys(qualifiers).length ? `?${Object.entries(qualifiers).sort().map(([k, v]) => `${k}=${enc(v)}`).join("&")}` : "";
  return `pkg:${type}/${ns}${enc(name)}@${enc(version)}${q}`;
}
