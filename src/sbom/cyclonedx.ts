// CycloneDX 1.5 JSON (https://cyclonedx.org/docs/1.5/json/) of one image. The image is
// metadata.component (type container); the distribution is a component of type operating-system; every
// package is a library with its purl, its licences (as `name`s, verbatim: the databases record free text
// such as Debian's `GPL-2+` as often as SPDX ids) and properties in Portcullis's namespace:
//
//   portcullis:LayerDigest   the layer that introduced the package
//   portcullis:PackageDB     the database it was read from (var/lib/dpkg/status, nodejs:…/package.json…)
//   portcullis:FilePath      the file a language package is known by
//   portcullis:SrcName, portcullis:SrcVersion   the source package of an OS package
//   portcullis:OwnedBy       the OS package that installed a language package's files
//
// dependencies: the image depends on the operating system and on every language package, the operating
// system on every OS package, and each package on what its recorded dependencies resolve to
// (./components.ts), an empty dependsOn when none.
import { components } from "./components.js";
import type { Component, SbomInput } from "./types.js";

interface Property {
  name: string;
  value: string;
}

function props(c: Component): Property[] {
  const p: Property[] = [{ name: "portcullis:LayerDigest", value: c.layer }, { name: "portcullis:PackageDB", value: c.pkg.package_db ?? "" }];
  if (c.pkg.filepath) p.push({ name: "portcullis:FilePath", value: c.pkg.filepath });
  if (c.os && c.pkg.source?.name) {
    p.push({ name: "portcullis:SrcName", value: c.pkg.source.name });
    if (c.pkg.source.version) p.push({ name: "portcullis:SrcVersion", value: c.pkg.source.version });
  }
  if (c.ownedBy) p.push({ name: "portcullis:OwnedBy", value: c.ownedBy });
  return p;
}

export function cyclonedx(input: SbomInput): Record<string, unknown> {
  const comps = components(input);
  const imageRef = input.image.manifest;
  const d = input.distribution;
  const osRef = d ? `os:${d.did || d.name}@${d.version_id || d.version}` : undefined;
  const out: Array<Record<string, unknown>> = [];
  if (d && osRef) {
    out.push({
      "bom-ref": osRef,
      type: "operating-system",
      name: d.did || d.name,
      version: d.version_id || d.version,
      ...(d.pretty_name ? { description: d.pretty_name } : {}),
    });
  }
  for (const c of comps) {
    const comp: Record<string, unknown> = { "bom-ref": c.ref, type: "library", name: c.pkg.name, version: c.pkg.version, purl: c.purl };
    if (c.pkg.licenses?.length) comp.licenses = c.pkg.licenses.map((name) => ({ license: { name } }));
    comp.properties = props(c);
    out.push(comp);
  }
  const dependencies: Array<{ ref: string; dependsOn: string[] }> = [
    { ref: imageRef, dependsOn: [...(osRef ? [osRef] : []), ...comps.filter((c) => !c.os).map((c) => c.ref)] },
  ];
  if (osRef) dependencies.push({ ref: osRef, dependsOn: comps.filter((c) => c.os).map((c) => c.ref) });
  for (const c of comps) dependencies.push({ ref: c.ref, dependsOn: c.dependsOn });
  return {
    $schema: "http://cyclonedx.org/schema/bom-1.5.schema.json",
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    serialNumber: `urn:uuid:${input.uuid}`,
    version: 1,
    metadata: {
      timestamp: input.timestamp,
      tools: { components: [{ type: "application", name: input.tool.name, version: input.tool.version }] },
      component: {
        "bom-ref": imageRef,
        type: "container",
        name: input.image.name,
        version: input.image.manifest,
        properties: [
          { name: "portcullis:ManifestDigest", value: input.image.manifest },
          ...input.image.layers.map((l) => ({ name: "portcullis:LayerDigest", value: l })),
        ],
      },
    },
    components: out,
    dependencies,
  };
}
