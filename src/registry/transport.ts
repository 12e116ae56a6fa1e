// The HTTP side of the registry client: per-registry connection pools, auth (Basic, Bearer tokens with a
// cache, identity and registry tokens), retries with backoff, Retry-After, redirects that drop credentials
// across hosts, SSRF checks, concurrency and rate limits, and metrics hooks. It knows nothing of manifests.
//
// Writes (PUT, POST, PATCH with a Buffer body, for pushing) differ from reads in three ways:
//  - Bearer tokens are asked for `repository:NAME:pull,push` (the read scopes learned from challenges are
//    kept apart, so a later read does not carry push rights it does not need);
//  - a 5xx or a dropped connection is retried only when the request is idempotent (PUT by default: a
//    monolithic blob PUT names its digest, a manifest PUT its bytes; POST and PATCH are not, since the
//    registry may have acted on the first); 429 is always retried (the registry did nothing);
//  - a redirect is followed only if it is a 307/308 on the registry's own host: the body is never sent
//    elsewhere. Upload `Location`s are checked the same way by uploadPath().
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { request, type Agent, type Dispatcher } from "undici";
import { classifyHost, defaultEgressGuard, egressPolicy, egressRefusal, refuseHost, type AddressClass, type EgressGuard, type EgressPolicy } from "../net/egress.js";
import { findChallenge, parseChallenges, type Challenge } from "./auth/challenge.js";
import { RegistryConnections, type HostConnection } from "./connections.js";
import type { Credential, Keyring } from "./auth/types.js";
import { RegistryError, registryErrorBody } from "./errors.js";
import { backoffDelay, parseRetryAfter, RateLimiter, Semaphore } from "./limits.js";
import { RegistryOptionsSchema, type RegistryOptions, type RegistryOptionsInput } from "./options.js";

export interface RegistryMetrics {
  request?(e: { registry: string; method: string; status: number | "error"; durationMs: number }): void;
  bytes?(e: { registry: string; bytes: number }): void;
  tokenFetch?(e: { registry: string; ok: boolean }): void;
}

export type HttpMethod = "GET" | "HEAD" | "PUT" | "POST" | "PATCH";

const WRITE_METHODS: ReadonlySet<HttpMethod> = new Set(["PUT", "POST", "PATCH"]);

export interface SendOptions {
  method?: HttpMethod;
  /** Path beginning with /v2/ (with a query for upload URLs, see uploadPath()). */
  path: string;
  headers?: Record<string, string>;
  /** The body of a PUT, POST or PATCH; a Buffer, so a retry or the round after a 401 can send it again. */
  body?: Buffer;
  /** Ask Bearer token servers for push rights as well as pull. Default: true for PUT, POST and PATCH. */
  push?: boolean;
  /**
   * Whether a 5xx or a dropped connection may be retried. Default: true for GET, HEAD and PUT, false for
   * POST and PATCH.
   */
  idempotent?: boolean;
  signal?: AbortSignal;
  /** Statuses returned to the caller instead of raised (e.g. 404 for the referrers fallback). */
  passStatuses?: number[];
}

export interface RegistryResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
  url: string;
}

interface CachedToken {
  token: string;
  refreshAt: number;
}

/** How a repository asked to be authenticated the last time it asked. */
type AuthScheme = { kind: "basic" } | { kind: "bearer"; realm: string; service?: string; scopes: string[] };

/** A registry as this client uses it: the connections (perhaps shared), and this client's own limits. */
interface HostState {
  conn: HostConnection;
  semaphore: Semaphore;
  limiter: RateLimiter;
}

/**
 * Where a registry itself may be: anywhere but a cloud metadata service (in-cluster registries on private
 * addresses are normal, and loopback ones are how a node-local registry or a test looks).
 */
const REGISTRY_POLICY = egressPolicy("a registry", ["public", "private", "loopback", "link-local"]);

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d+)?$/;

function globMatchHost(pattern: string, host: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]*")}$`, "i");
  return re.test(host);
}

export class RegistryTransport {
  readonly options: RegistryOptions;
  private readonly hosts = new Map<string, HostState>();
  private readonly schemes = new Map<string, AuthScheme>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflightTokens = new Map<string, Promise<string>>();
  /** Which credential last worked for a registry/repository, so the next request starts with it. */
  private readonly workingCredential = new Map<string, number>();
  /** Connections: the process's shared ones when given (./connections.ts), else this client's own. */
  private readonly connections: RegistryConnections;
  private readonly ownConnections: boolean;
  /** Aborted by close(): every request of this client carries it. */
  private readonly ending = new AbortController();

