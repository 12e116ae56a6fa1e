import { describe, expect, it } from "vitest";
import { bearerScopes, findChallenge, parseChallenges } from "./challenge.js";

describe("parseChallenges", () => {
  it("parses the Docker Hub Bearer challenge with a comma inside a quoted scope", () => {
    const h =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"';
    expect(parseChallenges(h)).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:a/b:pull,push",
        },
      },
    ]);
  });

  it("parses ECR's Basic challenge", () => {
    const h = 'Basic realm="https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com"';
    expect(parseChallenges(h)).toEqual([
      {
        scheme: "basic",
        params: { realm: "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/", service: "ecr.amazonaws.com" },
      },
    ]);
  });

  it("parses several challenges in one header (the RFC 7235 example)", () => {
    const h = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"';
    expect(parseChallenges(h)).toEqual([
      { scheme: "newauth", params: { realm: "apps", type: "1", title: 'Login to "apps"' } },
      { scheme: "basic", params: { realm: "simple" } },
    ]);
  });

  it("accepts several headers", () => {
    expect(parseChallenges(['Basic realm="a"', 'Bearer realm="b",service="s"'])).toEqual([
      { scheme: "basic", params: { realm: "a" } },
      { scheme: "bearer", params: { realm: "b", service: "s" } },
    ]);
  });

  it("lowercases schemes and param names but not values", () => {
    expect(parseChallenges('BEARER Realm="HTTPS://X/Token", SERVICE=Reg')).toEqual([
      { scheme: "bearer", params: { realm: "HTTPS://X/Token", service: "Reg" } },
    ]);
  });

  it("tolerates whitespace around '=' and commas, and empty list elements", () => {
    const h = ' ,  Bearer   realm = "r" ,, service =s ,  , Basic , ';
    expect(parseChallenges(h)).toEqual([
      { scheme: "bearer", params: { realm: "r", service: "s" } },
      { scheme: "basic", params: {} },
    ]);
  });

  it("accepts tabs as whitespace", () => {
    expect(parseChallenges('Bearer\trealm="r",\tservice="s"')).toEqual([
      { scheme: "bearer", params: { realm: "r", service: "s" } },
    ]);
  });

  it("parses token68 challenges", () => {
    expect(parseChallenges("Negotiate YIIB3gYGKwYBBQUCoIIB0j==, Basic realm=x")).toEqual([
      { scheme: "negotiate", params: {}, token68: "YIIB3gYGKwYBBQUCoIIB0j==" },
      { scheme: "basic", params: { realm: "x" } },
    ]);
    expect(parseChallenges("Foo abc/+._~-")).toEqual([{ scheme: "foo", params: {}, token68: "abc/+._~-" }]);
  });

  it("reads a scheme with no params", () => {
    expect(parseChallenges("Basic")).toEqual([{ scheme: "basic", params: {} }]);
    expect(parseChallenges("Basic, Bearer")).toEqual([
      { scheme: "basic", params: {} },
      { scheme: "bearer", params: {} },
    ]);
  });

  it("keeps empty quoted values and backslash escapes", () => {
    expect(parseChallenges('Bearer realm="", error="a\\\\b\\"c"')).toEqual([
      { scheme: "bearer", params: { realm: "", error: 'a\\b"c' } },
    ]);
  });

  it("accepts unquoted values with '/' and ':' (sloppy servers)", () => {
    expect(parseChallenges("Bearer realm=https://auth.example.com/token,service=reg.example.com:5000")).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.example.com/token", service: "reg.example.com:5000" } },
    ]);
  });

  it("accepts params separated by whitespace only", () => {
    expect(parseChallenges('Bearer realm="r" service="s" scope="a b"')).toEqual([
      { scheme: "bearer", params: { realm: "r", service: "s", scope: "a b" } },
    ]);
  });

  it("keeps the first of duplicate params", () => {
    expect(parseChallenges('Bearer realm="first", REALM="second"')[0]?.params).toEqual({ realm: "first" });
  });

  it("reads an unterminated quoted string to the end", () => {
    expect(parseChallenges('Bearer realm="https://x/token, service="s')).toEqual([
      { scheme: "bearer", params: { realm: "https://x/token, service=" } },
      { scheme: "s", params: {} },
    ]);
    expect(parseChallenges('Bearer realm="abc\\')).toEqual([{ scheme: "bearer", params: { realm: "abc" } }]);
  });

  it("returns nothing for empty or non-string input", () => {
    expect(parseChallenges("")).toEqual([]);
    expect(parseChallenges("   ,,, ")).toEqual([]);
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges(null)).toEqual([]);
    expect(parseChallenges([])).toEqual([]);
    expect(parseChallenges([1, {}, null] as unknown as string[])).toEqual([]);
    expect(parseChallenges(42 as unknown as string)).toEqual([]);
  });

  it("skips garbage and keeps what parses", () => {
    expect(parseChallenges('"quoted", Bearer realm="r", =x, Basic realm="b"')).toEqual([
      { scheme: "bearer", params: { realm: "r" } },
      { scheme: "basic", params: { realm: "b" } },
    ]);
    expect(parseChallenges('Bearer realm="r", @@@, service="s"')).toEqual([
      { scheme: "bearer", params: { realm: "r", service: "s" } },
    ]);
  });

  it("does not let a '__proto__' param touch prototypes", () => {
    const [c] = parseChallenges('Bearer __proto__="x", constructor="y", realm="r"');
    expect(c?.params["realm"]).toBe("r");
    expect(Object.keys(c?.params ?? {})).toEqual(["__proto__", "constructor", "realm"]);
    expect(Object.getOwnPropertyDescriptor(c?.params, "__proto__")?.value).toBe("x");
    expect(({} as Record<string, unknown>)["x"]).toBeUndefined();
    expect(Object.getPrototypeOf(c?.params)).toBe(Object.prototype);
  });

  it("never throws on hostile input and stays linear", () => {
    const samples = [
      '"',
      "\\",
      "=",
      "==,==",
      'Bearer "',
      'Bearer realm="\\',
      "Bearer realm=",
      "Bearer realm= ,",
      "Bearer ,realm",
      "Basic=abc",
      "\u0000\u0001\uffff",
      "Bearer \u00e9t\u00e9=1",
      '"'.repeat(10_001),
      "a=".repeat(50_000),
      'Bearer x="'.repeat(20_000),
      ", ".repeat(50_000),
      "A ".repeat(50_000),
      "\\\"".repeat(50_000),
    ];
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    const alphabet = 'aB =,"\\\t/:;@()[]{}~+-.*\u00ff\u2028';
    for (let i = 0; i < 500; i++) {
      let s = "";
      const n = rnd() % 60;
      for (let j = 0; j < n; j++) s += alphabet[rnd() % alphabet.length];
      samples.push(s);
    }
    const started = Date.now();
    for (const s of samples) {
      const out = parseChallenges(s);
      expect(Array.isArray(out)).toBe(true);
      for (const c of out) {
        expect(c.scheme).toMatch(/^[a-z0-9!#$%&'*+\-.^_`|~]+$/);
        for (const v of Object.values(c.params)) expect(typeof v).toBe("string");
      }
    }
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("bearerScopes", () => {
  it("splits the scope param on spaces", () => {
    const [c] = parseChallenges(
      'Bearer realm="r",scope="repository:a/b:pull,push  repository:c/d:pull registry:catalog:*"',
    );
    expect(bearerScopes(c!)).toEqual(["repository:a/b:pull,push", "repository:c/d:pull", "registry:catalog:*"]);
  });

  it("gives no scopes without a scope param or with an empty one", () => {
    expect(bearerScopes({ scheme: "bearer", params: { realm: "r" } })).toEqual([]);
    expect(bearerScopes({ scheme: "bearer", params: { scope: "  " } })).toEqual([]);
  });
});

describe("findChallenge", () => {
  it("finds a challenge by scheme, case-insensitively", () => {
    const cs = parseChallenges('Basic realm="a", Bearer realm="b"');
    expect(findChallenge(cs, "Bearer")?.params["realm"]).toBe("b");
    expect(findChallenge(cs, "digest")).toBeUndefined();
  });
});
