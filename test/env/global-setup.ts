// Vitest global setup for the integration project: starts every service once per run, hands their
// addresses to the tests through `inject("portcullisEnv")`, and tears them all down afterwards. A reaper
// process kills whatever is left if the runner dies before teardown.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { TestProject } from "vitest/node";
import { findTool } from "../../src/cli/tools.js";
import { makeCA } from "./certs.js";
import { ProcessSupervisor } from "./process.js";
import { MissingServiceError, startKube, startPostgres, startRegistry, startTokenServer } from "./services.js";
import { requireServices, type ServiceName, type TestEnv } from "./types.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const strict = requireServices();
  const keep = process.env.PORTCULLIS_KEEP_ENV === "1";
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
  const runDir = mkdtempSync(join(tmpdir(), `portcullis-env-${runId}-`));
  const sup = new ProcessSupervisor(runDir);
  sup.startReaper(!keep);
  const stops: Array<() => Promise<void>> = [];
  const env: TestEnv = {
    runDir, strict, services: {}, missing: {},
    tools: Object.fromEntries(["kubectl", "helm", "skopeo", "umoci", "openssl", "trivy", "dpkg-query", "zstd", "estargz-layout"].flatMap((t) => {
      const p = findTool(t);
      return p ? [[t, p]] : [];
    })),
  };
  const teardown = async () => {
    await Promise.allSettled(stops.reverse().map((s) => s()));
    await sup.stopAll();
    if (!keep) rmSync(runDir, { recursive: true, force: true });
  };

  const attempt = async <K extends ServiceName>(name: K, start: () => Promise<{ service: NonNullable<TestEnv["services"][K]>; stop: () => Promise<void> }>) => {
    const t0 = Date.now();
    try {
      const { service, stop } = await start();
      stops.push(stop);
      env.services[name] = service;
      console.error(`[env] ${name} ready in ${Date.now() - t0} ms`);
    } catch (e) {
      env.missing[name] = (e as Error).message;
      if (!(e instanceof MissingServiceError)) console.error(`[env] ${name} failed to start: ${(e as Error).stack}`);
    }
  };

  const users = { alice: "alice-secret" };
  const tlsCA = await makeCA(runDir, "registry-tls");
  await Promise.all([
    attempt("postgres", () => startPostgres(sup, runId)),
    attempt("kube", () => startKube(sup)),
    attempt("registryBasic", () => startRegistry(sup, { name: "basic", auth: "basic", username: "alice", password: users.alice })),
    attempt("registryTls", () => startRegistry(sup, { name: "tls", auth: "none", tls: tlsCA })),
    attempt("registryToken", async () => {
      const t = await startTokenServer(join(runDir, "token"), users);
      const r = await startRegistry(sup, {
        name: "token", auth: "token", username: "alice", password: users.alice,
        token: { realm: t.tokenServer.url, service: t.service, issuer: t.issuer, rootCertFile: t.rootCertFile },
      });
      return { service: r.service, stop: async () => { await r.stop(); await t.tokenServer.stop(); } };
    }),
  ]);

  const missing = Object.entries(env.missing);
  if (missing.length && strict) {
    await teardown();
    throw new Error(`integration services missing (PORTCULLIS_REQUIRE_SERVICES/CI set, so this fails the run):\n${missing.map(([k, v]) => `  ${k}: ${v}`).join("\n")}`);
  }
  for (const [k, v] of missing) console.error(`[env] ${k} unavailable, its tests will be skipped: ${v}`);
  project.provide("portcullisEnv", env);
  return teardown;
}
