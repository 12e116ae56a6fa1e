// The scanners Portcullis runs by default. Adding an ecosystem is one line here and a folder beside this
// file; no existing scanner changes.
import { ApkScanner } from "./apk/apk.js";
import { DpkgScanner } from "./dpkg/dpkg.js";
import { OsReleaseScanner } from "./osrelease/osrelease.js";
import type { Scanner } from "./types.js";

export function defaultScanners(): Scanner[] {
  return [new DpkgScanner(), new ApkScanner(), new OsReleaseScanner()];
}
