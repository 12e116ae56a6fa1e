import { describe, expect, it } from "vitest";
import {
  DockerConfigError,
  parseDockerConfig,
  parseDockerConfigSecret,
  parseDockerConfigValue,
  SECRET_TYPE_DOCKERCFG,
  SECRET_TYPE_DOCKER_CONFIG_JSON,
} from "./dockerconfig.js";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const b64raw = (s: string) => b64(s).replace(/=+$/, "");

/** Runs fn, expects a DockerConfigError, and returns it. */
function catchConfigError(fn: () => unknown): DockerConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DockerConfigError);
    return err as DockerConfigError;
  }
  throw new Error("expected a DockerConfigError");
}

describe("parseDockerConfig: config.json / .dockerconfigjson", () => {
  it("reads auths entries in order, with every field", () => {
    const json = JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: b64("hubuser:hubpass"), email: "me@example.com" },
        "reg.example.com": { username: "u", password: "p" },
        "ghcr.io": { identitytoken: "refresh-token" },
        "bearer.example.com": { registrytoken: "bearer-token" },
      },
    });
    expect(parseDockerConfig(json, "secret default/regcred")).toEqual({
      source: "secret default/regcred",
      entries: [
        { key: "https://index.docker.io/v1/", username: "hubuser", password: "hubpass", email: "me@example.com" },
        { key: "reg.example.com", username: "u", password: "p" },
        { key: "ghcr.io", identityToken: "refresh-token" },
        { key: "bearer.example.com", registryToken: "bearer-token" },
      ],
      credHelpers: {},
    });
  });

  it("lets auth override username and password", () => {
    const json = JSON.stringify({ auths: { r: { auth: b64("a:b"), username: "x", password: "y" } } });
    expect(parseDockerConfig(json, "s").entries).toEqual([{ key: "r", username: "a", password: "b" }]);
  });

  it("splits auth on the first colon only", () => {
    const json = JSON.stringify({ auths: { r: { auth: b64("user:pa:ss:") } } });
    expect(parseDockerConfig(json, "s").entries[0]).toMatchObject({ username: "user", password: "pa:ss:" });
    const empty = JSON.stringify({ auths: { r: { auth: b64(":") } } });
    expect(parseDockerConfig(empty, "s").entries[0]).toMatchObject({ username: "", password: "" });
  });

  it("accepts padded and unpadded base64, and UTF-8", () => {
    for (const cred of ["a:b", "ab:c", "abc:d", "üser:pässwörd"]) {
      for (const auth of [b64(cred), b64raw(cred)]) {
        const e = parseDockerConfig(JSON.stringify({ auths: { r: { auth } } }), "s").entries[0];
        expect(`${e?.username}:${e?.password}`).toBe(cred);
      }
    }
  });

  it("treats null and empty fields as absent", () => {
    const json = JSON.stringify({
      auths: { r: { auth: "", username: "u", password: null, identitytoken: "", registrytoken: null, email: null } },
      credHelpers: null,
      credsStore: "",
    });
    expect(parseDockerConfig(json, "s")).toEqual({
      source: "s",
      entries: [{ key: "r", username: "u" }],
      credHelpers: {},
    });
  });

  it("surfaces credHelpers and credsStore as data", () => {
    const json = JSON.stringify({
      auths: { "quay.io": {} },
      credHelpers: { "123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login", "gcr.io": "gcloud" },
      credsStore: "desktop",
      psFormat: "table",
      HttpHeaders: { "User-Agent": "x" },
    });
    expect(parseDockerConfig(json, "docker-config /root/.docker/config.json")).toEqual({
      source: "docker-config /root/.docker/config.json",
      entries: [{ key: "quay.io" }],
      credHelpers: { "123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login", "gcr.io": "gcloud" },
      credsStore: "desktop",
    });
  });

  it("reads a config with only credsStore, an empty auths, or (format config) nothing at all", () => {
    expect(parseDockerConfig('{"credsStore":"osxkeychain"}', "s")).toEqual({
      source: "s",
      entries: [],
      credHelpers: {},
      credsStore: "osxkeychain",
    });
    expect(parseDockerConfig('{"auths":{}}', "s").entries).toEqual([]);
    expect(parseDockerConfig('{"psFormat":"table"}', "s", "config").entries).toEqual([]);
    expect(parseDockerConfig("{}", "s").entries).toEqual([]);
  });

  it("accepts bytes", () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ auths: { r: { auth: b64("a:b") } } }));
    expect(parseDockerConfig(bytes, "s").entries).toEqual([{ key: "r", username: "a", password: "b" }]);
  });

  it("keeps a __proto__ registry key as an ordinary key", () => {
    const json = '{"auths":{"__proto__":{"auth":"' + b64("a:b") + '"}},"credHelpers":{"__proto__":"evil"}}';
    const cfg = parseDockerConfig(json, "s");
    expect(cfg.entries).toEqual([{ key: "__proto__", username: "a", password: "b" }]);
    expect(Object.getOwnPropertyDescriptor(cfg.credHelpers, "__proto__")?.value).toBe("evil");
    expect(Object.getPrototypeOf(cfg.credHelpers)).toBe(Object.prototype);
  });
});

