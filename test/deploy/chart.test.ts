// The Helm chart (charts/portcullis) and the kustomize manifests (deploy/): lint, render, schema, refusals,
// server-side dry runs, install/uninstall against the test API server, and the RBAC the code needs.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeWith, service, tool } from "../env/index.js";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const chart = join(root, "charts/portcullis");
const work = mkdtempSync(join(tmpdir(), "portcullis-chart-"));
// helm writes its cache and config under HOME otherwise.
const helmEnv = { ...process.env, HELM_CACHE_HOME: join(work, "cache"), HELM_CONFIG_HOME: join(work, "config"), HELM_DATA_HOME: join(work, "data") };

async function helm(...args: string[]): Promise<string> {
  const kube = (() => {
    try {
      return ["--kubeconfig", service("kube").kubeconfig];
    } catch {
      return [];
    }
  })();
  const needsCluster = ["install", "uninstall", "upgrade", "status"].includes(args[0]!);
  return (await exec(tool("helm"), [...args, ...(needsCluster ? kube : [])], { env: helmEnv, maxBuffer: 64 << 20 })).stdout;
}

/** `helm template` with --set pairs; the documents as objects. */
async function render(sets: string[] = [], extra: string[] = []): Promise<{ text: string; docs: k8s.KubernetesObject[] }> {
  const text = await helm("template", "portcullis", chart, "--namespace", "portcullis-system", ...sets.flatMap((s) => ["--set", s]), ...extra);
  return { text, docs: (k8s.loadAllYaml(text) as Array<k8s.KubernetesObject | null>).filter((d): d is k8s.KubernetesObject => !!d) };
}

