// Where the machine's CPU went during a benchmark window: every process's user+system time read from
// /proc/PID/stat, sampled while the window runs (so processes that start or end inside it count too), summed
// by what the process is (the serve processes, their workers, PostgreSQL, the registry, the API server, ...).
// A scale-out figure is only explained by this: what else shared the cores. Counted: this benchmark's own
// process tree (the services it started, the processes it measures) and PostgreSQL's processes for its
// databases and the server's own background work; anything else on the machine is left out but shown as one
// line, so a busy machine is visible.
import { readdirSync, readFileSync } from "node:fs";

const HZ = 100; // USER_HZ: the unit of /proc/PID/stat's utime and stime on Linux

/** What a process is, from its command line; undefined for kernel threads. */
export function processKind(pid: number): string | undefined {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
  if (argv.length === 0) return undefined;
  const exe = argv[0]!.split("/").pop()!;
  const rest = argv.slice(1).join(" ");
  if (exe === "node" || exe.startsWith("node")) {
    if (rest.includes("workers/child")) return "indexer workers";
    if (/\bserve\b/.test(rest)) return "portcullis serve";
    return "node (benchmark, load)";
  }
  if (exe.startsWith("postgres") || argv[0]!.startsWith("postgres:")) return "postgresql";
  if (exe === "docker-registry" || exe === "registry") return "registry";
  if (exe === "kube-apiserver" || exe === "etcd") return "kube-apiserver + etcd";
  return exe;
}

function stat(pid: string): { ticks: number; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ticks: Number(f[11]) + Number(f[12]), ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

/** Whether `pid` is this process or one of its descendants. */
function ours(pid: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === process.pid) return true;
    const s = stat(String(p));
    if (!s) return false;
    p = s.ppid;
  }
  return false;
}

/** Whether a PostgreSQL process works for one of `databases`, or for the server itself (no database). */
function postgresFor(pid: number, databases: readonly string[]): boolean {
  let title: string;
  try {
    title = readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ");
  } catch {
    return false;
  }
  if (!title.startsWith("postgres")) return false;
  if (databases.some((d) => title.includes(` ${d} `))) return true;
  return /^postgres: [^ ]+: (checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher)/.test(title);
}

/**
 * The kernel's CPU pressure stall total (/proc/pressure/cpu, "some": microseconds in which at least one
 * runnable task waited for a core), or undefined where the kernel has no PSI.
 */
function cpuStallMicros(): number | undefined {
  try {
    const some = /^some .*total=(\d+)/m.exec(readFileSync("/proc/pressure/cpu", "latin1"));
    return some ? Number(some[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface CpuWindow {
  seconds: number;
  /** Seconds of the window in which some runnable task waited for a core (PSI), when the kernel says. */
  stalledSeconds?: number;
  /** CPU seconds by process kind, largest first. */
  byKind: Array<{ kind: string; seconds: number }>;
}

/**
 * Starts sampling; `stop()` ends the window and answers what each kind of process used in it. `databases`:
 * the PostgreSQL databases the measured processes use (their backends count).
 */
export function cpuWindow(databases: readonly string[] = [], intervalMs = 200): { stop(): CpuWindow } {
  const seen = new Map<string, { kind: string; first: number; last: number }>();
  const sample = () => {
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      const st = stat(pid);
      if (!st) continue;
      const t = st.ticks;
      const s = seen.get(pid);
      if (s) s.last = t;
      else {
        const n = Number(pid);
        const kind = ours(n) || postgresFor(n, databases) ? processKind(n) : "(other processes on the machine)";
        if (kind) seen.set(pid, { kind, first: t, last: t });
      }
    }
  };
  const t0 = performance.now();
  const stall0 = cpuStallMicros();
  sample();
  // Processes first seen after the start count from their first sample (a short-lived one may be missed:
  // the interval bounds what is lost).
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const by = new Map<string, number>();
      for (const { kind, first, last } of seen.values()) by.set(kind, (by.get(kind) ?? 0) + (last - first) / HZ);
      const stall1 = cpuStallMicros();
      return {
        seconds: (performance.now() - t0) / 1000,
        ...(stall0 !== undefined && stall1 !== undefined ? { stalledSeconds: (stall1 - stall0) / 1e6 } : {}),
        byKind: [...by].map(([kind, seconds]) => ({ kind, seconds })).filter((k) => k.seconds > 0).sort((a, b) => b.seconds - a.seconds),
      };
    },
  };
}

/** One line per kind: CPU seconds and the share of the window's available core-seconds. */
export function formatCpu(w: CpuWindow, cores: number): string {
  const available = w.seconds * cores;
  const used = w.byKind.reduce((n, k) => n + k.seconds, 0);
  const lines = w.byKind.slice(0, 8).map((k) => `      ${k.seconds.toFixed(1).padStart(7)} s  ${((100 * k.seconds) / available).toFixed(0).padStart(3)}%  ${k.kind}`);
  const stalled = w.stalledSeconds !== undefined ? `\n      some task waited for a core ${((100 * w.stalledSeconds) / w.seconds).toFixed(0)}% of the time (the kernel's CPU pressure)` : "";
  return `${lines.join("\n")}\n      ${used.toFixed(1).padStart(7)} s  ${((100 * used) / available).toFixed(0).padStart(3)}%  of ${available.toFixed(1)} core-seconds (${cores} cores x ${w.seconds.toFixed(1)} s)${stalled}`;
}
