// Version comparison: one scheme per packaging ecosystem, pure functions, no I/O. A version a scheme
// cannot read is an UnmatchableVersionError, never a guess: the matcher reports such a package as
// unmatchable, not as "not vulnerable".
import { PortcullisError } from "../errors.js";

export interface VersionScheme {
  /** `dpkg`, `rpm`, `apk`, `pep440`, `semver`, `go`, `maven`, `rubygems`. */
  readonly name: string;
  /** Negative when a < b, 0 when equal, positive when a > b. Throws UnmatchableVersionError for invalid input. */
  compare(a: string, b: string): number;
  /** Whether the scheme can read `v`. */
  valid(v: string): boolean;
}

export class UnmatchableVersionError extends PortcullisError {
  readonly domain = "versions";
  override name = "UnmatchableVersionError";
  readonly code = "UNMATCHABLE_VERSION";
  constructor(
    readonly scheme: string,
    readonly version: string,
    why: string,
  ) {
    super(`${scheme}: cannot read version ${JSON.stringify(version)}: ${why}`);
  }
}
