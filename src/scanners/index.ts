// The scanners Portcullis runs by default. Adding an ecosystem is one line here and a folder beside this
// file; no existing scanner changes.
import { ApkScanner } from "./apk/apk.js";
import { CargoAuditableScanner } from "./cargo/cargo.js";
import { ComposerScanner } from "./composer/composer.js";
import { DpkgCopyrightScanner } from "./dpkg/copyright.js";
import { DpkgScanner } from "./dpkg/dpkg.js";
import { DotnetDepsScanner } from "./dotnet/dotnet.js";
import { DpkgFilesScanner } from "./dpkg/files.js";
import { GoBinaryScanner } from "./gobin/gobin.js";
import { JavaScanner } from "./java/java.js";
import { NpmScanner } from "./npm/npm.js";
import { OsReleaseScanner } from "./osrelease/osrelease.js";
import { PythonScanner } from "./python/python.js";
import { RhelContentSetScanner } from "./rhel/contentsets.js";
import { RpmScanner } from "./rpm/rpm.js";
import { RubyGemScanner } from "./ruby/ruby.js";
import type { Scanner } from "../model/scanner.js";

export function defaultScanners(): Scanner[] {
  return [
    new DpkgScanner(),
    // Streaming scanners (dpkg-files, gobin, cargo-auditable) each get every file they want, in one read.
    new DpkgFilesScanner(),
    new DpkgCopyrightScanner(),
    new ApkScanner(),
    new RpmScanner(),
    new OsReleaseScanner(),
    new RhelContentSetScanner(),
    new NpmScanner(),
    new PythonScanner(),
    new JavaScanner(),
    new GoBinaryScanner(),
    new CargoAuditableScanner(),
    new RubyGemScanner(),
    new ComposerScanner(),
    new DotnetDepsScanner(),
  ];
}
