import { describe, expect, it, vi } from "vitest";
import type { DockerConfig } from "./dockerconfig.js";
import { parseDockerConfig } from "./dockerconfig.js";
import {
  ChainKeyring,
  DockerConfigKeyring,
  dedupeCredentials,
  imageRegistryHost,
  normalizeRegistryKey,
  parseImageLocation,
  registryKeyMatches,
} from "./keyring.js";
import type { Credential, CredentialProvider, Keyring } from "./types.js";

/** A one-config keyring with one entry per key; the password names the key so results are easy to read. */
function ring(keys: string[], source = "test"): DockerConfigKeyring {
  const config: DockerConfig = {
    source,
    entries: keys.map((key) => ({ key, username: "u", password: key })),
    credHelpers: {},
  };
  return new DockerConfigKeyring(config);
}

function passwords(creds: Credential[]): (string | undefined)[] {
  return creds.map((c) => c.password);
}

describe("normalizeRegistryKey", () => {
  it.each([
    ["https://index.docker.io/v1/", "index.docker.io"],
    ["index.docker.io/v1/", "index.docker.io"],
    ["http://reg.example.com:5000", "reg.example.com:5000"],
    ["https://reg.example.com/v2/", "reg.example.com"],
    ["https://reg.example.com/v2/team", "reg.example.com/team"],
    ["https://reg.example.com/v1", "reg.example.com"],
    ["reg.example.com/", "reg.example.com"],
    ["reg.example.com/team/", "reg.example.com/team/"],
    ["REG.Example.COM/Team", "reg.example.com/Team"],
    ["*.azurecr.io", "*.azurecr.io"],
    ["  gcr.io  ", "gcr.io"],
    ["https://user@reg.example.com", "reg.example.com"],
    ["[::1]:5000/v2/", "[::1]:5000"],
    ["reg.example.com/v10/x", "reg.example.com/v10/x"],
  ])("%s => %s", (raw, want) => {
    expect(normalizeRegistryKey(raw)).toBe(want);
  });

  it("rejects keys without a host", () => {
    expect(normalizeRegistryKey("")).toBeUndefined();
    expect(normalizeRegistryKey("https://")).toBeUndefined();
    expect(normalizeRegistryKey("/v2/")).toBeUndefined();
    expect(normalizeRegistryKey(":5000")).toBeUndefined();
    expect(normalizeRegistryKey("[::1")).toBeUndefined();
  });
});

describe("parseImageLocation and imageRegistryHost", () => {
  it.each([
    ["nginx", "", "/library/nginx", true, "registry-1.docker.io"],
    ["nginx:1.25", "", "/library/nginx:1.25", true, "registry-1.docker.io"],
    ["bitnami/redis", "", "/bitnami/redis", true, "registry-1.docker.io"],
    ["docker.io/nginx", "docker.io", "/library/nginx", true, "docker.io"],
    ["registry-1.docker.io/library/nginx", "registry-1.docker.io", "/library/nginx", true, "registry-1.docker.io"],
    ["index.docker.io/foo/bar", "index.docker.io", "/foo/bar", true, "index.docker.io"],
    ["myhostdocker.io/foo/bar", "myhostdocker.io", "/foo/bar", false, "myhostdocker.io"],
    ["registry:5000/foo/bar", "registry", "/foo/bar", false, "registry:5000"],
    ["localhost/foo", "localhost", "/foo", false, "localhost"],
    ["MyHost/foo", "myhost", "/foo", false, "myhost"],
    ["Quay.IO/Org/App", "quay.io", "/Org/App", false, "quay.io"],
    ["[::1]:5000/app", "[::1]", "/app", false, "[::1]:5000"],
  ])("%s", (image, host, path, dockerHub, registryHost) => {
    expect(parseImageLocation(image)).toMatchObject({ host, path, dockerHub });
    expect(imageRegistryHost(image)).toBe(registryHost);
  });

  it("rejects empty and malformed images", () => {
    expect(parseImageLocation("")).toBeUndefined();
    expect(parseImageLocation("/foo")).toBeUndefined();
    expect(parseImageLocation("[::1/foo")).toBeUndefined();
    expect(imageRegistryHost("")).toBe("");
  });
});

