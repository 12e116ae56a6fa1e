// Go-style durations (24h, 90m, 1h30m), as Kubernetes users write them in specs and flags.

/** Milliseconds, or undefined when `s` is not a whole duration. */
export function parseDuration(s: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed += m[0].length;
  }
  return consumed === s.length && s.length > 0 ? total : undefined;
}

/** The other way, to whole seconds: 600000 → `10m`, 90000 → `1m30s`, 4000 → `4s`. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ""}` : `${s}s`;
}
