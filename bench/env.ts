// Benchmarks start the real services they measure against with the test environment's library: a
// registry on a random loopback port, torn down at exit.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessSupervisor } from "../test/env/process.js";
import { startRegistry, type RegistryService } from "../test/env/services.js";

export async function withRegistry<T>(fn: (reg: RegistryService) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-"));
  const sup = new ProcessSupervisor(dir);
  sup.startReaper(true);
  try {
    const { service } = await startRegistry(sup, { name: "bench", auth: "none" });
    return await fn(service);
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}
