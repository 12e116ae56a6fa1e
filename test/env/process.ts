// Child processes of a test run: each in its own process group, logged to a file, and recorded so that a
// reaper process can kill them all if the test runner itself dies (SIGKILL, a crash, a closed terminal).
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { appendFileSync, openSync, closeSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface Managed {
  name: string;
  child: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

export class ProcessSupervisor {
  private readonly managed: Managed[] = [];
  private reaper: ChildProcess | undefined;
  readonly pidFile: string;

  constructor(readonly runDir: string) {
    this.pidFile = join(runDir, "pids");
    writeFileSync(this.pidFile, "");
  }

  /**
   * Starts a reaper: a detached shell that waits for this process to exit and then kills every process group
   * listed in the pid file and removes the run directory. Normal teardown kills the reaper first.
   */
  startReaper(removeRunDir: boolean): void {
    const script = [
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
      `for p in $(cat '${this.pidFile}'); do kill -TERM -- -$p 2>/dev/null; done`,
      `sleep 3`,
      `for p in $(cat '${this.pidFile}'); do kill -KILL -- -$p 2>/dev/null; done`,
      removeRunDir ? `rm -rf '${this.runDir}'` : `:`,
    ].join("\n");
    this.reaper = spawn("bash", ["-c", script], { detached: true, stdio: "ignore" });
    this.reaper.unref();
  }

  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): Managed {
    const logFile = join(this.runDir, `${name}.log`);
    const fd = openSync(logFile, "a");
    const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    appendFileSync(this.pidFile, `${child.pid}\n`);
    child.unref();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const m: Managed = {
      name,
      child,
      logFile,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        killGroup(child.pid!, "SIGTERM");
        const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
        if (!done) {
          killGroup(child.pid!, "SIGKILL");
          await Promise.race([exited, sleep(2000)]);
        }
      },
    };
    this.managed.push(m);
    return m;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.managed.reverse().map((m) => m.stop()));
    if (this.reaper?.pid) killGroup(this.reaper.pid, "SIGKILL");
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * Polls `probe` until it returns a truthy value. Fails early, with the tail of the log, if the process died.
 */
export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | false>, opts: { timeoutMs: number; process?: Managed }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    const p = opts.process?.child;
    if (p && (p.exitCode !== null || p.signalCode !== null)) {
      throw new Error(`${what}: process exited (${p.exitCode ?? p.signalCode}); see ${opts.process!.logFile}`);
    }
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? `: ${(lastError as Error).message}` : "";
      throw new Error(`${what}: not ready after ${opts.timeoutMs} ms${detail}${opts.process ? `; see ${opts.process.logFile}` : ""}`);
    }
    await sleep(100);
  }
}
