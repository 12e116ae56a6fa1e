// File ownership through coalescing: OS file lists stack like package databases (a later layer's list
// replaces the lower one, a whiteout removes it), and the report names each OS-owned language package's owner
// in a way Clair's schema accepts. Layers are the real pipeline's (tar → walkLayer → default scanners).
import { describe, expect, it } from "vitest";
import { OWNER_REPOSITORY_KEY, type IndexReport } from "../model/index-report.js";
import { clairValidator } from "./clair-schema.js";
import { indexImage, OS_RELEASE, type TarEntry } from "../matcher/testing.js";
import { ownershipFromReport } from "../matcher/ownership.js";

const EGG = "usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info";
const PKG_INFO = "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n";
const LIST = "var/lib/dpkg/info/python3-jinja2.list";
const list = ["/.", "/usr", "/usr/lib", "/usr/lib/python3", "/usr/lib/python3/dist-packages", `/${EGG}`, `/${EGG}/PKG-INFO`, "/usr/lib/python3/dist-packages/jinja2/__init__.py"].join("\n") + "\n";

function status(pkgs: Array<{ name: string; version: string; source?: string }>): string {
  return pkgs.map((p) => `Package: ${p.name}\nStatus: install ok installed\nMaintainer: m <m@example.org>\nArchitecture: all\nVersion: ${p.version}\n${p.source ? `Source: ${p.source}\n` : ""}`).join("\n");
}
const jinja = status([{ name: "python3-jinja2", version: "3.1.2-1+deb12u3", source: "jinja2" }]);
const base: TarEntry[] = [{ name: "etc/os-release", content: OS_RELEASE.debian12 }];

/** The owner names of the report's packages, `name version path -> owner`. */
function owners(report: IndexReport): string[] {
  const repos = report.repository ?? {};
  const out: string[] = [];
  for (const [id, p] of Object.entries(report.packages ?? {})) {
    const env = report.environments![id]![0]!;
    for (const r of env.repository_ids ?? []) if (repos[r]?.key === OWNER_REPOSITORY_KEY) out.push(`${p.name} ${env.package_db} -> ${repos[r]!.name}`);
  }
  return out.sort();
}

describe("file ownership through coalescing", () => {
  it("the list and the egg-info in one layer: the egg-info is owned by python3-jinja2; a pip-style dist-info is not", async () => {
    const report = await indexImage([[
      ...base,
      { name: "var/lib/dpkg/status", content: jinja },
      { name: LIST, content: list },
      { name: `${EGG}/PKG-INFO`, content: PKG_INFO },
      { name: "usr/local/lib/python3.11/dist-packages/Jinja2-3.1.2.dist-info/METADATA", content: PKG_INFO },
    ]]);
    expect(owners(report)).toEqual([`Jinja2 python:${EGG}/PKG-INFO -> python3-jinja2`]);
    expect(clairValidator("index_report.schema.json")(report)).toEqual([]);
    const own = ownershipFromReport(report)!;
    expect(own(`${EGG}/PKG-INFO`)).toEqual({ type: "dpkg", name: "python3-jinja2", version: "3.1.2-1+deb12u3", source: { name: "jinja2", version: "3.1.2-1+deb12u3" } });
    expect(own("usr/local/lib/python3.11/dist-packages/Jinja2-3.1.2.dist-info/METADATA")).toBeUndefined();
  });

  it("the list in a lower layer, the egg-info rewritten in an upper one, and the status rewritten above both: still owned", async () => {
    const report = await indexImage([
      [...base, { name: "var/lib/dpkg/status", content: jinja }, { name: LIST, content: list }, { name: `${EGG}/PKG-INFO`, content: PKG_INFO }],
      [{ name: `${EGG}/PKG-INFO`, content: PKG_INFO }],
      [{ name: "var/lib/dpkg/status", content: `${jinja}\n${status([{ name: "jq", version: "1.6-2.1" }])}` }, { name: "var/lib/dpkg/info/jq.list", content: "/.\n/usr/bin/jq\n" }],
    ]);
    expect(owners(report)).toEqual([`Jinja2 python:${EGG}/PKG-INFO -> python3-jinja2`]);
  });

  it("a whiteout of the list, or a later list without the path, or a status without the package: not owned", async () => {
    const lower = [...base, { name: "var/lib/dpkg/status", content: jinja }, { name: LIST, content: list }, { name: `${EGG}/PKG-INFO`, content: PKG_INFO }];
    const whiteout = await indexImage([lower, [{ name: "var/lib/dpkg/info/.wh.python3-jinja2.list", content: "" }]]);
    expect(owners(whiteout)).toEqual([]);
    const opaque = await indexImage([lower, [{ name: "var/lib/dpkg/info/.wh..wh..opq", content: "" }]]);
    expect(owners(opaque)).toEqual([]);
    const rewritten = await indexImage([lower, [{ name: LIST, content: "/.\n/usr/share/doc/python3-jinja2/copyright\n" }]]);
    expect(owners(rewritten)).toEqual([]);
    const removed = await indexImage([lower, [{ name: "var/lib/dpkg/status", content: status([{ name: "jq", version: "1.6-2.1" }]) }]]);
    expect(owners(removed)).toEqual([]);
    expect(ownershipFromReport(removed)).toBeUndefined();
  });

  it("apk F:/R: lines own a py3 package's dist-info; a later apk database without the file owns nothing", async () => {
    const meta = "usr/lib/python3.11/site-packages/six-1.16.0.dist-info";
    const entry = (files: string) => `C:Q1x=\nP:py3-six\nV:1.16.0-r7\nA:noarch\no:py3-six\n${files}\n`;
    const os: TarEntry = { name: "etc/os-release", content: OS_RELEASE.alpine318 };
    const layer1 = [os, { name: "lib/apk/db/installed", content: entry(`F:${meta}\nR:METADATA\nR:RECORD\n`) }, { name: `${meta}/METADATA`, content: "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n" }];
    const one = await indexImage([layer1]);
    expect(owners(one)).toEqual([`six python:${meta}/METADATA -> py3-six`]);
    expect(ownershipFromReport(one)!(`${meta}/METADATA`)).toMatchObject({ type: "apk", name: "py3-six", version: "1.16.0-r7" });
    const two = await indexImage([layer1, [{ name: "lib/apk/db/installed", content: entry("F:usr/bin\nR:other\n") }]]);
    expect(owners(two)).toEqual([]);
  });

  it("the owner Repository carries the OS package's name and the owner key, nothing else", async () => {
    const report = await indexImage([[
      ...base,
      { name: "var/lib/dpkg/status", content: jinja },
      { name: LIST, content: list },
      { name: `${EGG}/PKG-INFO`, content: PKG_INFO },
    ]]);
    expect(Object.values(report.repository!)).toEqual([{ id: "1", name: "python3-jinja2", key: OWNER_REPOSITORY_KEY }]);
  });
});
