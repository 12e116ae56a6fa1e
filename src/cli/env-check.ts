import pg from "pg";
import { TOOLS, probeTool, type ToolReport } from "./tools.js";

export interface PostgresReport {
  url: string;
  version?: string;
  error?: string;
}

export interface EnvReport {
  tools: ToolReport[];
  postgres: PostgresReport;
  ok: boolean;
}

/** A URL safe to print: the password, if any, replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}

export async function probePostgres(url: string): Promise<PostgresReport> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const res = await client.query<{ server_version: string }>("SHOW server_version");
    return { url: redactUrl(url), version: res.rows[0]?.server_version };
  } catch (e) {
    return { url: redactUrl(url), error: (e as Error).message || String(e) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function checkEnvironment(env: NodeJS.ProcessEnv = process.env): Promise<EnvReport> {
  const url = env.PORTCULLIS_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const [tools, postgres] = await Promise.all([Promise.all(TOOLS.map((t) => probeTool(t, env))), probePostgres(url)]);
  // A PostgreSQL server that answers, or the binaries to start one, is enough.
  const pgBinaries = tools.find((t) => t.label === "postgres");
  const ok = tools.every((t) => t.label === "postgres" || !t.error) && (!postgres.error || !pgBinaries?.error);
  return { tools, postgres, ok };
}

export function formatEnvReport(r: EnvReport): string {
  const rows: string[][] = [["COMPONENT", "STATUS", "VERSION", "WHERE"]];
  rows.push(["postgresql server", r.postgres.error ? "unreachable" : "ok", r.postgres.version ?? "", r.postgres.error ? `${r.postgres.url}: ${r.postgres.error}` : r.postgres.url]);
  for (const t of r.tools) rows.push([t.label, t.error ? "missing" : "ok", t.version ?? "", t.error ?? t.path ?? ""]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
  lines.push("", r.ok ? "environment: complete" : "environment: incomplete (run `npm run env:setup` as root)");
  return lines.join("\n");
}
