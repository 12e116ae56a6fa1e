// Registry client benchmarks, against a real registry on loopback (Debian's docker-registry):
//   1. blob throughput through the client (size and digest verified) vs curl of the same blob;
//   2. tag resolution: requests per resolve and latency with a warm token cache.
// Usage: npx tsx bench/registry.ts [--runs N]
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { parseReference } from "../src/image/reference.js";
import { RegistryClient } from "../src/registry/client.js";
import { layoutDigest, ociBookworm, skopeoPush } from "../test/env/images.js";
import { fmt, median, timeIt, withRegistry } from "./env.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const runs = Number(values.runs);

await withRegistry(async (reg) => {
  await skopeoPush(`oci:${ociBookworm()}:base`, reg, "bench/debian:base");
  const ref = parseReference(`${reg.host}/bench/debian:base`);
  let requests = 0;
  const client = new RegistryClient({ metrics: { request: () => void requests++ } });
  const img = await client.resolve(ref);
  const layer = img.manifest.layers[0]!;
  const url = `${reg.url}/v2/bench/debian/blobs/${layer.digest}`;

  const curlTimes: number[] = [];
  const curlShaTimes: number[] = [];
  const clientTimes: number[] = [];
  for (let i = 0; i < runs; i++) {
    curlTimes.push(await timeIt(async () => execFileSync("curl", ["-sf", "-o", "/dev/null", url])));
    curlShaTimes.push(await timeIt(async () => execFileSync("sh", ["-c", `curl -sf '${url}' | sha256sum > /dev/null`])));
    clientTimes.push(await timeIt(async () => {
      for await (const _ of client.getBlob(ref, layer)) void _;
    }));
  }
  const mb = layer.size / 1e6;
  const c = median(curlTimes);
  const t = median(clientTimes);
  console.log(`blob ${layer.digest.slice(0, 19)}… ${mb.toFixed(1)} MB, median of ${runs}`);
  console.log(`  curl:    ${fmt(c)}  ${(mb / (c / 1000)).toFixed(0)} MB/s`);
  const cs = median(curlShaTimes);
  console.log(`  curl | sha256sum:  ${fmt(cs)}  ${(mb / (cs / 1000)).toFixed(0)} MB/s  (two processes, two cores)`);
  console.log(`  client:  ${fmt(t)}  ${(mb / (t / 1000)).toFixed(0)} MB/s  (sha256 verified, one thread)`);
  console.log(`  throughput ratio client/curl: ${(c / t).toFixed(2)}  (target >= 0.9)`);
  console.log(`  throughput ratio client/(curl | sha256sum): ${(cs / t).toFixed(2)}`);

  // Warm: the scheme and any token are known; a resolve of a tag is one HEAD.
  await client.resolveDigest(ref);
  requests = 0;
  const lat: number[] = [];
  const n = 200;
  for (let i = 0; i < n; i++) lat.push(await timeIt(() => client.resolveDigest(ref)));
  console.log(`tag resolution, warm, ${n} resolves: ${(requests / n).toFixed(2)} requests per resolve, median ${median(lat).toFixed(2)} ms, p99 ${[...lat].sort((a, b) => a - b)[Math.floor(n * 0.99)]!.toFixed(2)} ms`);
  if ((await client.resolveDigest(ref)) !== layoutDigest(ociBookworm(), "base")) throw new Error("resolved the wrong digest");
  await client.close();
});
