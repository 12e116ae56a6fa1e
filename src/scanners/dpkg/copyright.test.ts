// The copyright sink's bounds on hostile input, and its reading of a real DEP-5 file split at every byte.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fixturesDir } from "../testing.js";
import { copyrightPackage, copyrightSink, MAX_BYTES, MAX_LICENSES } from "./copyright.js";
import { parseRelations } from "./dpkg.js";

function feed(chunks: Buffer[]): ReturnType<ReturnType<typeof copyrightSink>["end"]> {
  const s = copyrightSink();
  for (const c of chunks) if (!s.write(c)) break;
  return s.end();
}

describe("dpkg copyright files", () => {
  it("reads License: first lines however the stream is cut, and common-licenses references only without them", () => {
    const text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2020 X\nLicense: GPL-2+\n This program is free software\n .\n License: not-a-field\n\nFiles: a/*\nLicense: BSD-3-clause\n\nLicense: GPL-2+\n see /usr/share/common-licenses/GPL-2.\n";
    const whole = feed([Buffer.from(text)]);
    expect(whole).toEqual({ licenses: ["GPL-2+", "BSD-3-clause"] });
    const bytes = Buffer.from(text);
    expect(feed([...bytes].map((b) => Buffer.from([b])))).toEqual(whole);
    expect(feed([Buffer.from("Copyright: 1999\n\nOn Debian systems, see /usr/share/common-licenses/GPL or\n/usr/share/common-licenses/LGPL.\n/usr/share/common-licenses/GPL\n")])).toEqual({ licenses: ["GPL", "LGPL"] });
  });

  it("bounds what it reads: MAX_BYTES per file, MAX_LICENSES per file, overlong lines skipped", () => {
    const big = Buffer.alloc(MAX_BYTES + 100, "x\n");
    Buffer.from("License: late\n").copy(big, MAX_BYTES + 10);
    expect(feed([big])).toEqual({ licenses: [], truncated: true });
    const many = Array.from({ length: MAX_LICENSES + 10 }, (_, i) => `License: L${i}\n`).join("");
    expect(feed([Buffer.from(many)]).licenses).toHaveLength(MAX_LICENSES);
    expect(feed([Buffer.from(`License: ${"y".repeat(5000)}\nLicense: MIT\n`)])).toEqual({ licenses: ["MIT"] });
  });

  it("takes only usr/share/doc/<package>/copyright", () => {
    expect(copyrightPackage("usr/share/doc/libc6/copyright")).toBe("libc6");
    expect(copyrightPackage("usr/share/doc/libc6/sub/copyright")).toBeUndefined();
    expect(copyrightPackage("usr/share/doc/Bad_Name/copyright")).toBeUndefined();
  });

  it("dependency names from Depends fields of real status files: versions, arch qualifiers and alternatives", () => {
    const status = readFileSync(fixturesDir("dpkg", "debian9", "status"), "utf8");
    const field = /^Depends: (.*)$/m.exec(status.slice(status.indexOf("Package: apt\n")))![1]!;
    const parsed = parseRelations(field);
    expect(parsed.length).toBe(field.split(",").length);
    for (const alts of parsed) for (const a of alts) expect(a).toMatch(/^[a-z0-9][a-z0-9+.-]*$/);
    expect(parseRelations("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any, foo [amd64]")).toEqual([["libc6"], ["debconf", "debconf-2.0"], ["perl"], ["foo"]]);
  });
});
