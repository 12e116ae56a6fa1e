import { describe, expect, it, vi } from "vitest";
import { main, EXIT } from "./main.js";
import { redactUrl, formatEnvReport } from "./env-check.js";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
  return { out, err, restore: () => (o.mockRestore(), e.mockRestore()) };
}

describe("portcullis command", () => {
  it("prints its version from package.json", async () => {
    const c = capture();
    const code = await main(["--version"]);
    c.restore();
    expect(code).toBe(EXIT.ok);
    expect(c.out.join("")).toMatch(/^portcullis \d+\.\d+\.\d+\n$/);
  });

  it("prints help with the env command", async () => {
    const c = capture();
    const code = await main(["--help"]);
    c.restore();
    expect(code).toBe(EXIT.ok);
    expect(c.out.join("")).toContain("env check");
  });

  it("exits 2 with a message naming an unknown command", async () => {
    const c = capture();
    const code = await main(["scna"]);
    c.restore();
    expect(code).toBe(EXIT.usage);
    expect(c.err.join("")).toContain('unknown command "scna"');
  });

  it("exits 2 on an unknown flag", async () => {
    const c = capture();
    const code = await main(["env", "check", "--jsn"]);
    c.restore();
    expect(code).toBe(EXIT.usage);
    expect(c.err.join("")).toMatch(/--jsn/);
  });
});

describe("env check report", () => {
  it("never prints a database password", () => {
    expect(redactUrl("postgres://u:hunter2@db:5432/x")).toBe("postgres://u:***@db:5432/x");
    const text = formatEnvReport({ ok: false, postgres: { url: redactUrl("postgres://u:hunter2@h/x"), error: "refused" }, tools: [{ label: "helm", error: "not found" }] });
    expect(text).not.toContain("hunter2");
    expect(text).toMatch(/helm\s+missing/);
    expect(text).toContain("environment: incomplete");
  });
});
