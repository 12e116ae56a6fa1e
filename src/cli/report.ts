// `portcullis report DIGEST`: fetches an IndexReport (or with --vulns a VulnerabilityReport) from the report
// API of `portcullis serve` and prints it. The table code (./report-vulns.ts) loads only with --vulns.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import type { VulnerabilityReport } from "../matcher/vulnerability-report.js";
import { EXIT, UsageError } from "./exit.js";
import { parseSeverities } from "./vuln-table.js";

export const REPORT_HELP = `Usage: portcullis report DIGEST [--vulns [--format table|json] [--severity LIST] [--ignore-unfixed]]
                         [--server URL] [--token-file FILE]

Print the Clair v4 IndexReport of an indexed image (JSON) from the report API of portcullis serve, or with
--vulns its vulnerabilities: the stored index matched against the cluster's advisory data now.

Options:
  --vulns              the vulnerability report (GET /matcher/api/v1/vulnerability_report/DIGEST)
  --format FORMAT      with --vulns: table (default: by severity, with the advisory data's age and the
                       coverage) or json (Clair's VulnerabilityReport)
  --severity LIST      with --vulns: only these severities, comma separated: CRITICAL, HIGH, MEDIUM, LOW,
                       NEGLIGIBLE, UNKNOWN
  --ignore-unfixed     with --vulns: only vulnerabilities with a fixed version to upgrade to
  --server URL         the report API, e.g. http://portcullis.portcullis-system:8081 (PORTCULLIS_SERVER)
  --token-file FILE    a file holding the Kubernetes bearer token to send; without it, the token of the
                       kubeconfig's current user (KUBECONFIG, else ~/.kube/config)
You see a report when you may get an ImageScan of that digest in some namespace. When the cluster has no
advisory data yet, --vulns fails with "no-advisory-data" rather than print an empty list.

The same API indexes images for Clair clients (Quay, clairctl): POST /indexer/api/v1/index_report with a
Clair Manifest ({"hash": "sha256:...", "layers": [{"hash": "sha256:...", "uri": "https://...", "headers":
{"Authorization": ["Bearer ..."]}}]}) fetches each layer from its URI, checks its digest and answers the
IndexReport (201). Because the operator then fetches URLs of your choosing, that needs create on
imagescans.portcullis.dev in every namespace, and URIs on loopback, link-local or cloud metadata addresses
are refused. To scan an image in your namespace, create an ImageScan instead.
`;

/** The token of the kubeconfig's current user, if it has one. */
function kubeconfigToken(env: NodeJS.ProcessEnv): string | undefined {
  try {
    const kc = new k8s.KubeConfig();
    if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG.split(":")[0]!);
    else kc.loadFromDefault();
    return kc.getCurrentUser()?.token || undefined;
  } catch {
    return undefined;
  }
}

export async function reportCommand(args: string[], env: NodeJS.ProcessEnv = process.env, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      server: { type: "string" }, "token-file": { type: "string" }, help: { type: "boolean", short: "h" },
      vulns: { type: "boolean", default: false }, format: { type: "string" }, severity: { type: "string" }, "ignore-unfixed": { type: "boolean", default: false },
    },
  });
  if (values.help) {
    out(REPORT_HELP);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError("report takes one DIGEST");
  const vulns = values.vulns ?? false;
  if (!vulns && (values.format !== undefined || values.severity !== undefined || values["ignore-unfixed"])) {
    throw new UsageError("--format, --severity and --ignore-unfixed apply to vulnerabilities: use them with --vulns (without it, report prints the IndexReport as JSON)");
  }
  const format = values.format ?? "table";
  if (format !== "table" && format !== "json") throw new UsageError(`--format must be table or json, not ${JSON.stringify(format)}`);
  const filter = { severities: values.severity !== undefined ? parseSeverities(values.severity) : undefined, ignoreUnfixed: values["ignore-unfixed"] ?? false };
  const digest = positionals[0]!;
  if (!/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.test(digest)) throw new UsageError(`not a digest: ${JSON.stringify(digest)} (expected sha256:<64 hex>)`);
  const server = values.server ?? env.PORTCULLIS_SERVER;
  if (!server) throw new UsageError("no server: pass --server URL or set PORTCULLIS_SERVER");
  if (!/^https?:\/\/[^/]+/.test(server)) throw new UsageError(`--server must be an http:// or https:// URL, got ${JSON.stringify(server)}`);
  let token: string | undefined;
  if (values["token-file"]) {
    try {
      token = readFileSync(values["token-file"], "utf8").trim();
    } catch (e) {
      throw new UsageError(`cannot read --token-file: ${(e as Error).message}`);
    }
  } else token = kubeconfigToken(env);
  if (!token) throw new UsageError("no token: the kubeconfig's current user has none; pass --token-file FILE");
  const url = `${server.replace(/\/+$/, "")}${vulns ? "/matcher/api/v1/vulnerability_report/" : "/indexer/api/v1/index_report/"}${digest}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: "application/json" } });
  } catch (e) {
    throw Object.assign(new Error(`${url}: ${(e as { cause?: Error }).cause?.message ?? (e as Error).message}`), { code: "REPORT_API_UNREACHABLE" });
  }
  const text = await res.text();
  if (res.status !== 200) {
    let message = text.trim().slice(0, 500);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not JSON: the text as it came
    }
    let code = res.status === 401 ? "UNAUTHORIZED" : res.status === 403 ? "FORBIDDEN" : res.status === 404 ? "NOT_FOUND" : "REPORT_API_ERROR";
    if (/"code"\s*:\s*"no-advisory-data"/.test(text)) code = "NO_ADVISORY_DATA";
    throw Object.assign(new Error(`${url}: HTTP ${res.status}: ${message}`), { code });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw Object.assign(new Error(`${url}: the answer is not JSON: ${(e as Error).message}`), { code: "REPORT_API_ERROR" });
  }
  if (!vulns) {
    out(`${JSON.stringify(body, null, 2)}\n`);
    return EXIT.ok;
  }
  const report = body as VulnerabilityReport;
  if (typeof report !== "object" || report === null || typeof report.vulnerabilities !== "object" || typeof report.package_vulnerabilities !== "object") {
    throw Object.assign(new Error(`${url}: the answer is not a VulnerabilityReport (no vulnerabilities or package_vulnerabilities)`), { code: "REPORT_API_ERROR" });
  }
  const { filterReport, reportTable } = await import("./report-vulns.js");
  if (format === "json") out(`${JSON.stringify(filter.severities || filter.ignoreUnfixed ? filterReport(report, filter) : report)}\n`);
  else out(reportTable(report, filter));
  return EXIT.ok;
}