const find = (docs: k8s.KubernetesObject[], kind: string, name?: string) => docs.find((d) => d.kind === kind && (!name || d.metadata?.name === name));
const BUNDLED = ["database.existingSecret=", "postgresql.bundled.enabled=true"];

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("Helm chart: lint and render", () => {
  it("passes helm lint, with defaults and with every option on", async () => {
    expect(await helm("lint", chart)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    const all = ["--set", "database.existingSecret=", "--set", "postgresql.bundled.enabled=true", "--set", "tls.mode=certManager", "--set", "serviceMonitor.enabled=true", "--set", "webhook.pinDigests=true"];
    expect(await helm("lint", chart, ...all)).toMatch(/0 chart\(s\) failed/);
  });

  it("ships the CRDs of crds/ unchanged (chart and kustomize base)", () => {
    const names = readdirSync(join(root, "crds")).filter((f) => f.endsWith(".yaml")).sort();
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(readdirSync(join(chart, "crds")).sort()).toEqual(names);
    expect(readdirSync(join(root, "deploy/base/crds")).sort()).toEqual(names);
    for (const n of names) {
      const want = readFileSync(join(root, "crds", n), "utf8");
      expect(readFileSync(join(chart, "crds", n), "utf8"), `charts/portcullis/crds/${n}`).toBe(want);
      expect(readFileSync(join(root, "deploy/base/crds", n), "utf8"), `deploy/base/crds/${n}`).toBe(want);
    }
  });

  it("renders the defaults: 2 replicas, the database Secret, a restricted pod, the webhook, PDB and NetworkPolicy", async () => {
    const { docs } = await render();
    const dep = find(docs, "Deployment", "portcullis") as k8s.V1Deployment;
    expect(dep.spec!.replicas).toBe(2);
    const pod = dep.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.command).toEqual(["node", "/app/dist/cli/bin.js", "serve"]);
    expect(c.args).toEqual(expect.arrayContaining(["--leader-elect=true", "--webhook-service=portcullis", "--tls-mode=builtin", "--failure-policy=Fail"]));
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e.valueFrom]));
    expect(env.POD_NAMESPACE?.fieldRef?.fieldPath).toBe("metadata.namespace");
    expect(env.POD_NAME?.fieldRef?.fieldPath).toBe("metadata.name");
    expect(env.PORTCULLIS_DATABASE_URL?.secretKeyRef).toEqual({ name: "portcullis-database", key: "url" });
    expect(c.livenessProbe!.httpGet).toMatchObject({ path: "/healthz", port: "http" });
    expect(c.readinessProbe!.httpGet).toMatchObject({ path: "/readyz", port: "http" });
    expect(c.ports!.map((p) => p.containerPort).sort()).toEqual([8081, 8443, 8444]);
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true, runAsUser: 10001, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.volumeMounts).toContainEqual({ name: "tmp", mountPath: "/tmp" });
    expect(pod.topologySpreadConstraints!.map((t) => t.topologyKey)).toEqual(["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    expect(pod.priorityClassName).toBeUndefined();
    const svc = find(docs, "Service", "portcullis") as k8s.V1Service;
    expect(svc.spec!.ports!.find((p) => p.port === 443)!.targetPort).toBe("webhook");
    expect((find(docs, "PodDisruptionBudget") as k8s.V1PodDisruptionBudget).spec!.minAvailable).toBe(1);
    const np = find(docs, "NetworkPolicy") as k8s.V1NetworkPolicy;
    expect(np.spec!.ingress!.flatMap((r) => r.ports!.map((p) => p.port)).sort()).toEqual([8081, 8443, 8444]);
    expect(np.spec!.policyTypes).toEqual(["Ingress"]);
    const vwc = find(docs, "ValidatingWebhookConfiguration", "portcullis") as k8s.V1ValidatingWebhookConfiguration;
    expect(vwc.webhooks![0]!.clientConfig.service).toMatchObject({ name: "portcullis", namespace: "portcullis-system", port: 443, path: "/validate" });
    expect(find(docs, "MutatingWebhookConfiguration")).toBeUndefined();
    expect(find(docs, "ServiceMonitor")).toBeUndefined();
    expect(find(docs, "StatefulSet")).toBeUndefined();
  });

  it("templates the webhook configurations exactly as the operator registers them (register.ts)", async () => {
    const { validatingConfiguration, mutatingConfiguration } = await import("../../src/webhook/register.js");
    const { docs } = await render(["webhook.pinDigests=true", "webhook.namespaceLabel=team.example/scan=yes", "webhook.timeoutSeconds=7", "webhook.excludeNamespaces={ci-runners,kube-system}"]);
    const o = {
      service: { namespace: "portcullis-system", name: "portcullis" }, caBundle: "", failurePolicy: "Fail" as const, timeoutSeconds: 7,
      excludeNamespaces: ["kube-system", "kube-public", "kube-node-lease", "portcullis-system", "ci-runners"], onlyLabel: { key: "team.example/scan", value: "yes" }, mutating: true,
    };
    const strip = (w: { clientConfig: { caBundle?: string } }) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: undefined } });
    const v = find(docs, "ValidatingWebhookConfiguration", "portcullis") as k8s.V1ValidatingWebhookConfiguration;
    const m = find(docs, "MutatingWebhookConfiguration", "portcullis-pin-digests") as k8s.V1MutatingWebhookConfiguration;
    expect(JSON.parse(JSON.stringify(v.webhooks!.map(strip)))).toEqual(JSON.parse(JSON.stringify(validatingConfiguration(o).webhooks!.map(strip))));
    expect(JSON.parse(JSON.stringify(m.webhooks!.map(strip)))).toEqual(JSON.parse(JSON.stringify(mutatingConfiguration(o).webhooks!.map(strip))));
    const dep = find(docs, "Deployment") as k8s.V1Deployment;
    expect(dep.spec!.template.spec!.containers[0]!.args).toEqual(expect.arrayContaining(["--pin-digests=true", "--webhook-namespace-label=team.example/scan=yes", "--webhook-timeout=7", "--webhook-exclude-namespaces=ci-runners,kube-system", "--break-glass=false"]));
    // Only the operator's list takes a namespace out: no label a namespace's owner can set does.
    expect(JSON.stringify(v.webhooks![0]!.namespaceSelector)).not.toContain("portcullis.dev/ignore");
    expect(v.webhooks![0]!.namespaceSelector!.matchExpressions).toEqual([{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: o.excludeNamespaces }]);
  });

  it("aggregates read access into `view` and creating and deleting ImageScans into `edit`, never their status; break-glass is a role of its own, bound to nobody", async () => {
    const { docs } = await render();
    const roles = docs.filter((d): d is k8s.V1ClusterRole => d.kind === "ClusterRole");
    const labelled = (l: string) => roles.filter((r) => r.metadata!.labels?.[`rbac.authorization.k8s.io/${l}`] === "true");
    const rules = (rs: k8s.V1ClusterRole[]) => rs.flatMap((r) => r.rules ?? []).map((r) => ({ apiGroups: r.apiGroups, resources: [...r.resources!].sort(), verbs: [...r.verbs].sort() }));
    expect(rules(labelled("aggregate-to-view"))).toEqual([{ apiGroups: ["portcullis.dev"], resources: ["clusterimagepolicies", "imagepolicies", "imagerepositories", "imagescans"], verbs: ["get", "list", "watch"] }]);
    expect(rules(labelled("aggregate-to-edit"))).toEqual([
      { apiGroups: ["portcullis.dev"], resources: ["imagescans"], verbs: ["create", "delete"] },
      { apiGroups: ["portcullis.dev"], resources: ["imagerepositories"], verbs: ["create", "delete", "patch", "update"] },
    ]);
    expect(labelled("aggregate-to-admin")).toEqual([]);
    // Status is the controller's word: only the operator's own role may write it.
    for (const r of roles.filter((x) => x.metadata!.name !== "portcullis")) {
      expect(JSON.stringify(r.rules), r.metadata!.name).not.toMatch(/status|\*/);
    }
    const glass = roles.find((r) => r.metadata!.name === "portcullis-break-glass")!;
    expect(glass.rules).toEqual([{ apiGroups: ["portcullis.dev"], resources: ["imagepolicies"], verbs: ["break-glass"] }]);
    expect(docs.filter((d) => /Binding$/.test(d.kind!)).map((b) => (b as k8s.V1ClusterRoleBinding).roleRef.name)).not.toContain("portcullis-break-glass");
    const off = await render(["rbac.aggregateToDefaultRoles=false", "rbac.breakGlassRole=false"]);
    expect(off.docs.filter((d) => d.kind === "ClusterRole").map((d) => d.metadata!.name)).toEqual(["portcullis"]);
  });

  it("passes the operator's credential scope and the default policy's break-glass as flags", async () => {
    const { docs } = await render(["operator.pullSecrets={corp-registry}", "operator.credentialScope.namespaces={platform}", "operator.credentialScope.registries={mirror.example.com:5000}", "webhook.breakGlass=true"]);
    const args = (find(docs, "Deployment") as k8s.V1Deployment).spec!.template.spec!.containers[0]!.args!;
    expect(args).toEqual(expect.arrayContaining(["--pull-secrets=corp-registry", "--operator-credentials-namespaces=platform", "--operator-credentials-registries=mirror.example.com:5000", "--break-glass=true"]));
    const { loadServeConfig } = await import("../../src/cli/serve-config.js");
    const cfg = loadServeConfig(args.filter((a) => !a.startsWith("--config")), {});
    expect(cfg).toMatchObject({ config: { operatorCredentialsNamespaces: "platform", operatorCredentialsRegistries: "mirror.example.com:5000", breakGlass: "true" } });
    await expect(render(["operator.credentialScope.registries={https://mirror.example.com}"])).rejects.toThrow(/credentialScope\/registries/);
  });

  it("renders the bundled PostgreSQL with a generated password Secret", async () => {
    const { docs } = await render(BUNDLED);
    const sts = find(docs, "StatefulSet", "portcullis-postgresql") as k8s.V1StatefulSet;
    expect(sts.spec!.template.spec!.containers[0]!.image).toBe("postgres:16");
    const secret = find(docs, "Secret", "portcullis-postgresql") as k8s.V1Secret;
    expect(secret.stringData!.password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(secret.stringData!.url).toBe(`postgres://portcullis:${secret.stringData!.password}@portcullis-postgresql.portcullis-system.svc:5432/portcullis`);
    const c = (find(docs, "Deployment") as k8s.V1Deployment).spec!.template.spec!.containers[0]!;
    expect(c.env!.find((e) => e.name === "PORTCULLIS_DATABASE_URL")!.valueFrom!.secretKeyRef).toEqual({ name: "portcullis-postgresql", key: "url" });
  });

  it("renders cert-manager mode: Issuer, Certificate writing portcullis-webhook-tls, inject-ca-from, --tls-mode external", async () => {
    const { docs } = await render(["tls.mode=certManager", "webhook.pinDigests=true"]);
    const cert = find(docs, "Certificate") as { spec: { secretName: string; dnsNames: string[] } } & k8s.KubernetesObject;
    expect(cert.spec.secretName).toBe("portcullis-webhook-tls");
    expect(cert.spec.dnsNames).toContain("portcullis.portcullis-system.svc");
    expect(find(docs, "Issuer")).toBeDefined();
    for (const kind of ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]) {
      expect(find(docs, kind)!.metadata!.annotations!["cert-manager.io/inject-ca-from"]).toBe("portcullis-system/portcullis-webhook");
    }
    expect((find(docs, "Deployment") as k8s.V1Deployment).spec!.template.spec!.containers[0]!.args).toContain("--tls-mode=external");
    // cert-manager writes the Secret: the operator needs no write access to it.
    const role = find(docs, "Role") as k8s.V1Role;
    expect(role.rules!.some((r) => r.resources!.includes("secrets"))).toBe(false);
  });

  it("renders the ServiceMonitor when asked (port http = 8081, /metrics)", async () => {
    const { docs } = await render(["serviceMonitor.enabled=true"]);
    const sm = find(docs, "ServiceMonitor") as { apiVersion: string; spec: { endpoints: Array<{ port: string; path: string }> } } & k8s.KubernetesObject;
    expect(sm.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(sm.spec.endpoints).toEqual([expect.objectContaining({ port: "http", path: "/metrics" })]);
  });

  it("sets priorityClassName and restricts egress when asked", async () => {
    const { docs } = await render(["priorityClassName=system-cluster-critical", "networkPolicy.restrictEgress=true"]);
    expect((find(docs, "Deployment") as k8s.V1Deployment).spec!.template.spec!.priorityClassName).toBe("system-cluster-critical");
    expect((find(docs, "NetworkPolicy") as k8s.V1NetworkPolicy).spec!.policyTypes).toEqual(["Ingress", "Egress"]);
  });

  it("admits the webhook port from webhook.networkPolicy.from and the report API port from reportApi.networkPolicy.from; mounts the client CA; serve accepts the flags", async () => {
    const { loadServeConfig } = await import("../../src/cli/serve-config.js");
    const ingress = (docs: k8s.KubernetesObject[]) => Object.fromEntries((find(docs, "NetworkPolicy") as k8s.V1NetworkPolicy).spec!.ingress!.map((r) => [r.ports![0]!.port, r._from]));
    const argsOf = (docs: k8s.KubernetesObject[]) => (find(docs, "Deployment") as k8s.V1Deployment).spec!.template.spec!.containers[0]!.args!;
    // Defaults: the webhook port from every source (documented: the API server's address is not portable), the
    // report API over TLS from pods of every namespace, probes from anywhere.
    const defaults = await render();
    expect(ingress(defaults.docs)).toEqual({ 8443: undefined, 8444: [{ namespaceSelector: {} }], 8081: undefined });
    const d = loadServeConfig(argsOf(defaults.docs).filter((a) => !a.startsWith("--config")), {});
    if (d === "help") throw new Error("help");
    expect(d.config).toMatchObject({ reportTls: "true", reportAddr: "0.0.0.0:8444", webhookScanRate: 1, webhookScanBurst: 20 });
    expect(d.config.webhookClientCa).toBeUndefined();
    expect((find(defaults.docs, "Service") as k8s.V1Service).spec!.ports!.find((p) => p.name === "report")).toMatchObject({ port: 8444, targetPort: "report" });
    // The control plane's range, the client CA, the report API's clients narrowed.
    const { docs } = await render([
      "webhook.networkPolicy.from[0].ipBlock.cidr=10.0.0.0/28", "webhook.clientCA.secretName=apiserver-ca", "webhook.clientCA.key=client-ca.pem",
      "reportApi.networkPolicy.from[0].namespaceSelector.matchLabels.team=quay", "webhook.scanRate=2",
    ]);
    expect(ingress(docs)).toEqual({ 8443: [{ ipBlock: { cidr: "10.0.0.0/28" } }], 8444: [{ namespaceSelector: { matchLabels: { team: "quay" } } }], 8081: undefined });
    const cfg = loadServeConfig(argsOf(docs).filter((a) => !a.startsWith("--config")), {});
    if (cfg === "help") throw new Error("help");
    expect(cfg.config.webhookClientCa).toBe("/var/run/portcullis/webhook-client-ca/client-ca.pem");
    expect(cfg.config.webhookScanRate).toBe(2);
    const pod = (find(docs, "Deployment") as k8s.V1Deployment).spec!.template.spec!;
    expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: "webhook-client-ca", mountPath: "/var/run/portcullis/webhook-client-ca", readOnly: true });
    expect(pod.volumes).toContainEqual({ name: "webhook-client-ca", secret: { secretName: "apiserver-ca", items: [{ key: "client-ca.pem", path: "client-ca.pem" }] } });
    // Without TLS the API shares the plain port: no 8444 anywhere.
    const plain = await render(["reportApi.tls=false"]);
    expect(ingress(plain.docs)).toEqual({ 8443: undefined, 8081: undefined });
    expect(argsOf(plain.docs)).toContain("--report-tls=false");
    expect((find(plain.docs, "Service") as k8s.V1Service).spec!.ports!.map((p) => p.port)).toEqual([443, 8081]);
    // A peer the schema does not know is refused before anything renders.
    await expect(render(["webhook.networkPolicy.from[0].cidr=10.0.0.0/8"])).rejects.toThrow(/additional properties 'cidr' not allowed/);
  });

  it("renders the config values as serve's configuration file: a ConfigMap mounted read-only, passed with --config", async () => {
    const { loadServeConfig } = await import("../../src/cli/serve-config.js");
    const configOf = (docs: k8s.KubernetesObject[]) => {
      const text = (find(docs, "ConfigMap", "portcullis-config") as k8s.V1ConfigMap).data!["config.yaml"]!;
      const r = loadServeConfig(["--config", "/etc/portcullis/config.yaml"], {}, () => text);
      if (r === "help") throw new Error("help");
      return r.config;
    };
    const { docs } = await render();
    expect(configOf(docs)).toMatchObject({ logLevel: "info", watchNamespaces: "" });
    const dep = find(docs, "Deployment") as k8s.V1Deployment;
    const c = dep.spec!.template.spec!.containers[0]!;
    expect(c.args).toContain("--config=/etc/portcullis/config.yaml");
    expect(c.volumeMounts).toContainEqual({ name: "config", mountPath: "/etc/portcullis", readOnly: true });
    expect(dep.spec!.template.spec!.volumes).toContainEqual({ name: "config", configMap: { name: "portcullis-config" } });
    const checksum = dep.spec!.template.metadata!.annotations!["checksum/config"];
    expect(checksum).toMatch(/^[0-9a-f]{64}$/);
    const changed = await render(["config.logLevel=debug", "config.watchNamespaces={team-a,team-b}", "podAnnotations.team=a"]);
    expect(configOf(changed.docs)).toMatchObject({ logLevel: "debug", watchNamespaces: "team-a,team-b" });
    const annotations = (find(changed.docs, "Deployment") as k8s.V1Deployment).spec!.template.metadata!.annotations!;
    expect(annotations.team).toBe("a");
    expect(annotations["checksum/config"]).not.toBe(checksum);
    await expect(render(["config.concurrency=3"])).rejects.toThrow(/\/config.*additional properties 'concurrency' not allowed/s);
    await expect(render(["config.logLevel=verbose"])).rejects.toThrow(/config\/logLevel/);
  });

  it("refuses a typo in values with the schema's error", async () => {
    await expect(render(["webhok.enabled=false"])).rejects.toThrow(/additional properties 'webhok' not allowed/);
    await expect(render(["resources.requests.cpuu=1"])).rejects.toThrow(/\/resources\/requests.*additional properties 'cpuu' not allowed/s);
    await expect(render(["webhook.failurePolicy=fail"])).rejects.toThrow(/failurePolicy/);
    await expect(render(["tls.mode=cert-manager"])).rejects.toThrow(/tls\/mode/);
  });

  it("refuses more than one replica without a shared database, and accepts one replica with the embedded store", async () => {
    await expect(render(["database.existingSecret="])).rejects.toThrow(/replicas is 2 but no database is configured/);
    await expect(render(["database.existingSecret=", "replicas=3"])).rejects.toThrow(/replicas is 3 but no database is configured/);
    await expect(render(["postgresql.bundled.enabled=true"])).rejects.toThrow(/either database.existingSecret or postgresql.bundled.enabled/);
    const { docs } = await render(["database.existingSecret=", "replicas=1"]);
    const c = (find(docs, "Deployment") as k8s.V1Deployment).spec!.template.spec!.containers[0]!;
    expect(c.args).toContain("--store-path=/var/lib/portcullis/store");
    expect(c.env!.some((e) => e.name === "PORTCULLIS_DATABASE_URL")).toBe(false);
    expect(find(docs, "PodDisruptionBudget")).toBeUndefined();
  });

  it("renders mode: split as a Deployment, ServiceAccount and RBAC per role, the Service in front of the webhook pods", async () => {
    const { docs } = await render(["mode=split"]);
    const deployments = docs.filter((d) => d.kind === "Deployment") as k8s.V1Deployment[];
    expect(deployments.map((d) => d.metadata!.name)).toEqual(["portcullis-webhook", "portcullis-controller", "portcullis-indexer"]);
    for (const d of deployments) {
      const role = d.metadata!.name!.slice("portcullis-".length);
      const pod = d.spec!.template.spec!;
      expect(d.spec!.replicas).toBe(2);
      expect(pod.serviceAccountName).toBe(`portcullis-${role}`);
      expect(pod.containers[0]!.args).toContain(`--roles=${role}`);
      expect(d.spec!.selector.matchLabels!["app.kubernetes.io/component"]).toBe(role);
      expect((find(docs, "PodDisruptionBudget", `portcullis-${role}`) as k8s.V1PodDisruptionBudget).spec!.selector!.matchLabels!["app.kubernetes.io/component"]).toBe(role);
      expect(find(docs, "ServiceAccount", `portcullis-${role}`)).toBeDefined();
    }
    expect(find(docs, "Deployment", "portcullis")).toBeUndefined();
    expect(find(docs, "ServiceAccount", "portcullis")).toBeUndefined();
    expect(find(docs, "HorizontalPodAutoscaler")).toBeUndefined();
    // Per-role resources; the indexer's worker limits reach its pods.
    const sized = await render(["mode=split", "roles.indexer.resources.limits.memory=4Gi", "operator.indexWorkers=3", "operator.workerMemoryMi=1200"]);
    const indexer = find(sized.docs, "Deployment", "portcullis-indexer") as k8s.V1Deployment;
    expect(indexer.spec!.template.spec!.containers[0]!.resources!.limits).toEqual({ memory: "4Gi" });
    expect(indexer.spec!.template.spec!.containers[0]!.args).toEqual(expect.arrayContaining(["--index-workers=3", "--worker-memory=1200"]));
    expect((find(sized.docs, "Deployment", "portcullis-webhook") as k8s.V1Deployment).spec!.template.spec!.containers[0]!.resources!.limits).toEqual({ memory: "2560Mi" });
    expect((find(docs, "Service", "portcullis") as k8s.V1Service).spec!.selector!["app.kubernetes.io/component"]).toBe("webhook");
    const np = find(docs, "NetworkPolicy") as k8s.V1NetworkPolicy;
    expect(np.spec!.podSelector!.matchExpressions).toEqual([{ key: "app.kubernetes.io/component", operator: "In", values: ["webhook", "controller", "indexer"] }]);
    // The Leases: one per leader-elected role, none for the webhook.
    const leases = docs.filter((d) => d.kind === "Role").flatMap((r) => (r as k8s.V1Role).rules!.flatMap((x) => x.resourceNames ?? []).filter((n) => n.startsWith("portcullis-") && n !== "portcullis-webhook-tls"));
    expect(leases.sort()).toEqual(["portcullis-controller", "portcullis-indexer"]);
    // The combined layout is unchanged, and split needs a database the three Deployments share.
    const combined = await render();
    expect(combined.docs.filter((d) => d.kind === "Deployment").map((d) => d.metadata!.name)).toEqual(["portcullis"]);
    await expect(render(["mode=split", "database.existingSecret="])).rejects.toThrow(/mode is split but no database is configured/);
    await expect(render(["mode=splitt"])).rejects.toThrow(/mode/);
  });

  it("keeps deploy/base/portcullis.yaml equal to the chart's defaults and deploy/split/ to mode: split (deploy/generate.sh)", async () => {
    const { text } = await render();
    expect(readFileSync(join(root, "deploy/base/portcullis.yaml"), "utf8")).toBe(text);
    expect(readFileSync(join(root, "deploy/split/portcullis.yaml"), "utf8")).toBe((await render(["mode=split"])).text);
    for (const n of readdirSync(join(root, "crds"))) expect(readFileSync(join(root, "deploy/split/crds", n), "utf8"), `deploy/split/crds/${n}`).toBe(readFileSync(join(root, "crds", n), "utf8"));
    expect(readFileSync(join(root, "deploy/split/namespace.yaml"), "utf8")).toBe(readFileSync(join(root, "deploy/base/namespace.yaml"), "utf8"));
  });
});

