// `portcullis serve --roles`: the webhook in one process and the controller and indexer roles in two others,
// on one API server and one database, each with the ServiceAccount and RBAC the chart gives its role in
// mode: split (so a call a role's rules lack is refused, and the audit log tells the processes apart). The
// full flow works across them (a pod refused, the scan the webhook asked for indexed by another process, the
// same pod admitted) with no request refused; each process watches only the kinds its roles need, once per
// kind (the shared cache); all stop with exit 0 on SIGTERM, the Leases released. Last, a process with every
// role (the default, mode: combined's rules) watches each kind it uses once: the figure docs/architecture.md gives.
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import pg from "pg";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GROUP, type ImageScan, VERSION } from "../../src/kube/api/v1alpha1/index.js";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";
import { ociBookworm, skopeoPush } from "../env/images.js";
import { freePort } from "../env/process.js";
import { ServeProcess, waitFor } from "../env/serve.js";
import { kubeconfigYaml } from "../env/services.js";

const chartDir = fileURLToPath(new URL("../../charts/portcullis", import.meta.url));
const run = promisify(execFile);
const ns = "roles-app";
const own = "roles-system";
const LABEL = "portcullis.dev/test-roles=on";

interface AuditEvent {
  auditID: string;
  verb: string;
  requestURI: string;
  user: { username: string };
  objectRef?: { resource?: string; apiGroup?: string };
  responseStatus?: { code?: number };
}

/** The ServiceAccounts' names: the chart's, rendered with this fullname. */
const FULLNAME = "roles-test";
const saOf = (role: string) => (role === "combined" ? FULLNAME : `${FULLNAME}-${role}`);

function audited(sa: string): AuditEvent[] {
  const user = `system:serviceaccount:${own}:${saOf(sa)}`;
  return readFileSync(service("kube").auditLog, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as AuditEvent).filter((e) => e.user.username === user);
}

/** The audit lines of a ServiceAccount (for a failure's message). */
function auditOf(sa: string): string {
  return audited(sa).slice(0, 8).map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`).join("\n");
}

/** The requests of a ServiceAccount the API server refused. */
const refusedOf = (sa: string) => audited(sa).filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${e.requestURI}`);

/** The resources a ServiceAccount opened watches on, and how many watch requests each got. */
function watchesOf(sa: string): Record<string, number> {
  const ids = new Map<string, string>();
  for (const e of audited(sa)) {
    if (e.verb === "watch" && e.objectRef?.resource) ids.set(e.auditID, `${e.objectRef.apiGroup ? `${e.objectRef.apiGroup}/` : ""}${e.objectRef.resource}`);
  }
  const counts: Record<string, number> = {};
  for (const r of ids.values()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** watchesOf once the audit log shows `kinds` resources for the ServiceAccount (its lines trail the requests). */
async function settledWatches(sa: string, kinds: number): Promise<Record<string, number>> {
  for (let i = 0; i < 50 && Object.keys(watchesOf(sa)).length < kinds; i++) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 500));
  return watchesOf(sa);
}

