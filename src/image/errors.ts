// The error of an invalid image reference or digest; `part` says which piece was wrong.

export type ReferencePart = "reference" | "registry" | "repository" | "tag" | "digest";

export class ReferenceError extends Error {
  override name = "ReferenceError";
  readonly code = "INVALID_REFERENCE";
  constructor(message: string, readonly part: ReferencePart) {
    super(message);
  }
}
