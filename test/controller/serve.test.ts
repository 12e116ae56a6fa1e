// `portcullis serve` as a process against the real API server: ready, indexes an ImageScan, stops on SIGTERM;
// configured by flags and a --config file, logging JSON lines with the scan on each line about it and no secret.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, expect, it } from "vitest";
import { serveConfig } from "../../src/cli/serve.js";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";
import { freePort } from "../env/process.js";
import { ociBookworm, skopeoPush } from "../env/images.js";
import { GROUP, type ImageScan, VERSION } from "../../src/kube/api/v1alpha1/index.js";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

it("serve's configuration is validated, with every error named", () => {
  expect(serveConfig([], {})).toMatchObject({ namespace: "portcullis-system", concurrency: 4, platform: "linux/amd64" });
  expect(serveConfig(["--concurrency", "8"], { POD_NAMESPACE: "tools", PORTCULLIS_DATABASE_URL: "postgres://db/x" })).toMatchObject({ namespace: "tools", concurrency: 8, databaseUrl: "postgres://db/x" });
  expect(() => serveConfig(["--concurrency", "0"], {})).toThrow(/concurrency/);
  expect(() => serveConfig([], { PORTCULLIS_DATABASE_URL: "mysql://x" })).toThrow(/databaseUrl: must be a postgres:\/\/ URL/);
  expect(() => serveConfig(["--nope"], {})).toThrow(/--nope/);
});

describeWith(["kube", "registryBasic"], "portcullis serve", () => {
  const dir = mkdtempSync(join(tmpdir(), "serve-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("becomes ready, indexes an ImageScan, and exits cleanly on SIGTERM", async () => {
    const reg = service("registryBasic");
    const kubectl = (...a: string[]) => promisify(execFile)(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...a]);
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev"]);
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "public-ish/debian:base");
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: "serve-test" } } });
    const auth = Buffer.from(`${reg.username}:${reg.password}`).toString("base64");
    await core.createNamespacedSecret({ namespace: "serve-test", body: { metadata: { name: "regcred" }, type: "kubernetes.io/dockerconfigjson", data: { ".dockerconfigjson": Buffer.from(JSON.stringify({ auths: { [reg.host]: { auth } } })).toString("base64") } } });
    const port = await freePort();
    const stderr: string[] = [];
    // Part of the configuration in a file, as the chart's ConfigMap gives it.
    const config = join(dir, "serve.yaml");
    writeFileSync(config, "# portcullis serve --config\nwatchNamespaces: [serve-test]\nwebhook: false\nlogLevel: debug\nconcurrency: 1\n");
    const child = spawn(tsx, [bin, "serve", "--config", config, "--store-path", join(dir, "store"), "--namespace", "serve-test", "--concurrency", "2", "--health-addr", `127.0.0.1:${port}`], { env: { ...process.env, KUBECONFIG: service("kube").kubeconfig } });
    child.stderr.on("data", (c: Buffer) => stderr.push(c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      let ready = 0;
      // Up to 90 s: a new embedded store runs initdb in WebAssembly (about 5 s here, over 25 s with both cores busy).
      for (let i = 0; i < 450 && ready !== 200; i++) {
        ready = await request(`http://127.0.0.1:${port}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode), () => 0);
        if (ready !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      expect(ready, stderr.join("")).toBe(200);
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "serve-test", plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "debian" }, spec: { image: `${reg.host}/public-ish/debian:base`, imagePullSecrets: [{ name: "regcred" }] } } });
      let phase: string | undefined;
      for (let i = 0; i < 300 && phase !== "Indexed" && phase !== "Failed"; i++) {
        phase = ((await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "serve-test", plural: "imagescans", name: "debian" })) as ImageScan).status?.phase;
        if (phase !== "Indexed") await new Promise((r) => setTimeout(r, 200));
      }
      expect(phase, stderr.join("")).toBe("Indexed");
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited, stderr.join("").slice(-2000)).toBe(0);
    const lines = stderr.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { msg: string; level: string; time: string; [k: string]: unknown });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["starting", "ready", "stopping", "stopped"]));
    for (const l of lines) {
      expect(["debug", "info", "warn", "error"]).toContain(l.level);
      expect(new Date(l.time).toISOString()).toBe(l.time);
    }
    // The effective configuration, once, with where each value came from.
    const cfg = lines.filter((l) => l.msg === "configuration");
    expect(cfg).toHaveLength(1);
    expect(cfg[0]).toMatchObject({
      file: config,
      config: { watchNamespaces: "serve-test", webhook: "false", logLevel: "debug", concurrency: 2, namespace: "serve-test" },
      sources: { watchNamespaces: config, webhook: config, logLevel: config, concurrency: "--concurrency", namespace: "--namespace" },
    });
    // Every line of the scan's attempt carries the scan and the attempt's id.
    const indexed = lines.find((l) => l.msg.startsWith("indexed serve-test/debian"));
    expect(indexed).toMatchObject({ component: "imagescan", scan: "serve-test/debian", attempt: expect.stringMatching(/^[0-9a-f]{12}$/) });
    // The pull secret's credentials appear nowhere.
    expect(stderr.join("")).not.toContain(reg.password);
    expect(stderr.join("")).not.toContain(auth);
  });
});