describeWith(["kube", "registryBasic", "postgres"], "portcullis serve --roles", () => {
  const kubectl = (...a: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...a]);
  const image = () => `${service("registryBasic").host}/roles/debian:base`;
  const kubeconfigs: Record<string, string> = {};
  const running: ServeProcess[] = [];
  let kc: k8s.KubeConfig;
  let database: string;
  let dbUrl: string;

  beforeAll(async () => {
    const reg = service("registryBasic");
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "roles/debian:base");
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev", "imagepolicies.portcullis.dev", "clusterimagepolicies.portcullis.dev", "imagerepositories.portcullis.dev"]);
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: own } } });
    await core.createNamespace({ body: { metadata: { name: ns, labels: { [LABEL.split("=")[0]!]: "on" } } } });
    await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } }).catch(() => undefined);
    // The chart's ServiceAccounts and RBAC, as mode: split (a role each) and mode: combined render them in this
    // namespace; the webhook configurations' create is granted since no helm install made them here.
    const helm = (...a: string[]) => run(tool("helm"), ["template", "roles", chartDir, "--namespace", own, "--set", `fullnameOverride=${FULLNAME}`, "--set", "rbac.createWebhookConfigurations=true", ...a], { maxBuffer: 64 << 20 });
    const rbacKinds = new Set(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]);
    for (const mode of ["split", "combined"]) {
      const docs = (k8s.loadAllYaml((await helm("--set", `mode=${mode}`)).stdout) as Array<k8s.KubernetesObject | null>)
        .filter((d): d is k8s.KubernetesObject => !!d && rbacKinds.has(d.kind!) && !/-(view|edit|break-glass)$/.test(d.metadata!.name!));
      const f = `${service("kube").kubeconfig}.roles-rbac-${mode}-${process.pid}.yaml`;
      writeFileSync(f, docs.map((d) => JSON.stringify(d)).join("\n---\n"));
      await kubectl("apply", "-f", f);
      rmSync(f);
    }
    for (const role of ["webhook", "controller", "indexer", "combined"]) {
      const token = await core.createNamespacedServiceAccountToken({ namespace: own, name: saOf(role), body: { spec: { audiences: [], expirationSeconds: 3600 } } });
      kubeconfigs[role] = `${service("kube").kubeconfig}.roles-${role}-${process.pid}`;
      writeFileSync(kubeconfigs[role]!, kubeconfigYaml(service("kube").server, service("kube").caPem, token.status!.token, saOf(role)), { mode: 0o600 });
    }
    // One database for both processes: the webhook reads findings where the indexer writes them.
    const admin = new pg.Client({ connectionString: service("postgres").url });
    await admin.connect();
    database = `portcullis_roles_${process.pid}`;
    await admin.query(`DROP DATABASE IF EXISTS ${database}`);
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const u = new URL(service("postgres").url);
    u.pathname = `/${database}`;
    dbUrl = u.toString();
  }, 180_000);

  afterAll(async () => {
    for (const s of running) s.child.kill("SIGKILL");
    await Promise.all(running.map((s) => s.exited));
    await kubectl("delete", "validatingwebhookconfiguration", "portcullis", "--ignore-not-found");
    for (const f of Object.values(kubeconfigs)) rmSync(f, { force: true });
    await kubectl("delete", "clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/instance=roles", "--ignore-not-found");
    const admin = new pg.Client({ connectionString: service("postgres").url });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  });

  async function start(name: string, roles: string | undefined, webhookPort: number): Promise<{ serve: ServeProcess; health: number }> {
    const health = await freePort();
    const serve = new ServeProcess(name, [
      ...(roles ? ["--roles", roles] : []), "--database-url", dbUrl, "--namespace", own, "--health-addr", `127.0.0.1:${health}`,
      "--webhook-addr", `127.0.0.1:${webhookPort}`, "--webhook-url", `https://127.0.0.1:${webhookPort}`, "--webhook-namespace-label", LABEL,
      "--lease-duration", "4s", "--watch-namespaces", ns, "--advisory-update-interval", "0",
    ], kubeconfigs[name]!);
    running.push(serve);
    return { serve, health };
  }
  const ready = (health: number) => request(`http://127.0.0.1:${health}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false);

  it("webhook, controller and indexer processes with their roles' RBAC: pod denied, scan created, indexed, pod admitted", async () => {
    const webhookPort = await freePort();
    const procs = { controller: await start("controller", "controller", webhookPort), indexer: await start("indexer", "indexer", webhookPort), webhook: await start("webhook", "webhook", webhookPort) };
    const { controller, indexer, webhook } = procs;
    const context = () => Object.values(procs).map((p) => `${p.serve.tail()}\nrefused: ${refusedOf(p.serve.name).join(", ")}`).join("\n");
    await waitFor("all ready", async () => (await ready(controller.health)) && (await ready(indexer.health)) && (await ready(webhook.health)), 120_000, context);
    await waitFor("the controller process to register the webhook", () => controller.serve.saw("webhook registered"), 60_000, context);
    await waitFor("the indexer to lead", () => indexer.serve.saw("controllers running"), 60_000, context);
    expect(webhook.serve.saw("controllers running")).toBe(false);

    let refused = "";
    await kubectl("-n", ns, "run", "web", `--image=${image()}`, "--restart=Never").catch((e: { stderr?: string }) => (refused = e.stderr ?? ""));
    expect(refused, context()).toMatch(/denied the request/);
    // The webhook process asked for the scan (the controller's Pod controller has no pod to go by: it was refused).
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const scans = async () => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans" })) as { items: ImageScan[] }).items;
    const scan = await waitFor("the ImageScan the review asked for", async () => (await scans())[0], 30_000, context);
    expect(scan.metadata?.annotations?.["portcullis.dev/priority"]).toBe("true");
    const indexed = await waitFor("the indexer process to index it", async () => (await scans()).find((s) => s.status?.phase === "Indexed"), 120_000, context);
    expect(indexed.status?.packages?.total).toBeGreaterThan(50);
    const admitted = await waitFor("the same pod admitted", () => kubectl("-n", ns, "run", "web", `--image=${image()}`, "--restart=Never").then(() => true, () => false), 60_000, context);
    expect(admitted).toBe(true);
    // The admitted pod: the controller's Pod controller finds its scan there already (one scan, no second).
    await new Promise((r) => setTimeout(r, 2000));
    expect((await scans()).length).toBe(1);

    // SIGTERM: exit 0 well under a second each, and the Leases free for the next replicas.
    for (const p of [controller, indexer, webhook]) {
      const { code, ms } = await p.serve.stop();
      expect(code, p.serve.tail()).toBe(0);
      expect(ms).toBeLessThan(1000);
    }
    for (const name of ["portcullis-controller", "portcullis-indexer"]) {
      const lease = await kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ namespace: own, name });
      expect(lease.spec?.holderIdentity ?? "", name).toBe("");
    }
    // Nothing any role did was refused by its rules.
    for (const role of ["webhook", "controller", "indexer"]) expect(refusedOf(role), role).toEqual([]);
    // Each process watched the kinds its roles need, each once (a watch is in the audit log once it has ended).
    expect(await settledWatches("webhook", 4), auditOf("webhook")).toEqual({
      "portcullis.dev/imagescans": 1, "portcullis.dev/imagepolicies": 1, "portcullis.dev/clusterimagepolicies": 1, namespaces: 1,
    });
    expect(await settledWatches("controller", 5), auditOf("controller")).toEqual({
      "portcullis.dev/imagescans": 1, "portcullis.dev/imagepolicies": 1, "portcullis.dev/clusterimagepolicies": 1, pods: 1, "portcullis.dev/imagerepositories": 1,
    });
    expect(await settledWatches("indexer", 1), auditOf("indexer")).toEqual({ "portcullis.dev/imagescans": 1 });
    await kubectl("delete", "validatingwebhookconfiguration", "portcullis", "--ignore-not-found");
  }, 400_000);

  it("one process with every role watches each kind it uses once", async () => {
    const combined = await start("combined", undefined, await freePort());
    await waitFor("ready and leading", async () => (await ready(combined.health)) && combined.serve.saw("controllers running"), 120_000, () => combined.serve.tail());
    const { code } = await combined.serve.stop();
    expect(code, combined.serve.tail()).toBe(0);
    expect(refusedOf("combined")).toEqual([]);
    const watches = await settledWatches("combined", 6);
    // (The figure for docs/architecture.md; before the shared cache this process watched ImageScans and both policy kinds twice.)
    process.stdout.write(`watches of the combined process: ${Object.values(watches).reduce((a, b) => a + b, 0)} ${JSON.stringify(watches)}\n`);
    expect(watches).toEqual({
      "portcullis.dev/imagescans": 1, "portcullis.dev/imagepolicies": 1, "portcullis.dev/clusterimagepolicies": 1, namespaces: 1, pods: 1, "portcullis.dev/imagerepositories": 1,
    });
    await kubectl("delete", "validatingwebhookconfiguration", "portcullis", "--ignore-not-found");
  }, 200_000);
});
