// `portcullis serve`: runs the operator's controllers (for now the ImageScan controller) with
// /healthz and /readyz. Configuration from flags and environment, validated with zod.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { z } from "zod";
import { ImageScanController } from "../controller/imagescan.js";
import { parsePlatform } from "../image/platform.js";
import { Indexer } from "../indexer/indexer.js";
import { cloudProviders } from "../registry/auth/cloud/providers.js";
import { defaultScanners } from "../scanners/index.js";
import { openStore } from "../store/open.js";
import { EXIT, UsageError } from "./exit.js";

export const SERVE_HELP = `Usage: portcullis serve [options]

Run the Portcullis operator: watch ImageScans, index their images, write their status.

Options (each also an environment variable):
  --database-url URL       PostgreSQL (PORTCULLIS_DATABASE_URL); without it an embedded store in
                           --store-path (only for a single replica)
  --store-path PATH        the embedded store's folder (PORTCULLIS_STORE, default ./portcullis-store)
  --namespace NS           Portcullis's own namespace (POD_NAMESPACE, default portcullis-system)
  --health-addr HOST:PORT  where /healthz and /readyz answer (PORTCULLIS_HEALTH_ADDR, default 0.0.0.0:8081)
  --concurrency N          scans at once (PORTCULLIS_CONCURRENCY, default 4)
  --platform OS/ARCH       platform to index from multi-platform images (PORTCULLIS_PLATFORM, default linux/amd64)
  --credential-helpers L   cloud helpers, comma separated: ecr, gcr (PORTCULLIS_CREDENTIAL_HELPERS)
The cluster comes from KUBECONFIG, else the in-cluster service account.
`;

const Config = z
  .object({
    databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
    storePath: z.string().min(1).default("./portcullis-store"),
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a namespace name").default("portcullis-system"),
    healthAddr: z.string().regex(/^[^:]*:\d+$/, "must be HOST:PORT").default("0.0.0.0:8081"),
    concurrency: z.coerce.number().int().min(1).max(64).default(4),
    platform: z.string().default("linux/amd64"),
    credentialHelpers: z.string().default(""),
  })
  .strict();

export type ServeConfig = z.output<typeof Config>;

export function serveConfig(args: string[], env: NodeJS.ProcessEnv): ServeConfig | "help" {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "database-url": { type: "string" }, "store-path": { type: "string" }, namespace: { type: "string" }, "health-addr": { type: "string" },
      concurrency: { type: "string" }, platform: { type: "string" }, "credential-helpers": { type: "string" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  if (positionals.length) throw new UsageError(`serve takes no arguments, got ${JSON.stringify(positionals.join(" "))}`);
  const raw = {
    databaseUrl: values["database-url"] ?? env.PORTCULLIS_DATABASE_URL,
    storePath: values["store-path"] ?? env.PORTCULLIS_STORE,
    namespace: values.namespace ?? env.POD_NAMESPACE,
    healthAddr: values["health-addr"] ?? env.PORTCULLIS_HEALTH_ADDR,
    concurrency: values.concurrency ?? env.PORTCULLIS_CONCURRENCY,
    platform: values.platform ?? env.PORTCULLIS_PLATFORM,
    credentialHelpers: values["credential-helpers"] ?? env.PORTCULLIS_CREDENTIAL_HELPERS,
  };
  const parsed = Config.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  if (!parsed.success) throw new UsageError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

function log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

export async function serveCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const cfg = serveConfig(args, env);
  if (cfg === "help") {
    process.stdout.write(SERVE_HELP);
    return EXIT.ok;
  }
  const platform = parsePlatform(cfg.platform);
  const kc = new k8s.KubeConfig();
  if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
  else kc.loadFromCluster();
  const store = await openStore(cfg.databaseUrl ?? cfg.storePath);
  const helpers = cfg.credentialHelpers.split(",").filter((h) => h.trim());
  const controller = new ImageScanController({
    kc, indexer: new Indexer({ store, scanners: defaultScanners() }), concurrency: cfg.concurrency, defaultPlatform: platform,
    providers: cloudProviders(helpers), log: (msg) => log("info", msg),
  });
  let ready = false;
  const [host, port] = [cfg.healthAddr.slice(0, cfg.healthAddr.lastIndexOf(":")), Number(cfg.healthAddr.slice(cfg.healthAddr.lastIndexOf(":") + 1))];
  const health = createServer((req, res) => {
    if (req.url === "/healthz") res.writeHead(200).end("ok\n");
    else if (req.url === "/readyz") res.writeHead(ready ? 200 : 503).end(ready ? "ok\n" : "starting\n");
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => health.once("error", reject).listen(port, host || "0.0.0.0", resolve));
  log("info", "starting", { store: cfg.databaseUrl ? "postgres" : "embedded", namespace: cfg.namespace, concurrency: cfg.concurrency, platform: cfg.platform, credentialHelpers: helpers, health: cfg.healthAddr });
  await controller.start();
  ready = true;
  log("info", "ready");
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log("info", "stopping", { signal: sig });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  ready = false;
  // Finish the scans in flight, then release everything.
  await controller.stop();
  await store.close();
  await new Promise<void>((r) => health.close(() => r()));
  log("info", "stopped");
  return EXIT.ok;
}
