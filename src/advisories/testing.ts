// Test helper: an upstream on loopback that serves advisory files the way the real ones do (ETag and
// Last-Modified, 304 for a matching conditional request), counts requests, and can be told to fail.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface TestUpstream {
  url: string;
  /** Sets (or replaces) the file at `path`; a new content gets a new ETag and Last-Modified. */
  put(path: string, bytes: Buffer | string): void;
  remove(path: string): void;
  /** Answer `status` for every request of `path` until cleared. */
  fail(path: string, status: number | undefined): void;
  requests: Array<{ path: string; status: number; conditional: boolean }>;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<TestUpstream> {
  const files = new Map<string, { bytes: Buffer; etag: string; modified: string }>();
  const failures = new Map<string, number>();
  const requests: TestUpstream["requests"] = [];
  let clock = Date.parse("2026-01-01T00:00:00Z");
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.replace(/^\//, ""));
    const conditional = Boolean(req.headers["if-none-match"] || req.headers["if-modified-since"]);
    const send = (status: number, body?: Buffer, headers: Record<string, string> = {}) => {
      requests.push({ path, status, conditional });
      res.writeHead(status, headers);
      res.end(body);
    };
    const failure = failures.get(path);
    if (failure) return send(failure, Buffer.from("upstream trouble"));
    const f = files.get(path);
    if (!f) return send(404, Buffer.from("not found"));
    if (req.headers["if-none-match"] === f.etag) return send(304);
    send(200, f.bytes, { etag: f.etag, "last-modified": f.modified, "content-length": String(f.bytes.length) });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    put(path, bytes) {
      const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
      clock += 60_000;
      files.set(path, { bytes: b, etag: `"${createHash("sha256").update(b).digest("hex").slice(0, 16)}"`, modified: new Date(clock).toUTCString() });
    },
    remove: (path) => void files.delete(path),
    fail: (path, status) => (status ? failures.set(path, status) : failures.delete(path)),
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
