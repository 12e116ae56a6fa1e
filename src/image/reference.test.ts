import { describe, expect, it } from "vitest";
import { familiarString, manifestReference, parseReference, referenceString, ReferenceError, repositoryKey, type Reference } from "./reference.js";

const D = `sha256:${"f".repeat(64)}`;
const D512 = `sha512:${"f".repeat(128)}`;
const HUB = "registry-1.docker.io";
const hub = (repository: string, tag = "latest"): Reference => ({ registry: HUB, repository, tag });

function refusal(input: string, opts?: { defaultRegistry?: string }): ReferenceError {
  try {
    parseReference(input, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ReferenceError);
    return e as ReferenceError;
  }
  throw new Error(`${input} was accepted`);
}

describe("parseReference: Docker Hub normalisation", () => {
  // Cases from distribution/reference's ParseNormalizedNamed tests (TestParseRepositoryInfo,
  // TestNormalizedSplitHostname, TestValidateReferenceName, TestParseAnyReference).
  it.each<[string, Reference]>([
    ["nginx", hub("library/nginx")],
    ["nginx:1.25", hub("library/nginx", "1.25")],
    ["debian", hub("library/debian")],
    ["library/debian", hub("library/debian")],
    ["docker.io/debian", hub("library/debian")],
    ["docker.io/library/debian", hub("library/debian")],
    ["index.docker.io/debian", hub("library/debian")],
    ["index.docker.io/library/nginx:1", hub("library/nginx", "1")],
    ["index.docker.io/docker/docker", hub("docker/docker")],
    ["registry-1.docker.io/library/nginx", hub("library/nginx")],
    ["docker/docker", hub("docker/docker")],
    ["fooo/bar", hub("fooo/bar")],
    ["other/library", hub("other/library")],
    ["library/foo/bar", hub("library/foo/bar")],
    ["docker.io/library/foo/bar", hub("library/foo/bar")],
    ["store/foo/bar", hub("store/foo/bar")],
    ["ubuntu-12.04-base", hub("library/ubuntu-12.04-base")],
    ["test_com/foo", hub("test_com/foo")],
    ["test_com", hub("library/test_com")],
    ["test.com:tag", hub("library/test.com", "tag")],
    ["test.com:5000", hub("library/test.com", "5000")],
    ["foo_bar.com:8080", hub("library/foo_bar.com", "8080")],
    ["foo/foo_bar.com:8080", hub("foo/foo_bar.com", "8080")],
    ["192.168.0.1", hub("library/192.168.0.1")],
    ["192.168.0.1:80", hub("library/192.168.0.1", "80")],
    ["localhost", hub("library/localhost")],
    ["localhost:5000", hub("library/localhost", "5000")],
    ["example.com", hub("library/example.com")],
    ["lowercase:Uppercase", hub("library/lowercase", "Uppercase")],
    ["thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", hub("library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev")],
    ["dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", hub("library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9")],
    [`docker.io/${"1a3f".repeat(16)}`, hub(`library/${"1a3f".repeat(16)}`)],
    ["docker-rules/docker", hub("docker-rules/docker")],
    ["docker---rules/docker", hub("docker---rules/docker")],
    ["d/docker", hub("d/docker")],
    ["jess/t", hub("jess/t")],
    ["dock__er/docker", hub("dock__er/docker")],
    ["foo_bar/a__b/c-d/e---f/g.h:T_1", hub("foo_bar/a__b/c-d/e---f/g.h", "T_1")],
    [`redis@${D}`, { registry: HUB, repository: "library/redis", digest: D }],
    [`busybox:latest@${D}`, { registry: HUB, repository: "library/busybox", tag: "latest", digest: D }],
  ])("%s", (input, want) => {
    expect(parseReference(input)).toEqual(want);
  });
});

