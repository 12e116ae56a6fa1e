// A Docker registry token server (distribution's token auth spec) for tests: it answers
// GET /token?service=S&scope=repository:NAME:ACTIONS with a JWT signed by a key whose certificate chains to
// the registry's `rootcertbundle`, so the registry's real `WWW-Authenticate: Bearer` flow runs end to end.
// Users with a password get every action they ask for; anonymous callers get `pull` on `public/*` only.
import { randomBytes, sign } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { LeafCertificate } from "./certs.js";

export interface TokenServerOptions {
  service: string;
  issuer: string;
  signer: LeafCertificate;
  users: Record<string, string>;
  /** Seconds; omitted from the reply when 0 (clients must then assume 60 s). */
  expiresIn?: number;
  /** Which field carries the token: Docker's `token`, OAuth's `access_token`, or both. */
  field?: "token" | "access_token" | "both";
}

export interface TokenRequestRecord {
  user: string | null;
  service: string | null;
  scopes: string[];
  status: number;
}

export class TokenServer {
  private server: Server | undefined;
  readonly requests: TokenRequestRecord[] = [];
  url = "";

  constructor(private readonly opts: TokenServerOptions) {}

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      if (u.pathname === "/stats") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ requests: this.requests }));
        return;
      }
      if (u.pathname !== "/token" || (req.method !== "GET" && req.method !== "POST")) {
        res.writeHead(404).end();
        return;
      }
      const user = this.authenticate(req);
      const scopes = u.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
      const record: TokenRequestRecord = { user: user === undefined ? null : user, service: u.searchParams.get("service"), scopes, status: 200 };
      this.requests.push(record);
      if (user === undefined) {
        record.status = 401;
        res.writeHead(401, { "content-type": "application/json", "www-authenticate": 'Basic realm="token"' }).end(JSON.stringify({ details: "bad credentials" }));
        return;
      }
      const token = this.issue(user, record.service ?? this.opts.service, scopes);
      const body: Record<string, unknown> = { issued_at: new Date().toISOString() };
      const field = this.opts.field ?? "token";
      if (field === "token" || field === "both") body.token = token;
      if (field === "access_token" || field === "both") body.access_token = token;
      const expiresIn = this.opts.expiresIn ?? 300;
      if (expiresIn > 0) body.expires_in = expiresIn;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    const addr = this.server.address();
    if (!addr || typeof addr === "string") throw new Error("token server has no address");
    this.url = `http://127.0.0.1:${addr.port}/token`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** undefined: bad credentials; null: anonymous; string: the user. */
  private authenticate(req: IncomingMessage): string | null | undefined {
    const h = req.headers.authorization;
    if (!h) return null;
    const m = /^Basic\s+(.+)$/i.exec(h);
    if (!m) return undefined;
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    const [user, pass] = [decoded.slice(0, i), decoded.slice(i + 1)];
    return this.opts.users[user] !== undefined && this.opts.users[user] === pass ? user : undefined;
  }

  private issue(user: string | null, service: string, scopes: string[]): string {
    const access = scopes.flatMap((scope) => {
      const parts = scope.split(":");
      if (parts.length < 3) return [];
      const [type, ...rest] = parts;
      const actions = rest.pop()!.split(",");
      const name = rest.join(":");
      const granted = user !== null ? actions : name.startsWith("public/") ? actions.filter((a) => a === "pull") : [];
      return granted.length ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "RS256", typ: "JWT", x5c: [this.opts.signer.derBase64] };
    const claims = {
      iss: this.opts.issuer,
      sub: user ?? "",
      aud: service,
      exp: now + Math.max(this.opts.expiresIn ?? 300, 60),
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString("hex"),
      access,
    };
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const input = `${enc(header)}.${enc(claims)}`;
    const signature = sign("sha256", Buffer.from(input), this.opts.signer.keyPem).toString("base64url");
    return `${input}.${signature}`;
  }
}

