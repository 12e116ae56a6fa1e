// A hostile tenant against the admission webhook and the controller, through the real API server and a real
// registry that refuses anonymous pulls. The tenant is a user with a namespace editor's rights in its own
// namespaces (the test API server runs no controller-manager, so the built-in `edit` role is not aggregated:
// the tenant's role holds the usual workload rules plus the rules of the chart's aggregated ClusterRoles,
// rendered by helm) and acts through impersonation. Each attempt of issue 14 (items 1, 3-6) must fail:
// a decoy scan labelled with another image's digest, a squatted scan name, a namespace labelled to opt out,
// break-glass by a user who was never granted it, a scan of an image only the operator's secret can pull.
// Each has a positive control (the real scan is made and Indexed; the operator's list excludes; a granted
// user breaks glass; a namespace the operator lists gets its credentials) so that no test passes by accident.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ImageScanController } from "../../src/controller/imagescan.js";
import { parseReference } from "../../src/image/reference.js";
import { Indexer } from "../../src/indexer/indexer.js";
import { EventRecorder } from "../../src/kube/events.js";
import { defaultScanners } from "../../src/scanners/index.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { validatingConfiguration } from "../../src/webhook/register.js";
import { AdmissionWebhook } from "../../src/webhook/server.js";
import { ClientCa } from "../../src/webhook/client-ca.js";
import { issueCert, makeCA } from "../env/certs.js";
import { crdsEstablished, describeWith, scratchDatabases, service, tool, until as untilShared } from "../env/index.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../env/images.js";
import { freePort } from "../env/process.js";
import { SecretCache, workloadKeyring } from "../../src/registry/auth/workload.js";
import { DIGEST_LABEL, GROUP, type ImageScan, MANAGED_BY, MANAGED_BY_LABEL, scanName, VERSION } from "../../src/kube/api/v1alpha1/index.js";

// The store the cluster would use: one PostgreSQL database per file, dropped at the end.
const databases = scratchDatabases();
afterAll(() => databases.dropAll());

const run = promisify(execFile);
const TENANT = "ht-tenant";
const OP = "ht-op"; // Portcullis's own namespace: the operator's pull secret lives here
const A = "ht-a"; // the tenant's namespace, with a pull secret of its own
const NOCRED = "ht-nocred"; // the tenant's namespace without any pull secret
const SHARED = "ht-shared"; // listed by the operator: its scans may use the operator's credentials
const GLASS = "ht-glass"; // a policy here allows break-glass
const EXCLUDED = "ht-excluded"; // excluded by the operator's list
const OPTOUT = "ht-optout"; // created by the tenant, labelled portcullis.dev/ignore=true
const CONFIG = "portcullis-hostile-tenant";
const label = { key: "portcullis.dev/test-webhook", value: "hostile" };

