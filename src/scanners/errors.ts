// A scanner's complaint about a file it asked for, and the JSON reader that makes one.
import { PortcullisError } from "../errors.js";

export class ScannerError extends PortcullisError {
  readonly domain = "scanner";
  override name = "ScannerError";
  constructor(
    readonly scanner: string,
    readonly path: string,
    message: string,
    /** SCANNER_ERROR, or what callers branch on when the file broke a limit (the Java scanner's ZIP_BOMB, ZIP_LIMIT). */
    readonly code: string = "SCANNER_ERROR",
  ) {
    super(`${scanner}: ${path}: ${message}`);
  }
}

/** `data` (a file the scanner was given) as JSON; a ScannerError saying why when it is not JSON. */
export function parseJsonFile(scanner: string, path: string, data: Buffer): unknown {
  try {
    return JSON.parse(data.toString("utf8"));
  } catch (e) {
    throw new ScannerError(scanner, path, `not JSON (${(e as Error).message})`);
  }
}
