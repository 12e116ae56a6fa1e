import type { CredentialProvider } from "../types.js";
import { EcrCredentialProvider, type EcrOptions } from "./ecr.js";
import { GcrCredentialProvider, type GcrOptions } from "./gcr.js";

/**
 * The cloud helpers named in configuration (each is opt-in): `ecr`, `gcr`. Unknown names are an error that
 * lists the known ones.
 */
export function cloudProviders(names: readonly string[], o: { ecr?: EcrOptions; gcr?: GcrOptions } = {}): CredentialProvider[] {
  return names.map((n) => {
    switch (n.trim().toLowerCase()) {
      case "ecr":
        return new EcrCredentialProvider(o.ecr);
      case "gcr":
        return new GcrCredentialProvider(o.gcr);
      default:
        throw new Error(`unknown credential helper ${JSON.stringify(n)}; known: ecr, gcr`);
    }
  });
}