  constructor(
    options: RegistryOptionsInput = {},
    private readonly keyring?: Keyring,
    private readonly metrics: RegistryMetrics = {},
    private readonly egress: EgressGuard = defaultEgressGuard,
    connections?: RegistryConnections,
  ) {
    this.options = RegistryOptionsSchema.parse(options);
    this.ownConnections = !connections;
    this.connections = connections ?? new RegistryConnections();
  }

  /**
   * Ends the client: a request still in flight (a body nobody read to its end) is aborted, which destroys its
   * connection, and the client's own connections (not shared ones) are destroyed. A graceful close waited for
   * such a body, forever: an index job whose scan left one unread never finished, and its runner took no more
   * jobs.
   */
  async close(): Promise<void> {
    this.ending.abort(new Error("the registry client was closed"));
    if (this.ownConnections) await this.connections.close();
  }

  /**
   * What a connection depends on besides the host: clients that differ in it do not share connections (the
   * egress guard among them: a client with a stricter guard never uses agents another guard made).
   */
  private connectionSettings(): unknown[] {
    const o = this.options;
    return [guardId(this.egress), o.connectTimeoutMs, o.headersTimeoutMs, o.bodyTimeoutMs, o.maxConcurrentPerRegistry];
  }

  /** Whether plain HTTP / unverified TLS is allowed for `registry`. */
  isInsecure(registry: string): boolean {
    return this.options.insecureRegistries.some((p) => globMatchHost(p, registry));
  }

  private makeAgent(policy: EgressPolicy, connect: { ca?: string; rejectUnauthorized?: boolean }, onConnect?: (c: AddressClass) => void): Agent {
    const o = this.options;
    return this.egress.agent(policy, { ...connect, connectTimeoutMs: o.connectTimeoutMs, headersTimeoutMs: o.headersTimeoutMs, bodyTimeoutMs: o.bodyTimeoutMs, connections: o.maxConcurrentPerRegistry * 2, onConnect });
  }

  private host(registry: string): HostState {
    let h = this.hosts.get(registry);
    if (!h) {
      const ca = this.options.caCertificates[registry];
      const insecure = this.isInsecure(registry);
      const conn = this.connections.host(JSON.stringify([registry, ca ?? null, insecure, ...this.connectionSettings()]), () => {
        const made: HostConnection = { dispatcher: this.makeAgent(REGISTRY_POLICY, ca ? { ca } : {}, (c) => (made.addressClass = c)) };
        if (insecure) made.insecureDispatcher = this.makeAgent(REGISTRY_POLICY, { rejectUnauthorized: false }, (c) => (made.addressClass = c));
        return made;
      });
      h = { conn, semaphore: new Semaphore(this.options.maxConcurrentPerRegistry), limiter: new RateLimiter(this.options.requestsPerSecond) };
      this.hosts.set(registry, h);
    }
    return h;
  }

  /**
   * What a token realm or a redirect of `registry` to another host may reach: public addresses, and the
   * registry's own class when that is loopback or private (a loopback registry may send us to loopback, an
   * in-cluster one to in-cluster storage); never link-local or metadata. The registry's class is that of
   * the address its connection went to (its literal or well-known name before any connection).
   */
  private followPolicy(registry: string): EgressPolicy {
    const own = this.host(registry).conn.addressClass ?? classifyHost(hostnameOf(registry)) ?? "public";
    const allow: AddressClass[] = own === "loopback" || own === "private" ? ["public", own] : ["public"];
    return egressPolicy(`a token realm or redirect of ${own === "public" ? "a public" : `a ${own}`} registry`, allow);
  }

  private followAgent(policy: EgressPolicy): Agent {
    return this.connections.followAgent(JSON.stringify([[...policy.allow].sort(), ...this.connectionSettings()]), () => this.makeAgent(policy, {}));
  }

