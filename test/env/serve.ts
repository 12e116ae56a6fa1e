// `portcullis serve` as a child process for the tests that run several (roles, index jobs): node itself with
// tsx's loader (not the tsx wrapper), so that SIGKILL kills the serve process, whose worker processes go with
// it; its JSON log lines kept for assertions and for the context of a failure.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url));

export class ServeProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  readonly child: ChildProcess;

  /** `POD_NAME` is `name` (the Lease holder's and the index jobs' owner's identity). */
  constructor(readonly name: string, args: string[], kubeconfig: string) {
    this.child = spawn(process.execPath, ["--import", "tsx", bin, "serve", ...args], { env: { ...process.env, KUBECONFIG: kubeconfig, POD_NAME: name } });
    let buf = "";
    this.child.stderr!.on("data", (c: Buffer) => {
      buf += c.toString();
      const parts = buf.split("\n");
      buf = parts.pop()!;
      this.lines.push(...parts);
    });
    this.exited = new Promise((r) => this.child.on("exit", (code) => r(code)));
  }

  /** Whether a line with this message was logged. */
  saw(msg: string): boolean {
    return this.lines.some((l) => l.includes(`"msg":"${msg}"`));
  }

  tail(): string {
    return `${this.name}:\n${this.lines.slice(-40).join("\n")}`;
  }

  async stop(): Promise<{ code: number | null; ms: number }> {
    const t0 = performance.now();
    this.child.kill("SIGTERM");
    const code = await this.exited;
    return { code, ms: performance.now() - t0 };
  }
}

/** Polls `f` until it gives something (not undefined or false); past `timeoutMs` fails with `context()`. */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 90_000, context = () => ""): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
