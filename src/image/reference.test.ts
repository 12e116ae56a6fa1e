import { describe, expect, it } from "vitest";
import { familiarString, parseReference, referenceString, ReferenceError } from "./reference.js";

const D = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  it.each([
    ["nginx", { registry: "registry-1.docker.io", repository: "library/nginx", tag: "latest" }],
    ["nginx:1.25", { registry: "registry-1.docker.io", repository: "library/nginx", tag: "1.25" }],
    ["docker.io/nginx", { registry: "registry-1.docker.io", repository: "library/nginx", tag: "latest" }],
    ["index.docker.io/library/nginx:1", { registry: "registry-1.docker.io", repository: "library/nginx", tag: "1" }],
    ["bitnami/redis:7", { registry: "registry-1.docker.io", repository: "bitnami/redis", tag: "7" }],
    ["localhost/app", { registry: "localhost", repository: "app", tag: "latest" }],
    ["localhost:5000/team/app:v1", { registry: "localhost:5000", repository: "team/app", tag: "v1" }],
    ["127.0.0.1:5000/app", { registry: "127.0.0.1:5000", repository: "app", tag: "latest" }],
    ["ghcr.io/org/sub/app:1.0-rc.1", { registry: "ghcr.io", repository: "org/sub/app", tag: "1.0-rc.1" }],
    ["[::1]:5000/app:x", { registry: "[::1]:5000", repository: "app", tag: "x" }],
    [`quay.io/a/b@${D}`, { registry: "quay.io", repository: "a/b", digest: D }],
    [`quay.io/a/b:t@${D}`, { registry: "quay.io", repository: "a/b", tag: "t", digest: D }],
    ["foo_bar/a__b/c-d/e---f/g.h:T_1", { registry: "registry-1.docker.io", repository: "foo_bar/a__b/c-d/e---f/g.h", tag: "T_1" }],
    ["Registry.Example.com/app", { registry: "Registry.Example.com", repository: "app", tag: "latest" }],
  ])("%s", (input, want) => {
    expect(parseReference(input)).toEqual(want);
  });

  it.each([
    ["", "reference"],
    [" nginx", "reference"],
    ["Nginx", "repository"],
    ["nginx:", "tag"],
    ["nginx:.bad", "tag"],
    [`nginx:${"t".repeat(129)}`, "tag"],
    ["nginx@sha256:abc", "digest"],
    [`nginx@md5:${"a".repeat(32)}`, "digest"],
    ["a//b", "repository"],
    ["a/-b", "repository"],
    ["exa_mple.com:5000/app", "registry"],
    [`${"a".repeat(250)}.io/app`, "repository"],
  ])("refuses %j, naming the %s", (input, part) => {
    const err = (() => {
      try {
        parseReference(input);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ReferenceError);
    expect(err).toMatchObject({ code: "INVALID_REFERENCE", part });
    expect((err as Error).message).toContain(JSON.stringify(input));
  });

  it("prints canonical and familiar forms", () => {
    expect(referenceString(parseReference("nginx"))).toBe("registry-1.docker.io/library/nginx:latest");
    expect(familiarString(parseReference("docker.io/library/nginx:1"))).toBe("nginx:1");
    expect(familiarString(parseReference("bitnami/redis"))).toBe("bitnami/redis:latest");
    expect(familiarString(parseReference(`ghcr.io/a/b@${D}`))).toBe(`ghcr.io/a/b@${D}`);
  });
});