  /**
   * Checks a URL the registry told us to follow (a token realm, a redirect). Refused: schemes other than
   * http(s), plain http from an https registry, and hosts the follow policy refuses as written; a name is
   * checked again for what it resolves to when the follow agent connects. The registry's own host is the
   * registry's (it goes through the registry's own agent).
   */
  private checkFollowedUrl(raw: string, registry: string, policy: EgressPolicy): URL | string {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      return `not a URL: ${JSON.stringify(raw.slice(0, 200))}`;
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") return `scheme ${u.protocol} is not allowed`;
    if (u.protocol === "http:" && this.host(registry).conn.scheme !== "http") return `plain http (${u.host}) from an https registry`;
    if (this.ownHost(u, registry)) return u;
    const refused = refuseHost(u.hostname, policy);
    return refused ? refused.message : u;
  }

  private ownHost(u: URL, registry: string): boolean {
    return u.hostname.replace(/^\[|\]$/g, "") === hostnameOf(registry);
  }

  /** The agent for a followed URL: the registry's own for its own host, else the guarded follow agent. */
  private followDispatcher(registry: string, u: URL, policy: EgressPolicy): Dispatcher {
    return this.ownHost(u, registry) ? this.host(registry).conn.dispatcher : this.followAgent(policy);
  }

  /** https always; http allowed (after https fails) for loopback and configured insecure registries. */
  private mayUseHttp(registry: string): boolean {
    return LOOPBACK.test(registry) || this.isInsecure(registry);
  }

  /**
   * Sends a request to `registry` for `repository` with pull rights, authenticating as the registry asks.
   * Raises RegistryError for every status >= 400 not in passStatuses.
   */
  async send(registry: string, repository: string, sent: SendOptions): Promise<RegistryResponse> {
    // Every request of the client ends with the client (close()), whatever the caller's own signal.
    const o = { ...sent, signal: sent.signal ? AbortSignal.any([sent.signal, this.ending.signal]) : this.ending.signal };
    const key = `${registry}/${repository}`;
    const creds = this.keyring ? await this.keyring.lookup(key, o.signal) : [];
    // Anonymous only when no credential matches (the kubelet's rule); otherwise each in turn.
    const candidates: Array<Credential | undefined> = creds.length ? creds : [undefined];
    const start = this.workingCredential.get(key) ?? 0;
    const order = candidates.map((_, i) => (i + start) % candidates.length);
    let last: RegistryResponse | undefined;
    for (const i of order) {
      const cred = candidates[i];
      let res = await this.sendWithScheme(registry, repository, o, cred, false);
      if (res.statusCode === 401) {
        // The scheme or token we used is stale: take the registry's challenge and try once more.
        await res.body.dump();
        this.learnScheme(registry, repository, res, wantsPush(o));
        res = await this.sendWithScheme(registry, repository, o, cred, true);
      }
      if (res.statusCode !== 401 && res.statusCode !== 403) {
        this.workingCredential.set(key, i);
        return this.checkStatus(registry, repository, res, o);
      }
      if (last) await last.body.dump().catch(() => undefined);
      last = res;
    }
    return this.checkStatus(registry, repository, last!, o, creds.map((c) => c.source));
  }

  private learnScheme(registry: string, repository: string, res: RegistryResponse, push: boolean): void {
    const challenges = parseChallenges(res.headers["www-authenticate"] as string | string[] | undefined);
    const bearer = findChallenge(challenges, "bearer");
    const basic = findChallenge(challenges, "basic");
    const key = `${registry}/${repository}`;
    if (bearer?.params.realm) {
      const prev = this.schemes.get(key);
      // What a write asks for is remembered as its read form; authorization() adds push back for writes.
      const challenged = bearerScopeOf(bearer);
      const asked = push && challenged ? withoutPush(challenged, repository) : challenged;
      const base = prev?.kind === "bearer" ? prev.scopes : [];
      // A newly required scope goes first: some registries read only the first.
      const scopes = asked ? [asked, ...base.filter((s) => s !== asked)] : base.length ? base : [`repository:${repository}:pull`];
      this.schemes.set(key, { kind: "bearer", realm: bearer.params.realm, service: bearer.params.service, scopes });
    } else if (basic) {
      this.schemes.set(key, { kind: "basic" });
    }
  }

