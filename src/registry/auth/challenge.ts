// Parsing of `WWW-Authenticate` (RFC 7235 §4.1 / RFC 9110 §11.6.1): one header may carry several
// challenges, and a response may carry several headers.
//
//   challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//   auth-param = token BWS "=" BWS ( token / quoted-string )
//   token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//
// The parser is a single forward scan (linear time, no regular expressions on the input) and is lenient
// where real registries are sloppy: missing commas between parameters, unquoted values holding `/` or
// `:`, unterminated quoted strings, stray commas and whitespace. Whatever cannot be parsed is skipped; it
// never throws.

export interface Challenge {
  /** The auth scheme, lowercased: "bearer", "basic", ... */
  scheme: string;
  /** Auth params, keys lowercased, values unquoted and unescaped. The first occurrence of a key wins. */
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when the challenge carries one instead of params. */
  token68?: string;
}

const TCHAR_EXTRA = "!#$%&'*+-.^_`|~";
const TOKEN68_EXTRA = "-._~+/";

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
function isTchar(ch: string): boolean {
  return isAlnum(ch.charCodeAt(0)) || TCHAR_EXTRA.includes(ch);
}
function isToken68Char(ch: string): boolean {
  return isAlnum(ch.charCodeAt(0)) || TOKEN68_EXTRA.includes(ch);
}
function isWs(ch: string | undefined): boolean {
  return ch === " " || ch === "\t" || ch === "\r" || ch === "\n";
}

class Scanner {
  pos = 0;
  constructor(readonly s: string) {}

  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string | undefined {
    return this.s[this.pos];
  }
  skipWs(): void {
    while (isWs(this.s[this.pos])) this.pos++;
  }
  /** Whitespace and list separators. */
  skipWsAndCommas(): void {
    while (isWs(this.s[this.pos]) || this.s[this.pos] === ",") this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (this.pos < this.s.length && isTchar(this.s[this.pos] as string)) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** A quoted-string starting at the opening quote; an unterminated one runs to the end of the input. */
  quoted(): string {
    this.pos++; // opening quote
    let out = "";
    let chunk = this.pos;
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos];
      if (ch === "\\") {
        out += this.s.slice(chunk, this.pos);
        this.pos++;
        if (this.pos < this.s.length) out += this.s[this.pos];
        this.pos++;
        chunk = this.pos;
      } else if (ch === '"') {
        out += this.s.slice(chunk, this.pos);
        this.pos++;
        return out;
      } else {
        this.pos++;
      }
    }
    return out + this.s.slice(chunk, Math.min(this.pos, this.s.length));
  }
  /** A lenient unquoted value: everything up to a comma or whitespace. */
  bareValue(): string {
    const start = this.pos;
    while (this.pos < this.s.length && this.s[this.pos] !== "," && !isWs(this.s[this.pos])) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** Skip to the next comma outside a quoted string (error recovery). */
  skipElement(): void {
    while (this.pos < this.s.length && this.s[this.pos] !== ",") {
      if (this.s[this.pos] === '"') this.quoted();
      else this.pos++;
    }
  }
  /** Looking at `token BWS "="` (the start of an auth-param)? Does not move. */
  atParam(): boolean {
    const save = this.pos;
    const name = this.token();
    this.skipWs();
    const result = name.length > 0 && this.peek() === "=";
    this.pos = save;
    return result;
  }
  /** Looking at a token68 that ends the challenge (end of input or a comma follows)? Moves past it if so. */
  tryToken68(): string | undefined {
    const save = this.pos;
    while (this.pos < this.s.length && isToken68Char(this.s[this.pos] as string)) this.pos++;
    if (this.pos === save) return undefined;
    while (this.s[this.pos] === "=") this.pos++;
    const value = this.s.slice(save, this.pos);
    this.skipWs();
    if (this.done || this.peek() === ",") return value;
    this.pos = save;
    return undefined;
  }
}

function parseOne(header: string, out: Challenge[]): void {
  const sc = new Scanner(header);
  for (;;) {
    sc.skipWsAndCommas();
    if (sc.done) return;
    const scheme = sc.token();
    if (scheme.length === 0) {
      // Not a token: garbage. Skip this list element (or at least one character) and go on.
      const before = sc.pos;
      sc.skipElement();
      if (sc.pos === before) sc.pos++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: Object.create(null) };
    out.push(challenge);
    // `Basic=...` (no space after the scheme) is not a challenge; treat as garbage after an empty one.
    const hadSpace = isWs(sc.peek());
    sc.skipWs();
    if (sc.done || sc.peek() === ",") continue;
    if (!hadSpace) {
      sc.skipElement();
      continue;
    }
    // token68 only when it is all the challenge holds (`abc==` then end or comma); `realm=x` is a param.
    const t68 = sc.tryToken68();
    if (t68 !== undefined) {
      challenge.token68 = t68;
      continue;
    }
    parseParams(sc, challenge);
  }
}

/** Reads auth-params until the input ends or what follows is a new challenge (a token not followed by "="). */
function parseParams(sc: Scanner, challenge: Challenge): void {
  for (;;) {
    sc.skipWsAndCommas();
    if (sc.done) return;
    if (!sc.atParam()) {
      // A token without "=" starts the next challenge. Anything else is garbage inside this challenge.
      const save = sc.pos;
      if (sc.token().length > 0) {
        sc.pos = save;
        return;
      }
      sc.skipElement();
      if (sc.pos === save) sc.pos++;
      continue;
    }
    const name = sc.token().toLowerCase();
    sc.skipWs();
    sc.pos++; // "="
    sc.skipWs();
    const value = sc.peek() === '"' ? sc.quoted() : sc.bareValue();
    if (!Object.prototype.hasOwnProperty.call(challenge.params, name)) challenge.params[name] = value;
  }
}

/**
 * Parses one or several `WWW-Authenticate` header values into challenges, in order. Never throws: input
 * that is not a string (or an array of strings) gives no challenges, and garbage inside a header is
 * skipped.
 */
export function parseChallenges(header: string | readonly string[] | undefined | null): Challenge[] {
  const out: Challenge[] = [];
  const headers: readonly unknown[] = Array.isArray(header) ? header : [header];
  for (const h of headers) {
    if (typeof h === "string") parseOne(h, out);
  }
  // Plain objects for callers (the parser uses null-prototype ones so a "__proto__" key is just a key).
  return out.map((c) => {
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.params)) {
      Object.defineProperty(params, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return c.token68 === undefined ? { scheme: c.scheme, params } : { scheme: c.scheme, params, token68: c.token68 };
  });
}

/** The scopes of a Bearer challenge: its `scope` param split on whitespace (none when absent). */
export function bearerScopes(ch: Challenge): string[] {
  const scope = ch.params["scope"];
  if (typeof scope !== "string") return [];
  return scope.split(/[ \t]+/).filter((s) => s.length > 0);
}

/** The first challenge with the given scheme (case-insensitive), if any. */
export function findChallenge(challenges: readonly Challenge[], scheme: string): Challenge | undefined {
  const want = scheme.toLowerCase();
  return challenges.find((c) => c.scheme === want);
}
