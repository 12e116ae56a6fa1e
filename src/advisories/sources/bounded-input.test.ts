import { describe, expect, it } from "vitest";
import { AdvisoryInputError, MiB, entriesOf, lineColumn, own, parseJson, parseYaml } from "./bounded-input.js";

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
