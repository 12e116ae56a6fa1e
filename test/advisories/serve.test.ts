// serve's advisory updates: the leader updates from a mirror (an upstream on loopback serving the real
// tracker files) into PostgreSQL, and /metrics reports each source's records, age and update results.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startUpstream, type TestUpstream } from "../../src/advisories/testing.js";
import { describeWith, service, tool } from "../env/index.js";
import { freePort } from "../env/process.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const fixtures = fileURLToPath(new URL("../../../shared/fixtures/advisories", import.meta.url));

describeWith(["kube", "postgres"], "serve's advisory updates", () => {
  let up: TestUpstream;
  let admin: pg.Client;
  const db = `adv_serve_${process.pid}_${Date.now().toString(36)}`;
  beforeAll(async () => {
    up = await startUpstream();
    admin = new pg.Client({ connectionString: service("postgres").url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${db}`);
  });
  afterAll(async () => {
    await up?.close();
    await admin?.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin?.end();
  });

  it("updates the configured sources on the leader and reports them in /metrics", async () => {
    // The CRDs, so the controllers that start beside the updates find their kinds.
    await promisify(execFile)(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, "apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url))]);
    up.put("debian/debian.json", readFileSync(join(fixtures, "debian/vunnel/debian.json")));
    up.put("debian/DSA/list", readFileSync(join(fixtures, "debian/vunnel/DSA")));
    const url = new URL(service("postgres").url);
    url.pathname = `/${db}`;
    const port = await freePort();
    const stderr: string[] = [];
    const child = spawn(tsx, [bin, "serve", "--database-url", url.toString(), "--namespace", "adv-serve", "--watch-namespaces", "adv-serve",
      "--webhook", "false", "--no-pods", "--leader-elect", "false", "--health-addr", `127.0.0.1:${port}`,
      "--advisory-update-interval", "1h", "--advisory-sources", "debian", "--advisory-mirrors", `debian=${up.url}/debian`,
    ], { env: { ...process.env, KUBECONFIG: service("kube").kubeconfig } });
    child.stderr.on("data", (c: Buffer) => stderr.push(c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    let text = "";
    try {
      // The first round runs 5 s after the controllers start (the store has no data yet).
      // (The records gauge reads the store, so it may show the data a moment before the round's counter.)
      const done = () => /portcullis_advisory_records\{source="debian"\} 6/.test(text) && /portcullis_advisory_updates_total\{source="debian",result="updated"\} 1/.test(text);
      for (let i = 0; i < 150 && !done(); i++) {
        text = await request(`http://127.0.0.1:${port}/metrics`).then((r) => r.body.text(), () => "");
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(text, stderr.join("").slice(-2000)).toMatch(/portcullis_advisory_records\{source="debian"\} 6/);
      expect(text).toMatch(/portcullis_advisory_updates_total\{source="debian",result="updated"\} 1/);
      expect(Number(/portcullis_advisory_age_seconds\{source="debian"\} ([\d.]+)/.exec(text)?.[1])).toBeLessThan(60);
      expect(up.requests.map((r) => r.path).filter((p) => p === "debian/debian.json")).toHaveLength(1);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited, stderr.join("").slice(-2000)).toBe(0);
    const log = stderr.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { msg: string; component?: string; updated?: string[] });
    expect(log.find((l) => l.msg === "advisory update")).toMatchObject({ component: "advisories", updated: ["debian"] });
  });

  it("refuses to start with an unknown advisory source", async () => {
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const err: string[] = [];
      const c = spawn(tsx, [bin, "serve", "--store-path", "/nonexistent-not-created", "--advisory-sources", "debain", "--webhook", "false"], { env: { ...process.env, KUBECONFIG: service("kube").kubeconfig } });
      c.stderr.on("data", (d: Buffer) => err.push(d.toString()));
      c.on("exit", (code) => resolve({ code, err: err.join("") }));
    });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/advisory sources debain are not known; known: debian, alpine/);
  });
});
