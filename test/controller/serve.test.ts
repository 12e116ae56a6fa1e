// `portcullis serve` as a process against the real API server: ready, indexes an ImageScan, stops on SIGTERM;
// configured by flags and a --config file, logging JSON lines with the scan on each line about it and no secret.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, expect, it } from "vitest";
import { serveConfig } from "../../src/cli/serve.js";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";
import { freePort } from "../env/process.js";
import { ociBookworm, skopeoPush } from "../env/images.js";
import { RegistryPusher, sha256 } from "../env/oci-push.js";
import { makeTar, zstdDeclaringWindow } from "../../src/layers/testing.js";
import { jarBomb } from "../../src/scanners/java/testing.js";
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
    // Layers are parsed by one worker process allowed 200 MiB; a scan gets two attempts at a worker's limit.
    const child = spawn(tsx, [bin, "serve", "--config", config, "--store-path", join(dir, "store"), "--namespace", "serve-test", "--concurrency", "2", "--health-addr", `127.0.0.1:${port}`,
      "--index-workers", "1", "--worker-memory", "200", "--scan-attempts", "2"], { env: { ...process.env, KUBECONFIG: service("kube").kubeconfig } });
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

      // A layer of files the dpkg scanner reads whole (distroless status.d), 8 × 30 MiB: its worker goes over
      // 200 MiB and is stopped; the scan is tried once more, then stays Failed naming the layer and the limit.
      // The pool starts another worker, which indexes the next image.
      const pusher = new RegistryPusher(reg);
      const hungry = gzipSync(await makeTar(Array.from({ length: 8 }, (_, i) => ({ name: `var/lib/dpkg/status.d/p${i}`, content: Buffer.alloc(30 << 20, 0x41) }))), { level: 1 });
      await pusher.pushImage("public-ish/hungry", "v1", [{ data: hungry, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }]);
      const small = gzipSync(await makeTar([{ name: "etc/os-release", content: 'ID=alpine\nVERSION_ID=3.20.3\n' }]));
      await pusher.pushImage("public-ish/small", "v1", [{ data: small, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }]);
      const scanOf = async (name: string) => (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "serve-test", plural: "imagescans", name })) as ImageScan;
      const create = (name: string, image: string) => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "serve-test", plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name }, spec: { image, imagePullSecrets: [{ name: "regcred" }] } } });
      await create("hungry", `${reg.host}/public-ish/hungry:v1`);
      let failed: ImageScan | undefined;
      for (let i = 0; i < 600 && failed?.status?.phase !== "Failed"; i++) {
        failed = await scanOf("hungry");
        if (failed.status?.phase !== "Failed") await new Promise((r) => setTimeout(r, 200));
      }
      expect(failed?.status?.phase, stderr.join("").slice(-3000)).toBe("Failed");
      expect(failed?.status?.limitFailures).toBe(2);
      expect(failed?.status?.message).toContain(sha256(hungry));
      expect(failed?.status?.message).toMatch(/over its limit of 200 MiB.*attempt 2 of 2; not retried/);
      expect(failed?.status?.conditions?.find((c) => c.type === "Indexed")).toMatchObject({ status: "False", reason: "ResourceLimitExceeded" });
      // A zstd layer whose frame declares a 2 GiB window, and a jar whose directory records all point at one
      // 60 MiB entry: refused at the cause, with their reasons, on the first attempt.
      await pusher.pushImage("public-ish/zstd-bomb", "v1", [{ data: zstdDeclaringWindow(await makeTar([{ name: "etc/os-release", content: "ID=debian\n" }])), mediaType: "application/vnd.oci.image.layer.v1.tar+zstd" }]);
      await pusher.pushImage("public-ish/jar-bomb", "v1", [{ data: gzipSync(await makeTar([{ name: "app/bomb.jar", content: jarBomb() }])), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }]);
      await pusher.close();
      await create("zstd-bomb", `${reg.host}/public-ish/zstd-bomb:v1`);
      await create("jar-bomb", `${reg.host}/public-ish/jar-bomb:v1`);
      for (const [name, reason] of [["zstd-bomb", "LayerTooLarge"], ["jar-bomb", "InvalidPackageData"]] as const) {
        let s: ImageScan | undefined;
        for (let i = 0; i < 300 && s?.status?.phase !== "Failed" && s?.status?.phase !== "Indexed"; i++) {
          s = await scanOf(name);
          if (s.status?.phase !== "Failed") await new Promise((r) => setTimeout(r, 200));
        }
        expect(s?.status?.phase, `${name}: ${s?.status?.message}`).toBe("Failed");
        expect(s?.status?.conditions?.find((c) => c.type === "Indexed"), name).toMatchObject({ status: "False", reason });
        expect(s?.status?.limitFailures ?? 0).toBe(0);
      }
      await create("small", `${reg.host}/public-ish/small:v1`);
      let next: ImageScan | undefined;
      for (let i = 0; i < 300 && next?.status?.phase !== "Indexed" && next?.status?.phase !== "Failed"; i++) {
        next = await scanOf("small");
        if (next.status?.phase !== "Indexed") await new Promise((r) => setTimeout(r, 200));
      }
      expect(next?.status?.phase, stderr.join("").slice(-3000)).toBe("Indexed");
      expect(next?.status?.distribution?.id).toBe("alpine");
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
  }, 240_000);
});
