// Validation of reports against Clair v4's published JSON Schemas (draft 2020-12), shipped beside the
// repository in ../shared/clair-api-v1. Used by tests; the schema files are data, read at run time.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";

export function clairSchemaDir(): string {
  const dir = fileURLToPath(new URL("../../../shared/clair-api-v1", import.meta.url));
  if (!existsSync(dir)) throw new Error(`Clair's schemas are not at ${dir}: the shared/ folder must sit beside the repository`);
  return dir;
}

/** A validator for one of Clair's schemas by file name, e.g. "index_report.schema.json". */
export function clairValidator(schemaFile: string): (doc: unknown) => string[] {
  const dir = clairSchemaDir();
  const ajv = new Ajv2020.default({ strict: false, allErrors: true });
  ajv.addFormat("uri", (s: string) => URL.canParse(s));
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".schema.json"))) {
    const schema = JSON.parse(readFileSync(join(dir, f), "utf8")) as { $id?: string };
    ajv.addSchema(schema, f);
  }
  const validate = ajv.getSchema(schemaFile) ?? ajv.getSchema(`https://clairproject.org/api/http/v1/${schemaFile}`);
  if (!validate) throw new Error(`no schema ${schemaFile} in ${dir}`);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""}`));
}
