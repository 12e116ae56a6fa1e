import { describe, expect, it } from "vitest";
import { LayerError } from "../layers/errors.js";
import { scanFailure } from "./scan.js";

describe("a failed scan's message", () => {
  it("ends with the error's code, like every other error the CLI prints", () => {
    const error = new LayerError("DIGEST_MISMATCH", "sha256:aaaa", "content has digest sha256:bbbb");
    expect(scanFailure("oci:img:bad", { report: { manifest_hash: "sha256:cccc", state: "IndexError", success: false, err: error.message }, error }))
      .toBe("portcullis: scan of oci:img:bad failed: layer sha256:aaaa: content has digest sha256:bbbb [DIGEST_MISMATCH]\n");
  });

  it("has no code when the error has none, and the state when there is no error text", () => {
    expect(scanFailure("x", { report: { manifest_hash: "sha256:cccc", state: "IndexError", success: false, err: "boom" }, error: new Error("boom") }))
      .toBe("portcullis: scan of x failed: boom\n");
    expect(scanFailure("x", { report: { manifest_hash: "sha256:cccc", state: "IndexError", success: false } })).toBe("portcullis: scan of x failed: IndexError\n");
  });
});