  private async authorization(registry: string, repository: string, cred: Credential | undefined, fresh: boolean, push: boolean, signal?: AbortSignal): Promise<string | undefined> {
    const learned = this.schemes.get(`${registry}/${repository}`);
    if (!learned) return undefined;
    const scheme = learned.kind === "bearer" && push ? { ...learned, scopes: withPush(learned.scopes, repository) } : learned;
    if (scheme.kind === "basic") {
      if (!cred?.username && !cred?.password) return undefined;
      return `Basic ${Buffer.from(`${cred.username ?? ""}:${cred.password ?? ""}`).toString("base64")}`;
    }
    if (cred?.registryToken) return `Bearer ${cred.registryToken}`;
    const identity = cred ? createHash("sha256").update(`${cred.username ?? ""}\0${cred.password ?? ""}\0${cred.identityToken ?? ""}`).digest("hex").slice(0, 16) : "anonymous";
    const cacheKey = `${scheme.realm}\0${scheme.service ?? ""}\0${[...scheme.scopes].sort().join(" ")}\0${identity}`;
    const cached = this.tokens.get(cacheKey);
    if (cached && !fresh && Date.now() < cached.refreshAt) return `Bearer ${cached.token}`;
    if (fresh) this.tokens.delete(cacheKey);
    let inflight = this.inflightTokens.get(cacheKey);
    if (!inflight) {
      inflight = this.fetchToken(registry, scheme, cred, signal).then(
        (t) => {
          this.tokens.set(cacheKey, { token: t.token, refreshAt: Date.now() + t.lifetimeMs * 0.8 });
          return t.token;
        },
      ).finally(() => this.inflightTokens.delete(cacheKey));
      this.inflightTokens.set(cacheKey, inflight);
    }
    return `Bearer ${await inflight}`;
  }

