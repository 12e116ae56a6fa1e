import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  AdvisoryInputError,
  countInto,
  formatPath,
  gunzipBounded,
  gunzipHead,
  httpUrl,
  isAdvisoryId,
  isCveId,
  parseJsonBytes,
  parseYamlBytes,
  sniffText,
} from "./input-guard.js";

describe("input guards", () => {
  it("advisory ids are bounded and plain", () => {
    for (const id of ["GHSA-c2qf-rxjj-qqgw", "CVE-2024-0001", "UBUNTU-CVE-2022-1271", "openSUSE-SU-2024:1234-1", "PYSEC-2019-217", "RUSTSEC-2021-0001"]) {
      expect(isAdvisoryId(id), id).toBe(true);
    }
    for (const id of ["", " CVE-2024-1", "a/b", "x".repeat(129), "CVE 2024", "-leading", 42, null]) expect(isAdvisoryId(id), String(id)).toBe(false);
    expect(isCveId("CVE-2024-12345")).toBe(true);
    expect(isCveId("CVE-2024-XXXX")).toBe(false);
  });

  it("only http(s) URLs pass", () => {
    expect(httpUrl("https://example.org/x")).toBe("https://example.org/x");
    expect(httpUrl("http://example.org/x")).toBe("http://example.org/x");
    for (const u of ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,x", "not a url", `https://e.org/${"a".repeat(5000)}`, "https://e.org/\n"]) {
      expect(httpUrl(u), u).toBeUndefined();
    }
  });

  it("JSON and YAML errors name the file and entry", () => {
    expect(() => parseJsonBytes("a.zip", Buffer.from("{"), 100, "x.json")).toThrow(/^archive a\.zip, entry x\.json: invalid JSON/);
    expect(() => parseYamlBytes("p.yaml", Buffer.from("a: 1\na: 2\n"), 100)).toThrow(/^file p\.yaml: invalid YAML: Map keys must be unique/);
    expect(() => parseYamlBytes("p.yaml", Buffer.from("a: 1\n---\nb: 2\n"), 100)).toThrow(AdvisoryInputError);
    const deep = `${"- ".repeat(70)}x\n`;
    expect(() => parseYamlBytes("d.yaml", Buffer.from(deep), 10_000)).toThrow(/nested more than 64 levels/);
  });

  it("gunzip is bounded; the head of a broken stream is still sniffable", () => {
    const gz = gzipSync(Buffer.from("cve,epss,percentile\n".repeat(1000)));
    expect(gunzipBounded("e.csv.gz", gz, 1_000_000).toString().startsWith("cve,epss")).toBe(true);
    expect(() => gunzipBounded("e.csv.gz", gz, 100)).toThrow(/^file e\.csv\.gz: decompresses to more than 100 bytes/);
    expect(() => gunzipBounded("e.csv.gz", Buffer.from([0x1f, 0x8b, 1, 2, 3]), 100)).toThrow(/invalid gzip/);
    expect(new TextDecoder().decode(gunzipHead(gz.subarray(0, gz.length - 20), 8))).toBe("cve,epss");
    expect(sniffText(gz, 19)).toBe("cve,epss,percentile");
    expect(sniffText(Buffer.from("\uFEFF#model_version:v1"), 17)).toBe("#model_version"); // the 3-byte BOM counts, then is dropped
  });

  it("counts in a Map, so a key such as __proto__ is just a key", () => {
    const m = new Map<string, number>();
    countInto(m, "__proto__");
    countInto(m, "__proto__");
    expect(m.get("__proto__")).toBe(2);
    expect(formatPath(["affected", 2, "ranges", 0, "events"])).toBe("affected[2].ranges[0].events");
    expect(formatPath([])).toBe("(record)");
  });
});