describe("parseReference: other registries", () => {
  it.each<[string, Reference]>([
    ["test.com/foo", { registry: "test.com", repository: "foo", tag: "latest" }],
    ["test.com/repo:tag", { registry: "test.com", repository: "repo", tag: "tag" }],
    ["test:5000/repo", { registry: "test:5000", repository: "repo", tag: "latest" }],
    ["test-com:8080/foo", { registry: "test-com:8080", repository: "foo", tag: "latest" }],
    [`test:5000/repo@${D}`, { registry: "test:5000", repository: "repo", digest: D }],
    [`test:5000/repo:tag@${D}`, { registry: "test:5000", repository: "repo", tag: "tag", digest: D }],
    ["xn--n3h.com:18080/foo", { registry: "xn--n3h.com:18080", repository: "foo", tag: "latest" }],
    [`xn--7o8h.com/myimage:xn--7o8h.com@${D512}`, { registry: "xn--7o8h.com", repository: "myimage", tag: "xn--7o8h.com", digest: D512 }],
    ["sub-dom1.foo.com/bar/baz/quux:some-long-tag", { registry: "sub-dom1.foo.com", repository: "bar/baz/quux", tag: "some-long-tag" }],
    ["b.gcr.io/test.example.com/my-app:test.example.com", { registry: "b.gcr.io", repository: "test.example.com/my-app", tag: "test.example.com" }],
    ["ghcr.io/org/sub/app:1.0-rc.1", { registry: "ghcr.io", repository: "org/sub/app", tag: "1.0-rc.1" }],
    ["localhost/app", { registry: "localhost", repository: "app", tag: "latest" }],
    ["localhost:5000/team/app:v1", { registry: "localhost:5000", repository: "team/app", tag: "v1" }],
    ["127.0.0.1:5000/library/debian", { registry: "127.0.0.1:5000", repository: "library/debian", tag: "latest" }],
    ["192.168.1.1/repo", { registry: "192.168.1.1", repository: "repo", tag: "latest" }],
    ["192.168.0.1:8/debian", { registry: "192.168.0.1:8", repository: "debian", tag: "latest" }],
    ["192.168.1.1:5000/repo:5050", { registry: "192.168.1.1:5000", repository: "repo", tag: "5050" }],
    ["[2001:db8::1]/repo", { registry: "[2001:db8::1]", repository: "repo", tag: "latest" }],
    ["[2001:db8:1:2:3:4:5:6]/repo:tag", { registry: "[2001:db8:1:2:3:4:5:6]", repository: "repo", tag: "tag" }],
    [`[2001:db8::1]:5000/repo:tag@${D}`, { registry: "[2001:db8::1]:5000", repository: "repo", tag: "tag", digest: D }],
    ["[2001:db8::]:5000/repo", { registry: "[2001:db8::]:5000", repository: "repo", tag: "latest" }],
    ["[::1]:5000/app:x", { registry: "[::1]:5000", repository: "app", tag: "x" }],
    ["[fc00:1:2:3:4:5:6:7]:5000/library/debian", { registry: "[fc00:1:2:3:4:5:6:7]:5000", repository: "library/debian", tag: "latest" }],
    // An uppercase first element is a domain: Docker Hub namespaces are lowercase.
    ["Foo/bar:1", { registry: "Foo", repository: "bar", tag: "1" }],
    ["FOO/bar", { registry: "FOO", repository: "bar", tag: "latest" }],
    ["Registry.Example.com/app", { registry: "Registry.Example.com", repository: "app", tag: "latest" }],
    // A tag cannot hold "/", so "nginx:1" before a slash is a host and port.
    ["nginx:1/2", { registry: "nginx:1", repository: "2", tag: "latest" }],
  ])("%s", (input, want) => {
    expect(parseReference(input)).toEqual(want);
  });

  it("uses the default registry only when the reference names none", () => {
    const opts = { defaultRegistry: "mirror.example.com:5000" };
    expect(parseReference("nginx", opts)).toEqual({ registry: "mirror.example.com:5000", repository: "nginx", tag: "latest" });
    expect(parseReference("ghcr.io/a/b", opts).registry).toBe("ghcr.io");
    expect(parseReference("nginx", { defaultRegistry: "docker.io" })).toEqual(hub("library/nginx"));
    expect(refusal("nginx", { defaultRegistry: "bad_host" })).toMatchObject({ part: "registry", message: expect.stringContaining("default registry") });
  });

  it("allows a name of exactly 255 characters, counting docker.io for Docker Hub", () => {
    const path = (n: number) => Array.from({ length: n }, () => "a").join("/");
    expect(parseReference(`example.com/${path(121)}`).repository).toHaveLength(241); // 12 + 241 = 253
    expect(parseReference(`ab.cd/${path(124)}`).repository).toHaveLength(247); // 6 + 247 = 253
    expect(parseReference(`abcd.ef/${path(124)}:tag-puts-this-over-max`).tag).toBe("tag-puts-this-over-max"); // 255
    expect(refusal(`abcde.fg/${path(124)}`).part).toBe("repository"); // 256
    expect(parseReference(`${"a".repeat(243)}/b`).repository).toHaveLength(245); // docker.io/ + 245 = 255
    expect(refusal(`${"a".repeat(244)}/b`).message).toMatch(/longer than 255/);
    expect(refusal(`${"a/".repeat(128)}a:tag`).part).toBe("repository");
  });
});