  private async fetchToken(registry: string, scheme: Extract<AuthScheme, { kind: "bearer" }>, cred: Credential | undefined, signal?: AbortSignal): Promise<{ token: string; lifetimeMs: number }> {
    const policy = this.followPolicy(registry);
    const checked = this.checkFollowedUrl(scheme.realm, registry, policy);
    if (typeof checked === "string") {
      throw new RegistryError("BLOCKED_URL", `registry ${registry} names token realm ${JSON.stringify(scheme.realm)}, refused: ${checked}`, { registry });
    }
    const url = checked;
    const headers: Record<string, string> = { "user-agent": this.options.userAgent };
    let res: Dispatcher.ResponseData;
    try {
      if (cred?.identityToken) {
        // OAuth2 refresh-token grant; registries that do not implement POST answer 404: fall back to GET.
        const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: cred.identityToken, client_id: "portcullis", ...(scheme.service ? { service: scheme.service } : {}) });
        form.set("scope", scheme.scopes.join(" "));
        res = await request(url, { method: "POST", headers: { ...headers, "content-type": "application/x-www-form-urlencoded" }, body: form.toString(), dispatcher: this.followDispatcher(registry, url, policy), signal });
        if (res.statusCode === 404 || res.statusCode === 405) {
          await res.body.dump();
          res = await this.getToken(registry, url, scheme, cred, headers, policy, signal);
        }
      } else {
        res = await this.getToken(registry, url, scheme, cred, headers, policy, signal);
      }
    } catch (e) {
      this.metrics.tokenFetch?.({ registry, ok: false });
      const refused = egressRefusal(e);
      if (refused) throw new RegistryError("BLOCKED_URL", `registry ${registry} names token realm ${describeUrl(url)}, refused: ${refused.message}`, { registry }, { cause: e });
      throw new RegistryError("NETWORK", `token server ${url.host} for ${registry}: ${(e as Error).message}`, { registry }, { cause: e });
    }
    const text = await readCapped(res.body, this.options.maxTokenBytes, () => new RegistryError("TOO_LARGE", `token reply from ${url.host} is over ${this.options.maxTokenBytes} bytes`, { registry })).then((b) => b.toString("utf8"));
    if (res.statusCode === 401 || res.statusCode === 403) {
      this.metrics.tokenFetch?.({ registry, ok: false });
      throw new RegistryError("AUTH_FAILED", `token server ${url.host} refused ${cred ? `the credentials from ${cred.source}` : "an anonymous token"} for ${registry} (${res.statusCode})`, { registry, status: res.statusCode });
    }
    if (res.statusCode !== 200) {
      this.metrics.tokenFetch?.({ registry, ok: false });
      throw new RegistryError(res.statusCode === 429 ? "RATE_LIMITED" : "TOKEN_FAILED", `token server ${url.host} answered ${res.statusCode} for ${registry}`, { registry, status: res.statusCode });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new RegistryError("TOKEN_FAILED", `token server ${url.host} answered something that is not JSON`, { registry });
    }
    const token = typeof body.token === "string" && body.token ? body.token : typeof body.access_token === "string" ? body.access_token : "";
    if (!token) throw new RegistryError("TOKEN_FAILED", `token server ${url.host} answered without a token`, { registry });
    const expiresIn = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 60;
    this.metrics.tokenFetch?.({ registry, ok: true });
    return { token, lifetimeMs: expiresIn * 1000 };
  }

  private getToken(registry: string, url: URL, scheme: Extract<AuthScheme, { kind: "bearer" }>, cred: Credential | undefined, headers: Record<string, string>, policy: EgressPolicy, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const u = new URL(url);
    if (scheme.service) u.searchParams.set("service", scheme.service);
    for (const s of scheme.scopes) u.searchParams.append("scope", s);
    const h = { ...headers };
    if (cred && (cred.username || cred.password)) h.authorization = `Basic ${Buffer.from(`${cred.username ?? ""}:${cred.password ?? ""}`).toString("base64")}`;
    return request(u, { method: "GET", headers: h, dispatcher: this.followDispatcher(registry, u, policy), signal });
  }

  private async sendWithScheme(registry: string, repository: string, o: SendOptions, cred: Credential | undefined, fresh: boolean): Promise<RegistryResponse> {
    const auth = await this.authorization(registry, repository, cred, fresh, wantsPush(o), o.signal);
    const headers: Record<string, string> = { "user-agent": this.options.userAgent, "accept-encoding": "identity", ...o.headers };
    if (auth) headers.authorization = auth;
    const method = o.method ?? "GET";
    return this.sendWithRetries(registry, { method, path: o.path, headers, body: o.body, idempotent: o.idempotent ?? (method !== "POST" && method !== "PATCH") }, o.signal);
  }

  /**
   * One logical request: retries 429 (Retry-After), and 5xx and connection errors when idempotent;
   * follows redirects.
   */
  private async sendWithRetries(registry: string, req: OutgoingRequest, signal?: AbortSignal): Promise<RegistryResponse> {
    const { method, path } = req;
    const h = this.host(registry);
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= this.options.maxAttempts;
      await h.limiter.take(signal);
      const release = await h.semaphore.acquire(signal);
      const t0 = Date.now();
      let res: RegistryResponse;
      try {
        res = await this.sendFollowingRedirects(registry, h, req, signal);
      } catch (e) {
        release();
        this.metrics.request?.({ registry, method, status: "error", durationMs: Date.now() - t0 });
        if (e instanceof RegistryError || signal?.aborted) throw e;
        const refused = egressRefusal(e);
        if (refused) throw new RegistryError("BLOCKED_URL", `${registry}: refused: ${refused.message}`, { registry }, { cause: e });
        // A write that may have reached the registry is not sent again blindly: the caller knows whether
        // it is safe (see push.ts, which asks the registry what it has before starting over).
        if (last) throw new RegistryError("NETWORK", `${registry}: ${(e as Error).message}`, { registry }, { cause: e });
        if (!req.idempotent) throw new RegistryError("NETWORK", `${registry}: ${method} ${path.split("?")[0]} failed and is not retried (not idempotent): ${(e as Error).message}`, { registry }, { cause: e });
        await sleep(backoffDelay(attempt, this.options.backoffBaseMs), undefined, { signal });
        continue;
      }
      this.metrics.request?.({ registry, method, status: res.statusCode, durationMs: Date.now() - t0 });
      // The slot is held until the body is consumed (a streaming blob keeps it).
      res.body.once("close", release);
      res.body.once("error", release);
      if (method === "HEAD" || res.statusCode === 204) release();
      if (((res.statusCode >= 500 && req.idempotent) || res.statusCode === 429) && !last) {
        const retryAfter = parseRetryAfter(res.headers["retry-after"]);
        await res.body.dump().catch(() => undefined);
        release();
        if (res.statusCode === 429 && retryAfter !== undefined && retryAfter > this.options.maxRetryAfterMs) {
          throw new RegistryError("RATE_LIMITED", `${registry} is rate limiting; it asks to wait ${Math.ceil(retryAfter / 1000)} s`, { registry, status: 429, retryAfterMs: retryAfter });
        }
        await sleep(retryAfter ?? backoffDelay(attempt, this.options.backoffBaseMs), undefined, { signal });
        continue;
      }
      return res;
    }
  }

  private async sendFollowingRedirects(registry: string, h: HostState, req: OutgoingRequest, signal?: AbortSignal): Promise<RegistryResponse> {
    const { method, path } = req;
    const write = WRITE_METHODS.has(method);
    let url = await this.baseUrl(registry, h, signal) + path;
    let hdrs = req.headers;
    let dispatcher: Dispatcher = h.conn.scheme === "https" && h.conn.insecureDispatcher ? h.conn.insecureDispatcher : h.conn.dispatcher;
    for (let hop = 0; hop <= 5; hop++) {
      const res = await request(url, write ? { method, headers: hdrs, body: req.body, dispatcher, signal } : { method, headers: hdrs, dispatcher, signal });
      // A write follows only 307/308 (which keep the method and body); anything else is the answer.
      const redirect = write ? res.statusCode === 307 || res.statusCode === 308 : !(res.statusCode < 300 || res.statusCode >= 400 || res.statusCode === 304);
      if (!redirect || !res.headers.location) {
        return { statusCode: res.statusCode, headers: res.headers, body: res.body, url };
      }
      await res.body.dump();
      const next = new URL(String(res.headers.location), url).toString();
      const policy = this.followPolicy(registry);
      const checked = this.checkFollowedUrl(next, registry, policy);
      if (typeof checked === "string") throw new RegistryError("BLOCKED_URL", `${registry} redirected to ${new URL(next).host}, refused: ${checked}`, { registry });
      if (write && checked.host !== new URL(url).host) {
        throw new RegistryError("BLOCKED_URL", `${registry} redirected a ${method} to ${checked.host}, refused: pushed content goes only to the registry itself`, { registry });
      }
      if (checked.host !== new URL(url).host) {
        // Credentials never leave the registry's host (S3 presigned URLs also refuse a second auth).
        hdrs = Object.fromEntries(Object.entries(hdrs).filter(([k]) => k.toLowerCase() !== "authorization"));
        dispatcher = this.followDispatcher(registry, checked, policy);
      }
      url = checked.toString();
    }
    throw new RegistryError("UNEXPECTED_STATUS", `${registry}: more than 5 redirects for ${path}`, { registry });
  }

  /**
   * The path (with query) of the upload URL a registry names in `Location` (after POST or PATCH to
   * /blobs/uploads/): relative, or absolute on the registry's own host and port; the request goes over the
   * registry's own scheme. An absolute URL on another host is refused (BLOCKED_URL): credentials and
   * pushed content stay with the registry.
   */
  uploadPath(registry: string, res: RegistryResponse): string {
    const raw = res.headers.location;
    const location = Array.isArray(raw) ? raw[0] : raw;
    if (!location) throw new RegistryError("UNEXPECTED_STATUS", `${registry}: upload answer ${res.statusCode} has no Location`, { registry, status: res.statusCode });
    let u: URL;
    try {
      u = new URL(location, res.url);
    } catch {
      throw new RegistryError("UNEXPECTED_STATUS", `${registry}: upload Location ${JSON.stringify(location.slice(0, 200))} is not a URL`, { registry });
    }
    const own = new URL(res.url);
    const port = (x: URL) => x.port || (x.protocol === "https:" ? "443" : "80");
    if (u.hostname !== own.hostname || port(u) !== port(own) || (u.protocol !== "http:" && u.protocol !== "https:")) {
      throw new RegistryError("BLOCKED_URL", `${registry}: upload Location on ${u.host || u.protocol} refused: uploads go only to the registry itself`, { registry });
    }
    return `${u.pathname}${u.search}`;
  }

  /** The scheme for a registry: https, or http for loopback/insecure registries that do not speak TLS. */
  private async baseUrl(registry: string, h: HostState, signal?: AbortSignal): Promise<string> {
    const c = h.conn;
    if (c.scheme) return `${c.scheme}://${registry}`;
    if (!this.mayUseHttp(registry)) {
      c.scheme = "https";
      return `https://${registry}`;
    }
    try {
      const res = await request(`https://${registry}/v2/`, { method: "GET", dispatcher: c.insecureDispatcher ?? c.dispatcher, signal, headers: { "user-agent": this.options.userAgent } });
      await res.body.dump();
      c.scheme = "https";
    } catch (e) {
      if (signal?.aborted) throw e;
      c.scheme = "http";
    }
    return `${c.scheme}://${registry}`;
  }

  private async checkStatus(registry: string, repository: string, res: RegistryResponse, o: SendOptions, triedSources: string[] = []): Promise<RegistryResponse> {
    if (res.statusCode < 400 || o.passStatuses?.includes(res.statusCode)) return res;
    const text = o.method === "HEAD" ? "" : (await readCapped(res.body, 64 * 1024, () => new Error("too large")).catch(() => Buffer.alloc(0))).toString("utf8");
    const err = registryErrorBody(text);
    const where = `${registry}/${repository}`;
    const detail = err.message ? `: ${err.message}` : "";
    const d = { registry, repository, status: res.statusCode, registryCode: err.code };
    switch (res.statusCode) {
      case 401:
        throw new RegistryError("AUTH_FAILED", `${where}: not authorized (${triedSources.length ? `tried ${triedSources.join(", ")}` : "anonymous; no credentials match this registry"})${detail}`, d);
      case 403:
        throw new RegistryError("DENIED", `${where}: access denied${detail}`, d);
      case 404: {
        const code = err.code === "BLOB_UNKNOWN" ? "BLOB_UNKNOWN" : err.code === "NAME_UNKNOWN" ? "NAME_UNKNOWN" : o.path.includes("/blobs/") ? "BLOB_UNKNOWN" : "MANIFEST_UNKNOWN";
        throw new RegistryError(code, `${where}: ${code === "NAME_UNKNOWN" ? "repository not found" : code === "BLOB_UNKNOWN" ? "blob not found" : "manifest not found"} (${o.path.split("/").pop()})${detail}`, d);
      }
      case 429:
        throw new RegistryError("RATE_LIMITED", `${where}: rate limited by the registry${detail}`, { ...d, retryAfterMs: parseRetryAfter(res.headers["retry-after"]) });
      default:
        if (res.statusCode >= 500) throw new RegistryError("SERVER_ERROR", `${where}: registry error ${res.statusCode}${detail}`, d);
        throw new RegistryError("UNEXPECTED_STATUS", `${where}: unexpected status ${res.statusCode}${detail}`, d);
    }
  }
}

