// The chart's RBAC is least privilege, proven with the real authorizer, in both layouts. mode: combined: one
// `portcullis serve` with a TokenRequest token of the chart's ServiceAccount; mode: split: a process per role
// (`serve --roles webhook|controller|indexer`), each with its own ServiceAccount's token, as the chart's
// Deployments run them. Either runs through every path the operator has: ImageScans for pods that pull with
// their own secret and through their ServiceAccount (and a user's scan that took the name), indexing, Events
// (created, then counted in place), garbage collection, the webhook refusing, scanning, admitting and pinning,
// its builtin TLS Secret, leader election, the report API's TokenReview and SubjectAccessReview (in every
// process); then a second leader that re-issues the certificate and removes the mutating configuration. The API
// server's audit log then shows, for each ServiceAccount, that none of its requests was refused, and that every
// rule of its ClusterRole and Role, with each of its verbs, resources and names, allowed requests that no other
// rule granted to the ServiceAccount allows: removing any of them breaks a path. Besides the combined
// scenario's paths, reviews that add a pull secret to a waiting scan (the webhook's patch), take a name held by
// another scan (its get after a 409) and break glass twice, and a repository whose registry refuses
// connections, give each split role the requests only its own rules allow (Events patched by each role).
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
import { GROUP, type ImageScan, REFERENCE_LABEL, referenceHash, scanName, VERSION } from "../../src/kube/api/v1alpha1/index.js";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const chart = join(root, "charts/portcullis");
const bin = join(root, "src/cli/bin.ts");

const ROLES = ["webhook", "controller", "indexer"] as const;
type Role = (typeof ROLES)[number];
type Layout = "combined" | "split";

/** One `portcullis serve` process; stderr kept line by line. */
class Serve {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private partial = "";

