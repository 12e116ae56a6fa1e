import { withRegistry } from "../bench/env.js";
import { RegistryPusher, sha256 } from "../test/env/oci-push.js";
import { RegistryClient } from "../src/registry/client.js";
import { parseReference } from "../src/image/reference.js";
import { gzip, makeTar } from "../src/layers/testing.js";
const TAGS = [...Array.from({ length: 12 }, (_, i) => `1.${i}.0`), ...Array.from({ length: 6 }, (_, i) => `v2.${i}.0`), "2.6.0-rc.1", "3.0.0-beta.1", "latest", "main", "dev-1", "dev-2", "sha-0a1b2c", "nightly", "1.0", "stable"];
await withRegistry(async (reg) => {
  const p = new RegistryPusher(reg);
  for (const tag of TAGS) {
    const tar = await makeTar([{ name: `etc/tag-${tag}`, content: `${tag} 0\n` }]);
    await p.pushImage("repos/app", tag, [{ data: gzip(tar), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: sha256(tar) }]);
  }
  const c = new RegistryClient();
  const l = await c.listTags(parseReference(`${reg.host}/repos/app`), { pageSize: 10 });
  console.log(l.tags.length, l.requests, TAGS.filter((t) => !l.tags.includes(t)));
  const res = await p.send("repos/app", "GET", "/v2/repos/app/tags/list?n=10");
  console.log(res.headers.link, (await res.body.text()).slice(0, 300));
  await c.close(); await p.close();
});
