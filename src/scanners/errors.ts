// A scanner's complaint about a file it asked for, and the JSON reader that makes one.
import { PortcullisError } from "../errors.js";

export class ScannerError extends PortcullisError {
  readonly domain = "scanner";
  readonly code = "SCANNER_ERROR";
  override name = "ScannerError";
  constructor(
    readonly scanner: string,
    readonly path: string,
    message: string,
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
