import { request } from "undici";

/** A small JSON/XML request for cloud credential endpoints: timeouts, a size cap, the body as text. */
export async function smallRequest(url: string, init: { method?: "GET" | "POST" | "PUT"; headers?: Record<string, string>; body?: string; timeoutMs?: number; maxBytes?: number; signal?: AbortSignal }): Promise<{ status: number; text: string }> {
  const res = await request(url, {
    method: init.method ?? "GET",
    headers: init.headers,
    body: init.body,
    headersTimeout: init.timeoutMs ?? 10_000,
    bodyTimeout: init.timeoutMs ?? 10_000,
    signal: init.signal,
  });
  const max = init.maxBytes ?? 64 * 1024;
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > max) {
      res.body.destroy();
      throw new Error(`reply from ${new URL(url).host} is over ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return { status: res.statusCode, text: Buffer.concat(chunks).toString("utf8") };
}
