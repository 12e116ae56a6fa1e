// A blob as a verified stream: size checked against the descriptor, sha256 computed while the bytes pass,
// and the stream errors (so the consumer discards what it read) on a mismatch. A dropped connection is
// resumed with Range when the registry answers 206 with the right Content-Range; a 200 restarts the
// transfer and the bytes already seen are skipped, so the hash state is kept either way.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { RegistryError } from "./errors.js";
import type { RegistryResponse } from "./transport.js";

export interface BlobFetch {
  /** Opens the blob, from `offset` (Range) when offset > 0. */
  open(offset: number): Promise<RegistryResponse>;
  registry: string;
  repository: string;
  digest: string;
  /** Expected size from the descriptor, when known. */
  size?: number;
  maxResumes: number;
  onBytes?(n: number): void;
}

/**
 * A response body without its first `n` bytes: after a resume the server may send bytes the reader already
 * has (it ignored the Range, and the transfer starts over), and the hash must not see them twice.
 */
export async function* dropFirst(body: AsyncIterable<Buffer>, n: number): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    if (n >= chunk.length) {
      n -= chunk.length;
      continue;
    }
    yield n > 0 ? chunk.subarray(n) : chunk;
    n = 0;
  }
}

export function verifiedBlobStream(f: BlobFetch): Readable {
  const [algorithm, expected] = f.digest.split(":") as [string, string];
  if (algorithm !== "sha256" && algorithm !== "sha512") {
    throw new RegistryError("UNSUPPORTED", `blob ${f.digest}: digest algorithm ${algorithm} is not supported`, { registry: f.registry, repository: f.repository });
  }
  const hash = createHash(algorithm);
  let received = 0;
  const where = `${f.registry}/${f.repository}@${f.digest}`;

  async function* generate(): AsyncGenerator<Buffer> {
    let resumes = 0;
    let res = await f.open(0);
    let skip = 0;
    for (;;) {
      try {
        for await (const c of dropFirst(res.body as AsyncIterable<Buffer>, skip)) {
          received += c.length;
          if (f.size !== undefined && received > f.size) {
            res.body.destroy();
            throw new RegistryError("SIZE_MISMATCH", `${where}: more than the ${f.size} bytes its descriptor declares`, { registry: f.registry, repository: f.repository });
          }
          hash.update(c);
          f.onBytes?.(c.length);
          yield c;
        }
        break;
      } catch (e) {
        if (e instanceof RegistryError) throw e;
        if (resumes >= f.maxResumes) throw new RegistryError("NETWORK", `${where}: connection dropped after ${received} bytes, ${resumes} resumes: ${(e as Error).message}`, { registry: f.registry, repository: f.repository }, { cause: e });
        resumes++;
        res = await f.open(received);
        skip = 0;
        if (res.statusCode === 206) {
          const start = /^bytes (\d+)-/.exec(String(res.headers["content-range"] ?? ""))?.[1];
          if (Number(start) !== received) {
            // A range we did not ask for: start over from zero, skipping what we already hashed.
            await res.body.dump();
            res = await f.open(0);
            skip = received;
          }
        } else {
          skip = received;
        }
      }
    }
    if (f.size !== undefined && received !== f.size) {
      throw new RegistryError("SIZE_MISMATCH", `${where}: ${received} bytes, but its descriptor declares ${f.size}`, { registry: f.registry, repository: f.repository });
    }
    const got = hash.digest("hex");
    if (got !== expected) {
      throw new RegistryError("DIGEST_MISMATCH", `${where}: content has digest ${algorithm}:${got}`, { registry: f.registry, repository: f.repository });
    }
  }

  return Readable.from(generate(), { objectMode: false, highWaterMark: 1 << 20 });
}
