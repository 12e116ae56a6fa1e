// SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/) of one image. The document DESCRIBES the image,
// a package of purpose CONTAINER that CONTAINS the operating system (purpose OPERATING_SYSTEM) and every
// package (LIBRARY); a package DEPENDS_ON what its recorded dependencies resolve to (./components.ts).
// Each package has its purl as a PACKAGE-MANAGER external reference, its source package in sourceInfo, and
// the layer that introduced it, the database it was read from, its file and owning OS package as
// annotations (`LayerDigest: sha256:…`, `PackageDB: …`, `FilePath: …`, `OwnedBy: …`), as Trivy does.
//
// Licences: the package databases record free text (Debian's `GPL-2+`, `BSD-3-clause`) as often as SPDX
// identifiers, and no licence list ships with Portcullis to tell them apart, so every licence is a
// `LicenseRef-` of the document with the recorded text as its name and extracted text; licenseDeclared
// joins a package's licences with AND (a copyright file's licences each cover some of its files).
// licenseConcluded is NOASSERTION: nothing here concludes.
import { components, shortHash } from "./components.js";
import type { SbomInput } from "./types.js";

/** An SPDX id from any text: the characters SPDX allows (`[A-Za-z0-9.-]`), `+` as `-plus`, the rest as `-`. */
function idPart(s: string): string {
  return s.replace(/\+/g, "-plus").replace(/[^A-Za-z0-9.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64) || "x";
}

export function spdx(input: SbomInput): Record<string, unknown> {
  const comps = components(input);
  const creator = `Tool: ${input.tool.name}-${input.tool.version}`;
  const annotation = (comment: string) => ({ annotator: creator, annotationDate: input.timestamp, annotationType: "OTHER", comment });

  const licenseRefs = new Map<string, string>();
  const usedIds = new Set<string>();
  const licenseRef = (text: string): string => {
    let id = licenseRefs.get(text);
    if (!id) {
      id = `LicenseRef-${idPart(text)}`;
      if (usedIds.has(id)) id = `${id}-${shortHash(text).slice(0, 8)}`;
      usedIds.add(id);
      licenseRefs.set(text, id);
    }
    return id;
  };

  const imageId = "SPDXRef-Image";
  const packages: Array<Record<string, unknown>> = [
    {
      name: input.image.name,
      SPDXID: imageId,
      versionInfo: input.image.manifest,
      downloadLocation: "NOASSERTION",
      filesAnalyzed: false,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: "NOASSERTION",
      copyrightText: "NOASSERTION",
      primaryPackagePurpose: "CONTAINER",
      annotations: [annotation(`ManifestDigest: ${input.image.manifest}`), ...input.image.layers.map((l) => annotation(`LayerDigest: ${l}`))],
    },
  ];
  const relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }> = [
    { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: imageId },
  ];
  const d = input.distribution;
  if (d) {
    const osId = "SPDXRef-OperatingSystem";
    packages.push({
      name: d.did || d.name,
      SPDXID: osId,
      versionInfo: d.version_id || d.version,
      downloadLocation: "NOASSERTION",
      filesAnalyzed: false,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: "NOASSERTION",
      copyrightText: "NOASSERTION",
      primaryPackagePurpose: "OPERATING_SYSTEM",
      ...(d.pretty_name ? { description: d.pretty_name } : {}),
    });
    relationships.push({ spdxElementId: imageId, relationshipType: "CONTAINS", relatedSpdxElement: osId });
  }
  // Ids from the ref: the same package has the same id in every document of the image.
  const ids = new Map(comps.map((c) => [c.ref, `SPDXRef-Package-${shortHash(c.ref)}`]));
  for (const c of comps) {
    const id = ids.get(c.ref)!;
    const notes = [`LayerDigest: ${c.layer}`, `PackageDB: ${c.pkg.package_db ?? ""}`];
    if (c.pkg.filepath) notes.push(`FilePath: ${c.pkg.filepath}`);
    if (c.ownedBy) notes.push(`OwnedBy: ${c.ownedBy}`);
    const pkg: Record<string, unknown> = {
      name: c.pkg.name,
      SPDXID: id,
      versionInfo: c.pkg.version,
      downloadLocation: "NOASSERTION",
      filesAnalyzed: false,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: c.pkg.licenses?.length ? c.pkg.licenses.map(licenseRef).join(" AND ") : "NOASSERTION",
      copyrightText: "NOASSERTION",
      externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: c.purl }],
      primaryPackagePurpose: "LIBRARY",
      annotations: notes.map(annotation),
    };
    if (c.os && c.pkg.source?.name) pkg.sourceInfo = `built package from: ${c.pkg.source.name} ${c.pkg.source.version ?? ""}`.trim();
    packages.push(pkg);
    relationships.push({ spdxElementId: imageId, relationshipType: "CONTAINS", relatedSpdxElement: id });
  }
  for (const c of comps) {
    for (const dep of c.dependsOn) relationships.push({ spdxElementId: ids.get(c.ref)!, relationshipType: "DEPENDS_ON", relatedSpdxElement: ids.get(dep)! });
  }
  const doc: Record<string, unknown> = {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: input.image.name,
    documentNamespace: `https://portcullis.dev/spdxdocs/${idPart(input.image.name)}-${input.uuid}`,
    creationInfo: { created: input.timestamp, creators: [creator] },
    documentDescribes: [imageId],
    packages,
    relationships,
  };
  if (licenseRefs.size) {
    doc.hasExtractedLicensingInfos = [...licenseRefs].map(([text, licenseId]) => ({ licenseId, extractedText: text, name: text }));
  }
  return doc;
}
