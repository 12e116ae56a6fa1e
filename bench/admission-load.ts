// Admission load for the benchmarks: a generator in its own process (its own event loop and core), open loop
// at a fixed rate, latency counted from when each request was due (no coordinated omission).
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
export const ms = (x: number) => `${x.toFixed(2)} ms`;

// The load generator runs in its own process (its own event loop and core), so the server's latency is not
// the generator's: open loop, a request every 1/rate s whatever the answers, latency counted from when the
// request was due (no coordinated omission).
const GENERATOR = `
import { readFileSync } from "node:fs";
import { Pool } from "undici";
const { url, ca, bodiesFile, rate, seconds } = JSON.parse(process.argv[1]);
const bodies = JSON.parse(readFileSync(bodiesFile, "utf8"));
const u = new URL(url);
const pool = new Pool(u.origin, { connections: 64, pipelining: 1, connect: { ca } });
let lat = []; let errors = 0;
// One unmeasured second at the same rate first: connections (TLS handshakes) are opened and kept.
async function phase(total, measure) {
  const t0 = performance.now();
  const inflight = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const start = Math.max(due, performance.now());
    inflight.push(pool.request({ path: u.pathname, method: "POST", body: bodies[i % bodies.length], headers: { "content-type": "application/json" } }).then(async (res) => {
      const text = await res.body.text();
      if (measure && (res.statusCode !== 200 || !text.includes('"allowed":true'))) errors++;
      if (measure) lat.push(performance.now() - start);
    }, () => { if (measure) errors++; }));
  }
  await Promise.all(inflight);
  return (performance.now() - t0) / 1000;
}
await phase(Math.round(rate), false);
const total = Math.round(rate * seconds);
const wallS = await phase(total, true);
await pool.close();
process.stdout.write(JSON.stringify({ lat, errors, sent: total, wallS }));
`;

export interface Load {
  lat: number[];
  errors: number;
  sent: number;
  wallS: number;
}

export async function load(url: string, ca: string, bodiesFile: string, rate: number, seconds: number): Promise<Load> {
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", GENERATOR, JSON.stringify({ url, ca, bodiesFile, rate, seconds })], { cwd: root, maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(stdout) as Load;
}

/** A pod review of two images of `images`: `image(k)` names the k-th one (by digest, or by tag). */
export function podReview(i: number, ns: string, images: number, image: (k: number) => string): string {
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
    request: {
      uid: `u-${i}`, kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" },
      namespace: ns, name: `p-${i}`, operation: "CREATE", userInfo: { username: "bench" },
      object: { metadata: { name: `p-${i}`, namespace: ns }, spec: { containers: [{ name: "app", image: image(i % images) }, { name: "sidecar", image: image((i + 1) % images) }] } },
    },
  });
}