  /** `name`: the ServiceAccount whose token it runs with. */
  constructor(readonly name: string, args: string[], env: NodeJS.ProcessEnv) {
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
    return `${this.name}:\n${this.lines.slice(-40).join("\n")}`;
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

function suite(layout: Layout): void {
  const split = layout === "split";
  const prefix = split ? "rbac-split" : "rbac";
  const NS = `${prefix}-system`; // the release, Portcullis's own namespace
  const TEAM = `${prefix}-team`; // pods that name their pull secret; not judged by the webhook
  const JUDGED = `${prefix}-judged`; // the webhook's namespace; pods pull through their ServiceAccount
  const JUDGED_LABEL = ["portcullis.dev/rbac-test", split ? "judged-split" : "judged"] as const;
  const CLUSTER_POLICY = `${prefix}-test-judged`; // cluster-scoped: deleted afterwards
  /** The ServiceAccount a process runs with: the chart's one (combined), or its role's (split). */
  const accountOf = (role?: Role) => (split && role ? `portcullis-${role}` : "portcullis");
  const accounts = split ? ROLES.map(accountOf) : [accountOf()];
  const userOf = (sa: string) => `system:serviceaccount:${NS}:${sa}`;
  const work = mkdtempSync(join(tmpdir(), `portcullis-${prefix}-`));
  // helm writes its cache and config under HOME otherwise.
  const helmEnv = { ...process.env, HELM_CACHE_HOME: join(work, "cache"), HELM_CONFIG_HOME: join(work, "config"), HELM_DATA_HOME: join(work, "data") };

  /** One process of a replica: `role` undefined when it has every role (combined). */
  interface Proc {
    role?: Role;
    serve: Serve;
    health: number;
  }
  const has = (p: Proc, role: Role) => p.role === undefined || p.role === role;

  describeWith(["kube", "registryBasic", "postgres"], `the chart's RBAC in mode: ${layout}, proven by running ${split ? "each role's process with its role's ServiceAccount" : "the operator with its ServiceAccount"}`, () => {
    let kc: k8s.KubeConfig;
    let core: k8s.CoreV1Api;
    let custom: k8s.CustomObjectsApi;
    let admission: k8s.AdmissionregistrationV1Api;
    const kubeconfigs: Record<string, string> = {};
    const serves: Serve[] = [];
    /** The processes of the replica the running test started. */
    let current: Serve[] = [];
    let baseDigest: string;
    /** A port nothing listens on: a registry that refuses connections. */
    let gonePort: number;
    const image = (tag: string) => `${service("registryBasic").host}/rbac/debian:${tag}`;
    const squatter = () => scanName(parseReference(image("base")), baseDigest);
    const kubectl = (...args: string[]) => exec(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args], { maxBuffer: 64 << 20 });
    const helm = (...args: string[]) => exec(tool("helm"), [...args, "--kubeconfig", service("kube").kubeconfig], { env: helmEnv, maxBuffer: 64 << 20 });
    const scans = async (namespace: string) => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: "imagescans" })) as { items: ImageScan[] }).items;
    const ready = (health: number) => request(`http://127.0.0.1:${health}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false);

    /**
     * Polls `f`; fails at once when a running serve logs a refusal (a missing rule) instead of waiting it out,
     * but for the refusals `expected` matches.
     */
    async function waitFor<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000, expected?: RegExp): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const refused = current.flatMap((s) => s.refusals().filter((l) => !expected?.test(l)).map((l) => `${s.name}: ${l}`));
        if (refused.length) throw new Error(`waiting for ${what}, the API server refused a request of serve:\n${refused.join("\n")}`);
        const v = await f();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${current.map((s) => s.tail()).join("\n")}`);
        await sleep(200);
      }
    }

    /** A replica: one process with every role (combined), or one per role of `roles`, each with its role's token (split). */
    async function launch(name: string, args: (health: number) => string[], roles: readonly Role[] = ROLES): Promise<Proc[]> {
      const procs: Proc[] = [];
      for (const role of split ? roles : [undefined]) {
        const health = await freePort();
        const sa = accountOf(role);
        const serve = new Serve(sa, [...(role ? ["--roles", role] : []), ...args(health)], { KUBECONFIG: kubeconfigs[sa], POD_NAME: role ? `${name}-${role}` : name });
        serves.push(serve);
        procs.push({ ...(role ? { role } : {}), serve, health });
      }
      current = procs.map((p) => p.serve);
      return procs;
    }

    async function start(name: string, extra: (webhookPort: number) => string[], roles: readonly Role[] = ROLES): Promise<{ procs: Proc[]; webhook: number }> {
      const webhook = await freePort();
      const procs = await launch(name, (health) => [
        "--database-url", service("postgres").url, "--namespace", NS, "--health-addr", `127.0.0.1:${health}`, "--webhook-addr", `127.0.0.1:${webhook}`,
        "--webhook-namespace-label", JUDGED_LABEL.join("="), "--watch-namespaces", `${TEAM},${JUDGED}`, "--lease-duration", "4s", "--gc-after", "6s",
        // The API server's client certificate proves its reviews (without it, pins are not given: docs/trust.md).
        "--webhook-client-ca", service("kube").webhookClient.caFile,
        ...extra(webhook),
      ], roles);
      for (const p of procs) await waitFor(`${p.serve.name} ready`, async () => (await ready(p.health)) || undefined);
      for (const p of procs) {
        if (has(p, "controller")) await waitFor(`${p.serve.name} to lead and register the webhook`, () => (p.serve.saw("webhook registered") && p.serve.saw("controllers running")) || undefined);
        else if (has(p, "indexer")) await waitFor(`${p.serve.name} to lead`, () => p.serve.saw("controllers running") || undefined);
      }
      return { procs, webhook };
    }

    /** Stops a replica's processes: each exits 0, none was refused anything. */
    async function stopAll(procs: Proc[]): Promise<void> {
      for (const p of procs) expect(await p.serve.stop(), p.serve.tail()).toBe(0);
      for (const p of procs) expect(p.serve.refusals(), p.serve.name).toEqual([]);
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
      // The chart's defaults (but for the layout), so that its default RBAC is what is proven. Its webhook
      // configurations select a label no namespace has until the operator replaces them in place; pinDigests
      // makes it create the mutating one too. No pod of the Deployments runs: there is no kubelet.
      await helm("install", "portcullis", chart, "--namespace", NS, "--set", `mode=${layout}`, "--set", "webhook.namespaceLabel=portcullis.dev/rbac-test=never", "--set", "webhook.pinDigests=true");
      await crdsEstablished(service("kube").kubeconfig, ["imagescans.portcullis.dev", "imagerepositories.portcullis.dev", "imagepolicies.portcullis.dev", "clusterimagepolicies.portcullis.dev"]);
      for (const sa of accounts) {
        const token = await core.createNamespacedServiceAccountToken({ namespace: NS, name: sa, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
        kubeconfigs[sa] = join(work, `${sa}.kubeconfig`);
        writeFileSync(kubeconfigs[sa], kubeconfigYaml(service("kube").server, service("kube").caPem, token.status!.token, sa), { mode: 0o600 });
      }

      for (const ns of [TEAM, JUDGED]) {
        await kubectl("-n", ns, "create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`);
      }
      await core.createNamespacedServiceAccount({ namespace: JUDGED, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } });
      // Someone's own scan of another image holds the name Portcullis would give the team's scan.
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: TEAM, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: squatter() }, spec: { image: image("other") } } });
      await core.createNamespacedPod({ namespace: TEAM, body: { metadata: { name: "with-secret" }, spec: { imagePullSecrets: [{ name: "regcred" }], containers: [{ name: "app", image: image("base") }] } } });
      // A registry that refuses connections: the scan is retried, and its Warning counted in place.
      gonePort = await freePort();
      await core.createNamespacedPod({ namespace: TEAM, body: { metadata: { name: "unreachable" }, spec: { containers: [{ name: "app", image: `127.0.0.1:${gonePort}/rbac/gone:1` }] } } });
      await core.createNamespacedPod({ namespace: JUDGED, body: { metadata: { name: "with-serviceaccount" }, spec: { containers: [{ name: "app", image: image("base") }] } } });
      // A watched repository whose filter selects no tag: the operator lists it and writes its status, and makes no scan.
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: TEAM, plural: "imagerepositories", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageRepository", metadata: { name: "watched" }, spec: { image: image("base").split(":base")[0], tagFilter: { pattern: "^none$" }, imagePullSecrets: [{ name: "regcred" }] } } });
      // A watched repository whose registry refuses connections: the listing is retried, and its Warning counted in place.
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: TEAM, plural: "imagerepositories", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageRepository", metadata: { name: "unreachable" }, spec: { image: `127.0.0.1:${gonePort}/rbac/gone` } } });
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

    it("runs every path of the operator with the chart's ServiceAccount tokens", async () => {
      const { procs, webhook } = await start("rbac-replica-1", (port) => ["--webhook-url", `https://127.0.0.1:${port}`, "--pin-digests", "true"]);
      const tails = () => procs.map((p) => p.serve.tail()).join("\n");

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

      const repositoryWarning = async () => (await core.listNamespacedEvent({ namespace: TEAM })).items
        .find((e) => e.involvedObject.kind === "ImageRepository" && e.involvedObject.name === "unreachable" && e.type === "Warning" && (e.count ?? 0) >= 2);
      await waitFor("the unreachable repository's Warning counted twice", repositoryWarning);

      // Garbage collection: the pod goes; --gc-after later its scan goes too.
      await core.deleteNamespacedPod({ namespace: TEAM, name: "unreachable", gracePeriodSeconds: 0 });
      await waitFor("the unused scan deleted", async () => (!(await scans(TEAM)).some((s) => s.metadata!.name === gone.metadata!.name)) || undefined);

      // The webhook: an image not scanned yet is refused, scanned, then admitted and pinned to its digest.
      let refused = "";
      await kubectl("-n", JUDGED, "run", "web", `--image=${image("v2s2")}`, "--restart=Never").catch((e: { stderr?: string }) => (refused = e.stderr ?? ""));
      expect(refused, tails()).toMatch(/denied the request/);
      expect(refused).toMatch(/not scanned yet/);
      await waitFor("the same kubectl run admitted", async () => (await kubectl("-n", JUDGED, "run", "web", `--image=${image("v2s2")}`, "--restart=Never").then(() => true, () => undefined)));
      const web = await core.readNamespacedPod({ namespace: JUDGED, name: "web" });
      const pinned = /^(.*)@(sha256:[0-9a-f]{64})$/.exec(web.spec!.containers[0]!.image!);
      expect(pinned?.[1]).toBe(image("v2s2"));
      expect((await scans(JUDGED)).find((s) => s.status?.digest === pinned![2])?.status?.phase).toBe("Indexed");

      // A second review of an image whose scan waits names a pull secret the scan lacks: the webhook adds it.
      // The image's registry refuses connections, so it is never resolved: both reviews are denied and the scan
      // (by reference) stays waiting. Its name was taken by someone's scan of another image (create: 409, get,
      // a name the API server generates), as the team's was for the controller.
      const refused2 = `127.0.0.1:${gonePort}/rbac/gone:2`;
      const taken = scanName(parseReference(refused2), `sha256:${referenceHash(parseReference(refused2))}`);
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: JUDGED, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: taken }, spec: { image: image("other") } } });
      const run = (name: string, ...more: string[]) => kubectl("-n", JUDGED, "run", name, `--image=${refused2}`, "--restart=Never", ...more).then(() => "", (e: { stderr?: string }) => e.stderr ?? "failed");
      expect(await run("gone-1"), tails()).toMatch(/denied the request/);
      const waiting = await waitFor("the scan the review asked for", async () => (await scans(JUDGED)).find((s) => s.spec.image === refused2));
      expect(waiting.metadata!.name).toMatch(new RegExp(`^${taken}-[a-z0-9]{5}$`));
      await sleep(500); // the webhook's cache has it too
      expect(await run("gone-2", `--overrides=${JSON.stringify({ apiVersion: "v1", spec: { imagePullSecrets: [{ name: "regcred-extra" }] } })}`)).toMatch(/denied the request/);
      await waitFor("the review's pull secret added to the scan", async () => (await scans(JUDGED)).find((s) => s.metadata!.name === waiting.metadata!.name && s.spec.imagePullSecrets?.some((p) => p.name === "regcred-extra")));

      // Break-glass, once the policy allows it, used twice for one pod name (the second create passes admission
      // and fails on the taken name): the webhook's BreakGlass Warning is counted in place.
      await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: JUDGED, plural: "imagepolicies", name: "pin", body: { spec: { breakGlass: { allowed: true } } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
      const glass = () => run("glass", "--annotations=portcullis.dev/break-glass=incident 42");
      await waitFor("break-glass admitted", async () => (await glass()) === "" || undefined);
      expect(await glass()).toMatch(/already exists/);
      await waitFor("the BreakGlass Warning counted twice", async () => (await core.listNamespacedEvent({ namespace: JUDGED })).items.find((e) => e.reason === "BreakGlass" && (e.count ?? 0) >= 2));

      // The report API, in every process: TokenReview says who calls, SubjectAccessReview whether they may get the scans.
      for (const p of procs) {
        const report = (token: string) => request(`http://127.0.0.1:${p.health}/indexer/api/v1/index_report/${baseDigest}`, { headers: { authorization: `Bearer ${token}` } });
        const ok = await report(service("kube").token);
        expect(ok.statusCode, p.serve.name).toBe(200);
        expect(((await ok.body.json()) as { manifest_hash: string }).manifest_hash).toBe(baseDigest);
        const nobody = await report(service("kube").unprivilegedToken);
        await nobody.body.dump();
        expect(nobody.statusCode, p.serve.name).toBe(403);
      }

      // Leader election: the Leases (the controller's, and the indexer's of its own process), created and renewed.
      const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
      const leases = split ? [["portcullis-controller", "rbac-replica-1-controller"], ["portcullis-indexer", "rbac-replica-1-indexer"]] : [["portcullis-controller", "rbac-replica-1"]];
      const lease = (name: string) => coordination.readNamespacedLease({ namespace: NS, name });
      const first = await Promise.all(leases.map(([name]) => lease(name!)));
      expect(first.map((l) => l.spec!.holderIdentity)).toEqual(leases.map(([, holder]) => holder));
      await sleep(1500);
      for (const [i, [name]] of leases.entries()) expect(new Date((await lease(name!)).spec!.renewTime!).getTime(), name).toBeGreaterThan(new Date(first[i]!.spec!.renewTime!).getTime());

      // Builtin TLS: the Secret, and its CA in the chart's configurations, now pointing at the webhook's port.
      const secret = await core.readNamespacedSecret({ namespace: NS, name: "portcullis-webhook-tls" });
      expect(secret.type).toBe("kubernetes.io/tls");
      const validating = await admission.readValidatingWebhookConfiguration({ name: "portcullis" });
      const mutating = await admission.readMutatingWebhookConfiguration({ name: "portcullis-pin-digests" });
      for (const c of [validating.webhooks![0]!.clientConfig, mutating.webhooks![0]!.clientConfig]) {
        expect(c.caBundle).toBe(secret.data!["ca.crt"]);
        expect(c.url).toMatch(new RegExp(`^https://127\\.0\\.0\\.1:${webhook}/`));
      }

      await stopAll(procs);
    }, 180_000);

    it("a second leader re-issues the certificate for its new address and removes the mutating configuration", async () => {
      // After a failed first test its replica still holds the Lease.
      await Promise.all(serves.map((s) => s.stop()));
      const before = await core.readNamespacedSecret({ namespace: NS, name: "portcullis-webhook-tls" });
      const { procs } = await start("rbac-replica-2", (port) => ["--webhook-url", `https://localhost:${port}`, "--pin-digests", "false"], ["controller"]);
      const after = await core.readNamespacedSecret({ namespace: NS, name: "portcullis-webhook-tls" });
      expect(after.metadata!.resourceVersion).not.toBe(before.metadata!.resourceVersion);
      expect(new X509Certificate(Buffer.from(after.data!["tls.crt"]!, "base64")).subjectAltName).toContain("DNS:localhost");
      await expect(admission.readMutatingWebhookConfiguration({ name: "portcullis-pin-digests" })).rejects.toMatchObject({ code: 404 });
      const lease = await kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ namespace: NS, name: "portcullis-controller" });
      expect(lease.spec!.holderIdentity).toBe(split ? "rbac-replica-2-controller" : "rbac-replica-2");
      await stopAll(procs);
    }, 90_000);

    it("after an emergency removal of the configuration, the leader runs its controllers and registers again once the object is back", async () => {
      await Promise.all(serves.map((s) => s.stop()));
      const saved = await admission.readValidatingWebhookConfiguration({ name: "portcullis" });
      await admission.deleteValidatingWebhookConfiguration({ name: "portcullis" });
      // Not `start`: registration cannot succeed (the chart grants no create, which cannot be limited by name).
      const webhook = await freePort();
      const procs = await launch("rbac-replica-3", (health) => [
        "--database-url", service("postgres").url, "--namespace", NS, "--health-addr", `127.0.0.1:${health}`, "--webhook-addr", `127.0.0.1:${webhook}`,
        "--webhook-url", `https://localhost:${webhook}`, "--pin-digests", "false",
        "--webhook-namespace-label", JUDGED_LABEL.join("="), "--watch-namespaces", `${TEAM},${JUDGED}`, "--lease-duration", "4s",
      ], ["controller", "indexer"]);
      const leader = procs.find((p) => has(p, "controller"))!.serve;
      const expected = /webhook registration failed/;
      await waitFor("the controllers to run although registration failed", () => (leader.saw("controllers running") && leader.lines.some((l) => expected.test(l))) || undefined, 60_000, expected);
      // Scans go on.
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: TEAM, plural: "imagescans", body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "after-removal" }, spec: { image: `${image("base").split(":base")[0]}@${baseDigest}`, imagePullSecrets: [{ name: "regcred" }] } } });
      await waitFor("a scan Indexed meanwhile", async () => (await scans(TEAM)).find((x) => x.metadata!.name === "after-removal" && x.status?.phase === "Indexed"), 60_000, expected);
      // `helm upgrade` puts the object back; the leader's next attempt registers into it.
      await admission.createValidatingWebhookConfiguration({ body: { ...saved, metadata: { name: saved.metadata!.name, labels: saved.metadata!.labels, annotations: saved.metadata!.annotations } } });
      await waitFor("registration on a retry", () => leader.saw("webhook registered") || undefined, 60_000, expected);
      const vwc = await admission.readValidatingWebhookConfiguration({ name: "portcullis" });
      expect(vwc.webhooks![0]!.clientConfig.url).toBe(`https://localhost:${webhook}/validate`);
      expect(vwc.metadata!.annotations).toMatchObject({ "meta.helm.sh/release-name": "portcullis" });
      for (const p of procs) expect(await p.serve.stop(), p.serve.tail()).toBe(0);
    }, 120_000);

    it.each(accounts)("%s needed every rule of the chart, and nothing more (the audit log)", async (sa) => {
      const user = userOf(sa);
      // One record per request: a watch has two stages, both with the answer's code.
      const byId = new Map<string, AuditEvent>();
      for (const line of readFileSync(service("kube").auditLog, "utf8").split("\n")) {
        if (!line) continue;
        const e = JSON.parse(line) as AuditEvent;
        if (e.user.username === user) byId.set(e.auditID, e);
      }
      const audited = [...byId.values()];
      expect(audited.length).toBeGreaterThan(10);
      // The only refusals: creating the configuration after its emergency removal (test above), which the chart
      // does not grant on purpose; asked by the process with the controller role.
      const refused = audited.filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${e.requestURI}`);
      expect(refused.filter((r) => r !== "create /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"), "refused").toEqual([]);
      if (sa === accountOf("controller")) expect(refused.length, "the refused re-creation").toBeGreaterThan(0);
      else expect(refused).toEqual([]);

      // Every rule that applies to the ServiceAccount: the chart's, and any other binding of it or its groups.
      const groups = new Set(audited[0]!.user.groups ?? []);
      const bound = (subjects: k8s.RbacV1Subject[] | undefined) => (subjects ?? []).some((s) =>
        s.kind === "ServiceAccount" ? s.name === sa && s.namespace === NS : s.kind === "User" ? s.name === user : s.kind === "Group" && groups.has(s.name));
      const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
      const grants: Grant[] = [];
      const grant = (source: string, rules: k8s.V1PolicyRule[] | undefined, namespace: string | undefined, isChart: boolean) =>
        (rules ?? []).forEach((rule, i) => grants.push({ source: `${source}[${i}]`, rule, namespace, chart: isChart }));
      for (const b of (await rbac.listClusterRoleBinding()).items.filter((b) => bound(b.subjects))) {
        const role = await rbac.readClusterRole({ name: b.roleRef.name });
        grant(`ClusterRole/${b.roleRef.name}`, role.rules, undefined, b.metadata!.name === sa && b.roleRef.name === sa);
      }
      for (const b of (await rbac.listRoleBindingForAllNamespaces()).items.filter((b) => bound(b.subjects))) {
        const ns = b.metadata!.namespace!;
        const rules = b.roleRef.kind === "Role" ? (await rbac.readNamespacedRole({ namespace: ns, name: b.roleRef.name })).rules : (await rbac.readClusterRole({ name: b.roleRef.name })).rules;
        grant(`${b.roleRef.kind}/${b.roleRef.kind === "Role" ? `${ns}/` : ""}${b.roleRef.name}`, rules, ns, ns === NS && b.metadata!.name === sa && b.roleRef.name === sa);
      }
      const chartGrants = grants.filter((g) => g.chart);
      // The webhook has no Role: no Lease, and the TLS Secret is the controller's to write.
      const expectedSources = sa === accountOf("webhook") && split ? [`ClusterRole/${sa}`] : [`ClusterRole/${sa}`, `Role/${NS}/${sa}`];
      expect(new Set(chartGrants.map((g) => g.source.replace(/\[\d+\]$/, "")))).toEqual(new Set(expectedSources));

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
        rows.push(`${g.source.padEnd(40)} ${showRule(g.rule).padEnd(100)} ${String(only.length).padStart(5)}  ${[...new Set(only.map((a) => a.verb))].sort().join(",")}`);
        if (missing.length) unneeded.push(`${g.source} (${showRule(g.rule)}): nothing needs ${missing.map(show).join("; ")}`);
      }
      console.info(`requests of ${user} that only this rule allows:\n${rows.join("\n")}`);
      expect(unneeded, "granted but not needed").toEqual([]);
    });

    it("uninstalls without leaving a webhook configuration or a role behind", async () => {
      await helm("uninstall", "portcullis", "--namespace", NS, "--wait");
      expect((await kubectl("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name")).stdout).not.toMatch(/\/portcullis(-pin-digests)?$/m);
      expect((await kubectl("get", "clusterrole,clusterrolebinding", "-o", "name")).stdout).not.toMatch(/\/portcullis(-webhook|-controller|-indexer)?$/m);
      expect((await kubectl("-n", NS, "get", "role,rolebinding,serviceaccount", "-o", "name")).stdout).not.toMatch(/\/portcullis(-webhook|-controller|-indexer)?$/m);
    });
  });
}

suite("combined");
suite("split");
