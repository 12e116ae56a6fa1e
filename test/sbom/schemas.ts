// Validators for the official SBOM JSON schemas vendored in test/fixtures/sbom-schemas (see its README):
// CycloneDX 1.5 (with the spdx and jsf schemas it refers to) and SPDX 2.3, both JSON Schema draft-07.
//
// The CycloneDX schema uses the formats date-time, uri, iri-reference and idn-email; ajv-formats is not a
// dependency, so they are registered here with simple checks, each stricter than "anything" and looser
// than the RFC: date-time is RFC 3339's shape (and a date Date.parse accepts), uri is what the WHATWG URL
// parser accepts, iri-reference any non-empty string without whitespace or control characters, idn-email
// something@something.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const dir = fileURLToPath(new URL("../fixtures/sbom-schemas/", import.meta.url));
const load = (f: string) => JSON.parse(readFileSync(`${dir}${f}`, "utf8")) as Record<string, unknown>;

function ajv(): Ajv.default {
  const a = new Ajv.default({ strict: false, allErrors: true });
  a.addFormat("date-time", (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)));
  a.addFormat("uri", (s: string) => URL.canParse(s));
  a.addFormat("iri-reference", (s: string) => s.length > 0 && ![...s].some((ch) => ch.charCodeAt(0) <= 0x20));
  a.addFormat("idn-email", (s: string) => /^[^@\s]+@[^@\s]+$/.test(s));
  return a;
}

function validator(schemas: string[], main: string): (doc: unknown) => string[] {
  const a = ajv();
  for (const f of schemas) a.addSchema(load(f), f);
  const v = a.getSchema(main)!;
  return (doc) => (v(doc) ? [] : (v.errors ?? []).slice(0, 20).map((e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`));
}

export const validateCycloneDx = validator(["spdx.schema.json", "jsf-0.82.schema.json", "bom-1.5.schema.json"], "bom-1.5.schema.json");
export const validateSpdx = validator(["spdx-2.3.schema.json"], "spdx-2.3.schema.json");
