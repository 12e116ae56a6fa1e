// For tests only (it asserts with vitest): a partial walk of the test layer (whiteouts, an opaque directory, a
// Go and a Rust executable) against the full walk of the same blob, the same checks for every format.
import { expect } from "vitest";
import { defaultScanners } from "../../scanners/index.js";
import type { LayerWalk } from "../walk.js";

/** The partial walk holds what the full one holds, and every scanner finds the same; `asked` stayed in the blob. */
export async function expectSameAsFullWalk(partial: Pick<LayerWalk, "files" | "whiteouts" | "opaqueDirs">, full: LayerWalk, asked: ReadonlyArray<readonly [number, number]>, blobSize: number): Promise<void> {
  expect(partial.files.paths()).toEqual(full.files.paths());
  for (const p of full.files.paths()) expect(partial.files.get(p)).toEqual(full.files.get(p));
  expect({ w: partial.whiteouts, o: partial.opaqueDirs }).toEqual({ w: full.whiteouts, o: full.opaqueDirs });
  expect(partial.whiteouts).toEqual(["usr/share/doc"]);
  expect(partial.opaqueDirs).toEqual(["opt/app"]);
  for (const s of defaultScanners()) expect(await s.scan(partial.files), s.name).toEqual(await s.scan(full.files));
  const found = async (name: string) => ((await defaultScanners().find((s) => s.name === name)!.scan(partial.files)).packages ?? []).map((p) => p.name);
  expect(await found("gobin")).toEqual(expect.arrayContaining(["stdlib", "github.com/aquasecurity/go-pep440-version"]));
  expect(await found("cargo-auditable")).not.toEqual([]);
  expect(asked.every(([s, e]) => e > s && e <= blobSize)).toBe(true);
}
