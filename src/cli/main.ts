// The start path of every command: only what --version and --help need is imported here. Each command's
// module is imported when it runs, so `scan` never pays for the Kubernetes client, pino or prom-client that
// `serve` needs (importing @kubernetes/client-node alone costs about 0.7 s). src/cli/startpath.test.ts
// fails when a heavy module creeps back onto --version, --help or scan; eslint.config.js refuses static
// imports of them in the start-path files.
import { parseArgs } from "node:util";
import { EXIT, UsageError } from "./exit.js";
import { version } from "./version.js";
import { describeError, errorCode } from "../errors.js";

export { EXIT, UsageError };

const HELP = `portcullis: scan container images and keep unscanned ones out of the cluster

Usage:
  portcullis <command> [options]

Commands:
  scan IMAGE           index an image (registry, oci:, oci-archive:, docker-archive:) and print what it has
  serve                run the operator (ImageScan controller; see portcullis serve --help)
  report DIGEST        print an image's IndexReport, or with --vulns its vulnerabilities, from the report API
  db COMMAND           the advisory database: update, import, export, push, pull, status (portcullis db --help)
  env check [--json]   report which services and tools the test environment found, with versions

Options:
  -h, --help           show this help
  -v, --version        print the version
`;

async function envCommand(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    process.stdout.write("Usage: portcullis env check [--json]\n");
    return EXIT.ok;
  }
  if (positionals[0] !== "check" || positionals.length !== 1) {
    throw new UsageError(`unknown env subcommand ${JSON.stringify(positionals.join(" "))}; expected "env check"`);
  }
  const { checkEnvironment, formatEnvReport } = await import("./env-check.js");
  const report = await checkEnvironment();
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatEnvReport(report)}\n`);
  return report.ok ? EXIT.ok : EXIT.failed;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "-h":
      case "--help":
      case "help":
        process.stdout.write(HELP);
        return command === undefined ? EXIT.usage : EXIT.ok;
      case "-v":
      case "--version":
      case "version":
        process.stdout.write(`portcullis ${version()}\n`);
        return EXIT.ok;
      case "env":
        return await envCommand(rest);
      case "scan":
        return await (await import("./scan.js")).scanCommand(rest);
      case "serve":
        return await (await import("./serve.js")).serveCommand(rest);
      case "report":
        return await (await import("./report.js")).reportCommand(rest);
      case "db":
        return await (await import("./db.js")).dbCommand(rest);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (e) {
    const code = errorCode(e);
    if (e instanceof UsageError || (code !== undefined && (code.startsWith("ERR_PARSE_ARGS") || code === "INVALID_REFERENCE"))) {
      process.stderr.write(`portcullis: ${(e as Error).message}\nRun 'portcullis --help' for usage.\n`);
      return EXIT.usage;
    }
    // Errors with a code are ours and say what and where; anything else is a bug: show the stack.
    process.stderr.write(`portcullis: ${code !== undefined ? describeError(e) : ((e as Error).stack ?? String(e))}\n`);
    return EXIT.failed;
  }
}