describeWith(["kube", "registryBasic", "postgres"], "a hostile tenant cannot talk past the webhook", () => {
  const dir = mkdtempSync(join(tmpdir(), "ht-"));
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  let rbac: k8s.RbacAuthorizationV1Api;
  let webhook: AdmissionWebhook;
  let events: EventRecorder;
  let server: Server;
  let controller: ImageScanController;
  let store: Store;
  const reg = () => service("registryBasic");
  const image = (tag: string) => `${reg().host}/ht/debian:${tag}`;
  const digestOf = (tag: string) => layoutDigest(ociBookworm(), tag);
  const pinned = (tag: string) => `${reg().host}/ht/debian@${digestOf(tag)}`;
  const kubectl = (...args: string[]) => run(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args]);
  const asTenant = (...args: string[]) => kubectl(`--as=${TENANT}`, ...args);
  const fails = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (e) {
      return `${(e as { stderr?: string }).stderr ?? ""}${(e as Error).message}`;
    }
    throw new Error("expected the command to be refused");
  };
  const scans = async (ns: string) => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "imagescans" })) as { items: ImageScan[] }).items;
  const until = <T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 90_000) => untilShared(what, f, timeoutMs, 250);
  const glassEvents = async (ns: string, name: string) => {
    await events.flush();
    return (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })).items.filter((e) => e.reason === "BreakGlass");
  };

  /** kubectl with a document on standard input, as the tenant or the admin. */
  function kubectlStdin(args: string[], input: string, tenant: boolean): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...(tenant ? [`--as=${TENANT}`] : []), ...args], (err, stdout, stderr) => {
        if (err) reject(Object.assign(err, { stderr }));
        else resolve(stdout);
      });
      child.stdin!.end(input);
    });
  }

  beforeAll(async () => {
    for (const tag of ["base", "two", "lang"]) await skopeoPush(`oci:${ociBookworm()}:${tag}`, reg(), `ht/debian:${tag}`);
    await kubectl("apply", "-f", fileURLToPath(new URL("../../crds/", import.meta.url)));
    await crdsEstablished(service("kube").kubeconfig, ["imagescans", "imagepolicies", "clusterimagepolicies"].map((crd) => `${crd}.portcullis.dev`));
    kc = new k8s.KubeConfig();
    kc.loadFromFile(service("kube").kubeconfig);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    core = kc.makeApiClient(k8s.CoreV1Api);
    rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);

    // The tenant's rights: a namespace editor's workload rules, plus the chart's aggregated roles' rules.
    const chart = (await run(tool("helm"), ["template", "portcullis", fileURLToPath(new URL("../../charts/portcullis", import.meta.url)), "--namespace", OP], {
      env: { ...process.env, HELM_CACHE_HOME: join(dir, "hc"), HELM_CONFIG_HOME: join(dir, "hcfg"), HELM_DATA_HOME: join(dir, "hd") }, maxBuffer: 64 << 20,
    })).stdout;
    const roles = (k8s.loadAllYaml(chart) as Array<k8s.V1ClusterRole | null>).filter((d): d is k8s.V1ClusterRole => d?.kind === "ClusterRole");
    const aggregated = roles.filter((r) => r.metadata!.labels?.["rbac.authorization.k8s.io/aggregate-to-view"] === "true" || r.metadata!.labels?.["rbac.authorization.k8s.io/aggregate-to-edit"] === "true");
    expect(aggregated).toHaveLength(2);
    const breakGlassRole = roles.find((r) => r.metadata!.name === "portcullis-break-glass")!;
    const all = ["get", "list", "watch", "create", "update", "patch", "delete"];
    await rbac.createClusterRole({ body: { metadata: { name: "ht-tenant-edit" }, rules: [
      { apiGroups: [""], resources: ["pods", "services", "configmaps", "secrets", "serviceaccounts"], verbs: all },
      { apiGroups: [""], resources: ["events"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["apps"], resources: ["deployments", "replicasets", "statefulsets", "daemonsets"], verbs: all },
      ...aggregated.flatMap((r) => r.rules ?? []),
    ] } });
    await rbac.createClusterRole({ body: { metadata: { name: "ht-break-glass" }, rules: breakGlassRole.rules } });
    // Self-service namespaces (a provisioner or a namespace-as-a-service tool): the tenant may create them.
    await rbac.createClusterRole({ body: { metadata: { name: "ht-namespace-creator" }, rules: [{ apiGroups: [""], resources: ["namespaces"], verbs: ["create"] }] } });
    await rbac.createClusterRoleBinding({ body: { metadata: { name: "ht-namespace-creator" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "ht-namespace-creator" }, subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: TENANT }] } });

    for (const n of [OP, A, NOCRED, SHARED, GLASS, EXCLUDED]) {
      await core.createNamespace({ body: { metadata: { name: n, labels: { [label.key]: label.value } } } });
      if (n !== OP) await bindTenant(n);
    }
    const secret = (ns: string, name: string) => kubectl("-n", ns, "create", "secret", "docker-registry", name, `--docker-server=${reg().host}`, `--docker-username=${reg().username}`, `--docker-password=${reg().password}`);
    await secret(OP, "opcred");
    for (const n of [A, GLASS, EXCLUDED]) {
      await secret(n, "regcred");
      await core.createNamespacedServiceAccount({ namespace: n, body: { metadata: { name: "default" }, imagePullSecrets: [{ name: "regcred" }] } });
    }

    const ca = await makeCA(dir, "webhook");
    const leaf = await issueCert(dir, ca, "webhook", ["IP:127.0.0.1"], "serverAuth");
    // The operator's secret applies to its own namespace and to SHARED only.
    const operatorSecrets = { namespace: OP, names: ["opcred"], namespaces: [SHARED] };
    store = await openStore(await databases.create("webhook_hostile_tenant"));
    controller = new ImageScanController({
      kc, indexer: new Indexer({ store, scanners: defaultScanners() }), registry: { maxAttempts: 1 }, defaultPlatform: { os: "linux", architecture: "amd64" },
      namespaces: [A, NOCRED, SHARED, GLASS, OPTOUT], operatorSecrets,
    });
    await controller.start();
    events = new EventRecorder(kc);
    // As serve passes them: the same exclusions the registration's namespaceSelector has (this API server, 1.20,
    // does not yet label namespaces with kubernetes.io/metadata.name, so the webhook's own list decides here).
    webhook = new AdmissionWebhook({ kc, namespace: OP, excludeNamespaces: ["kube-system", EXCLUDED], timeoutSeconds: 5, registry: { maxAttempts: 1 }, events, operatorSecrets });
    await webhook.start();
    const port = await freePort();
    // With the client CA the API server's certificate proves the reviews real (test/webhook/forged-review.test.ts has both modes).
    server = (await webhook.listen({ host: "127.0.0.1", port, tls: { cert: leaf.certPem, key: leaf.keyPem }, clientCa: new ClientCa({ file: service("kube").webhookClient.caFile }) })) as Server;
    // The operator's registration (its own name, so that no other suite's webhook is replaced).
    const v = validatingConfiguration({
      url: `https://127.0.0.1:${port}`, caBundle: Buffer.from(ca.certPem).toString("base64"), failurePolicy: "Fail", timeoutSeconds: 5,
      excludeNamespaces: ["kube-system", OP, EXCLUDED], onlyLabel: label,
    });
    await kc.makeApiClient(k8s.AdmissionregistrationV1Api).createValidatingWebhookConfiguration({ body: { ...v, metadata: { ...v.metadata, name: CONFIG } } });
  }, 240_000);

  async function bindTenant(ns: string, role = "ht-tenant-edit"): Promise<void> {
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: role }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role }, subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: TENANT }] } });
  }

  afterAll(async () => {
    // Never leave a webhook behind that could refuse other tests' objects.
    if (kc) await kc.makeApiClient(k8s.AdmissionregistrationV1Api).deleteValidatingWebhookConfiguration({ name: CONFIG }).catch(() => undefined);
    server?.close();
    await webhook?.stop();
    await controller?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the tenant may create and delete ImageScans but never write their status (the chart's aggregated rules)", async () => {
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "mine", namespace: NOCRED }, spec: { image: pinned("base") } };
    await kubectlStdin(["create", "-f", "-"], JSON.stringify(body), true);
    const out = await fails(asTenant("-n", NOCRED, "patch", "imagescan", "mine", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { phase: "Indexed", digest: digestOf("lang") } })));
    expect(out).toMatch(/forbidden/i);
    expect(out).toContain("imagescans/status");
    expect((await asTenant("auth", "can-i", "patch", "imagescans.portcullis.dev", "--subresource=status", "-n", NOCRED).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }))).stdout.trim()).toBe("no");
    await asTenant("-n", NOCRED, "delete", "imagescan", "mine");
  });

  it("a decoy scan labelled with another image's digest, Indexed for a harmless image, admits nothing and does not stop the real scan", async () => {
    const decoy: ImageScan = {
      apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan",
      metadata: { name: "decoy", namespace: A, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [DIGEST_LABEL]: digestOf("two").slice(7, 70) } },
      spec: { image: pinned("base"), imagePullSecrets: [{ name: "regcred" }] },
    };
    await kubectlStdin(["create", "-f", "-"], JSON.stringify(decoy), true);
    await until("the decoy Indexed", async () => ((await scans(A)).find((s) => s.metadata!.name === "decoy")?.status?.phase === "Indexed" ? true : undefined));
    const out = await fails(asTenant("-n", A, "run", "target", `--image=${image("two")}`, "--restart=Never"));
    expect(out).toContain("is not scanned yet");
    expect(out).toContain(digestOf("two"));
    // The webhook asked for the real scan despite the decoy; the controller indexes it; then the pod is admitted.
    const real = await until("the real scan of the image", async () => (await scans(A)).find((s) => s.metadata!.name !== "decoy" && s.spec.image === pinned("two")));
    await until("the real scan Indexed", async () => ((await scans(A)).find((s) => s.metadata!.name === real.metadata!.name)?.status?.digest === digestOf("two") ? true : undefined));
    await until("admission", async () => asTenant("-n", A, "run", "target", `--image=${image("two")}`, "--restart=Never").then(() => true, () => undefined), 15_000);
  });

  it("a squatted scan name (the name Portcullis would give, pre-created for another image) does not block the real scan", async () => {
    const name = scanName(parseReference(image("lang")), digestOf("lang"));
    const squat: ImageScan = {
      apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan",
      metadata: { name, namespace: A, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [DIGEST_LABEL]: digestOf("lang").slice(7, 70) } },
      spec: { image: pinned("base"), imagePullSecrets: [{ name: "regcred" }] },
    };
    await kubectlStdin(["create", "-f", "-"], JSON.stringify(squat), true);
    await fails(asTenant("-n", A, "run", "squatted", `--image=${image("lang")}`, "--restart=Never"));
    const real = await until("a scan of the image under another name", async () => (await scans(A)).find((s) => s.spec.image === pinned("lang")));
    expect(real.metadata!.name).not.toBe(name);
    expect(real.metadata!.name!.startsWith(`${name}-`)).toBe(true);
    await until("admission once it is Indexed", async () => asTenant("-n", A, "run", "squatted", `--image=${image("lang")}`, "--restart=Never").then(() => true, () => undefined));
    // The squatter's scan stayed what it was: a scan of the other image.
    expect((await scans(A)).find((s) => s.metadata!.name === name)!.status?.digest).not.toBe(digestOf("lang"));
  });

  it("a namespace the tenant creates labelled portcullis.dev/ignore=true is judged all the same; only the operator's list excludes", async () => {
    await kubectlStdin(["create", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: OPTOUT, labels: { "portcullis.dev/ignore": "true", [label.key]: label.value } } }), true);
    await bindTenant(OPTOUT);
    const out = await fails(asTenant("-n", OPTOUT, "run", "escape", `--image=${pinned("base")}`, "--restart=Never"));
    expect(out).toContain("denied the request");
    expect(out).toContain("is not scanned yet");
    // The operator's exclusion list is honoured (the same unscanned image, no scan anywhere in that namespace).
    await asTenant("-n", EXCLUDED, "run", "excluded", `--image=${pinned("base")}`, "--restart=Never");
  });

  it("break-glass: off without a policy that allows it, refused to a user not granted the verb, admitted once it is granted", async () => {
    const never = `${reg().host}/ht/debian@sha256:${"e".repeat(64)}`;
    const glass = ["--annotations=portcullis.dev/break-glass=INC-1: hotfix", "--restart=Never"];
    // No policy: the built-in default has break-glass off.
    expect(await fails(asTenant("-n", NOCRED, "run", "glass-off", `--image=${never}`, ...glass))).toContain("break-glass is disabled for it");
    await kubectlStdin(["apply", "-f", "-"], JSON.stringify({ apiVersion: "portcullis.dev/v1alpha1", kind: "ImagePolicy", metadata: { name: "glass", namespace: GLASS }, spec: { breakGlass: { allowed: true } } }), false);
    const refused = await until("the policy in the webhook's cache", async () => {
      const out = await fails(asTenant("-n", GLASS, "run", "glass", `--image=${never}`, ...glass));
      return out.includes("break-glass needs permission") ? out : undefined;
    }, 15_000);
    expect(refused).toContain(`user "${TENANT}" may not break-glass imagepolicies.portcullis.dev in namespace ${GLASS}`);
    expect(await glassEvents(GLASS, "glass")).toEqual([]);
    // Granted the chart's break-glass role in that namespace: admitted, and recorded with the user.
    await bindTenant(GLASS, "ht-break-glass");
    await until("the grant (SubjectAccessReview answers are kept 10 s)", async () => asTenant("-n", GLASS, "run", "glass", `--image=${never}`, ...glass).then(() => true, () => undefined), 30_000);
    const recorded = await until("the BreakGlass Event", async () => ((await glassEvents(GLASS, "glass")).length ? glassEvents(GLASS, "glass") : undefined), 10_000);
    expect(recorded[0]!.message).toContain(TENANT);
    expect(recorded[0]!.message).toContain("INC-1: hotfix");
  });

  it("a tenant's scan of an image only the operator's secret can pull fails, and admission reveals no digest; a namespace the operator lists gets the secret", async () => {
    // A scan the tenant creates: the registry refuses anonymous pulls, and the operator's secret is not lent to it.
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: "ImageScan", metadata: { name: "peek", namespace: NOCRED }, spec: { image: image("base") } };
    await kubectlStdin(["create", "-f", "-"], JSON.stringify(body), true);
    const failed = await until("the tenant's scan to fail", async () => (await scans(NOCRED)).find((s) => s.metadata!.name === "peek" && s.status?.phase === "Failed"));
    expect(failed.status!.conditions!.find((c) => c.type === "Resolved")).toMatchObject({ status: "False", reason: "AuthFailed" });
    expect(JSON.stringify(failed.status)).not.toContain(digestOf("base").slice(7));
    // Admission in that namespace cannot resolve the tag either: the denial names no digest.
    const out = await fails(asTenant("-n", NOCRED, "run", "peek", `--image=${image("base")}`, "--restart=Never"));
    expect(out).toContain("could not be resolved to a digest");
    expect(out).not.toContain(digestOf("base").slice(7));
    // The control: the same scan in the namespace the operator lists is resolved and indexed with its secret.
    await kubectlStdin(["create", "-f", "-"], JSON.stringify({ ...body, metadata: { name: "shared", namespace: SHARED } }), false);
    const indexed = await until("the listed namespace's scan Indexed", async () => (await scans(SHARED)).find((s) => s.metadata!.name === "shared" && s.status?.phase === "Indexed"));
    expect(indexed.status!.digest).toBe(digestOf("base"));
  });

  it("operator credentials by registry: every namespace gets them for a listed registry, none for another", async () => {
    const cache = new SecretCache(core);
    const op = { namespace: OP, names: ["opcred"], registries: [reg().host] };
    const listed = await workloadKeyring(cache, NOCRED, [], { operator: op });
    expect((await listed.keyring.lookup(`${reg().host}/ht/debian`)).map((c) => c.username)).toEqual([reg().username]);
    expect(await listed.keyring.lookup("other.example.com/ht/debian")).toEqual([]);
    const unlisted = await workloadKeyring(cache, NOCRED, [], { operator: { ...op, registries: ["other.example.com"] } });
    expect(await unlisted.keyring.lookup(`${reg().host}/ht/debian`)).toEqual([]);
    const own = await workloadKeyring(cache, OP, [], { operator: { ...op, registries: [] } });
    expect((await own.keyring.lookup(`${reg().host}/ht/debian`)).map((c) => c.username)).toEqual([reg().username]);
  });
});
