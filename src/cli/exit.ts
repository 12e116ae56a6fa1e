import { PortcullisError } from "../errors.js";
/** Exit codes, part of the command's contract: scripts branch on them. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export class UsageError extends PortcullisError {
  readonly domain = "cli";
  readonly code = "USAGE";
  override name = "UsageError";
}
