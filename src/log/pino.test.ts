import { describe, expect, it } from "vitest";
import { levelLogFn, logFn, logId, withLogContext } from "./logger.js";
import { createLogger } from "./pino.js";
import { scrub, scrubString } from "./redact.js";

function capture(level: "debug" | "info" | "warn" | "error" = "info") {
  const chunks: string[] = [];
  const logger = createLogger({ level, destination: { write: (s: string) => void chunks.push(s) } });
  return { logger, text: () => chunks.join(""), lines: () => chunks.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXNlY3JldA";
const PASSWORD = "hunter2-Sup3rSecret";
const DOCKER_AUTH = Buffer.from(`robot:${PASSWORD}`).toString("base64");
const DOCKER_CONFIG = JSON.stringify({ auths: { "registry.example.com": { auth: DOCKER_AUTH, username: "robot", password: PASSWORD } } });
const DB_PASSWORD = "pg-P4ssw0rd-xyz";
const DATABASE_URL = `postgres://portcullis:${DB_PASSWORD}@db.example.com:5432/portcullis?sslmode=require`;

describe("serve's logger", () => {
  it("writes JSON lines: level as a word, ISO time, msg, fields, bindings", () => {
    const { logger, lines } = capture();
    logger.child({ component: "leader", identity: "replica-a" }).info("became the leader", { lease: "ns/portcullis-controller" });
    logger.debug("not written at info");
    const [line] = lines();
    expect(lines()).toHaveLength(1);
    expect(line).toMatchObject({ level: "info", msg: "became the leader", component: "leader", identity: "replica-a", lease: "ns/portcullis-controller" });
    expect(new Date(line!.time as string).toISOString()).toBe(line!.time);
  });

  it("honours the level", () => {
    const { logger, lines } = capture("warn");
    logger.info("quiet");
    logger.warn("loud");
    logger.error("louder");
    expect(lines().map((l) => l.level)).toEqual(["warn", "error"]);
  });

  it("carries the async log context (scan attempt, uid, request id) on every line, the line's own fields winning", async () => {
    const { logger, lines } = capture();
    const log = logFn(logger.child({ component: "imagescan" }));
    const attempt = logId();
    await withLogContext({ scan: "team/app-3f2a9c1b7e4d", attempt }, async () => {
      log("resolving");
      await new Promise((r) => setTimeout(r, 1));
      await withLogContext({ step: "index" }, async () => log("indexed", { scan: "team/app-3f2a9c1b7e4d", layers: 3 }));
      log("retrying", undefined, "warn");
    });
    log("outside");
    expect(lines()).toEqual([
      expect.objectContaining({ msg: "resolving", scan: "team/app-3f2a9c1b7e4d", attempt, level: "info" }),
      expect.objectContaining({ msg: "indexed", scan: "team/app-3f2a9c1b7e4d", attempt, step: "index", layers: 3 }),
      expect.objectContaining({ msg: "retrying", scan: "team/app-3f2a9c1b7e4d", attempt, level: "warn" }),
      expect.not.objectContaining({ scan: expect.anything() }),
    ]);
    expect(attempt).toMatch(/^[0-9a-f]{12}$/);
  });

  it("never writes a bearer token, a password, a docker config or a database URL's password", () => {
    const { logger, text, lines } = capture("debug");
    const log = levelLogFn(logger.child({ component: "report-api" }));
    log("warn", `request with Authorization: Bearer ${TOKEN} refused`, {
      headers: { authorization: `Bearer ${TOKEN}`, "user-agent": "curl/8" },
      req: { headers: { authorization: `Basic ${DOCKER_AUTH}` } },
      password: PASSWORD,
      user: { name: "robot", password: PASSWORD, token: TOKEN },
      secretData: { ".dockerconfigjson": Buffer.from(DOCKER_CONFIG).toString("base64") },
      dockerConfig: JSON.parse(DOCKER_CONFIG) as unknown,
      config: { databaseUrl: DATABASE_URL, concurrency: 4 },
      databaseUrl: DATABASE_URL,
      error: new Error(`connect to ${DATABASE_URL} failed; token=${TOKEN}`),
    });
    logger.error(`pulling failed: registry answered ${DOCKER_CONFIG} for https://robot:${PASSWORD}@registry.example.com/v2/ with ?X-Amz-Security-Token=${TOKEN}&X-Amz-Signature=abc123def`);
    logger.info("config", { databaseUrl: `postgresql://u:${DB_PASSWORD}@h/db`, dsn: `host=h password=${DB_PASSWORD} dbname=x` });
    const out = text();
    for (const secret of [TOKEN, PASSWORD, DOCKER_AUTH, DB_PASSWORD, Buffer.from(DOCKER_CONFIG).toString("base64"), "c2lnbmF0dXJlLXNlY3JldA", "abc123def"]) expect(out).not.toContain(secret);
    // What is not secret stays readable.
    const [first, second] = lines();
    expect(first).toMatchObject({ component: "report-api", headers: { "user-agent": "curl/8" }, user: { name: "robot" }, config: { concurrency: 4 } });
    expect(first!.databaseUrl).toBe("postgres://portcullis:[REDACTED]@db.example.com:5432/portcullis?sslmode=require");
    expect(first!.msg).toBe("request with Authorization: Bearer [REDACTED] refused");
    expect(second!.msg).toContain("https://robot:[REDACTED]@registry.example.com/v2/");
  });
});

describe("scrub", () => {
  it("keeps what is not a credential", () => {
    expect(scrubString("a bearer token is required (Authorization: Bearer TOKEN, a Kubernetes token)")).toBe("a bearer token is required (Authorization: Bearer TOKEN, a Kubernetes token)");
    expect(scrubString("Basic authentication failed for postgres://portcullis@db/x")).toBe("Basic authentication failed for postgres://portcullis@db/x");
    const challenge = 'registry answered 401: Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"';
    expect(scrubString(challenge)).toBe(challenge);
    expect(scrub({ secret: "portcullis-system/portcullis-webhook-tls", credentialSource: "regcred", tokens: 3 })).toEqual({ secret: "portcullis-system/portcullis-webhook-tls", credentialSource: "regcred", tokens: 3 });
  });

  it("does not modify its input and survives cycles", () => {
    const o: Record<string, unknown> = { password: "x1234567", nested: { ok: 1 } };
    o.self = o;
    expect(scrub(o)).toEqual({ password: "[REDACTED]", nested: { ok: 1 }, self: "[Circular]" });
    expect(o.password).toBe("x1234567");
  });
});
