import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  AdvisoryInputError,
  MiB,
  countInto,
  entriesOf,
  formatPath,
  gunzipBounded,
  gunzipHead,
  httpUrl,
  isAdvisoryId,
  isCveId,
  lineColumn,
  own,
  parseJson,
  parseJsonBytes,
  parseYaml,
  parseYamlBytes,
  sniffText,
} from "./input.js";

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


const file = (path: string, text: string | Buffer) => ({
  path,
  bytes: typeof text === "string" ? Buffer.from(text) : text,
});

describe("bounded input", () => {
  it("names the file, line and column of invalid JSON", () => {
    expect(() => parseJson(file("x/debian.json", '{\n  "a": [1,\n'), MiB)).toThrow(
      /^x\/debian\.json: invalid JSON at line 3 column 1 \(offset 13\): Unexpected end of JSON input/,
    );
    expect(() => parseJson(file("empty.json", ""), MiB)).toThrow(/empty\.json: invalid JSON at line 1 column 1/);
  });

  it("refuses a file over the cap before reading it", () => {
    const err = (() => {
      try {
        parseJson(file("big.json", Buffer.alloc(2049, 0x20)), 2048);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(AdvisoryInputError);
    expect((err as AdvisoryInputError).file).toBe("big.json");
    expect((err as Error).message).toMatch(/2049 bytes is over the/);
  });

  it("refuses invalid UTF-8", () => {
    expect(() => parseJson(file("bad.json", Buffer.from([0x7b, 0xff, 0x7d])), MiB)).toThrow(/bad\.json: not valid UTF-8/);
  });

  it("keeps __proto__ an ordinary key in JSON and YAML", () => {
    const j = parseJson(file("p.json", '{"__proto__": {"polluted": 1}, "a": 2}'), MiB) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(["__proto__", "a"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(own(j, "toString")).toBeUndefined();
    const y = parseYaml(file("p.yaml", "__proto__:\n  polluted: x\nv: 2.10\n"), MiB) as Record<string, unknown>;
    expect(entriesOf(y)).toEqual([
      ["__proto__", { polluted: "x" }],
      ["v", "2.10"],
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("reads YAML scalars as strings and names the position of errors", () => {
    expect(parseYaml(file("a.yaml", "k:\n  5.8-r0: [CVE-1]\n  1.10: x\n"), MiB)).toEqual({ k: { "5.8-r0": ["CVE-1"], "1.10": "x" } });
    expect(() => parseYaml(file("b.yaml", "a: [\n"), MiB)).toThrow(/^b\.yaml: invalid YAML at line \d+ column \d+/);
    expect(() => parseYaml(file("c.yaml", "a: 1\na: 2\n"), MiB)).toThrow(/c\.yaml: invalid YAML at line 2 column 1: Map keys must be unique/);
  });

  it("deep nesting is an error naming the file, never a stack overflow", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    expect(() => parseYaml(file("deep.yaml", deep), MiB)).toThrow(AdvisoryInputError);
    const nested = Array.from({ length: 100 }, (_, i) => `${" ".repeat(i)}k:`).join("\n") + " v\n";
    expect(() => parseYaml(file("nested.yaml", nested), MiB)).toThrow(/^nested\.yaml: nested deeper than 64 levels/);
    expect(parseJson(file("deep.json", deep), MiB)).toBeInstanceOf(Array);
  });

  it("computes line and column", () => {
    expect(lineColumn("ab\ncd\n", 4)).toEqual({ line: 2, column: 2 });
    expect(lineColumn("", 0)).toEqual({ line: 1, column: 1 });
  });
});