const guardIds = new WeakMap<EgressGuard, number>();
let guardsSeen = 0;

/** A number per egress guard object, for connection keys. */
function guardId(g: EgressGuard): number {
  let id = guardIds.get(g);
  if (id === undefined) guardIds.set(g, (id = ++guardsSeen));
  return id;
}

interface OutgoingRequest {
  method: HttpMethod;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  idempotent: boolean;
}

function wantsPush(o: SendOptions): boolean {
  return o.push ?? WRITE_METHODS.has(o.method ?? "GET");
}

/** The scopes a write asks for: the repository's own scope gains `push` (first, if it had none). */
export function withPush(scopes: string[], repository: string): string[] {
  const own = `repository:${repository}:`;
  let found = false;
  const out = scopes.map((s) => {
    if (!s.startsWith(own)) return s;
    found = true;
    return own + [...new Set(["pull", "push", ...s.slice(own.length).split(",").filter(Boolean)])].join(",");
  });
  return found ? out : [`${own}pull,push`, ...scopes];
}

/** A write's challenged scope as the read it implies: the repository's own scope without `push`. */
export function withoutPush(scope: string, repository: string): string {
  const own = `repository:${repository}:`;
  if (!scope.startsWith(own)) return scope;
  const actions = scope.slice(own.length).split(",").filter((a) => a && a !== "push");
  return own + (actions.length ? actions.join(",") : "pull");
}

function bearerScopeOf(ch: Challenge): string | undefined {
  const s = ch.params.scope;
  return s ? s.split(" ")[0] : undefined;
}

/**
 * Reads a whole body (undici's, or a fetch Response's), refusing more than `max` bytes while reading. Leaving
 * the loop by the throw ends the iteration, which destroys (or cancels) the stream.
 */
export async function readCapped(body: AsyncIterable<Uint8Array>, max: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) throw tooLarge();
    chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }
  return Buffer.concat(chunks);
}

/** The host name of `host[:port]` / `[v6]:port`, without brackets. */
function hostnameOf(hostPort: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(hostPort);
  return m ? m[1]! : hostPort.replace(/:\d+$/, "");
}

/** scheme://host/path: never a query (signatures) nor credentials. */
function describeUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}`;
}
