// The real services an integration test run needs, each started on random free loopback ports.
import { execFile } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Agent, request } from "undici";
import { findTool } from "../../src/cli/tools.js";
import { issueCert, makeCA, type CertificateAuthority } from "./certs.js";
import { freePort, waitUntil, type ProcessSupervisor } from "./process.js";
import { TokenServer } from "./token-server.js";

const run = promisify(execFile);

export class MissingServiceError extends Error {
  override name = "MissingServiceError";
}

function requireTool(name: string, hint = "run `npm run env:setup` as root"): string {
  const p = findTool(name);
  if (!p) throw new MissingServiceError(`${name} not found; ${hint}`);
  return p;
}

// ------------------------------------------------------------------ PostgreSQL

export interface PostgresService {
  /** A fresh, empty database for this run. */
  url: string;
  database: string;
  /** Where it came from: a server that was already running, or one this run started. */
  origin: "existing" | "started";
}

async function canConnect(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * A PostgreSQL database for this run: on the server PORTCULLIS_TEST_POSTGRES_ADMIN_URL names (default the local
 * one), or on a cluster of its own in the run directory when none answers there; only such a cluster of its
 * own can be restarted (`restart`).
 */
export async function startPostgres(sup: ProcessSupervisor, runId: string): Promise<{ service: PostgresService; stop: () => Promise<void>; restart?: (downMs: number) => Promise<void> }> {
  let adminUrl = process.env.PORTCULLIS_TEST_POSTGRES_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  let origin: PostgresService["origin"] = "existing";
  let stopServer = async () => {};
  let restart: ((downMs: number) => Promise<void>) | undefined;
  if (!(await canConnect(adminUrl))) {
    // No server answers: start our own cluster in the run directory.
    const initdb = requireTool("initdb", "install Debian's postgresql package (npm run env:setup)");
    const postgres = requireTool("postgres", "install Debian's postgresql package (npm run env:setup)");
    const dataDir = join(sup.runDir, "pgdata");
    mkdirSync(dataDir, { recursive: true });
    const asUser: string[] = [];
    if (process.getuid?.() === 0) {
      // initdb refuses to run as root.
      const { stdout } = await run("id", ["-u", "postgres"]).catch(() => ({ stdout: "" }));
      if (!stdout.trim()) throw new MissingServiceError("running as root and there is no `postgres` user to run initdb as");
      chownSync(dataDir, Number(stdout.trim()), Number((await run("id", ["-g", "postgres"])).stdout.trim()));
      chmodSync(sup.runDir, 0o755);
      asUser.push("runuser", "-u", "postgres", "--");
    }
    const wrap = (cmd: string, args: string[]): [string, string[]] => (asUser.length ? [asUser[0]!, [...asUser.slice(1), cmd, ...args]] : [cmd, args]);
    const [c1, a1] = wrap(initdb, ["-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    await run(c1, a1);
    const port = await freePort();
    const [c2, a2] = wrap(postgres, ["-D", dataDir, "-p", String(port), "-k", dataDir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"]);
    let proc = sup.spawn("postgres", c2, a2);
    adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await waitUntil("postgres", () => canConnect(adminUrl), { timeoutMs: 30_000, process: proc });
    origin = "started";
    stopServer = () => proc.stop();
    restart = async (downMs) => {
      // Fast shutdown (SIGINT: sessions ended at once, as a failover or a restart does), down for downMs, started again.
      // (To the process group: as root the server runs under runuser, which does not pass signals on.)
      const exited = new Promise((r) => proc.child.once("exit", r));
      process.kill(-proc.child.pid!, "SIGINT");
      await exited;
      await new Promise((r) => setTimeout(r, downMs));
      proc = sup.spawn("postgres", c2, a2);
      await waitUntil("postgres", () => canConnect(adminUrl), { timeoutMs: 30_000, process: proc });
    };
  }
  // The name carries this runner's pid, so a later run can drop what a killed one left behind.
  const database = `portcullis_test_${process.pid}_${runId}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const stale = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'portcullis\\_test\\_%'");
    for (const { datname } of stale.rows) {
      const pid = Number(/^portcullis_test_(\d+)_/.exec(datname)?.[1]);
      if (pid && !processAlive(pid)) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return {
    service: { url: url.toString(), database, origin },
    stop: async () => {
      if (origin === "existing") {
        const c = new pg.Client({ connectionString: adminUrl });
        await c.connect();
        try {
          await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        } finally {
          await c.end();
        }
      }
      await stopServer();
    },
    ...(restart ? { restart } : {}),
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

// ------------------------------------------------------------------ registries

export interface RegistryService {
  /** host:port, as it appears in image references. */
  host: string;
  /** The base URL, http:// or https://. */
  url: string;
  auth: "none" | "basic" | "token";
  username?: string;
  password?: string;
  /** For auth "token": the token server's realm and the registry's service name. */
  realm?: string;
  service?: string;
  /** For TLS registries: the CA that signed the registry's certificate. */
  caFile?: string;
  caPem?: string;
  logFile: string;
}

export interface RegistryOptions {
  name: string;
  auth: "none" | "basic" | "token";
  tls?: CertificateAuthority;
  /** Token auth: the token server to trust. */
  token?: { realm: string; service: string; issuer: string; rootCertFile: string };
  username?: string;
  password?: string;
}

export async function startRegistry(sup: ProcessSupervisor, o: RegistryOptions): Promise<{ service: RegistryService; stop: () => Promise<void> }> {
  const bin = findTool("docker-registry") ?? findTool("registry");
  if (!bin) throw new MissingServiceError("docker-registry not found; run `npm run env:setup` as root");
  const dir = join(sup.runDir, `registry-${o.name}`);
  mkdirSync(join(dir, "storage"), { recursive: true });
  const port = await freePort();
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "storage")}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString("hex")}`,
  ];
  let caFile: string | undefined;
  let caPem: string | undefined;
  if (o.tls) {
    const leaf = await issueCert(dir, o.tls, `registry-${o.name}`, ["IP:127.0.0.1", "DNS:localhost"], "serverAuth");
    lines.push("  tls:", `    certificate: ${leaf.certFile}`, `    key: ${leaf.keyFile}`);
    caFile = o.tls.certFile;
    caPem = o.tls.certPem;
  }
  if (o.auth === "basic") {
    const htpasswd = requireTool("htpasswd", "install apache2-utils (npm run env:setup)");
    const { stdout } = await run(htpasswd, ["-Bbn", o.username!, o.password!]);
    writeFileSync(join(dir, "htpasswd"), stdout);
    lines.push("auth:", "  htpasswd:", "    realm: portcullis-test", `    path: ${join(dir, "htpasswd")}`);
  } else if (o.auth === "token") {
    const t = o.token!;
    lines.push("auth:", "  token:", `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootCertFile}`);
  }
  const config = join(dir, "config.yml");
  writeFileSync(config, `${lines.join("\n")}\n`);
  const proc = sup.spawn(`registry-${o.name}`, bin, ["serve", config]);
  const scheme = o.tls ? "https" : "http";
  const url = `${scheme}://127.0.0.1:${port}`;
  await waitUntil(`registry ${o.name}`, async () => {
    const status = o.tls ? await httpsStatus(`${url}/v2/`, caPem!) : (await request(`${url}/v2/`).then(async (r) => (await r.body.dump(), r.statusCode)));
    return status === 200 || status === 401;
  }, { timeoutMs: 20_000, process: proc });
  return {
    service: {
      host: `127.0.0.1:${port}`, url, auth: o.auth, username: o.username, password: o.password,
      realm: o.token?.realm, service: o.token?.service, caFile, caPem, logFile: proc.logFile,
    },
    stop: proc.stop,
  };
}

function httpsStatus(url: string, ca: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

export interface TokenAuthSetup {
  tokenServer: TokenServer;
  rootCertFile: string;
  issuer: string;
  service: string;
}

/** A token server whose signing certificate chains to a CA the registry will trust. */
export async function startTokenServer(dir: string, users: Record<string, string>): Promise<TokenAuthSetup> {
  mkdirSync(dir, { recursive: true });
  const ca = await makeCA(dir, "token-signing");
  const signer = await issueCert(dir, ca, "token-signer", [], "serverAuth");
  const issuer = "portcullis-test-token-issuer";
  const service = "portcullis-test-registry";
  const tokenServer = new TokenServer({ service, issuer, signer, users });
  await tokenServer.start();
  return { tokenServer, rootCertFile: ca.certFile, issuer, service };
}

// ------------------------------------------------------------------ Kubernetes API server

export interface KubeService {
  server: string;
  /** A bearer token of a member of system:masters. */
  token: string;
  /** A bearer token of a user with no roles at all (for RBAC tests). */
  unprivilegedToken: string;
  /** The PEM of the CA that signed the API server's serving certificate. */
  caPem: string;
  /** A kubeconfig file for the admin user (for kubectl and helm). */
  kubeconfig: string;
  version: string;
  logFile: string;
  /**
   * The API server's audit log (JSON lines, level Metadata: who did what to which object, and the answer's
   * code; never a body). Only requests of ServiceAccounts are logged: the tests' own admin traffic would cost
   * disk and time for nothing (test/deploy/rbac.test.ts reads it).
   */
  auditLog: string;
  /**
   * What the API server presents to webhooks that ask for a client certificate (its
   * --admission-control-config-file names a kubeconfig with this certificate for every webhook, `*`): a webhook
   * served with `clientCa.certPem` as its client CA knows a review came from this API server. `cert`/`key` are
   * the same certificate for a test to act as the API server.
   */
  webhookClient: { caFile: string; caPem: string; certPem: string; keyPem: string };
}

export async function startKube(sup: ProcessSupervisor): Promise<{ service: KubeService; stop: () => Promise<void> }> {
  const etcd = requireTool("etcd", "install etcd-server (npm run env:setup)");
  const apiserver = requireTool("kube-apiserver", "build it with `npm run env:setup` (takes about 4 minutes once)");
  const dir = join(sup.runDir, "kube");
  mkdirSync(join(dir, "certs"), { recursive: true });
  const [etcdPort, etcdPeerPort, securePort] = [await freePort(), await freePort(), await freePort()];
  const etcdProc = sup.spawn("etcd", etcd, [
    "--data-dir", join(dir, "etcd"), "--name", "portcullis-test",
    "--listen-client-urls", `http://127.0.0.1:${etcdPort}`, "--advertise-client-urls", `http://127.0.0.1:${etcdPort}`,
    "--listen-peer-urls", `http://127.0.0.1:${etcdPeerPort}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${etcdPeerPort}`,
    "--initial-cluster", `portcullis-test=http://127.0.0.1:${etcdPeerPort}`,
    "--unsafe-no-fsync", "--quota-backend-bytes", String(2 * 1024 ** 3),
  ], { env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === "x64" ? "" : process.arch } });
  const saKey = join(dir, "sa.key");
  const saPub = join(dir, "sa.pub");
  await run("openssl", ["genrsa", "-out", saKey, "2048"]);
  await run("openssl", ["rsa", "-in", saKey, "-pubout", "-out", saPub]);
  const token = randomBytes(24).toString("hex");
  const unprivilegedToken = randomBytes(24).toString("hex");
  writeFileSync(join(dir, "tokens.csv"), `${token},admin,1,system:masters\n${unprivilegedToken},nobody,2,\n`);
  const auditPolicy = join(dir, "audit-policy.yaml");
  const auditLog = join(dir, "audit.log");
  writeFileSync(auditPolicy, [
    "apiVersion: audit.k8s.io/v1",
    "kind: Policy",
    // The stages that carry the answer's code (a watch's ResponseStarted, every ResponseComplete); a
    // RequestReceived line would only double the log.
    "omitStages: [RequestReceived]",
    "rules:",
    "  - level: Metadata",
    "    userGroups: [\"system:serviceaccounts\"]",
    "  - level: None",
    "",
  ].join("\n"));
  // The certificate the API server shows webhooks that request one (a server that does not request one never
  // sees it, so webhooks of other tests are unaffected).
  const clientCa = await makeCA(join(dir, "certs"), "webhook-client");
  const client = await issueCert(join(dir, "certs"), clientCa, "webhook-client-apiserver", [], "clientAuth");
  const webhookKubeconfig = join(dir, "webhook-kubeconfig.yaml");
  writeFileSync(webhookKubeconfig, [
    "apiVersion: v1",
    "kind: Config",
    "users:",
    "- name: \"*\"",
    "  user:",
    `    client-certificate: ${client.certFile}`,
    `    client-key: ${client.keyFile}`,
    "",
  ].join("\n"), { mode: 0o600 });
  const admissionConfig = join(dir, "admission-config.yaml");
  writeFileSync(admissionConfig, [
    "apiVersion: apiserver.config.k8s.io/v1",
    "kind: AdmissionConfiguration",
    "plugins:",
    ...["ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"].flatMap((name) => [
      `- name: ${name}`,
      "  configuration:",
      "    apiVersion: apiserver.config.k8s.io/v1",
      "    kind: WebhookAdmissionConfiguration",
      `    kubeConfigFile: ${webhookKubeconfig}`,
    ]),
    "",
  ].join("\n"));
  await waitUntil("etcd", async () => (await request(`http://127.0.0.1:${etcdPort}/health`).then(async (r) => (await r.body.dump(), r.statusCode))) === 200, { timeoutMs: 20_000, process: etcdProc });
  const api = sup.spawn("kube-apiserver", apiserver, [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
    `--secure-port=${securePort}`, "--insecure-port=0", `--cert-dir=${join(dir, "certs")}`,
    `--token-auth-file=${join(dir, "tokens.csv")}`, "--authorization-mode=RBAC",
    "--service-cluster-ip-range=10.0.0.0/24", "--service-account-issuer=https://kubernetes.default.svc",
    `--service-account-key-file=${saPub}`, `--service-account-signing-key-file=${saKey}`,
    "--allow-privileged=true", "--disable-admission-plugins=ServiceAccount", "--logtostderr=true", "--v=0",
    `--audit-policy-file=${auditPolicy}`, `--audit-log-path=${auditLog}`, "--audit-log-format=json",
    `--admission-control-config-file=${admissionConfig}`,
  ]);
  const server = `https://127.0.0.1:${securePort}`;
  await waitUntil("kube-apiserver", async () => {
    const r = await request(`${server}/readyz`, { headers: { authorization: `Bearer ${token}` }, dispatcher: insecureAgent() });
    await r.body.dump();
    return r.statusCode === 200;
  }, { timeoutMs: 90_000, process: api });
  const caPem = readFileSync(join(dir, "certs", "apiserver.crt"), "utf8");
  const versionInfo = await request(`${server}/version`, { headers: { authorization: `Bearer ${token}` }, dispatcher: insecureAgent() }).then((r) => r.body.json() as Promise<{ gitVersion: string }>);
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, kubeconfigYaml(server, caPem, token), { mode: 0o600 });
  return {
    service: {
      server, token, unprivilegedToken, caPem, kubeconfig, version: versionInfo.gitVersion, logFile: api.logFile, auditLog,
      webhookClient: { caFile: clientCa.certFile, caPem: clientCa.certPem, certPem: client.certPem, keyPem: client.keyPem },
    },
    stop: async () => {
      await api.stop();
      await etcdProc.stop();
    },
  };
}

export function kubeconfigYaml(server: string, caPem: string, token: string, user = "admin"): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: portcullis-test",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}`,
    "users:",
    `- name: ${user}`,
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: portcullis-test",
    "  context:",
    "    cluster: portcullis-test",
    `    user: ${user}`,
    "current-context: portcullis-test",
    "",
  ].join("\n");
}

let insecure: Agent | undefined;
/** Only for the readiness probe, before the API server's serving certificate exists to be trusted. */
function insecureAgent(): Agent {
  insecure ??= new Agent({ connect: { rejectUnauthorized: false } });
  return insecure;
}
