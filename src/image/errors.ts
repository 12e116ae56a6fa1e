// The error of an invalid image reference or digest; `part` says which piece was wrong.
import { PortcullisError } from "../errors.js";

export type ReferencePart = "reference" | "registry" | "repository" | "tag" | "digest";

export class ReferenceError extends PortcullisError {
  readonly domain = "image";
  override name = "ReferenceError";
  readonly code = "INVALID_REFERENCE";
  constructor(message: string, readonly part: ReferencePart) {
    super(message);
  }
}