// Every call the operator makes (src/controller, src/kube, src/webhook, src/cli/serve.ts): [verb, resource, namespace?].
// "*ns*" is the release namespace, "team" any other namespace, undefined cluster scope / all namespaces.
const NEEDED: Array<[string, string, string?]> = [
  ["list", "pods"], ["watch", "pods"], // pods.ts informer
  ["get", "serviceaccounts", "team"], ["get", "secrets", "team"], // credentials.ts
  ["list", "namespaces"], ["watch", "namespaces"], // webhook/server.ts informer
  ["create", "events", "team"], ["patch", "events", "team"], // kube/events.ts
  ...["get", "list", "watch", "create", "patch", "delete"].map((v): [string, string, string] => [v, "imagescans.portcullis.dev", "team"]), // ensure.ts, pods.ts, imagescan.ts
  ["list", "imagescans.portcullis.dev"], ["watch", "imagescans.portcullis.dev"],
  ["patch", "imagescans.portcullis.dev/status", "team"], // imagescan.ts patchStatus
  ["list", "imagerepositories.portcullis.dev"], ["watch", "imagerepositories.portcullis.dev"], ["patch", "imagerepositories.portcullis.dev/status", "team"], // repositories.ts
  ["list", "imagepolicies.portcullis.dev"], ["watch", "imagepolicies.portcullis.dev"],
  ["list", "clusterimagepolicies.portcullis.dev"], ["watch", "clusterimagepolicies.portcullis.dev"],
  ["patch", "imagepolicies.portcullis.dev/status", "team"], ["patch", "clusterimagepolicies.portcullis.dev/status"], // policies.ts
  ...["get", "update", "patch"].map((v): [string, string] => [v, "validatingwebhookconfigurations/portcullis"]), // register.ts, tls/rotator.ts
  ...["get", "update", "patch", "delete"].map((v): [string, string] => [v, "mutatingwebhookconfigurations/portcullis-pin-digests"]),
  ["get", "leases.coordination.k8s.io/portcullis-controller", "*ns*"], ["update", "leases.coordination.k8s.io/portcullis-controller", "*ns*"], ["create", "leases.coordination.k8s.io", "*ns*"], // kube/leader.ts
  ["create", "tokenreviews.authentication.k8s.io"], ["create", "subjectaccessreviews.authorization.k8s.io"], // api/report.ts
  ["get", "secrets/portcullis-webhook-tls", "*ns*"], ["update", "secrets/portcullis-webhook-tls", "*ns*"], ["create", "secrets", "*ns*"], // webhook/tls/ (builtin)
];
// The same calls divided by the role whose runnables make them (mode: split; src/cli/serve.ts). Every process
// serves the report API (its ImageScan cache, TokenReviews, SubjectAccessReviews), records Events and reads
// pull secrets.
const EVERY_ROLE: Array<[string, string, string?]> = [
  ["get", "secrets", "team"], ["get", "secrets/portcullis-webhook-tls", "*ns*"], ["create", "events", "team"], ["patch", "events", "team"],
  ["list", "imagescans.portcullis.dev"], ["watch", "imagescans.portcullis.dev"], ["list", "imagescans.portcullis.dev", "team"], ["watch", "imagescans.portcullis.dev", "team"],
  ["create", "tokenreviews.authentication.k8s.io"], ["create", "subjectaccessreviews.authorization.k8s.io"],
];
const NEEDED_BY_ROLE: Record<"webhook" | "controller" | "indexer", Array<[string, string, string?]>> = {
  webhook: [
    ...EVERY_ROLE, ["get", "serviceaccounts", "team"], ["list", "namespaces"], ["watch", "namespaces"],
    ["list", "imagepolicies.portcullis.dev"], ["watch", "imagepolicies.portcullis.dev"], ["list", "clusterimagepolicies.portcullis.dev"], ["watch", "clusterimagepolicies.portcullis.dev"],
    ...["get", "create", "patch"].map((v): [string, string, string] => [v, "imagescans.portcullis.dev", "team"]),
  ],
  controller: NEEDED.filter(([, r]) => !/^(namespaces|imagescans\.portcullis\.dev\/status)$/.test(r)),
  indexer: [
    ...EVERY_ROLE, ["patch", "imagescans.portcullis.dev/status", "team"],
    ["get", "leases.coordination.k8s.io/portcullis-indexer", "*ns*"], ["update", "leases.coordination.k8s.io/portcullis-indexer", "*ns*"], ["create", "leases.coordination.k8s.io", "*ns*"],
  ],
};