describe("parseDockerConfig: legacy .dockercfg", () => {
  it("reads the bare map (auto-detected)", () => {
    const json = JSON.stringify({
      "https://index.docker.io/v1/": { auth: b64("foo:bar"), email: "foo@bar.baz" },
      "reg.example.com": { username: "u", password: "p" },
    });
    expect(parseDockerConfig(json, "secret ns/old")).toEqual({
      source: "secret ns/old",
      entries: [
        { key: "https://index.docker.io/v1/", username: "foo", password: "bar", email: "foo@bar.baz" },
        { key: "reg.example.com", username: "u", password: "p" },
      ],
      credHelpers: {},
    });
  });

  it("with format legacy, a key named auths is a registry key", () => {
    const json = JSON.stringify({ auths: { username: "u", password: "p" } });
    expect(parseDockerConfig(json, "s", "legacy").entries).toEqual([{ key: "auths", username: "u", password: "p" }]);
  });
});

describe("parseDockerConfigValue", () => {
  it("takes an already-parsed value", () => {
    expect(parseDockerConfigValue({ auths: { r: { username: "u" } } }, "s").entries).toEqual([
      { key: "r", username: "u" },
    ]);
  });
});

describe("DockerConfigError", () => {
  const password = "hunter2-S3cr3t";
  const token = "tok-VERY-SECRET";

  function expectNoSecrets(err: DockerConfigError): void {
    const text = `${err.message} ${String(err.stack)} ${JSON.stringify(err)} ${String(err.cause)}`;
    for (const secret of [password, token, b64(`user:${password}`), "VERY-SECRET", "S3cr3t"]) {
      expect(text).not.toContain(secret);
    }
  }

  it("names the source and the key for bad base64, and hides the value", () => {
    const err = catchConfigError(() =>
      parseDockerConfig(JSON.stringify({ auths: { "reg.example.com": { auth: `${password}!!` } } }), "secret ns/x"),
    );
    expect(err.code).toBe("DOCKER_CONFIG_INVALID");
    expect(err.name).toBe("DockerConfigError");
    expect(err.source).toBe("secret ns/x");
    expect(err.key).toBe("reg.example.com");
    expect(err.message).toBe('secret ns/x: invalid docker config entry "reg.example.com": auth is not valid base64');
    expectNoSecrets(err);
  });

  it.each([
    ["a=b", "not base64"],
    ["YWJj=", "bad padding"],
    ["YQ===", "too much padding"],
    ["Y", "impossible length"],
    ["YW Jj", "inner space"],
    ["YW-_", "url-safe alphabet"],
  ])("rejects auth %s (%s)", (auth) => {
    const err = catchConfigError(() => parseDockerConfig(JSON.stringify({ auths: { r: { auth } } }), "s"));
    expect(err.message).toContain("auth is not valid base64");
  });

  it("rejects auth without a colon, and auth that is not UTF-8", () => {
    const noColon = catchConfigError(() =>
      parseDockerConfig(JSON.stringify({ auths: { r: { auth: b64(password) } } }), "s"),
    );
    expect(noColon.message).toBe('s: invalid docker config entry "r": auth must be base64("username:password")');
    expectNoSecrets(noColon);
    const latin1 = Buffer.from([0x75, 0x3a, 0xff, 0xfe]).toString("base64");
    const notUtf8 = catchConfigError(() => parseDockerConfig(JSON.stringify({ auths: { r: { auth: latin1 } } }), "s"));
    expect(notUtf8.message).toContain("auth is not UTF-8");
  });

  it("rejects JSON that does not parse, without quoting it", () => {
    const err = catchConfigError(() =>
      parseDockerConfig(`{"auths":{"r":{"password":"${password}","identitytoken":"${token}"`, "file /x/config.json"),
    );
    expect(err.message).toBe("file /x/config.json: invalid docker config: not valid JSON");
    expect(err.cause).toBeUndefined();
    expectNoSecrets(err);
    expect(catchConfigError(() => parseDockerConfig(new Uint8Array([0xff, 0x7b]), "s")).message).toContain(
      "not UTF-8",
    );
  });

  it.each([
    ["null", "s: invalid docker config: top level: expected an object", undefined],
    ["[]", "s: invalid docker config: top level: expected an object", undefined],
    ['"x"', "s: invalid docker config: top level: expected an object", undefined],
    ['{"auths":[]}', "s: invalid docker config: auths: expected an object", undefined],
    ['{"auths":{"r":"str"}}', 's: invalid docker config entry "r": expected an object', "r"],
    ['{"auths":{"r":null}}', 's: invalid docker config entry "r": expected an object', "r"],
    ['{"auths":{"r":{"auth":5}}}', 's: invalid docker config entry "r": field auth: expected a string', "r"],
    [
      `{"auths":{"r":{"password":{"nested":"${password}"}}}}`,
      's: invalid docker config entry "r": field password: expected a string',
      "r",
    ],
    [
      `{"auths":{"r":{"identitytoken":["${token}"]}}}`,
      's: invalid docker config entry "r": field identitytoken: expected a string',
      "r",
    ],
    ['{"credHelpers":[]}', "s: invalid docker config: credHelpers: expected an object", "credHelpers"],
    ['{"credHelpers":{"gcr.io":1}}', 's: invalid docker config: credHelpers "gcr.io": expected a string', "gcr.io"],
    ['{"credsStore":1}', "s: invalid docker config: credsStore: expected a string", "credsStore"],
    ['{"r":"legacy but not an object"}', 's: invalid docker config entry "r": expected an object', "r"],
  ])("rejects %s", (json, message, key) => {
    const err = catchConfigError(() => parseDockerConfig(json, "s"));
    expect(err.message).toBe(message);
    expect(err.key).toBe(key);
    expectNoSecrets(err);
  });

  it("escapes and truncates hostile keys in messages", () => {
    const key = `evil\n${"x".repeat(500)}`;
    const err = catchConfigError(() => parseDockerConfig(JSON.stringify({ auths: { [key]: 1 } }), "s"));
    expect(err.message).not.toContain("\n");
    expect(err.message.length).toBeLessThan(300);
    expect(err.key).toBe(key);
  });
});