describe("parseReference: refusals name the bad part", () => {
  it.each<[string, ReferenceError["part"], RegExp?]>([
    ["", "reference", /empty/],
    [" nginx", "reference", /whitespace/],
    ["nginx\n", "reference"],
    ["1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "repository", /image ID/],
    ["Nginx", "repository", /repository "Nginx" must be lowercase/],
    ["Uppercase:tag", "repository", /lowercase/],
    ["docker/Docker", "repository", /repository "docker\/Docker" must be lowercase/],
    ["docker.io/docker/Docker", "repository", /lowercase/],
    ["test:5000/Uppercase/lowercase:tag", "repository", /lowercase/],
    ["-docker", "repository", /component "-docker"/],
    ["-docker/docker", "repository"],
    ["docker-/docker", "repository"],
    ["-docker-/docker", "repository"],
    ["____/____", "repository"],
    ["_docker/_docker", "repository"],
    // These contain ".", so the first element is taken as a host, and an invalid one.
    ["dock..er/docker", "registry"],
    ["dock_.er/docker", "registry"],
    ["dock-.er/docker", "registry"],
    ["dock___er/docker", "repository"],
    ["docker/dock..er", "repository"],
    ["docker/", "repository", /empty path component/],
    ["docker///docker", "repository", /empty path component/],
    ["docker.io/docker///docker", "repository"],
    ["/nginx", "repository"],
    ["example.com/", "repository", /no repository/],
    [":justtag", "repository", /no repository/],
    [`@${D}`, "repository"],
    ["aa/asdf$$^/aa", "repository"],
    ["ngi nx", "repository"],
    ["https://github.com/docker/docker", "registry", /registry "https:"/],
    ["-docker.io/docker/docker", "registry"],
    ["exa_mple.com:5000/app", "registry"],
    ["example.com:/app", "registry"],
    ["example.com:80a/app", "registry"],
    ["fc00::1:5000/debian", "registry"],
    ["[fc00::1]", "registry"],
    ["[2001:db8::1]:5000", "registry"],
    ["[2001:db8::1]:tag", "registry"],
    ["[fe80::1%eth0]:5000/debian", "registry"],
    ["[2001:db8:3:4::192.0.2.33]:5000/debian", "registry"],
    ["nginx:", "tag", /tag ""/],
    ["nginx:.bad", "tag"],
    ["nginx:-bad", "tag"],
    ["nginx:a:b", "tag"],
    ["nginx:a+b", "tag"],
    [`nginx:${"t".repeat(129)}`, "tag"],
    ["nginx@", "digest"],
    ["nginx@sha256:abc", "digest", /64 lowercase hex/],
    [`repo@sha256:${"f".repeat(34)}`, "digest"],
    [`repo@sha256:${"F".repeat(64)}`, "digest"],
    [`validname@invaliddigest:${"f".repeat(64)}`, "digest", /not supported/],
    [`nginx@md5:${"a".repeat(32)}`, "digest"],
    [`nginx@sha512:${"a".repeat(64)}`, "digest", /128/],
    [`nginx@${D}@${D}`, "digest"],
  ])("%j is refused (%s)", (input, part, message) => {
    const err = refusal(input);
    expect(err).toMatchObject({ code: "INVALID_REFERENCE", part, name: "ReferenceError" });
    expect(err.message).toContain(`invalid reference ${JSON.stringify(input)}`);
    if (message) expect(err.message).toMatch(message);
  });

  it("still accepts a tag of exactly 128 characters", () => {
    expect(parseReference(`nginx:${"t".repeat(128)}`).tag).toHaveLength(128);
  });
});

describe("printing", () => {
  it.each([
    ["nginx", "registry-1.docker.io/library/nginx:latest", "nginx:latest"],
    ["docker.io/library/nginx:1", "registry-1.docker.io/library/nginx:1", "nginx:1"],
    ["bitnami/redis", "registry-1.docker.io/bitnami/redis:latest", "bitnami/redis:latest"],
    ["library/foo/bar", "registry-1.docker.io/library/foo/bar:latest", "library/foo/bar:latest"],
    [`busybox:latest@${D}`, `registry-1.docker.io/library/busybox:latest@${D}`, `busybox:latest@${D}`],
    [`ghcr.io/a/b@${D}`, `ghcr.io/a/b@${D}`, `ghcr.io/a/b@${D}`],
    ["127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase:latest", "127.0.0.1:8000/private/moonbase:latest"],
    ["Foo/bar", "Foo/bar:latest", "Foo/bar:latest"],
  ])("%s -> %s, %s", (input, canonical, familiar) => {
    const r = parseReference(input);
    expect(referenceString(r)).toBe(canonical);
    expect(familiarString(r)).toBe(familiar);
    expect(parseReference(canonical)).toEqual(r);
    expect(parseReference(familiar)).toEqual(r);
  });

  it("keys repositories and fetches by digest when there is one", () => {
    expect(repositoryKey(parseReference("nginx:1"))).toBe("registry-1.docker.io/library/nginx");
    expect(manifestReference(parseReference("nginx:1"))).toBe("1");
    expect(manifestReference(parseReference(`nginx:1@${D}`))).toBe(D);
    expect(manifestReference({ registry: "r.io", repository: "a" })).toBe("latest");
  });
});