// What it must not be able to do.
const FORBIDDEN: Array<[string, string, string?]> = [
  ["list", "secrets", "team"], ["watch", "secrets"], ["update", "secrets/other", "*ns*"], ["create", "secrets", "team"],
  ["delete", "pods", "team"], ["create", "pods", "team"], ["update", "imagescans.portcullis.dev", "team"],
  ["patch", "imagepolicies.portcullis.dev", "team"], ["update", "validatingwebhookconfigurations/someone-else"],
  ["patch", "imagerepositories.portcullis.dev", "team"], ["create", "imagerepositories.portcullis.dev", "team"],
  ["create", "validatingwebhookconfigurations"], ["delete", "validatingwebhookconfigurations/portcullis"],
  ["update", "leases.coordination.k8s.io/other", "*ns*"], ["create", "leases.coordination.k8s.io", "team"],
  ["list", "serviceaccounts", "team"], ["create", "serviceaccounts/token", "team"],
];

describeWith(["kube"], "Helm chart and kustomize against the API server", () => {
  const NS = "portcullis-chart-test";
  const DRY = "portcullis-system";
  const kubectl = (...args: string[]) => exec(tool("kubectl"), ["--kubeconfig", service("kube").kubeconfig, ...args], { maxBuffer: 64 << 20 });
  const ensureNamespace = (ns: string) => kubectl("create", "namespace", ns).catch((e: { stderr?: string }) => {
    if (!/AlreadyExists/.test(e.stderr ?? "")) throw e;
  });
  const dryRun = async (text: string) => {
    const f = join(work, `render-${Date.now()}.yaml`);
    writeFileSync(f, text);
    return (await kubectl("apply", "--dry-run=server", "-f", f)).stdout;
  };
  const webhookConfigs = async () => (await kubectl("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name")).stdout;

  beforeAll(async () => {
    await ensureNamespace(DRY);
    await ensureNamespace(NS);
  });

  afterAll(async () => {
    // Never leave a webhook configuration behind: it would send other tests' pods to a Service that does not exist.
    await helm("uninstall", "portcullis", "--namespace", NS, "--wait").catch(() => undefined);
    await kubectl("delete", "namespace", NS, "--wait=false").catch(() => undefined);
  });

  it("accepts the rendered defaults and the bundled-database variant (kubectl apply --dry-run=server)", async () => {
    const out = await dryRun((await render([], ["--include-crds"])).text);
    expect(out).toMatch(/deployment.apps\/portcullis created \(server dry run\)/);
    expect(out).toMatch(/validatingwebhookconfiguration.admissionregistration.k8s.io\/portcullis created \(server dry run\)/);
    expect(out).toMatch(/clusterrole.rbac.authorization.k8s.io\/portcullis created \(server dry run\)/);
    const bundled = await dryRun((await render([
      ...BUNDLED, "webhook.pinDigests=true", "priorityClassName=system-cluster-critical", "networkPolicy.restrictEgress=true",
      "webhook.clientCA.secretName=apiserver-ca", "webhook.networkPolicy.from[0].ipBlock.cidr=10.0.0.0/28", "webhook.networkPolicy.from[1].namespaceSelector.matchLabels.x=y",
    ])).text);
    // The API server's own validation of the peers the values give.
    expect(bundled).toMatch(/networkpolicy.networking.k8s.io\/portcullis created \(server dry run\)/);
    expect(bundled).toMatch(/statefulset.apps\/portcullis-postgresql created \(server dry run\)/);
    expect(bundled).toMatch(/mutatingwebhookconfiguration.admissionregistration.k8s.io\/portcullis-pin-digests created \(server dry run\)/);
    // Split mode with the indexer's autoscaler on the job queue.
    const split = await dryRun((await render(["mode=split", "roles.indexer.autoscaling.enabled=true", "roles.indexer.autoscaling.maxReplicas=6"])).text);
    expect(split).toMatch(/horizontalpodautoscaler.autoscaling\/portcullis-indexer created \(server dry run\)/);
    expect(split).toMatch(/deployment.apps\/portcullis-indexer created \(server dry run\)/);
  });

  it("accepts the kustomize overlays (kubectl apply -k --dry-run=server)", async () => {
    for (const overlay of ["base", "overlays/production", "overlays/evaluation", "split"]) {
      const out = (await kubectl("apply", "-k", join(root, "deploy", overlay), "--dry-run=server")).stdout;
      for (const name of overlay === "split" ? ["portcullis-webhook", "portcullis-controller", "portcullis-indexer"] : ["portcullis"]) {
        expect(out, overlay).toMatch(new RegExp(`deployment.apps/${name} (created|configured|unchanged) \\(server dry run\\)`));
      }
      if (overlay.endsWith("evaluation")) expect(out).toMatch(/statefulset.apps\/portcullis-postgresql (created|configured|unchanged) \(server dry run\)/);
    }
  });

  it("installs, grants exactly the RBAC the code needs, and uninstalls without leaving a webhook configuration", async () => {
    // A previous run killed mid-test may have left the configuration; helm would refuse to adopt it.
    await kubectl("delete", "validatingwebhookconfiguration", "portcullis", "--ignore-not-found").catch(() => undefined);
    // The namespaceSelector requires a label no namespace has, so no admission request reaches the missing pods.
    await helm("install", "portcullis", chart, "--namespace", NS, "--set", "webhook.namespaceLabel=portcullis.dev/chart-test=never");
    expect(await helm("status", "portcullis", "--namespace", NS)).toMatch(/STATUS: deployed/);
    const vwc = JSON.parse((await kubectl("get", "validatingwebhookconfiguration", "portcullis", "-o", "json")).stdout) as k8s.V1ValidatingWebhookConfiguration;
    expect(vwc.webhooks![0]!.namespaceSelector!.matchLabels).toEqual({ "portcullis.dev/chart-test": "never" });
    expect(vwc.webhooks![0]!.clientConfig.service).toMatchObject({ namespace: NS, name: "portcullis" });

    // RBAC as the authorizer evaluates it for the chart's ServiceAccount (impersonation: SubjectAccessReview), a
    // quick check of the list; test/deploy/rbac.test.ts runs serve with this ServiceAccount's token through
    // every path and shows from the audit log that each rule is needed.
    const can = async ([verb, resource, ns]: [string, string, string?], sa = "portcullis") => {
      const scope = ns === undefined ? ["--all-namespaces"] : ["--namespace", ns === "*ns*" ? NS : ns];
      const status = resource.endsWith("/status");
      const args = ["auth", "can-i", verb, status ? resource.slice(0, -"/status".length) : resource, ...(status ? ["--subresource=status"] : []), ...scope, `--as=system:serviceaccount:${NS}:${sa}`];
      return kubectl(...args).then((r) => r.stdout.trim(), (e: { stdout?: string }) => (e.stdout ?? "").trim());
    };
    const denied: string[] = [];
    for (const n of NEEDED) if ((await can(n)) !== "yes") denied.push(n.join(" "));
    expect(denied, "needed but not granted").toEqual([]);
    const allowed: string[] = [];
    for (const f of FORBIDDEN) if ((await can(f)) !== "no") allowed.push(f.join(" "));
    expect(allowed, "granted but not needed").toEqual([]);

    await helm("uninstall", "portcullis", "--namespace", NS, "--wait");
    expect(await webhookConfigs()).not.toMatch(/\/portcullis(-pin-digests)?$/m);

    // mode: split: each role's ServiceAccount may do its role's calls and none of the others' (test/controller/
    // roles.test.ts runs the three processes with these rules through the whole flow).
    await helm("install", "portcullis", chart, "--namespace", NS, "--set", "mode=split", "--set", "webhook.namespaceLabel=portcullis.dev/chart-test=never");
    const canAs = (sa: string, n: [string, string, string?]) => can(n, sa);
    const wrong: string[] = [];
    for (const [role, needed] of Object.entries(NEEDED_BY_ROLE)) {
      for (const n of needed) if ((await canAs(`portcullis-${role}`, n)) !== "yes") wrong.push(`${role} needs but lacks: ${n.join(" ")}`);
      const others = NEEDED.filter((n) => !needed.some((m) => m.join(" ") === n.join(" ")));
      for (const n of [...others, ...FORBIDDEN]) if ((await canAs(`portcullis-${role}`, n)) !== "no") wrong.push(`${role} may but needs not: ${n.join(" ")}`);
    }
    expect(wrong).toEqual([]);
    await helm("uninstall", "portcullis", "--namespace", NS, "--wait");
    expect(await webhookConfigs()).not.toMatch(/\/portcullis(-pin-digests)?$/m);
    expect((await kubectl("get", "clusterrole,clusterrolebinding", "-o", "name")).stdout).not.toMatch(/\/portcullis$/m);
  });
});