describe("parseDockerConfigSecret", () => {
  const configJson = JSON.stringify({ auths: { "reg.example.com": { auth: b64("u:p") } } });
  const legacyJson = JSON.stringify({ "reg.example.com": { auth: b64("u:p") } });

  it("reads kubernetes.io/dockerconfigjson", () => {
    const cfg = parseDockerConfigSecret(
      { type: SECRET_TYPE_DOCKER_CONFIG_JSON, data: { ".dockerconfigjson": b64(configJson) } },
      "secret default/regcred",
    );
    expect(cfg.entries).toEqual([{ key: "reg.example.com", username: "u", password: "p" }]);
    expect(cfg.source).toBe("secret default/regcred");
  });

  it("reads kubernetes.io/dockercfg", () => {
    const cfg = parseDockerConfigSecret(
      { type: SECRET_TYPE_DOCKERCFG, data: { ".dockercfg": b64(legacyJson) } },
      "secret default/old",
    );
    expect(cfg.entries).toEqual([{ key: "reg.example.com", username: "u", password: "p" }]);
  });

  it("rejects other types, missing keys and bad base64", () => {
    expect(catchConfigError(() => parseDockerConfigSecret({ type: "Opaque", data: {} }, "secret a/b")).message).toBe(
      'secret a/b: not an image pull secret (type "Opaque")',
    );
    expect(catchConfigError(() => parseDockerConfigSecret({}, "secret a/b")).message).toBe(
      "secret a/b: not an image pull secret (type none)",
    );
    const missing = catchConfigError(() =>
      parseDockerConfigSecret({ type: SECRET_TYPE_DOCKER_CONFIG_JSON, data: { ".dockercfg": b64(legacyJson) } }, "s"),
    );
    expect(missing.message).toBe("s: secret has no data key .dockerconfigjson");
    const bad = catchConfigError(() =>
      parseDockerConfigSecret({ type: SECRET_TYPE_DOCKER_CONFIG_JSON, data: { ".dockerconfigjson": "%%%" } }, "s"),
    );
    expect(bad.message).toBe("s: secret data .dockerconfigjson is not valid base64");
  });

  it("parses a dockerconfigjson secret as config format even without auths", () => {
    const cfg = parseDockerConfigSecret(
      { type: SECRET_TYPE_DOCKER_CONFIG_JSON, data: { ".dockerconfigjson": b64('{"psFormat":"x"}') } },
      "s",
    );
    expect(cfg.entries).toEqual([]);
  });
});
