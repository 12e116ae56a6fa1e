// The chart's RBAC is least privilege, proven with the real authorizer. `portcullis serve` runs with a
// TokenRequest token of the chart's ServiceAccount through every path it has: ImageScans for pods that pull
// with their own secret and through their ServiceAccount (and a user's scan that took the name), indexing,
// Events (created, then counted in place), garbage collection, the webhook refusing, scanning, admitting and
// pinning, its builtin TLS Secret, leader election, the report API's TokenReview and SubjectAccessReview;
// then a second leader that re-issues the certificate and removes the mutating configuration. The API
// server's audit log then shows that no request of that ServiceAccount was refused, and that every rule of
// the chart's ClusterRole and Role, with each of its verbs, resources and names, allowed requests that no
// other rule granted to the ServiceAccount allows: removing any of them breaks a path.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseReference } from "../../src/image/reference.js";
import { crdsEstablished, describeWith, service, tool } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { freePort } from "../env/process.js";
import { kubeconfigYaml } from "../env/services.js";
import { GROUP, type ImageScan, REFERENCE_LABEL, scanName, VERSION } from "../../src/kube/api/v1alpha1/index.js";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const chart = join(root, "charts/portcullis");
const bin = join(root, "src/cli/bin.ts");
const work = mkdtempSync(join(tmpdir(), "portcullis-rbac-"));
// helm writes its cache and config under HOME otherwise.
const helmEnv = { ...process.env, HELM_CACHE_HOME: join(work, "cache"), HELM_CONFIG_HOME: join(work, "config"), HELM_DATA_HOME: join(work, "data") };

const NS = "rbac-system"; // the release, Portcullis's own namespace
const TEAM = "rbac-team"; // pods that name their pull secret; not judged by the webhook
const JUDGED = "rbac-judged"; // the webhook's namespace; pods pull through their ServiceAccount
const JUDGED_LABEL = ["portcullis.dev/rbac-test", "judged"] as const;
const SA = "portcullis";
const CLUSTER_POLICY = "rbac-test-judged"; // cluster-scoped: deleted afterwards
const USER = `system:serviceaccount:${NS}:${SA}`;