// The kubelet's documented rules and the inputs of its keyring tests (pkg/credentialprovider), plus the
// edge cases of research §1.3. A bare host `image` is looked up as `<image>/foo/bar`.
const matchTable: [key: string, image: string, matches: boolean][] = [
  // no path component
  ["*.kubernetes.io", "prefix.kubernetes.io", true],
  ["prefix.*.io", "prefix.kubernetes.io", true],
  ["prefix.kubernetes.*", "prefix.kubernetes.io", true],
  ["*-good.kubernetes.io", "prefix-good.kubernetes.io", true],
  // path components
  ["*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true],
  ["prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true],
  // paths and ports
  ["*.kubernetes.io:1111/blah", "prefix.kubernetes.io:1111/blah", true],
  ["prefix.*.io:1111/foo", "prefix.kubernetes.io:1111/foo/bar", true],
  // number of labels differs
  ["*.kubernetes.io", "kubernetes.io", false],
  ["*.*.kubernetes.io", "prefix.kubernetes.io", false],
  ["*.*.kubernetes.io", "kubernetes.io", false],
  // a label differs
  ["kubernetes.io", "kubernetes.com", false],
  ["k*.io", "quay.io", false],
  // ports differ
  ["*.kubernetes.io:1234/blah", "prefix.kubernetes.io:1111/blah", false],
  ["prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar", false],
  // keys with schemes and /v1/ /v2/
  ["https://hello.kubernetes.io", "hello.kubernetes.io", true],
  ["https://*.docker.io", "prefix.docker.io", true],
  ["https://prefix.*.io", "prefix.docker.io", true],
  ["https://prefix.docker.*", "prefix.docker.io", true],
  ["https://*.docker.io/path", "prefix.docker.io/path", true],
  ["https://prefix.*.io/path", "prefix.docker.io/path/subpath", true],
  ["https://prefix.docker.*/path", "prefix.docker.io/path", true],
  ["https://*.docker.io:8888", "prefix.docker.io:8888", true],
  ["https://prefix.*.io:8888", "prefix.docker.io:8888", true],
  ["https://prefix.docker.*:8888", "prefix.docker.io:8888", true],
  ["https://*.docker.io/path:1111", "prefix.docker.io/path:1111", true],
  ["https://*.docker.io/v1/", "prefix.docker.io/path:1111", true],
  ["https://*.docker.io/v2/", "prefix.docker.io/path:1111", true],
  ["https://prefix.docker.*/path:1111", "prefix.docker.io/path:1111", true],
  ["prefix.docker.io:1111", "prefix.docker.io:1111/path", true],
  ["*.docker.io:1111", "prefix.docker.io:1111/path", true],
  // misses
  ["https://hello.kubernetes.io", "world.mesos.org/foo/bar", false],
  ["https://*.docker.com", "prefix.docker.io", false],
  ["https://suffix.*.io", "prefix.docker.io", false],
  ["https://prefix.docker.c*", "prefix.docker.io", false],
  ["https://prefix.*.io/path:1111", "prefix.docker.io/path/subpath:1111", false],
  ["suffix.*.io", "prefix.docker.io", false],
  // the kubelet's matchImages examples
  ["123456789.dkr.ecr.us-east-1.amazonaws.com", "123456789.dkr.ecr.us-east-1.amazonaws.com/app", true],
  ["123456789.dkr.ecr.us-east-1.amazonaws.com", "123456789.dkr.ecr.us-west-2.amazonaws.com/app", false],
  ["*.azurecr.io", "myreg.azurecr.io/app", true],
  ["*.azurecr.io", "azurecr.io/app", false],
  ["*.azurecr.io", "a.b.azurecr.io/app", false],
  ["gcr.io", "gcr.io/project/app", true],
  ["gcr.io", "us.gcr.io/project/app", false],
  ["*.*.registry.io", "a.b.registry.io/app", true],
  ["*.*.registry.io", "a.registry.io/app", false],
  ["registry.io:8080/path", "registry.io:8080/path/app", true],
  ["registry.io:8080/path", "registry.io/path/app", false],
  ["registry.io:8080/path", "registry.io:8080/other/app", false],
  ["*.io", "k8s.io/app", true],
  ["*.io", "a.k8s.io/app", false],
  // partial labels
  ["app*.k8s.io", "app1.k8s.io/x", true],
  ["app*.k8s.io", "app.k8s.io/x", true],
  ["app*.k8s.io", "myapp.k8s.io/x", false],
  ["*a*b*.io", "xaybz.io/x", true],
  ["*a*b*.io", "xbya.io/x", false],
  // ports are compared as written
  ["reg.example.com:443", "reg.example.com/app", false],
  ["reg.example.com", "reg.example.com:443/app", false],
  ["reg.example.com:443", "reg.example.com:443/app", true],
  ["https://reg.example.com:443/v2/", "reg.example.com:443/app", true],
  // the key's path is a raw prefix
  ["reg.io/team", "reg.io/teamX/app", true],
  ["reg.io/team", "reg.io/team/app", true],
  ["reg.io/team/", "reg.io/team/app", true],
  ["reg.io/team/", "reg.io/teamX/app", false],
  ["reg.io/team", "reg.io/tea/app", false],
  ["reg.io/Team", "reg.io/team/app", false],
  // hosts are case-insensitive
  ["REG.IO", "reg.io/app", true],
  ["reg.io", "Reg.Io/app", true],
  // Docker Hub aliases
  ["https://index.docker.io/v1/", "registry-1.docker.io/library/nginx", true],
  ["https://index.docker.io/v1/", "docker.io/library/nginx", true],
  ["https://index.docker.io/v1/", "index.docker.io/google/docker-registry", true],
  ["https://index.docker.io/v1/", "google/docker-registry", true],
  ["https://index.docker.io/v1/", "jenkins", true],
  ["docker.io", "registry-1.docker.io/library/nginx", true],
  ["registry-1.docker.io", "nginx", true],
  ["docker.io/myorg", "myorg/app", true],
  ["docker.io/myorg", "registry-1.docker.io/myorg/app", true],
  ["docker.io/myorg", "otherorg/app", false],
  ["docker.io/library", "nginx", true],
  ["https://index.docker.io/v1/", "world.mesos.org/foo/bar", false],
  ["https://index.docker.io/v1/", "myhostdocker.io/foo/bar", false],
  ["https://index.docker.io/v1/", "registry:5000/foo/bar", false],
  ["https://index.docker.io/v1/", "docker.io:443/library/nginx", false],
  ["*.docker.io", "docker.io/library/nginx", true],
  ["*.docker.io", "quay.io/app", false],
];

describe("registryKeyMatches (table)", () => {
  it.each(matchTable)("key %s, image %s => %s", (key, image, want) => {
    const target = image.includes("/") || !/[.:]/.test(image) ? image : `${image}/foo/bar`;
    expect(registryKeyMatches(key, target)).toBe(want);
    // The keyring agrees with the predicate.
    expect(ring([key]).lookupSync(target).length).toBe(want ? 1 : 0);
  });

  it("does not blow up on hostile globs", () => {
    const started = Date.now();
    const key = `${"*a".repeat(2000)}.io`;
    expect(registryKeyMatches(key, `${"a".repeat(5000)}b.io/x`)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe("DockerConfigKeyring", () => {
  it("tries keys in reverse order: longer paths and plain labels before globs", () => {
    const kr = ring(["reg.io", "reg.io/team", "reg.io/team/app", "*.io", "https://reg.io/v2/team/"]);
    expect(kr.keys()).toEqual(["reg.io/team/app", "reg.io/team/", "reg.io/team", "reg.io", "*.io"]);
    expect(passwords(kr.lookupSync("reg.io/team/app:1"))).toEqual([
      "reg.io/team/app",
      "https://reg.io/v2/team/",
      "reg.io/team",
      "reg.io",
      "*.io",
    ]);
    expect(passwords(kr.lookupSync("reg.io/other"))).toEqual(["reg.io", "*.io"]);
    expect(kr.lookupSync("quay.example.com/app")).toEqual([]);
  });

  it("returns Docker Hub credentials for the image's own host first, then index.docker.io, docker.io", () => {
    const kr = ring(["https://index.docker.io/v1/", "docker.io", "registry-1.docker.io", "quay.io"]);
    expect(passwords(kr.lookupSync("registry-1.docker.io/library/nginx"))).toEqual([
      "registry-1.docker.io",
      "https://index.docker.io/v1/",
      "docker.io",
    ]);
    expect(passwords(kr.lookupSync("docker.io/library/nginx"))).toEqual([
      "docker.io",
      "https://index.docker.io/v1/",
      "registry-1.docker.io",
    ]);
    expect(passwords(kr.lookupSync("nginx"))).toEqual([
      "https://index.docker.io/v1/",
      "docker.io",
      "registry-1.docker.io",
    ]);
  });

  it("gives exactly one hit for an unqualified Hub image with one Hub key (kubelet test)", () => {
    const cfg = parseDockerConfig(
      JSON.stringify({ "https://index.docker.io/v1/": { email: "foo@bar.baz", auth: "Zm9vOmJhcg==" } }),
      "secret default/legacy",
    );
    const kr = new DockerConfigKeyring(cfg);
    expect(kr.lookupSync("google/docker-registry")).toEqual([
      { username: "foo", password: "bar", source: "secret default/legacy" },
    ]);
    expect(kr.lookupSync("jenkins")).toHaveLength(1);
    expect(kr.lookupSync("world.mesos.org/foo/bar")).toEqual([]);
  });

  it("merges several configs: keys sorted together, same key in config order, duplicates removed", () => {
    const a = parseDockerConfig(
      JSON.stringify({ auths: { "reg.io": { auth: "YTpwYQ" }, "reg.io/team": { username: "t", password: "pt" } } }),
      "secret ns/a",
    );
    const b = parseDockerConfig(
      JSON.stringify({
        auths: { "https://reg.io/v2/": { username: "b", password: "pb" }, "other.io": { auth: "YTpwYQ" } },
      }),
      "secret ns/b",
    );
    const c = parseDockerConfig(JSON.stringify({ auths: { "reg.io": { auth: "YTpwYQ==" } } }), "secret ns/c");
    const kr = new DockerConfigKeyring([a, b, c]);
    expect(kr.lookupSync("reg.io/team/app")).toEqual([
      { username: "t", password: "pt", source: "secret ns/a" },
      { username: "a", password: "pa", source: "secret ns/a" },
      { username: "b", password: "pb", source: "secret ns/b" },
    ]);
  });

  it("skips entries without a secret and keeps token-only ones", () => {
    const cfg = parseDockerConfig(
      JSON.stringify({
        auths: {
          "empty.io": {},
          "email.io": { email: "x@y" },
          "user.io": { username: "only" },
          "token.io": { auth: Buffer.from("someone:").toString("base64"), identitytoken: "refresh" },
          "both.io": { username: "u", password: "p", identitytoken: "refresh" },
          "bearer.io": { registrytoken: "bearer" },
        },
        credsStore: "desktop",
      }),
      "docker-config /root/.docker/config.json",
    );
    const kr = new DockerConfigKeyring(cfg);
    const source = "docker-config /root/.docker/config.json";
    expect(kr.keys()).toEqual(["user.io", "token.io", "both.io", "bearer.io"]);
    expect(kr.lookupSync("empty.io/a")).toEqual([]);
    expect(kr.lookupSync("user.io/a")).toEqual([{ username: "only", password: "", source }]);
    expect(kr.lookupSync("token.io/a")).toEqual([{ identityToken: "refresh", source }]);
    expect(kr.lookupSync("both.io/a")).toEqual([{ username: "u", password: "p", identityToken: "refresh", source }]);
    expect(kr.lookupSync("bearer.io/a")).toEqual([{ registryToken: "bearer", source }]);
  });

  it("ignores keys that do not normalise and images that do not parse", async () => {
    const kr = ring(["", "https://", "reg.io"]);
    expect(kr.keys()).toEqual(["reg.io"]);
    expect(await kr.lookup("")).toEqual([]);
    expect(await kr.lookup("/x")).toEqual([]);
  });

  it("lookup honours an aborted signal", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await expect(ring(["reg.io"]).lookup("reg.io/a", ac.signal)).rejects.toThrow("stop");
  });
});

describe("dedupeCredentials", () => {
  it("keeps the first of identical secrets, whatever the source", () => {
    expect(
      dedupeCredentials([
        { username: "a", password: "b", source: "one" },
        { username: "a", password: "b", source: "two" },
        { username: "a", password: "c", source: "three" },
        { registryToken: "t", source: "four" },
        { registryToken: "t", source: "five" },
        { identityToken: "t", source: "six" },
      ]).map((c) => c.source),
    ).toEqual(["one", "three", "four", "six"]);
  });
});

function staticKeyring(creds: Credential[]): Keyring {
  return { lookup: async () => creds };
}

function provider(
  name: string,
  host: string,
  get: (host: string, signal?: AbortSignal) => Promise<Credential | undefined>,
): CredentialProvider & { get: ReturnType<typeof vi.fn> } {
  return { name, matches: (h: string) => h === host, get: vi.fn(get) };
}

class CodedError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

describe("ChainKeyring", () => {
  const ecrHost = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
  const ecrImage = `${ecrHost}/team/app`;
  const secret: Credential = { username: "s", password: "p", source: "secret ns/regcred" };
  const ecrCred: Credential = { username: "AWS", password: "tok", source: "ecr" };

  it("concatenates keyrings, then matching providers, and dedupes", async () => {
    const ecr = provider("ecr", ecrHost, async () => ecrCred);
    const gcr = provider("gcr", "gcr.io", async () => ({
      username: "oauth2accesstoken",
      password: "x",
      source: "gcr",
    }));
    const chain = new ChainKeyring(
      [staticKeyring([secret]), staticKeyring([{ ...secret, source: "dup" }, { registryToken: "r", source: "k2" }])],
      [ecr, gcr],
    );
    expect(await chain.lookup(ecrImage)).toEqual([secret, { registryToken: "r", source: "k2" }, ecrCred]);
    expect(ecr.get).toHaveBeenCalledWith(ecrHost, undefined);
    expect(gcr.get).not.toHaveBeenCalled();
  });

  it("passes host[:port] and the signal to providers", async () => {
    const p = provider("p", "reg.io:5000", async () => undefined);
    const ac = new AbortController();
    expect(await new ChainKeyring([], [p]).lookup("reg.io:5000/a", ac.signal)).toEqual([]);
    expect(p.get).toHaveBeenCalledWith("reg.io:5000", ac.signal);
  });

  it("skips a provider that declines", async () => {
    const declines = provider("ecr", ecrHost, async () => undefined);
    expect(await new ChainKeyring([staticKeyring([secret])], [declines]).lookup(ecrImage)).toEqual([secret]);
    expect(await new ChainKeyring([], [declines]).lookup(ecrImage)).toEqual([]);
  });

  it("returns found credentials and reports provider errors when something was found", async () => {
    const failing = provider("ecr", ecrHost, async () => {
      throw new CodedError("ecr: GetAuthorizationToken failed", "ECR_AUTH_FAILED");
    });
    const onError = vi.fn();
    const chain = new ChainKeyring([staticKeyring([secret])], [failing], { onError });
    expect(await chain.lookup(ecrImage)).toEqual([secret]);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[1]).toBe("provider ecr");
    expect((onError.mock.calls[0]?.[0] as CodedError).code).toBe("ECR_AUTH_FAILED");
  });

  it("rethrows the first error unchanged when nothing was found, reporting the others", async () => {
    const first = new CodedError("first", "FIRST");
    const second = new CodedError("second", "SECOND");
    const p1 = provider("one", ecrHost, async () => {
      throw first;
    });
    const p2 = provider("two", ecrHost, async () => {
      throw second;
    });
    const onError = vi.fn();
    const chain = new ChainKeyring([staticKeyring([])], [p1, p2], { onError });
    await expect(chain.lookup(ecrImage)).rejects.toBe(first);
    expect(onError).toHaveBeenCalledWith(second, "provider two");
  });

  it("treats a throwing keyring like a throwing provider", async () => {
    const broken: Keyring = {
      lookup: async () => {
        throw new Error("broken keyring");
      },
    };
    expect(await new ChainKeyring([broken, staticKeyring([secret])]).lookup("reg.io/a")).toEqual([secret]);
    await expect(new ChainKeyring([broken]).lookup("reg.io/a")).rejects.toThrow("broken keyring");
  });

  it("survives a throwing matches() and a throwing onError", async () => {
    const bad: CredentialProvider = {
      name: "bad",
      matches: () => {
        throw new Error("matches blew up");
      },
      get: async () => undefined,
    };
    const chain = new ChainKeyring([staticKeyring([secret])], [bad], {
      onError: () => {
        throw new Error("logger down");
      },
    });
    expect(await chain.lookup("reg.io/a")).toEqual([secret]);
  });

  it("throws the abort reason when the signal is aborted", async () => {
    const ac = new AbortController();
    const slow = provider("ecr", ecrHost, async () => {
      ac.abort(new Error("cancelled"));
      return ecrCred;
    });
    await expect(new ChainKeyring([staticKeyring([secret])], [slow]).lookup(ecrImage, ac.signal)).rejects.toThrow(
      "cancelled",
    );
    await expect(new ChainKeyring([]).lookup(ecrImage, ac.signal)).rejects.toThrow("cancelled");
  });

  it("offers Docker Hub short names to providers as registry-1.docker.io", async () => {
    const hub = provider("hub", "registry-1.docker.io", async () => ({ registryToken: "t", source: "hub" }));
    expect(await new ChainKeyring([], [hub]).lookup("nginx")).toEqual([{ registryToken: "t", source: "hub" }]);
  });

  it("works with a DockerConfigKeyring", async () => {
    const json = JSON.stringify({ auths: { "*.dkr.ecr.eu-west-1.amazonaws.com": { auth: "dTpw" } } });
    const cfg = parseDockerConfig(json, "s");
    const chain = new ChainKeyring([new DockerConfigKeyring(cfg)], [provider("ecr", ecrHost, async () => ecrCred)]);
    expect(await chain.lookup(ecrImage)).toEqual([{ username: "u", password: "p", source: "s" }, ecrCred]);
  });
});
