import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { describeConfig, loadServeConfig, serveConfig, type LoadedServeConfig } from "./serve-config.js";

const FILE = "/etc/portcullis/config.yaml";
/** loadServeConfig with the file's text given (no disk). */
function load(args: string[], env: NodeJS.ProcessEnv, text?: string, file = FILE): LoadedServeConfig {
  const r = loadServeConfig(text === undefined ? args : ["--config", file, ...args], env, (p) => {
    expect(p).toBe(file);
    return text!;
  });
  if (r === "help") throw new Error("help");
  return r;
}

describe("serve's configuration", () => {
  it("has defaults, and every existing flag and variable still works", () => {
    expect(load([], {})).toEqual({ config: expect.objectContaining({ namespace: "portcullis-system", concurrency: 4, platform: "linux/amd64", watchNamespaces: "", logLevel: "info", leaderElect: "true" }), sources: {} });
    const c = serveConfig(["--concurrency", "8", "--no-pods", "--watch-namespaces", "a,b", "--log-level", "debug"], { POD_NAMESPACE: "tools", PORTCULLIS_DATABASE_URL: "postgres://db/x", PORTCULLIS_LEADER_ELECT: "false" });
    expect(c).toMatchObject({ namespace: "tools", concurrency: 8, databaseUrl: "postgres://db/x", watchPods: "false", watchNamespaces: "a,b", leaderElect: "false", logLevel: "debug" });
    expect(serveConfig(["--help"], {})).toBe("help");
    expect(() => serveConfig(["--nope"], {})).toThrow(/--nope/);
    expect(() => serveConfig([], { PORTCULLIS_DATABASE_URL: "mysql://x" })).toThrow(/databaseUrl: must be a postgres:\/\/ URL \(from PORTCULLIS_DATABASE_URL\)/);
    expect(() => serveConfig(["--concurrency", "0"], {})).toThrow(/concurrency: must be at least 1 \(from --concurrency\)/);
    expect(() => serveConfig([], { PORTCULLIS_LOG_LEVEL: "verbose" })).toThrow(/logLevel: .*\(from PORTCULLIS_LOG_LEVEL\)/);
  });

  it("takes flags over the environment over the file over the defaults, and says where each value came from", () => {
    const yaml = [
      "# the chart's ConfigMap",
      "concurrency: 2",
      "platform: linux/arm64",
      "gcAfter: 12h",
      "leaderElect: false",
      "watchNamespaces: [team-a, team-b]",
      "excludeNamespaces: kube-system,monitoring",
      "webhookTimeout: 7",
      "logLevel: warn",
      "webhookUrl: null",
    ].join("\n");
    const r = load(["--concurrency", "5", "--log-level", "debug"], { PORTCULLIS_CONCURRENCY: "3", PORTCULLIS_PLATFORM: "linux/s390x", PORTCULLIS_LOG_LEVEL: "error" }, yaml);
    expect(r.config).toMatchObject({
      concurrency: 5, logLevel: "debug", // flags
      platform: "linux/s390x", // environment
      gcAfter: "12h", leaderElect: "false", watchNamespaces: "team-a,team-b", excludeNamespaces: "kube-system,monitoring", webhookTimeout: 7, // file
      storePath: "./portcullis-store", webhook: "true", // defaults
    });
    expect(r.config.webhookUrl).toBeUndefined();
    expect(r.file).toBe(FILE);
    expect(r.sources).toEqual({
      concurrency: "--concurrency", logLevel: "--log-level", platform: "PORTCULLIS_PLATFORM",
      gcAfter: FILE, leaderElect: FILE, watchNamespaces: FILE, excludeNamespaces: FILE, webhookTimeout: FILE,
    });
    // PORTCULLIS_CONFIG names the file too; --config wins over it.
    expect(loadServeConfig([], { PORTCULLIS_CONFIG: "/a.yaml" }, () => "concurrency: 9")).toMatchObject({ config: { concurrency: 9 }, file: "/a.yaml" });
    expect(loadServeConfig(["--config", "/b.json"], { PORTCULLIS_CONFIG: "/a.yaml" }, (p) => (p === "/b.json" ? '{"concurrency": 10, "pinDigests": true}' : "concurrency: 9"))).toMatchObject({ config: { concurrency: 10, pinDigests: "true" }, file: "/b.json" });
  });

  it("refuses unknown keys, naming the key and the file", () => {
    expect(() => load([], {}, "concurency: 8\n")).toThrow(`invalid configuration: ${FILE}: unknown key "concurency" (did you mean "concurrency"?)`);
    expect(() => load([], {}, "watch-namespaces: [a]\nPORTCULLIS_GC_AFTER: 1h\n")).toThrow(/unknown key "watch-namespaces" \(did you mean "watchNamespaces"\?\); .*unknown key "PORTCULLIS_GC_AFTER" \(did you mean "gcAfter"\?\)/);
    expect(() => load([], {}, "replicas: 2\n")).toThrow(/config\.yaml: unknown key "replicas" \(the keys are serve's options in camelCase: databaseUrl, storePath, .*logLevel, .*advisoryBundle, rematchInterval, reportTokenAudiences\)/);
    expect(() => load([], {}, "config: /other.yaml\n")).toThrow(/unknown key "config"/);
    expect(() => load([], {}, "apiVersion: v1\nkind: ConfigMap\ndata:\n  config.yaml: 'concurrency: 2'\n")).toThrow(/config\.yaml is a Kubernetes manifest \(kind ConfigMap\)/);
  });

  it("refuses wrong types, naming the key and the file", () => {
    expect(() => load([], {}, "concurrency: many\n")).toThrow(`invalid configuration: concurrency: must be a whole number (from ${FILE})`);
    expect(() => load([], {}, "concurrency: 2.5\n")).toThrow(/concurrency: must be a whole number/);
    expect(() => load([], {}, "leaderElect: yes\n")).toThrow(`leaderElect: must be true or false (from ${FILE})`);
    expect(() => load([], {}, "watchNamespaces: [1, 2]\n")).toThrow(/watchNamespaces: must be a list: comma separated, or a YAML list of strings \(from .*config\.yaml\)/);
    expect(() => load([], {}, "platform: 5\n")).toThrow(/platform: .*expected string.*\(from .*config\.yaml\)/);
    expect(() => load([], {}, "failurePolicy: fail\n")).toThrow(/failurePolicy: .*"Fail".*\(from .*config\.yaml\)/);
    // A value a flag overrides is not judged.
    expect(load(["--concurrency", "3"], {}, "concurrency: many\n").config.concurrency).toBe(3);
  });

  it("says what is wrong with a file that is not YAML or JSON, or not a mapping", () => {
    expect(() => load([], {}, "watchNamespaces: [a, b\nconcurrency: 2\n")).toThrow(new RegExp(`${FILE} is not valid YAML: .* \\(line \\d+, column \\d+\\)`));
    expect(() => load([], {}, "concurrency: 1\nconcurrency: 2\n")).toThrow(`${FILE} is not valid YAML: duplicated mapping key (line 2, column 1)`);
    expect(() => load([], {}, "{\"concurrency\": 2,}", "/c.json")).toThrow(/\/c\.json is not valid JSON: /);
    expect(() => load([], {}, "- concurrency: 2\n")).toThrow(`${FILE}: expected a mapping of serve's options (camelCase keys such as concurrency or watchNamespaces), not a list`);
    expect(() => load([], {}, "just text\n")).toThrow(/not a string/);
    expect(load([], {}, "").config.concurrency).toBe(4);
    expect(load([], {}, "# nothing set yet\n").sources).toEqual({});
    expect(() => loadServeConfig(["--config", "/nonexistent/portcullis.yaml"], {})).toThrow(/cannot read the configuration file \/nonexistent\/portcullis\.yaml: ENOENT/);
    expect(() => loadServeConfig([], { PORTCULLIS_CONFIG: "" })).toThrow(/empty file name/);
  });

  it("listens on --webhook-url's host and port unless --webhook-addr says where", () => {
    expect(load(["--webhook-url", "https://127.0.0.1:9443"], {})).toMatchObject({ config: { webhookAddr: "127.0.0.1:9443" }, sources: { webhookUrl: "--webhook-url", webhookAddr: "--webhook-url" } });
    expect(load([], { PORTCULLIS_WEBHOOK_URL: "https://dev.example.com/" }).config.webhookAddr).toBe("dev.example.com:443");
    expect(load([], {}, "webhookUrl: https://[::1]:8444\n").config.webhookAddr).toBe("::1:8444");
    // An explicit address wins, from wherever it comes.
    expect(load(["--webhook-url", "https://192.0.2.10:443", "--webhook-addr", "0.0.0.0:8443"], {}).config.webhookAddr).toBe("0.0.0.0:8443");
    expect(load(["--webhook-url", "https://192.0.2.10:443"], { PORTCULLIS_WEBHOOK_ADDR: "127.0.0.1:8443" }).config.webhookAddr).toBe("127.0.0.1:8443");
    expect(load([], { PORTCULLIS_WEBHOOK_URL: "https://192.0.2.10:443" }, "webhookAddr: 0.0.0.0:9000\n").config.webhookAddr).toBe("0.0.0.0:9000");
    // Without a URL, the default as before.
    expect(load([], {}).config.webhookAddr).toBe("0.0.0.0:8443");
    expect(() => load(["--webhook-url", "https://host:99999"], {})).toThrow("invalid configuration: webhookUrl: must be https://HOST:PORT (from --webhook-url)");
  });

  describe("from a file on disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "serve-config-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    it("reads it", () => {
      const f = join(dir, "config.yaml");
      writeFileSync(f, "watchNamespaces:\n  - team-a\nlogLevel: debug\n");
      expect(serveConfig(["--config", f], {})).toMatchObject({ watchNamespaces: "team-a", logLevel: "debug" });
    });
  });

  it("logs the effective configuration with secrets redacted", () => {
    const r = load([], { PORTCULLIS_DATABASE_URL: "postgresql://portcullis:s3cr3t-Pa55@db.example.com:5432/portcullis?sslmode=require" }, "concurrency: 2\n");
    const d = describeConfig(r);
    expect(JSON.stringify(d)).not.toContain("s3cr3t-Pa55");
    expect(d.config.databaseUrl).toBe("postgresql://portcullis:[REDACTED]@db.example.com:5432/portcullis?sslmode=require");
    expect(d.config).toMatchObject({ concurrency: 2, namespace: "portcullis-system" });
    expect(d.sources).toEqual({ databaseUrl: "PORTCULLIS_DATABASE_URL", concurrency: FILE });
    expect(d.file).toBe(FILE);
    const q = describeConfig(load(["--database-url", "postgres://db/x?user=p&password=hunter22"], {}));
    expect(q.config.databaseUrl).toBe("postgres://db/x?user=p&password=[REDACTED]");
  });
});