/** One `portcullis serve` process; stderr kept line by line. */
class Serve {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private partial = "";

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    // node with tsx's loader, not the tsx wrapper: the signal goes to serve itself.
    this.child = spawn(process.execPath, ["--import", "tsx", bin, "serve", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
    this.child.stderr!.on("data", (c: Buffer) => {
      const parts = (this.partial + c.toString()).split("\n");
      this.partial = parts.pop()!;
      this.lines.push(...parts.filter((p) => p.trim()));
    });
    this.exited = new Promise((r) => this.child.on("exit", (code) => r(code)));
  }

  saw(msg: string): boolean {
    return this.lines.some((l) => l.includes(`"msg":${JSON.stringify(msg)}`));
  }

  /** What the API server refused, as serve logged it. */
  refusals(): string[] {
    return this.lines.filter((l) => /\b403\b|forbidden/i.test(l));
  }

  tail(): string {
    return this.lines.slice(-40).join("\n");
  }

  stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

// ---------------------------------------------------------------- RBAC as the authorizer evaluates it

/** A resource request, with what RBAC decides on. */
interface Attributes {
  verb: string;
  group: string;
  /** `resource` or `resource/subresource`. */
  resource: string;
  namespace?: string;
  name?: string;
}

/** A rule granted to the ServiceAccount: everywhere (ClusterRoleBinding) or in one namespace (RoleBinding). */
interface Grant {
  source: string;
  rule: k8s.V1PolicyRule;
  namespace?: string;
  chart: boolean;
}

const matches = (list: string[] | undefined, v: string) => !!list?.some((x) => x === "*" || x === v);

function allows(g: Grant, a: Attributes): boolean {
  if (g.namespace !== undefined && a.namespace !== g.namespace) return false;
  const { verbs, apiGroups, resources, resourceNames } = g.rule;
  if (!matches(verbs, a.verb) || !matches(apiGroups, a.group)) return false;
  const sub = a.resource.includes("/") ? a.resource.slice(a.resource.indexOf("/") + 1) : undefined;
  if (!resources?.some((r) => r === "*" || r === a.resource || (sub !== undefined && r === `*/${sub}`))) return false;
  return !resourceNames?.length || (!!a.name && resourceNames.includes(a.name));
}

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
}

function attributes(e: AuditEvent): Attributes | undefined {
  const o = e.objectRef;
  if (!o?.resource) return undefined;
  return {
    verb: e.verb, group: o.apiGroup ?? "", resource: o.subresource ? `${o.resource}/${o.subresource}` : o.resource, namespace: o.namespace,
    // The audit log names a created object, but RBAC authorizes a create before there is a name.
    name: e.verb === "create" && !o.subresource ? undefined : o.name,
  };
}

const show = (a: Attributes) => `${a.verb} ${a.group ? `${a.group}/` : ""}${a.resource}${a.namespace ? ` -n ${a.namespace}` : ""}${a.name ? ` ${a.name}` : ""}`;
const showRule = (r: k8s.V1PolicyRule) => `${r.apiGroups?.map((g) => g || '""').join(",")} ${r.resources?.join(",")}${r.resourceNames?.length ? `[${r.resourceNames.join(",")}]` : ""}: ${r.verbs.join(",")}`;

describeWith(["kube", "registryBasic", "postgres"], "the chart's RBAC, proven by running the operator with its ServiceAccount", () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let admission: k8s.AdmissionregistrationV1Api;
  let saKubeconfig: string;
  const serves: Serve[] = [];
  let baseDigest: string;
  const image = (tag: string) => `${service("registryBasic").host}/rbac/debian:${tag}`;
  const squatter = () => scanName(parseReference(image("base")), baseDigest);
  const kubectl = (...args: string[]) => exec(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args], { maxBuffer: 64 << 20 });
  const helm = (...args: string[]) => exec(tool("helm"), [...args, "--kubeconfig", service("kube").kubeconfig], { env: helmEnv, maxBuffer: 64 << 20 });
  const scans = async (namespace: string) => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: "imagescans" })) as { items: ImageScan[] }).items;

  /**
   * Polls `f`; fails at once when the running serve logs a refusal (a missing rule) instead of waiting it out,
   * but for the refusals `expected` matches.
   */
  async function waitFor<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000, expected?: RegExp): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const serve = serves.at(-1);
      const refused = (serve?.refusals() ?? []).filter((l) => !expected?.test(l));
      if (refused.length) throw new Error(`waiting for ${what}, the API server refused a request of serve:\n${refused.join("\n")}`);
      const v = await f();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${serve?.tail() ?? ""}`);
      await sleep(200);
    }
  }

  async function start(name: string, extra: (webhookPort: number) => string[]): Promise<{ serve: Serve; health: number; webhook: number }> {
    const [health, webhook] = [await freePort(), await freePort()];
    const serve = new Serve([
      "--database-url", service("postgres").url, "--namespace", NS, "--health-addr", `127.0.0.1:${health}`, "--webhook-addr", `127.0.0.1:${webhook}`,
      "--webhook-namespace-label", JUDGED_LABEL.join("="), "--watch-namespaces", `${TEAM},${JUDGED}`, "--lease-duration", "4s", "--gc-after", "6s",
      // The API server's client certificate proves its reviews (without it, pins are not given: docs/trust.md).
      "--webhook-client-ca", service("kube").webhookClient.caFile,
      ...extra(webhook),
    ], { KUBECONFIG: saKubeconfig, POD_NAME: name });
    serves.push(serve);
    await waitFor(`${name} ready`, async () => (await request(`http://127.0.0.1:${health}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false)) || undefined);
    await waitFor(`${name} to lead and register the webhook`, () => (serve.saw("webhook registered") && serve.saw("controllers running")) || undefined);
    return { serve, health, webhook };
  }

  beforeAll(async () => {
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    const reg = service("registryBasic");
    baseDigest = layoutDigest(ociBookworm(), "base");
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "rbac/debian:base");
    // The same layers under another manifest digest: an image not scanned yet that indexes from the store.
    await skopeoPush(`oci:${ociBookworm()}:base`, reg, "rbac/debian:v2s2", { format: "v2s2" });

    // A test killed mid-run may have left the configurations; helm would refuse to adopt them.
    await kubectl("delete", "validatingwebhookconfiguration", "portcullis", "--ignore-not-found");
    await kubectl("delete", "mutatingwebhookconfiguration", "portcullis-pin-digests", "--ignore-not-found");
    for (const ns of [NS, TEAM]) await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespace({ body: { metadata: { name: JUDGED, labels: { [JUDGED_LABEL[0]]: JUDGED_LABEL[1] } } } });
    // The chart's defaults, so that its default RBAC is what is proven. Its webhook configurations select a
    // label no namespace has until the operator replaces them in place; pinDigests makes it create the
    // mutating one too. No pod of the Deployment runs: there is no kubelet.
    await helm("install", "portcullis", chart, "--namespace", NS, "--set", "webhook.namespaceLabel=portcullis.dev/rbac-test=never", "--set", "webhook.pinDigests=true");
    await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev", "imagerepositories.portcullis.dev", "imagepolicies.portcullis.dev", "clusterimagepolicies.portcullis.dev"]);
    const token = await core.createNamespacedServiceAccountToken({ namespace: NS, name: SA, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    saKubeconfig = join(work, "serviceaccount.kubeconfig");
    writeFileSync(saKubeconfig, kubeconfigYaml(service("kube").server, service("kube").caPem, token.status!.token, SA), { mode: 0o600 });

    for (const ns of [TEAM, JUDGED]) {
      await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
    }
    await core.createNamespacedServiceAccount({ namespace: JUDGED, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } });
    // Someone's own scan of another image holds the name Portcullis would give the team's scan.
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: TEAM, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: squatter() }, spec: { image: image("other") } } });
    await core.createNamespacedPod({ namespace: TEAM, body: { metadata: { name: "with-secret" }, spec: { imagePullSecrets: [{ name: "regcred" }], containers: [{ name: "app", image: image("base") }] } } });
    // A registry that refuses connections: the scan is retried, and its Warning counted in place.
    await core.createNamespacedPod({ namespace: TEAM, body: { metadata: { name: "unreachable" }, spec: { containers: [{ name: "app", image: `127.0.0.1:${await freePort()}/rbac/gone:1` }] } } });
    await core.createNamespacedPod({ namespace: JUDGED, body: { metadata: { name: "with-serviceaccount" }, spec: { containers: [{ name: "app", image: image("base") }] } } });
    // A watched repository whose filter selects no tag: the operator lists it and writes its status, and makes no scan.
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: TEAM, plural: "imagerepositories", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageRepository", metadata: { name: "watched" }, spec: { image: image("base").split(":base")[0], tagFilter: { pattern: "^none$" }, imagePullSecrets: [{ name: "regcred" }] } } });
    // pinDigests defaults to true in a policy: the mutating webhook pins what this one decides for.
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: JUDGED, plural: "imagepolicies", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImagePolicy", metadata: { name: "pin" }, spec: { onMissingScan: "deny" } } });
    // A cluster policy for the judged namespace (the ImagePolicy above is more specific and decides): the
    // operator writes both policies' status.
    await custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: "clusterimagepolicies", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ClusterImagePolicy", metadata: { name: CLUSTER_POLICY }, spec: { namespaceSelector: { matchLabels: { [JUDGED_LABEL[0]]: JUDGED_LABEL[1] } }, onMissingScan: "deny" } } });
  }, 180_000);

  afterAll(async () => {
    // The tests check the exit codes; here only what a failed test left running.
    for (const s of serves) if ((await Promise.race([s.stop(), sleep(20_000).then(() => "timeout")])) === "timeout") await s.stop("SIGKILL");
    // After a failed test: the release (the last test removes it otherwise), and the configurations the
    // operator re-registered with its own address; one left behind would refuse other tests' pods.
    await helm("uninstall", "portcullis", "--namespace", NS, "--wait").catch(() => undefined);
    await kubectl("delete", "validatingwebhookconfiguration", "portcullis", "--ignore-not-found");
    await kubectl("delete", "mutatingwebhookconfiguration", "portcullis-pin-digests", "--ignore-not-found");
    await kubectl("delete", "clusterimagepolicy", CLUSTER_POLICY, "--ignore-not-found");
    // Its namespace stays Terminating on this API server (no controller manager): the policy would stay in
    // other tests' caches.
    await kubectl("-n", JUDGED, "delete", "imagepolicy", "pin", "--ignore-not-found");
    for (const ns of [TEAM, JUDGED, NS]) await kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found");
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it("runs every path of the operator with the chart's ServiceAccount token", async () => {
    const { serve, health, webhook } = await start("rbac-replica-1", (port) => ["--webhook-url", `https://127.0.0.1:${port}`, "--pin-digests", "true"]);

    // Pods -> ImageScans, Indexed. The team's pod names its pull secret; the name Portcullis wanted was
    // taken by another image's scan (create: 409, get, a name the API server generates). The judged pod pulls through its
    // ServiceAccount.
    const indexed = (ns: string) => waitFor(`the scan in ${ns} Indexed`, async () => (await scans(ns)).find((s) => s.status?.digest === baseDigest && s.status.phase === "Indexed"));
    const team = await indexed(TEAM);
    expect(team.metadata!.name).toMatch(new RegExp(`^${squatter()}-[a-z0-9]{5}$`));
    const judged = await indexed(JUDGED);
    expect(judged.spec.imagePullSecrets).toEqual([{ name: "regcred" }]);
    expect(judged.status!.credentialSource).toContain("regcred");
    expect(judged.status!.packages!.total).toBeGreaterThan(80);

    // Policies: their status says the webhook uses them.
    for (const [plural, namespace, name] of [["imagepolicies", JUDGED, "pin"], ["clusterimagepolicies", undefined, CLUSTER_POLICY]] as const) {
      const ready = await waitFor(`${plural} ${name} Ready`, async () => {
        const p = (namespace
          ? await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, name })
          : await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural, name })) as { status?: { conditions?: Array<{ type: string; status: string }> } };
        return p.status?.conditions?.find((c) => c.type === "Ready" && c.status === "True");
      });
      expect(ready).toBeTruthy();
    }

    // Events: Requested and Indexed on the scans; the unreachable registry's Warning, repeated, is counted.
    const events = async (ns: string) => (await core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.involvedObject.kind === "ImageScan");
    await waitFor("Requested and Indexed on the team's scan", async () => {
      const reasons = new Set((await events(TEAM)).filter((e) => e.involvedObject.name === team.metadata!.name).map((e) => e.reason));
      return (reasons.has("Requested") && reasons.has("Indexed")) || undefined;
    });
    const gone = await waitFor("the unreachable image's scan", async () => (await scans(TEAM)).find((s) => s.metadata?.labels?.[REFERENCE_LABEL]));
    await waitFor("its Warning counted twice", async () => (await events(TEAM)).find((e) => e.involvedObject.name === gone.metadata!.name && e.type === "Warning" && (e.count ?? 0) >= 2));

    // Garbage collection: the pod goes; --gc-after later its scan goes too.
    await core.deleteNamespacedPod({ namespace: TEAM, name: "unreachable", gracePeriodSeconds: 0 });
    await waitFor("the unused scan deleted", async () => (!(await scans(TEAM)).some((s) => s.metadata!.name === gone.metadata!.name)) || undefined);

    // The webhook: an image not scanned yet is refused, scanned, then admitted and pinned to its digest.
    let refused = "";
    await kubectl("-n", JUDGED, "run", "web", `--image=${image("v2s2")}`, "--restart=Never").catch((e: { stderr?: string }) => (refused = e.stderr ?? ""));
    expect(refused, serve.tail()).toMatch(/denied the request/);
    expect(refused).toMatch(/not scanned yet/);
    await waitFor("the same kubectl run admitted", async () => (await kubectl("-n", JUDGED, "run", "web", `--image=${image("v2s2")}`, "--restart=Never").then(() => true, () => undefined)));
    const web = await core.readNamespacedPod({ namespace: JUDGED, name: "web" });
    const pinned = /^(.*)@(sha256:[0-9a-f]{64})$/.exec(web.spec!.containers[0]!.image!);
    expect(pinned?.[1]).toBe(image("v2s2"));
    expect((await scans(JUDGED)).find((s) => s.status?.digest === pinned![2])?.status?.phase).toBe("Indexed");

    // The report API: TokenReview says who calls, SubjectAccessReview whether they may get the scans.
    const report = (token: string) => request(`http://127.0.0.1:${health}/indexer/api/v1/index_report/${baseDigest}`, { headers: { authorization: `Bearer ${token}` } });
    const ok = await report(service("kube").token);
    expect(ok.statusCode).toBe(200);
    expect(((await ok.body.json()) as { manifest_hash: string }).manifest_hash).toBe(baseDigest);
    const nobody = await report(service("kube").unprivilegedToken);
    await nobody.body.dump();
    expect(nobody.statusCode).toBe(403);

    // Leader election: the Lease, created and renewed.
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = () => coordination.readNamespacedLease({ namespace: NS, name: "portcullis-controller" });
    const first = await lease();
    expect(first.spec!.holderIdentity).toBe("rbac-replica-1");
    await sleep(1500);
    expect(new Date((await lease()).spec!.renewTime!).getTime()).toBeGreaterThan(new Date(first.spec!.renewTime!).getTime());

    // Builtin TLS: the Secret, and its CA in the chart's configurations, now pointing at this process.
    const secret = await core.readNamespacedSecret({ namespace: NS, name: "portcullis-webhook-tls" });
    expect(secret.type).toBe("kubernetes.io/tls");
    const validating = await admission.readValidatingWebhookConfiguration({ name: "portcullis" });
    const mutating = await admission.readMutatingWebhookConfiguration({ name: "portcullis-pin-digests" });
    for (const c of [validating.webhooks![0]!.clientConfig, mutating.webhooks![0]!.clientConfig]) {
      expect(c.caBundle).toBe(secret.data!["ca.crt"]);
      expect(c.url).toMatch(new RegExp(`^https://127\\.0\\.0\\.1:${webhook}/`));
    }

    expect(await serve.stop(), serve.tail()).toBe(0);
    expect(serve.refusals()).toEqual([]);
  }, 150_000);

  it("a second leader re-issues the certificate for its new address and removes the mutating configuration", async () => {
    // After a failed first test its replica still holds the Lease.
    await Promise.all(serves.map((s) => s.stop()));
    const before = await core.readNamespacedSecret({ namespace: NS, name: "portcullis-webhook-tls" });
    const { serve } = await start("rbac-replica-2", (port) => ["--webhook-url", `https://localhost:${port}`, "--pin-digests", "false"]);
    const after = await core.readNamespacedSecret({ namespace: NS, name: "portcullis-webhook-tls" });
    expect(after.metadata!.resourceVersion).not.toBe(before.metadata!.resourceVersion);
    expect(new X509Certificate(Buffer.from(after.data!["tls.crt"]!, "base64")).subjectAltName).toContain("DNS:localhost");
    await expect(admission.readMutatingWebhookConfiguration({ name: "portcullis-pin-digests" })).rejects.toMatchObject({ code: 404 });
    const lease = await kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ namespace: NS, name: "portcullis-controller" });
    expect(lease.spec!.holderIdentity).toBe("rbac-replica-2");
    expect(await serve.stop(), serve.tail()).toBe(0);
    expect(serve.refusals()).toEqual([]);
  }, 90_000);

  it("after an emergency removal of the configuration, the leader runs its controllers and registers again once the object is back", async () => {
    await Promise.all(serves.map((s) => s.stop()));
    const saved = await admission.readValidatingWebhookConfiguration({ name: "portcullis" });
    await admission.deleteValidatingWebhookConfiguration({ name: "portcullis" });
    // Not `start`: registration cannot succeed (the chart grants no create, which cannot be limited by name).
    const health = await freePort();
    const webhook = await freePort();
    const serve = new Serve([
      "--database-url", service("postgres").url, "--namespace", NS, "--health-addr", `127.0.0.1:${health}`, "--webhook-addr", `127.0.0.1:${webhook}`,
      "--webhook-url", `https://localhost:${webhook}`, "--pin-digests", "false",
      "--webhook-namespace-label", JUDGED_LABEL.join("="), "--watch-namespaces", `${TEAM},${JUDGED}`, "--lease-duration", "4s",
    ], { KUBECONFIG: saKubeconfig, POD_NAME: "rbac-replica-3" });
    serves.push(serve);
    const expected = /webhook registration failed/;
    await waitFor("the controllers to run although registration failed", () => (serve.saw("controllers running") && serve.lines.some((l) => expected.test(l))) || undefined, 60_000, expected);
    // Scans go on.
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: TEAM, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "after-removal" }, spec: { image: `${image("base").split(":base")[0]}@${baseDigest}`, imagePullSecrets: [{ name: "regcred" }] } } });
    await waitFor("a scan Indexed meanwhile", async () => (await scans(TEAM)).find((x) => x.metadata!.name === "after-removal" && x.status?.phase === "Indexed"), 60_000, expected);
    // `helm upgrade` puts the object back; the leader's next attempt registers into it.
    await admission.createValidatingWebhookConfiguration({ body: { ...saved, metadata: { name: saved.metadata!.name, labels: saved.metadata!.labels, annotations: saved.metadata!.annotations } } });
    await waitFor("registration on a retry", () => serve.saw("webhook registered") || undefined, 60_000, expected);
    const vwc = await admission.readValidatingWebhookConfiguration({ name: "portcullis" });
    expect(vwc.webhooks![0]!.clientConfig.url).toBe(`https://localhost:${webhook}/validate`);
    expect(vwc.metadata!.annotations).toMatchObject({ "meta.helm.sh/release-name": "portcullis" });
    expect(await serve.stop(), serve.tail()).toBe(0);
  }, 120_000);

  it("needed every rule of the chart, and nothing more (the audit log)", async () => {
    // One record per request: a watch has two stages, both with the answer's code.
    const byId = new Map<string, AuditEvent>();
    for (const line of readFileSync(service("kube").auditLog, "utf8").split("\n")) {
      if (!line) continue;
      const e = JSON.parse(line) as AuditEvent;
      if (e.user.username === USER) byId.set(e.auditID, e);
    }
    const audited = [...byId.values()];
    expect(audited.length).toBeGreaterThan(50);
    // The only refusals: creating the configuration after its emergency removal (test above), which the chart
    // does not grant on purpose.
    const refused = audited.filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${e.requestURI}`);
    expect(refused.filter((r) => r !== "create /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"), "refused").toEqual([]);
    expect(refused.length, "the refused re-creation").toBeGreaterThan(0);

    // Every rule that applies to the ServiceAccount: the chart's, and any other binding of it or its groups.
    const groups = new Set(audited[0]!.user.groups ?? []);
    const bound = (subjects: k8s.RbacV1Subject[] | undefined) => (subjects ?? []).some((s) =>
      s.kind === "ServiceAccount" ? s.name === SA && s.namespace === NS : s.kind === "User" ? s.name === USER : s.kind === "Group" && groups.has(s.name));
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const grants: Grant[] = [];
    const grant = (source: string, rules: k8s.V1PolicyRule[] | undefined, namespace: string | undefined, isChart: boolean) =>
      (rules ?? []).forEach((rule, i) => grants.push({ source: `${source}[${i}]`, rule, namespace, chart: isChart }));
    for (const b of (await rbac.listClusterRoleBinding()).items.filter((b) => bound(b.subjects))) {
      const role = await rbac.readClusterRole({ name: b.roleRef.name });
      grant(`ClusterRole/${b.roleRef.name}`, role.rules, undefined, b.metadata!.name === "portcullis" && b.roleRef.name === "portcullis");
    }
    for (const b of (await rbac.listRoleBindingForAllNamespaces()).items.filter((b) => bound(b.subjects))) {
      const ns = b.metadata!.namespace!;
      const rules = b.roleRef.kind === "Role" ? (await rbac.readNamespacedRole({ namespace: ns, name: b.roleRef.name })).rules : (await rbac.readClusterRole({ name: b.roleRef.name })).rules;
      grant(`${b.roleRef.kind}/${b.roleRef.kind === "Role" ? `${ns}/` : ""}${b.roleRef.name}`, rules, ns, ns === NS && b.metadata!.name === "portcullis" && b.roleRef.name === "portcullis");
    }
    const chartGrants = grants.filter((g) => g.chart);
    expect(new Set(chartGrants.map((g) => g.source.replace(/\[\d+\]$/, "")))).toEqual(new Set(["ClusterRole/portcullis", `Role/${NS}/portcullis`]));

    // The matcher agrees with the authorizer: every request it allowed, some rule here allows.
    const requests = audited.filter((e) => e.responseStatus?.code !== 403).map(attributes).filter((a): a is Attributes => !!a);
    expect(requests.filter((a) => !grants.some((g) => allows(g, a))).map(show), "allowed by no rule found").toEqual([]);

    // Each chart rule: the requests it alone allows. Every (group, verb, resource, name) it grants must be
    // among them, so that no rule, and no verb, resource or name of one, could go.
    const rows: string[] = [];
    const unneeded: string[] = [];
    for (const g of chartGrants) {
      const only = requests.filter((a) => allows(g, a) && !grants.some((o) => o !== g && allows(o, a)));
      const { apiGroups = [], verbs, resources = [], resourceNames = [] } = g.rule;
      const granted = apiGroups.flatMap((group) => verbs.flatMap((verb) => resources.flatMap((resource) =>
        (resourceNames.length ? resourceNames : [undefined]).map((name) => ({ group, verb, resource, name })))));
      const missing = granted.filter((t) => !only.some((a) => a.group === t.group && a.verb === t.verb && a.resource === t.resource && (t.name === undefined || a.name === t.name)));
      rows.push(`${g.source.padEnd(32)} ${showRule(g.rule).padEnd(100)} ${String(only.length).padStart(5)}  ${[...new Set(only.map((a) => a.verb))].sort().join(",")}`);
      if (missing.length) unneeded.push(`${g.source} (${showRule(g.rule)}): nothing needs ${missing.map(show).join("; ")}`);
    }
    console.info(`requests of ${USER} that only this rule allows:\n${rows.join("\n")}`);
    expect(unneeded, "granted but not needed").toEqual([]);
  });

  it("uninstalls without leaving a webhook configuration or a role behind", async () => {
    await helm("uninstall", "portcullis", "--namespace", NS, "--wait");
    expect((await kubectl("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name")).stdout).not.toMatch(/\/portcullis(-pin-digests)?$/m);
    expect((await kubectl("get", "clusterrole,clusterrolebinding", "-o", "name")).stdout).not.toMatch(/\/portcullis$/m);
    expect((await kubectl("-n", NS, "get", "role,rolebinding,serviceaccount", "-o", "name")).stdout).not.toMatch(/\/portcullis$/m);
  });
});
